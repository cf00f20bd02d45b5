/**
 * The payment watcher's guards, one rule per test, against settlement records
 * a consumer (or anyone who can publish) puts on the ledger: a payment output
 * is used once, an output fulfils only what it paid for in full, and a record
 * fulfils only obligations of its own consumer, of the watching provider and
 * to the address it paid. Payments are real regtest transactions.
 */
import { domainSigner } from '../../service/keys.ts';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createSettlementRecord } from '../../core/records.ts';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { watchAll } from '../../service/watch.ts';
import { ledgerKeys } from '../../service/publish.ts';
import type { Json, Obligation, SettlementRecord } from '../../core/types.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';

describe('watcher guards', () => {
  let cloud: LocalCloud;
  let wc: TestDevice;
  let wc2: TestDevice;
  const payTo: Record<string, string> = {};
  let n = 0;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0 }, env: { CREDIT_BASE: '1000000' } });
    await registerDomain(cloud, 'wc', 'consumer');
    await registerDomain(cloud, 'wc2', 'consumer');
    for (const p of ['wp', 'wp2']) payTo[p] = (await registerDomain(cloud, p, 'provider', { threshold: 0.3 })).payTo as string;
    await cloud.fund('wc');
    await cloud.fund('wc2');
    wc = await enrol(cloud, 'wc', 'wc-dev');
    wc2 = await enrol(cloud, 'wc2', 'wc2-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  async function accepted(dev: TestDevice, provider: string): Promise<Obligation> {
    const { ob, res } = await buy(cloud, dev, provider, `${provider}-spd`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return ob;
  }

  /** A real payment from a consumer's wallet, mined (1 confirmation). */
  async function pay(consumer: string, amounts: Record<string, number>): Promise<string> {
    const hosted = await cloud.deps.store.getHostedDomain(consumer);
    assert.ok(hosted);
    const wallet = await cloud.deps.payments(hosted.wallet);
    const tx = await wallet.prepareSendMany(amounts);
    await wallet.broadcast(tx.hex);
    await cloud.regtest.mine(1);
    return tx.txid;
  }

  /**
   * Put a settlement record on the ledger, signed by the consumer domain it names, as
   * its back-end would (a consumer lying about its own payment: the guards must hold).
   */
  async function record(
    consumerDomain: string,
    txid: string,
    outputs: SettlementRecord['outputs'],
    settlementId = createHash('sha256').update(`test-settlement-${++n}`).digest('hex'),
    phase: SettlementRecord['phase'] = 'broadcast',
  ): Promise<string> {
    const rec: SettlementRecord = { version: 1, settlementId, consumerDomain, phase, txid, outputs, at: Date.now() };
    const hosted = await cloud.deps.store.getHostedDomain(consumerDomain);
    assert.ok(hosted);
    const keys = [ledgerKeys.consumer(consumerDomain), txid, ...new Set(outputs.map((o) => ledgerKeys.provider(o.providerDomain)))];
    const signed = await createSettlementRecord(rec, domainSigner(cloud.deps, hosted));
    await (await cloud.ledger()).publish('settlements', ledgerKeys.settlement(settlementId, phase), keys, signed as unknown as Json);
    return settlementId;
  }

  const status = async (id: string) => (await cloud.deps.store.getObligation(id))?.status;

  it('a payment output is used once: a later record reusing its txid, by the same or another consumer, fulfils nothing', async () => {
    const o1 = await accepted(wc, 'wp');
    const o2 = await accepted(wc, 'wp');
    const o3 = await accepted(wc2, 'wp');
    const o4 = await accepted(wc, 'wp');
    const amount = o1.body.amount;
    const t1 = await pay('wc', { [payTo.wp as string]: amount });
    const s1 = await record('wc', t1, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount, obligationIds: [o1.id] }]);
    await record('wc', t1, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount, obligationIds: [o2.id] }]);
    await record('wc2', t1, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount, obligationIds: [o3.id] }]);
    await watchAll(cloud.deps);
    await watchAll(cloud.deps);
    assert.equal(await status(o1.id), 'fulfilled', 'the first record naming the payment');
    // named by its own consumer's record: in settlement (its grace applies), never fulfilled by a used payment
    assert.equal(await status(o2.id), 'settling', 'a second record of the same consumer reusing it');
    assert.equal(await status(o3.id), 'settling', 'a record of another consumer reusing it');
    // later, the same settlement and transaction in its other phase, naming another obligation: a claim of its own
    await record('wc', t1, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount, obligationIds: [o4.id] }], s1, 'intent');
    await watchAll(cloud.deps);
    assert.equal(await status(o4.id), 'settling', 'a record of the same settlement naming another obligation');
  });

  it('a record whose payment never reached this provider fulfils nothing', async () => {
    const o = await accepted(wc, 'wp');
    const elsewhere = await pay('wc', { [payTo.wp2 as string]: o.body.amount });
    await record('wc', elsewhere, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: o.body.amount, obligationIds: [o.id] }]);
    await watchAll(cloud.deps);
    assert.equal(await status(o.id), 'settling');
  });

  it('paid < claimed never fulfils (whatever amount the record states); paid > claimed fulfils', async () => {
    const under = await accepted(wc, 'wp');
    const short = under.body.amount - 500;
    const t = await pay('wc', { [payTo.wp as string]: short });
    // states the amount actually paid, and the obligation it falls short of
    await record('wc', t, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: short, obligationIds: [under.id] }]);
    // states the full amount
    await record('wc', t, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: under.body.amount, obligationIds: [under.id] }]);
    const over = await accepted(wc, 'wp');
    const t2 = await pay('wc', { [payTo.wp as string]: over.body.amount + 500 });
    await record('wc', t2, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: over.body.amount + 500, obligationIds: [over.id] }]);
    await watchAll(cloud.deps);
    await watchAll(cloud.deps);
    assert.equal(await status(under.id), 'settling', 'under-paid');
    assert.equal(await status(over.id), 'fulfilled', 'over-paid');
  });

  it('a record naming another consumer fulfils nothing, even when the payment is real and full', async () => {
    const o = await accepted(wc, 'wp');
    const t = await pay('wc2', { [payTo.wp as string]: o.body.amount });
    await record('wc2', t, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: o.body.amount, obligationIds: [o.id] }]);
    await watchAll(cloud.deps);
    assert.equal(await status(o.id), 'accepted');
  });

  it('a record naming another payTo fulfils nothing', async () => {
    // the record names wp2's address for wp's obligation, and the money went there
    const o = await accepted(wc, 'wp');
    const t = await pay('wc', { [payTo.wp2 as string]: o.body.amount });
    await record('wc', t, [{ payTo: payTo.wp2 as string, providerDomain: 'wp', amount: o.body.amount, obligationIds: [o.id] }]);
    // an obligation of wp promised to another address, listed in an output paid to wp's own
    const other = await accepted(wc, 'wp');
    const item = await cloud.deps.store.getObligation(other.id);
    assert.ok(item);
    const elsewhere = { ...item, id: 'e'.repeat(64), payTo: payTo.wp2 as string };
    await cloud.deps.store.putObligation(elsewhere);
    const t2 = await pay('wc', { [payTo.wp as string]: o.body.amount });
    await record('wc', t2, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: o.body.amount, obligationIds: [elsewhere.id] }]);
    await watchAll(cloud.deps);
    assert.equal(await status(o.id), 'accepted');
    assert.equal(await status(elsewhere.id), 'accepted');
  });

  it('a record fulfils only the watching provider\'s obligations, even one listed under its own address', async () => {
    const theirs = await accepted(wc, 'wp2');
    const item = await cloud.deps.store.getObligation(theirs.id);
    assert.ok(item);
    // wp2's obligation, but (as if) payable to wp's address
    const crafted = { ...item, id: 'f'.repeat(64), payTo: payTo.wp as string };
    await cloud.deps.store.putObligation(crafted);
    const t = await pay('wc', { [payTo.wp as string]: theirs.body.amount });
    await record('wc', t, [{ payTo: payTo.wp as string, providerDomain: 'wp', amount: theirs.body.amount, obligationIds: [crafted.id] }]);
    await watchAll(cloud.deps);
    assert.equal(await status(crafted.id), 'accepted');
  });
});
