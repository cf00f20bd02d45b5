/**
 * Three independent hubs that share nothing but the chain (DESIGN.md
 * "Federation"), each with its own table and its own ledger node, jobs run by
 * hand so every step is observable:
 *
 *   hub 1 hosts consumers c1 (pays) and c2 (never pays); hubs 2 and 3 host
 *   providers p2 and p3, and consumers c4 and c3 that buy across too (so each
 *   provider is paid from a third hub and vouches for hub 1's payers). c1's and
 *   c2's devices buy at hubs 2 and 3 over their public APIs. Hub 1 learns those
 *   obligations only from the ledger, pays c1's; hubs 2 and 3 fulfil or default
 *   them; every hub's follower applies every outcome, so all three compute the
 *   same reputation, and each hub's counters equal a recomputation from the ledger.
 *   A colluding pair on two hubs that declares nothing — x at hub 1 paying y at
 *   hub 2, nobody else paying y — earns nothing anywhere.
 *
 * Then the ledger is attacked from a fourth node (a rogue publisher): squatted
 * and forged outcomes, malformed and foreign-signed settlement records. Every
 * reader skips and counts them; nothing changes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../core/keys.ts';
import { createOutcome, createSettlementRecord } from '../../core/records.ts';
import type { Json } from '../../core/types.ts';
import { startFederation, type Federation } from '../../local/federation.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import { DomainDirectory } from '../../service/directory.ts';
import { followLedger } from '../../service/follow.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import { buy, enrol, registerDomain, sleep, type TestDevice } from './support.ts';

const DELAY = 30;
type Rep = { reputation: number; outstanding: number; paidVolume: number; rScaled: number; sScaled: number };

describe('three hubs that share only the chain', () => {
  let fed: Federation;
  let hub1: LocalCloud;
  let hub2: LocalCloud;
  let hub3: LocalCloud;
  let c1: TestDevice;
  let c2: TestDevice;
  let c3: TestDevice;
  let c4: TestDevice;
  let x: TestDevice;
  const propagate = () => sleep(DELAY * 4);
  const everywhere = async (job: 'publish' | 'follow' | 'watch') => {
    for (const h of fed.hubs) await h.runJob(job);
  };
  const rep = async (hub: LocalCloud, d: string) => (await hub.call<Rep>('GET', `/domains/${d}/reputation`)).body;
  /** Statuses of consumer d's obligations as `hub` sees them (with `provider`: only those). */
  const statuses = async (hub: LocalCloud, d: string, provider?: string) =>
    (await hub.call<{ obligations: { status: string; providerDomain: string }[] }>('GET', `/domains/${d}/obligations`)).body.obligations
      .filter((o) => provider === undefined || o.providerDomain === provider)
      .map((o) => o.status)
      .sort();

  before(async () => {
    fed = await startFederation({
      hubs: 3,
      ledgerDelayMs: DELAY,
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: { SETTLEMENT_GRACE_MS: '1000' },
    });
    [hub1, hub2, hub3] = fed.hubs as [LocalCloud, LocalCloud, LocalCloud];
    await registerDomain(hub1, 'c1', 'consumer');
    await registerDomain(hub1, 'c2', 'consumer', { autoSettle: false });
    await registerDomain(hub2, 'p2', 'provider', { threshold: 0.3 });
    await registerDomain(hub3, 'p3', 'provider', { threshold: 0.3 });
    await registerDomain(hub3, 'c3', 'consumer');
    await registerDomain(hub2, 'c4', 'consumer');
    await registerDomain(hub1, 'x', 'consumer');
    await registerDomain(hub2, 'y', 'provider', { threshold: 0.3 });
    for (const [hub, d] of [[hub1, 'c1'], [hub3, 'c3'], [hub2, 'c4'], [hub1, 'x']] as const) await hub.fund(d);
    c1 = await enrol(hub1, 'c1', 'c1-d1');
    c2 = await enrol(hub1, 'c2', 'c2-d1');
    c3 = await enrol(hub3, 'c3', 'c3-d1');
    c4 = await enrol(hub2, 'c4', 'c4-d1');
    x = await enrol(hub1, 'x', 'x-d1');
    await propagate(); // domain records reach every node
  });
  after(async () => {
    await fed?.stop();
  });

  it('accepts at each provider hub a device enrolled at another hub (the forward chain gap is allowed)', async () => {
    for (const [hub, p] of [[hub2, 'p2'], [hub3, 'p3'], [hub2, 'p2']] as const) {
      const { res } = await buy(hub, c1, p, `${p}-spd-1`, { dueInMs: 60_000 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const { res } = await buy(hub3, c2, 'p3', 'p3-spd-1', { dueInMs: 300 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    for (const [hub, dev, p] of [[hub2, c3, 'p2'], [hub3, c4, 'p3'], [hub2, x, 'y']] as const) {
      const bought = await buy(hub, dev, p, `${p}-spd-1`, { dueInMs: 60_000 });
      assert.equal(bought.res.status, 201, JSON.stringify(bought.res.body));
    }
  });

  it('hub 1 learns the obligations from the ledger: exposure counted, and its settlement pays them', async () => {
    await everywhere('publish');
    await propagate();
    const followed = await hub1.invoke(() => followLedger(hub1.deps));
    assert.equal(followed.obligations, 7, JSON.stringify(followed)); // every obligation accepted at hubs 2 and 3
    assert.equal(followed.invalid, 0);
    assert.equal((await rep(hub1, 'c1')).outstanding, 3 * 2_000);
    assert.equal((await rep(hub1, 'c3')).outstanding, 2_000, 'exposure of other hubs\' consumers too');
    const settled = await hub1.call<{ settlements: { obligations: number }[] }>('POST', '/domains/c1/settlements', {});
    assert.equal(settled.status, 200, JSON.stringify(settled.body));
    assert.equal(settled.body.settlements.reduce((n, s) => n + s.obligations, 0), 3);
    await hub2.runJob('follow');
    await hub3.runJob('follow');
    for (const [hub, d] of [[hub3, 'c3'], [hub2, 'c4'], [hub1, 'x']] as const) {
      const r = await hub.call<{ settlements: { obligations: number }[] }>('POST', `/domains/${d}/settlements`, {});
      assert.equal(r.body.settlements.reduce((n, s) => n + s.obligations, 0), 1, `${d}: ${JSON.stringify(r.body)}`);
    }
    // the provider's hub sees the consumer's signed settlement record before any confirmation:
    // from then on the settlement grace applies there too
    await propagate();
    await hub2.runJob('watch');
    assert.deepEqual(await statuses(hub2, 'c1', 'p2'), ['settling', 'settling']);
    await fed.regtest.mine(1);
    await propagate();
  });

  it('the provider hubs fulfil what hub 1 paid and default what c2 did not', async () => {
    await sleep(400); // c2's obligation is past due
    await hub2.runJob('watch');
    await hub3.runJob('watch');
    await sleep(1_100); // past the grace too
    await hub3.runJob('watch');
    assert.deepEqual(await statuses(hub2, 'c1', 'p2'), ['fulfilled', 'fulfilled']);
    assert.deepEqual(await statuses(hub3, 'c1', 'p3'), ['fulfilled']);
    assert.deepEqual(await statuses(hub3, 'c2', 'p3'), ['defaulted']);
    assert.deepEqual(await statuses(hub2, 'c3', 'p2'), ['fulfilled']);
    assert.deepEqual(await statuses(hub3, 'c4', 'p3'), ['fulfilled']);
    assert.deepEqual(await statuses(hub2, 'x', 'y'), ['fulfilled']);
  });

  it('every hub applies every outcome: the same reputation everywhere, and counters equal the ledger', async () => {
    await everywhere('publish');
    await propagate();
    // hub 1's follower stops right after closing its first obligation with an outcome, before the rest of its evidence (a crash)
    let stopped = false;
    const refs: string[] = [];
    const crashing = Object.assign(Object.create(hub1.deps.store) as typeof hub1.deps.store, {
      putSettlementRef: async (ref: Parameters<typeof hub1.deps.store.putSettlementRef>[0]) => {
        refs.push(`${ref.obligationId}:${ref.txid}`);
        return hub1.deps.store.putSettlementRef(ref);
      },
      closeObligation: async (...args: Parameters<typeof hub1.deps.store.closeObligation>) => {
        const next = await hub1.deps.store.closeObligation(...args);
        if (next && !stopped) {
          stopped = true;
          throw new Error('the run stopped here');
        }
        return next;
      },
    });
    await assert.rejects(followLedger({ ...hub1.deps, store: crashing }), /the run stopped here/);
    assert.ok(stopped);
    // the settlement records (intent and broadcast of each transaction) came first: each ref written once
    assert.ok(refs.length > 0);
    assert.equal(refs.length, new Set(refs).size);
    await everywhere('follow');
    await propagate();
    await everywhere('follow');
    assert.deepEqual(await statuses(hub1, 'c1'), ['fulfilled', 'fulfilled', 'fulfilled']);
    // the payment refs a claimed outcome is checked against: kept where the provider is elsewhere
    // (hub 1, once per obligation and transaction), not where it is hosted (hub 2 decides itself)
    for (const ob of (await hub1.deps.store.listByConsumer('c1')).filter((o) => o.providerDomain === 'p2')) {
      assert.equal((await hub1.deps.store.listSettlementRefs(ob.id)).length, 1);
      assert.equal((await hub2.deps.store.listSettlementRefs(ob.id)).length, 0);
    }
    assert.deepEqual(await statuses(hub1, 'c2'), ['defaulted']);
    for (const d of ['c1', 'c2', 'c3', 'c4', 'x']) {
      const views = await Promise.all(fed.hubs.map((h) => rep(h, d)));
      const first = views[0];
      assert.ok(first);
      for (const v of views) {
        // the same evidence everywhere; reputation itself fades between the reads
        assert.ok(Math.abs(v.rScaled - first.rScaled) <= 1e-9 * Math.max(1, first.rScaled), `${d} rScaled at every hub`);
        assert.ok(Math.abs(v.sScaled - first.sScaled) <= 1e-9 * Math.max(1, first.sScaled), `${d} sScaled at every hub`);
        assert.ok(Math.abs(v.reputation - first.reputation) < 1e-6, `${d}: ${JSON.stringify(views.map((x) => x.reputation))}`);
        assert.equal(v.outstanding, 0);
        assert.equal(v.paidVolume, first.paidVolume);
      }
    }
    assert.ok((await rep(hub1, 'c1')).reputation > 0.5, 'paying across hubs raises reputation');
    assert.equal((await rep(hub1, 'c1')).paidVolume, 6_000);
    assert.ok((await rep(hub2, 'c2')).reputation < 0.5, 'a default elsewhere lowers it here');
    for (const h of fed.hubs) {
      const pair = await rep(h, 'x');
      assert.equal(pair.reputation, 0.5, 'a colluding pair on two hubs earns nothing: y was never paid from a third hub');
      assert.equal(pair.paidVolume, 0);
      assert.equal(pair.outstanding, 0);
    }
    for (const h of fed.hubs) {
      for (const [d, fulfilled] of [['c1', 3], ['c3', 1], ['x', 1]] as const) {
        const r = await h.call<Rep & { ledger: Rep & { fulfilled: number; defaulted: number } }>('GET', `/domains/${d}/reputation/verify`);
        assert.equal(r.body.ledger.fulfilled, fulfilled, d);
        assert.ok(Math.abs(r.body.ledger.rScaled - r.body.rScaled) <= 1e-9 * Math.max(1, r.body.rScaled), d);
        assert.equal(r.body.ledger.paidVolume, r.body.paidVolume, d);
      }
    }
  });

  it('forged, squatted, malformed and foreign-signed records are skipped and counted by every reader, and change nothing', async () => {
    const rogue = fed.network.node('rogue-hub');
    const stranger = generateKeyPair();
    const obligations = (await hub2.call<{ obligations: { id: string; amount: number }[] }>('GET', '/domains/c1/obligations')).body.obligations;
    const target = obligations[0];
    assert.ok(target);
    // an outcome for c1 signed by a key that is not p2's, under the real key, from another node
    const forged = createOutcome(
      { version: 1, kind: 'outcome', obligationId: target.id, outcome: 'defaulted', consumerDomain: 'c1', providerDomain: 'p2', amount: target.amount, at: Date.now(), txid: null },
      stranger.privateKey,
    );
    await rogue.publish('obligations', ledgerKeys.outcome(target.id), [ledgerKeys.consumer('c1')], forged as unknown as Json);
    // the same forgery from p2's own hub node: the publisher is right, the signature is not
    await fed.ledgers[1]?.publish('obligations', ledgerKeys.outcome(target.id), [ledgerKeys.consumer('c1')], forged as unknown as Json);
    // a settlement record that is not even well-formed, naming p2 (the watcher reads these)
    const junk = { body: { version: 1, settlementId: 'x', consumerDomain: 'c1', phase: 'intent', txid: 'y', outputs: [null], at: 1 }, sig: 'AA', by: 'c1' };
    await rogue.publish('settlements', 'settlement:junk:intent', [ledgerKeys.provider('p2')], junk as unknown as Json);
    // a well-formed settlement signed by the wrong key
    const wrongKey = createSettlementRecord(
      { version: 1, settlementId: 'a'.repeat(64), consumerDomain: 'c1', phase: 'broadcast', txid: 'b'.repeat(64), outputs: [{ payTo: 'x', providerDomain: 'p2', amount: 2_000, obligationIds: [target.id] }], at: 1 },
      stranger.privateKey,
    );
    await rogue.publish('settlements', ledgerKeys.settlement('a'.repeat(64), 'broadcast'), [ledgerKeys.provider('p2')], wrongKey as unknown as Json);
    // a domain record for a new name, published from a node other than the one it names
    await rogue.publish('domains', 'domain:evil', [], { body: { domain: 'evil' }, sig: 'AA', by: 'evil' });
    await propagate();

    const figures = async () =>
      (await Promise.all(fed.hubs.map((h) => rep(h, 'c1')))).map(({ rScaled, sScaled, outstanding, paidVolume }) => ({ rScaled, sScaled, outstanding, paidVolume }));
    const before = await figures();
    const summaries = await Promise.all(fed.hubs.map((h) => h.invoke(() => followLedger(h.deps))));
    for (const s of summaries) assert.equal(s.invalid, 5, JSON.stringify(s));
    const watched = await hub2.invoke(async () => (await import('../../service/watch.ts')).watchAll(hub2.deps));
    assert.ok(watched.every((w) => w.deferred === undefined), JSON.stringify(watched));
    assert.equal(watched.find((w) => w.domain === 'p2')?.invalid, 2);
    const afterwards = await figures();
    assert.deepEqual(afterwards, before);
    assert.deepEqual(await statuses(hub1, 'c1'), ['fulfilled', 'fulfilled', 'fulfilled']);
    // the payment refs a claimed outcome is checked against: kept where the provider is elsewhere
    // (hub 1, once per obligation and transaction), not where it is hosted (hub 2 decides itself)
    for (const ob of (await hub1.deps.store.listByConsumer('c1')).filter((o) => o.providerDomain === 'p2')) {
      assert.equal((await hub1.deps.store.listSettlementRefs(ob.id)).length, 1);
      assert.equal((await hub2.deps.store.listSettlementRefs(ob.id)).length, 0);
    }
    assert.equal((await hub1.call('GET', '/domains/evil')).status, 404);
    // the recomputation from the ledger skips them too
    for (const h of fed.hubs) {
      const r = await h.call<Rep & { ledger: Rep & { fulfilled: number; defaulted: number } }>('GET', '/domains/c1/reputation/verify');
      assert.equal(r.body.ledger.fulfilled, 3);
      assert.equal(r.body.ledger.defaulted, 0);
      assert.ok(Math.abs(r.body.ledger.rScaled - r.body.rScaled) <= 1e-9 * Math.max(1, r.body.rScaled));
    }
  });

  it('a cold container accepts with its ledger node down: domain records come from the store the follower filled', async () => {
    await hub2.runJob('follow');
    hub2.deps.directory = new DomainDirectory(hub2.deps.ledger, hub2.deps.store); // no in-memory cache, as in a new container
    fed.stopHubLedger(1);
    try {
      const { res } = await buy(hub2, c1, 'p2', 'p2-spd-1', { dueInMs: 60_000 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    } finally {
      fed.restartHubLedger(1);
    }
  });

  it('a payment to a provider that already vouches for the payer\'s hub counts in the closing transaction, at every hub the same', async () => {
    // p2 has been paid from hubs 1 and 3: it vouches for hub 1's consumers. The obligation the cold
    // container accepted above is published, learnt and paid by hub 1, and fulfilled at hub 2.
    await hub2.runJob('publish');
    await propagate();
    await hub1.runJob('follow');
    const settled = await hub1.call<{ settlements: { obligations: number }[] }>('POST', '/domains/c1/settlements', {});
    assert.equal(settled.body.settlements.reduce((n, s) => n + s.obligations, 0), 1, JSON.stringify(settled.body));
    await propagate();
    await fed.regtest.mine(1);
    await propagate();
    const hub1Key = (await hub2.deps.directory.get('c1'))?.body.publisher;
    assert.ok(hub1Key);
    assert.equal((await hub2.deps.store.listParked('p2', hub1Key)).length, 0);
    const store = hub2.deps.store;
    const parked: string[] = [];
    const park = store.park.bind(store);
    store.park = async (e) => {
      parked.push(e.obligationId);
      return park(e);
    };
    try {
      await hub2.runJob('watch');
    } finally {
      store.park = park;
    }
    assert.deepEqual(parked, [], 'its evidence was never parked');
    const paid = (await hub2.deps.store.listByConsumer('c1')).filter((o) => o.providerDomain === 'p2').sort((a, b) => b.acceptedAt - a.acceptedAt)[0];
    assert.ok(paid);
    // closed, released and counted in one write: nothing parked, nothing left for a later step
    assert.deepEqual([paid.status, paid.counted, paid.weight], ['fulfilled', true, 1]);
    assert.equal((await hub2.deps.store.listParked('p2', hub1Key)).length, 0);
    await everywhere('publish');
    await propagate();
    await everywhere('follow');
    for (const h of fed.hubs) {
      const r = await h.call<Rep & { ledger: Rep & { fulfilled: number } }>('GET', '/domains/c1/reputation/verify');
      assert.equal(r.body.ledger.fulfilled, 4);
      assert.equal(r.body.paidVolume, 8_000);
      assert.equal(r.body.ledger.paidVolume, r.body.paidVolume);
      assert.equal(r.body.outstanding, 0);
      assert.ok(Math.abs(r.body.ledger.rScaled - r.body.rScaled) <= 1e-9 * Math.max(1, r.body.rScaled));
    }
  });
});
