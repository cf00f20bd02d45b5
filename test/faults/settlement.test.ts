/**
 * Settlement that never pays twice and never blocks a domain, and defaults
 * that never misjudge a payer: a plan is paid whole or not at all, a rejected
 * transaction is released only when it can never confirm, a run that lost its
 * lease broadcasts nothing, and a default is written only on the very state
 * lateness was judged on. The node's answers (rejection, conflict) are
 * scripted around the real bcoin wallet; the store and ledger are real.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { OUTBID_FACTOR, settleDomain, type SettleSummary } from '../../service/settle.ts';
import { watchProvider } from '../../service/watch.ts';
import { closeObligation } from '../../service/evidence.ts';
import { TxRejectedError } from '../../adapters/payments/bitcoin.ts';
import { MalformedError } from '../../core/errors.ts';
import { parseTx } from '../../adapters/payments/rawtx.ts';
import type { Payments } from '../../adapters/ports.ts';
import type { DynamoStore } from '../../adapters/store/dynamo.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { receivedBy } from './support.ts';

interface Script {
  prepared: string[];
  broadcasts: string[];
  abandoned: string[];
  /** Broadcasting one of these hexes is rejected for good. */
  reject: Set<string>;
  conflicted: boolean;
  /** Runs right after a transaction is prepared (before the run records it). */
  afterPrepare?: () => Promise<void>;
  /** The wallet refuses every fee bump with this message (as Core's psbtbumpfee does). */
  bumpRefused?: string;
  /** Every replacement asked for: what it replaces and the rate asked. */
  replacements?: { txid: string; atLeastSatVb: number | undefined }[];
  /** The node refuses the next this many fee bumps at broadcast, with `rejectMessage`. */
  rejectBumps?: number;
  rejectMessage?: string;
}

/** The real wallet, with the node's verdicts scripted and every call recorded. */
function scripted(real: Payments, s: Script): Payments {
  const over: Partial<Payments> = {
    async prepareSendMany(outputs) {
      const tx = await real.prepareSendMany(outputs);
      s.prepared.push(tx.hex);
      await s.afterPrepare?.();
      return tx;
    },
    async broadcast(hex) {
      s.broadcasts.push(hex);
      if (s.reject.has(hex)) throw new TxRejectedError(s.rejectMessage ?? 'bad-txns-inputs-missingorspent', {});
      return real.broadcast(hex);
    },
    async isConflicted() {
      return s.conflicted;
    },
    async prepareReplacement(hex, opts) {
      if (s.bumpRefused !== undefined) throw new MalformedError(s.bumpRefused);
      (s.replacements ??= []).push({ txid: parseTx(hex).txid, atLeastSatVb: opts?.atLeastSatVb });
      const tx = await real.prepareReplacement(hex, opts);
      if ((s.rejectBumps ?? 0) > 0) {
        s.rejectBumps = (s.rejectBumps ?? 0) - 1;
        s.reject.add(tx.hex);
      }
      return tx;
    },
    async abandon(hex) {
      s.abandoned.push(hex);
      return real.abandon(hex);
    },
  };
  return Object.assign(Object.create(real) as Payments, over);
}

const FEE_CAP = 100;

describe('settlement faults', () => {
  let cloud: LocalCloud;
  const devs: Record<string, TestDevice> = {};

  before(async () => {
    // bcoin's bump doubles the fee (about 40 sat/vB), its outbids 1.5× that: a cap of 100 takes two outbids, not three
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0 }, env: { CREDIT_BASE: '1000000', FEE_CAP_SAT_VB: String(FEE_CAP) } });
    await registerDomain(cloud, 'sp', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'sq', 'provider', { threshold: 0.3 });
    for (const c of ['sa', 'sb', 'sc', 'sd', 'se', 'sf', 'sg']) {
      await registerDomain(cloud, c, 'consumer');
      await cloud.fund(c);
      devs[c] = await enrol(cloud, c, `${c}-dev`);
    }
  });
  after(async () => {
    await cloud?.stop();
  });

  async function published(consumer: string, n: number, dueInMs = 60_000, provider = 'sp'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { ob, res } = await buy(cloud, devs[consumer] as TestDevice, provider, `${provider}-spd`, { dueInMs });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(ob.id);
    }
    await cloud.runJob('publish');
    return ids;
  }

  const newScript = (): Script => ({ prepared: [], broadcasts: [], abandoned: [], reject: new Set(), conflicted: false });
  const withPayments = (s: Script): Deps => ({ ...cloud.deps, payments: async (w) => scripted(await cloud.deps.payments(w), s) });
  const items = async (ids: string[]) => Promise.all(ids.map(async (id) => (await cloud.deps.store.getObligation(id))!));

  it('a plan whose obligation left the pending set before broadcast is aborted: nothing broadcast, the rest released and paid next run', async () => {
    const ids = await published('sa', 3);
    const s = newScript();
    // the watcher defaults one obligation between the run's read and its move into the settlement
    s.afterPrepare = async () => {
      s.afterPrepare = undefined;
      await cloud.deps.store.transition(ids[1] as string, ['accepted'], 'defaulted', { closedAt: Date.now() }, { expect: { settlementId: null } });
    };
    const first = await settleDomain(withPayments(s), 'sa');
    assert.equal(s.broadcasts.length, 0, 'nothing broadcast');
    assert.deepEqual(first.settlements, []);
    assert.equal(first.failed?.length, 1, JSON.stringify(first));
    assert.deepEqual(s.abandoned, s.prepared, 'its inputs given back');
    const released = await items(ids);
    assert.deepEqual(released.map((o) => o.status), ['accepted', 'defaulted', 'accepted']);
    assert.ok(released.every((o) => o.settlementId === undefined), 'no obligation left in the failed settlement');

    const second = await settleDomain(withPayments(s), 'sa');
    assert.equal(second.settlements.length, 1, JSON.stringify(second));
    assert.equal(second.settlements[0]?.obligations, 2);
    assert.equal(s.broadcasts.length, 1);
    const settled = await items(ids);
    assert.deepEqual(settled.map((o) => o.status), ['settling', 'defaulted', 'settling']);
  });

  it('a rejected transaction that may still confirm is kept (stuck), never paid again, and does not block new obligations', async () => {
    const ids = await published('sb', 2);
    const s = newScript();
    s.afterPrepare = async () => {
      s.afterPrepare = undefined;
      s.reject.add(s.prepared[0] as string);
    };
    const first = await settleDomain(withPayments(s), 'sb');
    assert.equal(first.stuck?.length, 1, JSON.stringify(first));
    assert.equal(first.failed, undefined);
    const stuckId = first.stuck?.[0]?.settlementId;
    assert.ok((await items(ids)).every((o) => o.status === 'settling' && o.settlementId === stuckId));

    // later obligations are paid on their own; the stuck ones are not planned again
    const later = await published('sb', 1);
    const second = await settleDomain(withPayments(s), 'sb');
    assert.equal(second.stuck?.length, 1, 'still stuck, retried');
    assert.equal(second.settlements.length, 1, JSON.stringify(second));
    assert.equal(second.settlements[0]?.obligations, 1);
    assert.equal(s.prepared.length, 2, 'one transaction for the stuck pair, one for the later obligation');
    assert.equal((await items(later))[0]?.status, 'settling');
    assert.deepEqual(s.abandoned, []);

    // the node now shows an input spent elsewhere: released, planned again and paid in the same run
    s.conflicted = true;
    const third = await settleDomain(withPayments(s), 'sb');
    assert.equal(third.failed?.[0]?.settlementId, stuckId, JSON.stringify(third));
    assert.equal(third.settlements.length, 1);
    assert.equal(third.settlements[0]?.obligations, 2);
    assert.notEqual(third.settlements[0]?.settlementId, stuckId, 'a new settlement id for the same set');
    const repaid = await items(ids);
    assert.ok(repaid.every((o) => o.status === 'settling' && o.settlementId === third.settlements[0]?.settlementId));
    const fourth = await settleDomain(withPayments(s), 'sb');
    assert.deepEqual([fourth.settlements, fourth.failed, fourth.stuck], [[], undefined, undefined], 'nothing left to do');
  });

  it('a run that lost its lease (expired and taken) broadcasts nothing; the next run completes the same transaction once', async () => {
    const ids = await published('sc', 2);
    const s = newScript();
    let thief: number | undefined;
    const run = await settleDomain(withPayments(s), 'sc', {
      hooks: {
        afterIntent: async () => {
          // another run, whose clock says this run's lease has expired, takes it over
          thief = await cloud.deps.store.acquireLease('settle:sc', 'thief', 60_000, Date.now() + 10 * 60_000);
        },
      },
    });
    assert.ok(thief !== undefined, 'the lease was taken over');
    assert.match(run.deferred ?? '', /lost the settle lease/);
    assert.equal(s.broadcasts.length, 0, 'a fenced-off run broadcasts nothing');
    assert.deepEqual((await settleDomain(withPayments(s), 'sc')).deferred, 'another run is settling sc');
    await cloud.deps.store.releaseLease('settle:sc', 'thief', thief as number);
    const next = await settleDomain(withPayments(s), 'sc');
    assert.equal(next.recovered, 1, JSON.stringify(next));
    assert.deepEqual(s.broadcasts, [s.prepared[0]], 'the same transaction, broadcast once');
    assert.equal(s.prepared.length, 1);
    assert.ok((await items(ids)).every((o) => o.status === 'settling'));
  });

  it('a settlement unconfirmed BUMP_AFTER_BLOCKS blocks after broadcast is fee-bumped (RBF): one payment, under the new txid, fulfils it', async () => {
    const ids = await published('se', 2);
    const k = cloud.deps.config.bumpAfterBlocks;
    const first = await settleDomain(cloud.deps, 'se');
    const paid = first.settlements[0];
    assert.ok(paid && first.settlements.length === 1, JSON.stringify(first));
    const owed = (await items(ids)).reduce((sum, o) => sum + o.amount, 0);
    assert.equal(paid.total, owed);

    await cloud.regtest.mineEmpty(k - 1); // blocks that leave it out
    const waiting = await settleDomain(cloud.deps, 'se');
    assert.deepEqual([waiting.bumped, waiting.settlements, waiting.confirmed], [undefined, [], undefined], 'not stuck yet');
    await cloud.regtest.mineEmpty(1);
    const bumpRun = await settleDomain(cloud.deps, 'se');
    const bump = bumpRun.bumped?.[0];
    assert.ok(bump && bumpRun.bumped?.length === 1, JSON.stringify(bumpRun));
    assert.deepEqual([bump.settlementId, bump.from], [paid.settlementId, paid.txid]);
    assert.notEqual(bump.to, paid.txid);
    assert.deepEqual(bumpRun.settlements, [], 'no second settlement of the same obligations');
    if (bumpRun.deferred !== undefined) {
      // a transient node error after the replacement's intent was recorded (under load bcoin's
      // listtransactions can refuse, -32603, as the replacement lands; the adapter reads it again, up
      // to three times): the next run completes that intent, and bumps nothing again
      const recovery = await settleDomain(cloud.deps, 'se');
      assert.deepEqual([recovery.recovered, recovery.bumped, recovery.settlements], [1, undefined, []], JSON.stringify({ bumpRun, recovery }));
    }
    const item = await cloud.deps.store.getSettlement(paid.settlementId);
    assert.deepEqual([item?.txid, item?.replaces, item?.phase], [bump.to, [paid.txid], 'broadcast'], JSON.stringify(bumpRun));
    assert.ok((await items(ids)).every((o) => o.status === 'settling' && o.settlementId === paid.settlementId));

    // the ledger names the replacement, as a record of its own that lists what it replaces
    const onLedger = await cloud.deps.ledger.listByKey('settlements', `c:se`);
    assert.equal(new Set(onLedger.map((r) => r.keys[0])).size, 4, 'four items under four ids: a reader that keeps the first item per id keeps them all');
    const records = onLedger.map((r) => r.data as { body: { txid: string; phase: string; replaces?: string[] } });
    assert.deepEqual(
      records.map((r) => [r.body.phase, r.body.txid, r.body.replaces]),
      [['intent', paid.txid, undefined], ['broadcast', paid.txid, undefined], ['intent', bump.to, [paid.txid]], ['broadcast', bump.to, [paid.txid]]],
    );

    await cloud.regtest.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'se')).confirmed, 1);
    assert.equal((await cloud.deps.store.getSettlement(paid.settlementId))?.confirmedTxid, bump.to);
    assert.deepEqual(await cloud.deps.store.listUnconfirmedSettlements('se'), []);
    // the stuck transaction's records (intent and broadcast) wait no more: their obligations were paid through the replacement's
    assert.equal(await fulfilledBy(ids, bump.to, [paid.txid], owed), 2);
    const provider = await cloud.deps.store.getHostedDomain('sp');
    const wallet = await cloud.deps.payments(provider!.wallet);
    assert.equal(await wallet.lookupTransaction(paid.txid), null, 'the stuck transaction is gone for good');
    assert.equal((await wallet.lookupTransaction(bump.to))?.confirmations, 1);
  });

  it('a chain of settlements (one spends the unconfirmed change of another) waits as one and is bumped through its last payment, once per BUMP_AFTER_BLOCKS; each paid once', async () => {
    await registerDomain(cloud, 'sr', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'sh', 'consumer');
    await cloud.fund('sh', 1); // one coin
    devs.sh = await enrol(cloud, 'sh', 'sh-dev');
    const k = cloud.deps.config.bumpAfterBlocks;
    const early = await published('sh', 2, 60_000, 'sr');
    const s1 = (await settleDomain(cloud.deps, 'sh')).settlements[0];
    await cloud.regtest.mineEmpty(1);
    const late = await published('sh', 2, 60_000, 'sr');
    const s2 = (await settleDomain(cloud.deps, 'sh')).settlements[0];
    assert.ok(s1 && s2);
    const stored = await cloud.deps.store.getSettlement(s2.settlementId);
    assert.ok(stored && parseTx(stored.hex).inputs.some((i) => i.txid === s1.txid), 'the second spends the change of the first');

    await cloud.regtest.mineEmpty(k - 2); // the first has waited k − 1 blocks
    assert.deepEqual((await settleDomain(cloud.deps, 'sh')).bumped, undefined, 'not stuck yet');
    await cloud.regtest.mineEmpty(1); // the first k, the second only k − 1: the chain is due
    const run = await settleDomain(cloud.deps, 'sh');
    assert.deepEqual(run.bumped?.map((b) => [b.settlementId, b.from]), [[s2.settlementId, s2.txid]], JSON.stringify(run));
    assert.deepEqual([run.stuck, run.settlements], [undefined, []], JSON.stringify(run));
    const again = await settleDomain(cloud.deps, 'sh');
    // a transient node error after a replacement (as in the bump test above): the next run completes its intent
    if (run.deferred !== undefined) assert.equal(again.recovered, 1, JSON.stringify({ run, again }));
    assert.equal(again.bumped, undefined, 'the chain waits again from its bump');

    await cloud.regtest.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'sh')).confirmed, 2);
    const provider = await cloud.deps.store.getHostedDomain('sr');
    assert.ok(provider);
    await watchProvider(cloud.deps, provider);
    const done = await items([...early, ...late]);
    assert.ok(done.every((o) => o.status === 'fulfilled'), JSON.stringify(done.map((o) => o.status)));
    const owed = done.reduce((sum, o) => sum + o.amount, 0);
    assert.equal((await receivedBy(cloud, 'sr')).reduce((sum, p) => sum + p.amount, 0), owed, 'paid once, exactly what is owed');
  });

  /**
   * A transient node error right after a replacement entered the wallet (see the bump test above): the
   * run is deferred, and the next completes its intent, bumping nothing.
   */
  async function completedAfter(run: SettleSummary, domain: string): Promise<void> {
    if (run.deferred === undefined) return;
    const again = await settleDomain(cloud.deps, domain);
    assert.deepEqual([again.recovered, again.bumped, again.settlements], [1, undefined, []], JSON.stringify({ run, again }));
  }

  /**
   * sp's watcher fulfils every one of `ids` as paid by `txid`, which sp received once, exactly `owed`;
   * the records of the transactions it `replaced` then leave the watcher's waiting list. Their count.
   */
  async function fulfilledBy(ids: string[], txid: string, replaced: string[], owed: number): Promise<number> {
    const provider = await cloud.deps.store.getHostedDomain('sp');
    assert.ok(provider);
    await watchProvider(cloud.deps, provider);
    const done = await items(ids);
    assert.ok(done.every((o) => o.status === 'fulfilled' && o.paidTxid === txid), JSON.stringify(done.map((o) => [o.status, o.paidTxid])));
    const all = await cloud.deps.ledger.listByKeyFrom('settlements', 'p:sp', 0, 10_000);
    const stale = all.flatMap((r, i) => (replaced.includes((r.data as { body: { txid: string } }).body.txid) ? [i] : []));
    await watchProvider(cloud.deps, provider); // the next run looks at what was still waiting
    const cursor = JSON.parse((await cloud.deps.store.getCursor('settlements:sp')) ?? '{}') as { waiting?: number[] };
    assert.deepEqual(stale.filter((i) => cursor.waiting?.includes(i)), [], JSON.stringify(cursor));
    const received = (await receivedBy(cloud, 'sp')).filter((p) => p.txid === txid || replaced.includes(p.txid));
    assert.deepEqual(received.map((p) => [p.txid, p.amount]), [[txid, owed]], 'paid once, exactly what is owed');
    return stale.length;
  }

  /** A fresh consumer with `n` published purchases from sp, settled and left out of BUMP_AFTER_BLOCKS blocks. */
  async function stuckSettlement(consumer: string, n: number) {
    await registerDomain(cloud, consumer, 'consumer');
    await cloud.fund(consumer);
    devs[consumer] = await enrol(cloud, consumer, `${consumer}-dev`);
    const ids = await published(consumer, n);
    const owed = (await items(ids)).reduce((sum, o) => sum + o.amount, 0);
    const paid = (await settleDomain(cloud.deps, consumer)).settlements[0];
    assert.ok(paid && paid.total === owed);
    await cloud.regtest.mineEmpty(cloud.deps.config.bumpAfterBlocks);
    return { ids, owed, paid };
  }

  it('a fee bump the node refuses is outbid: what it was to replace is bumped again at 1.5 times its rate, the refused one given back; one payment fulfils it', async () => {
    const { ids, owed, paid } = await stuckSettlement('sj', 2);
    const s = newScript();
    s.rejectBumps = 1;
    s.rejectMessage = 'insufficient fee, rejecting replacement';
    const run = await settleDomain(withPayments(s), 'sj');
    const [refused, outbid] = run.bumped ?? [];
    assert.ok(refused && outbid && run.bumped?.length === 2, JSON.stringify(run));
    await completedAfter(run, 'sj');
    assert.deepEqual([refused.from, refused.refused, outbid.from, outbid.refused], [paid.txid, undefined, refused.to, s.rejectMessage]);
    assert.ok(outbid.satVb >= refused.satVb * OUTBID_FACTOR, `${outbid.satVb} ≥ ${OUTBID_FACTOR} × ${refused.satVb} sat/vB`);
    // both replace the original (the refused one was never in a mempool), the second at the higher rate
    assert.deepEqual(s.replacements, [
      { txid: paid.txid, atLeastSatVb: undefined },
      { txid: paid.txid, atLeastSatVb: s.replacements?.[1]?.atLeastSatVb },
    ]);
    assert.ok((s.replacements?.[1]?.atLeastSatVb ?? 0) >= refused.satVb * OUTBID_FACTOR);
    assert.ok(s.abandoned.some((hex) => parseTx(hex).txid === refused.to), 'the refused one given back to the wallet');
    assert.deepEqual([run.stuck, run.settlements], [undefined, []], JSON.stringify(run));
    const item = await cloud.deps.store.getSettlement(paid.settlementId);
    assert.deepEqual([item?.txid, item?.replaces, item?.phase, item?.satVb], [outbid.to, [paid.txid, refused.to], 'broadcast', outbid.satVb]);
    assert.equal(parseTx(item?.replacedHex ?? '00').txid, paid.txid);

    await cloud.regtest.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'sj')).confirmed, 1);
    // the records of the original (intent, broadcast) and of the refused bump (intent) wait no more
    assert.equal(await fulfilledBy(ids, outbid.to, [paid.txid, refused.to], owed), 3);
  });

  it('a fee bump refused again after it was outbid is outbid once per run, not in a loop; until then it is kept, stuck, never paid twice', async () => {
    const { ids, paid } = await stuckSettlement('sk', 1);
    const s = newScript();
    s.rejectBumps = 2;
    s.rejectMessage = 'mempool min fee not met';
    const one = await settleDomain(withPayments(s), 'sk');
    assert.equal(one.bumped?.length, 2, JSON.stringify(one));
    assert.deepEqual(one.stuck?.map((x) => [x.txid, x.reason]), [[one.bumped?.[1]?.to, s.rejectMessage]], JSON.stringify(one));
    const two = await settleDomain(withPayments(s), 'sk');
    // the refused outbid is an intent: recovered (recovered counts it only when it completes) and outbid
    assert.deepEqual([two.bumped?.length, two.bumped?.[0]?.from, two.stuck?.length], [1, one.bumped?.[1]?.to, undefined], JSON.stringify(two));
    assert.equal(two.recovered, two.deferred === undefined ? 1 : 0, JSON.stringify(two));
    await completedAfter(two, 'sk');
    const rates = [...(one.bumped ?? []), ...(two.bumped ?? [])].map((b) => b.satVb);
    assert.ok(rates.every((r, i) => i === 0 || r >= (rates[i - 1] as number) * OUTBID_FACTOR), `rising rates: ${rates.join(', ')}`);
    assert.ok((await items(ids)).every((o) => o.status === 'settling' && o.settlementId === paid.settlementId), 'never paid a second time');
    await cloud.regtest.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'sk')).confirmed, 1);
    assert.equal((await cloud.deps.store.getSettlement(paid.settlementId))?.confirmedTxid, two.bumped?.[0]?.to);
  });

  it('outbid once per run up to the fee cap, then kept, stuck, saying so, with nothing built; the original confirms and pays once', async () => {
    const { ids, owed, paid } = await stuckSettlement('sl', 1);
    const s = newScript();
    s.rejectBumps = Infinity; // the node refuses every replacement
    s.rejectMessage = 'insufficient fee, rejecting replacement';
    const runs: SettleSummary[] = [];
    for (let i = 0; i < 6; i++) {
      const run = await settleDomain(withPayments(s), 'sl');
      runs.push(run);
      if (/over the fee cap/.test(run.stuck?.[0]?.reason ?? '')) break;
    }
    const last = runs[runs.length - 1];
    assert.match(last?.stuck?.[0]?.reason ?? '', new RegExp(`^fee bump refused \\(insufficient fee.*\\), not outbid: a replacement would need [0-9.]+ sat/vB, over the fee cap of ${FEE_CAP} sat/vB`), JSON.stringify(runs));
    const rates = runs.flatMap((r) => (r.bumped ?? []).map((b) => b.satVb));
    assert.ok(rates.length >= 2 && rates.every((r, i) => r <= FEE_CAP && (i === 0 || r >= (rates[i - 1] as number) * OUTBID_FACTOR)), `rising rates under the cap: ${rates.join(', ')}`);
    assert.equal(last?.bumped, undefined, 'the run that met the cap built nothing');
    const asked = s.replacements?.at(-1)?.atLeastSatVb ?? 0;
    assert.ok(asked > FEE_CAP, `the last ask (${asked} sat/vB) is over the cap`);

    await cloud.regtest.mine(1); // nothing replaced the original in the mempool: it is mined
    assert.equal((await settleDomain(cloud.deps, 'sl')).confirmed, 1);
    assert.equal((await cloud.deps.store.getSettlement(paid.settlementId))?.confirmedTxid, paid.txid);
    // the refused replacements' records (intents) wait no more
    const refused = runs.flatMap((r) => (r.bumped ?? []).map((b) => b.to));
    assert.equal(await fulfilledBy(ids, paid.txid, refused, owed), refused.length);
  });

  it('a settlement the wallet will not fee-bump (a payee spent its output unconfirmed) is kept, stuck, and the domain goes on paying', async () => {
    await registerDomain(cloud, 'si', 'consumer');
    await cloud.fund('si'); // two coins
    devs.si = await enrol(cloud, 'si', 'si-dev');
    const ids = await published('si', 2, 60_000, 'sr');
    const first = await settleDomain(cloud.deps, 'si');
    const paid = first.settlements[0];
    assert.ok(paid && first.settlements.length === 1, JSON.stringify(first));
    await cloud.regtest.mineEmpty(cloud.deps.config.bumpAfterBlocks);
    const later = await published('si', 1, 60_000, 'sr');
    const s = newScript();
    s.bumpRefused = 'psbtbumpfee: Transaction has descendants in the mempool (-8)';
    const run = await settleDomain(withPayments(s), 'si');
    assert.deepEqual(run.stuck?.map((x) => [x.settlementId, x.txid]), [[paid.settlementId, paid.txid]], JSON.stringify(run));
    assert.match(run.stuck?.[0]?.reason ?? '', /^not fee-bumped: .*descendants in the mempool/);
    assert.deepEqual([run.bumped, run.deferred, run.settlements.map((p) => p.obligations)], [undefined, undefined, [1]], JSON.stringify(run));
    assert.ok((await items(ids)).every((o) => o.status === 'settling' && o.settlementId === paid.settlementId), 'never paid a second time');
    assert.equal((await items(later))[0]?.status, 'settling');
  });

  it('defaults only past dueBy + grace, judged on the state written: an obligation settle takes meanwhile keeps its grace', async () => {
    const [early, taken] = await published('sd', 2, 5_000, 'sq');
    const provider = await cloud.deps.store.getHostedDomain('sq');
    assert.ok(provider && early && taken);
    const ob = (await cloud.deps.store.getObligation(early))!;
    const at = (ms: number, store: DynamoStore = cloud.deps.store): Deps => ({
      ...cloud.deps,
      store,
      now: () => ms,
      config: { ...cloud.deps.config, acceptedGraceMs: 10_000, settlementGraceMs: 60_000 },
    });
    // accepted, past dueBy but within the accepted grace: not defaulted
    assert.equal((await watchProvider(at(ob.dueBy + 9_000), provider)).defaulted, 0);
    assert.equal((await cloud.deps.store.getObligation(early))?.status, 'accepted');

    // past the accepted grace, but settle moves `taken` into a settlement between the watcher's read and write
    const racing = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      listOpenByProvider: async (domain: string) => {
        const open = await cloud.deps.store.listOpenByProvider(domain);
        await cloud.deps.store.transition(taken, ['accepted'], 'settling', { settlementId: 'racing-settlement' }, { expect: { settlementId: null } });
        return open;
      },
    });
    await watchProvider(at(ob.dueBy + 11_000, racing), provider);
    const after = (await cloud.deps.store.getObligation(taken))!;
    assert.equal(after.status, 'settling', 'not defaulted on a status it no longer has');
    assert.equal(after.settlementId, 'racing-settlement');
    assert.equal((await cloud.deps.store.getObligation(early))?.status, 'defaulted', 'the one still unpaid is');

    // in settlement: defaulted only once the settlement grace is over
    assert.equal((await watchProvider(at(after.dueBy + 59_000), provider)).defaulted, 0);
    assert.equal((await watchProvider(at(after.dueBy + 61_000), provider)).defaulted, 1);
  });

  it('a payer is never judged on obligations it has not had the minimum term to pay', async () => {
    const short = await buy(cloud, devs.sa as TestDevice, 'sp', 'sp-spd', { dueInMs: 1 });
    assert.equal(short.res.status, 400);
    assert.equal((short.res.body as { error?: { code: string } }).error?.code, 'F12_TERM_TOO_SHORT');
    const tooShort = await cloud.call<{ error: { code: string; class: string } }>('POST', '/domains', {
      domain: 'sp-short',
      role: 'provider',
      minTermMs: cloud.deps.config.settleIntervalMs,
    });
    assert.equal(tooShort.status, 400, JSON.stringify(tooShort.body));
    assert.deepEqual([tooShort.body.error.code, tooShort.body.error.class], ['F12_TERM_TOO_SHORT', 'final']);
    const fine = await cloud.call('POST', '/domains', { domain: 'sp-long', role: 'provider', minTermMs: cloud.deps.config.settleIntervalMs + 1 });
    assert.equal(fine.status, 201, JSON.stringify(fine.body));
  });

  it('a watcher that stopped after taking a payment, before fulfilling, fulfils on its next run: the payer is never defaulted', async () => {
    const ids = await published('sf', 2, 60_000, 'sq');
    assert.equal((await settleDomain(cloud.deps, 'sf')).settlements[0]?.obligations, 2);
    await cloud.regtest.mine(1);
    const provider = await cloud.deps.store.getHostedDomain('sq');
    assert.ok(provider);
    // the run stops (a crash, a timeout) right after the payment is marked used, before any obligation moves
    const crashing = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      closeObligation: async (...args: Parameters<DynamoStore['closeObligation']>) => {
        if (args[2] === 'fulfilled') throw new Error('the run stopped here');
        return cloud.deps.store.closeObligation(...args);
      },
      // the obligations one payment settled close together (one transaction per escrow shard)
      closeObligationsTogether: async (...args: Parameters<DynamoStore['closeObligationsTogether']>) => {
        if (args[2] === 'fulfilled') throw new Error('the run stopped here');
        return cloud.deps.store.closeObligationsTogether(...args);
      },
    });
    await assert.rejects(watchProvider({ ...cloud.deps, store: crashing }, provider), /the run stopped here/);
    assert.deepEqual((await items(ids)).map((o) => o.status), ['settling', 'settling']);
    assert.equal((await watchProvider(cloud.deps, provider)).fulfilled, 2);
    assert.deepEqual((await items(ids)).map((o) => [o.status, o.counted]), [['fulfilled', true], ['fulfilled', true]]);
    // and long past dueBy and every grace, nothing of it is defaulted
    const late = (await items(ids)).reduce((t, o) => Math.max(t, o.dueBy), 0) + 86_400_000;
    assert.equal((await watchProvider({ ...cloud.deps, now: () => late }, provider)).defaulted, 0);
  });

  it("a payment's obligations close together, one transaction per escrow shard; a group with one closed meanwhile closes one by one, each released once", async () => {
    // 10 obligations over 8 escrow shards: at least two share one
    const ids = await published('sg', 10, 60_000, 'sq');
    assert.equal((await settleDomain(cloud.deps, 'sg')).settlements[0]?.obligations, 10);
    await cloud.regtest.mine(1);
    const provider = await cloud.deps.store.getHostedDomain('sq');
    assert.ok(provider);
    const byShard = new Map<number, string[]>();
    for (const o of await items(ids)) byShard.set(o.shard ?? -1, [...(byShard.get(o.shard ?? -1) ?? []), o.id]);
    const shared = [...byShard.values()].find((g) => g.length >= 2);
    assert.ok(shared, 'two obligations share a shard');
    // one of them is closed after the watcher read it, before its group's transaction (as by a
    // concurrent run): that transaction is refused whole, and the group is closed one by one
    const early = (await items([shared[0] as string]))[0]!;
    const calls: (number | undefined)[] = [];
    const store = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      closeObligationsTogether: async (...args: Parameters<DynamoStore['closeObligationsTogether']>) => {
        if (args[0].some((o) => o.id === early.id)) assert.ok(await closeObligation(cloud.deps, early, ['settling'], 'defaulted', { closedAt: Date.now() }));
        const done = await cloud.deps.store.closeObligationsTogether(...args);
        calls.push(done?.length);
        return done;
      },
    });
    const run = await watchProvider({ ...cloud.deps, store }, provider);
    assert.equal(run.fulfilled, 9);
    assert.equal(calls.length, byShard.size, 'one transaction per shard');
    assert.equal(calls.filter((n) => n === undefined).length, 1, "the early one's group was refused whole");
    assert.equal(calls.reduce((t: number, n) => t + (n ?? 0), 0), 9 - (shared.length - 1), 'the other groups closed together');
    const after = await items(ids);
    assert.deepEqual(after.map((o) => o.status).sort(), ['defaulted', ...Array(9).fill('fulfilled')]);
    assert.ok(after.every((o) => o.counted), 'every one counted');
    assert.equal((await cloud.deps.store.getCounters('sg')).outstanding, 0, 'each released once: nothing outstanding, nothing released twice');
  });

  it('every consumer paid each provider exactly what it owes, once', async () => {
    const owed = new Map<string, number>();
    for (const c of ['sa', 'sb', 'sc', 'sd', 'se', 'sj', 'sk', 'sl']) {
      for (const o of await cloud.deps.store.listByConsumer(c)) {
        if (o.status === 'settling' || o.status === 'fulfilled') owed.set(c, (owed.get(c) ?? 0) + o.amount);
      }
    }
    await cloud.regtest.mine(1);
    const paid = (await receivedBy(cloud, 'sp')).reduce((sum, p) => sum + p.amount, 0);
    assert.equal(paid, [...owed.values()].reduce((a, b) => a + b, 0));
  });
});
