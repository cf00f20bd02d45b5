/**
 * The whole life of obligations on the embedded cloud, through the real
 * handlers behind the HTTP front: accept → publish → settle → confirm →
 * fulfilled, and accept → overdue → defaulted; counters agree with a
 * recomputation from the ledger alone. One scenario, run on each DynamoDB the
 * project can reach (dynalite here, DynamoDB Local in test/dynamodb-local).
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type CloudOptions, type LocalCloud } from '../../local/cloud.ts';
import { buy, enrol, offerRequest, registerDomain, sleep, type TestDevice } from './support.ts';
import { skippable } from '../skippable.ts';

/**
 * The provider's wallet holds `txid` with a confirmation as soon as mine()
 * returns: regtest.mine waits for bcoin's WalletDB to record the block's
 * transactions, not just to move its tip (which it does first).
 */
async function confirmedAtProvider(cloud: LocalCloud, provider: string, txid: string): Promise<void> {
  const hosted = await cloud.deps.store.getHostedDomain(provider);
  assert.ok(hosted, `hosted domain ${provider}`);
  const wallet = await cloud.deps.payments(hosted.wallet);
  assert.ok(((await wallet.getTransaction(txid))?.confirmations ?? 0) >= 1, `${txid} confirmed in ${provider}'s wallet`);
}

/**
 * Register the scenario's tests. `options` is read when the suite starts (so it
 * may name an endpoint started by an outer hook); `more` adds tests of its own
 * on the same cloud, run first. With a `skip` reason every test is reported skipped
 * with it and no cloud is started.
 */
export function describeLifecycle(
  name: string,
  options: () => CloudOptions,
  more?: (cloud: () => LocalCloud) => void,
  skip: string | false = false,
): void {
  const { it, before, after } = skippable(skip);
  describe(`obligation lifecycle on the embedded cloud ${name}`, () => {
    let cloud: LocalCloud;
    let scd: TestDevice;
    before(async () => {
      cloud = await startCloud({ ...options(), schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
      const c1 = await registerDomain(cloud, 'c1', 'consumer');
      const p1 = await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
      assert.equal(typeof (c1 as { fundingAddress?: string }).fundingAddress, 'string', 'a consumer is told where to fund it');
      assert.equal(typeof p1.payTo, 'string', 'a provider has a payment address');
      await cloud.fund('c1');
      scd = await enrol(cloud, 'c1', 'c1-scd-1');
    });
    after(async () => {
      await cloud?.stop();
    });
    more?.(() => cloud);

    it('accepts at once, answers a duplicate with the same acceptance, stores it once', async () => {
      const { ob, res } = await buy(cloud, scd, 'p1', 'p1-spd-1');
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const again = await cloud.call<{ obligationId: string; duplicate: boolean }>('POST', '/obligations', { obligation: ob });
      assert.equal(again.status, 200);
      assert.equal(again.body.duplicate, true);
      const list = await cloud.call<{ count: number }>('GET', '/domains/c1/obligations');
      assert.equal(list.body.count, 1);
      const rep = await cloud.call<{ outstanding: number }>('GET', '/domains/c1/reputation');
      assert.equal(rep.body.outstanding, ob.body.amount);
    });

    it('publishes to the ledger, settles in one batched payment, and fulfils after a confirmation', async () => {
      await buy(cloud, scd, 'p1', 'p1-spd-1');
      await cloud.runJob('publish');
      const onLedger = await cloud.deps.ledger.listByKey('obligations', 'c:c1');
      assert.equal(onLedger.length, 2);

      const settled = await cloud.call<{ settlements: { txid: string; obligations: number }[] }>('POST', '/domains/c1/settlements', {});
      assert.equal(settled.status, 200, JSON.stringify(settled.body));
      assert.equal(settled.body.settlements.length, 1);
      assert.equal(settled.body.settlements[0]?.obligations, 2);

      await cloud.runJob('watch'); // not confirmed yet
      let list = await cloud.call<{ obligations: { status: string }[] }>('GET', '/domains/c1/obligations');
      assert.deepEqual(list.body.obligations.map((o) => o.status), ['settling', 'settling']);

      await cloud.regtest.mine(1);
      await confirmedAtProvider(cloud, 'p1', settled.body.settlements[0]?.txid ?? '');
      await cloud.runJob('watch');
      list = await cloud.call<{ obligations: { status: string }[] }>('GET', '/domains/c1/obligations');
      assert.deepEqual(list.body.obligations.map((o) => o.status), ['fulfilled', 'fulfilled']);
      const rep = await cloud.call<{ reputation: number; outstanding: number; paidVolume: number }>('GET', '/domains/c1/reputation');
      // c1 and p1 are hosted by one hub (one operator): its providers cannot vouch for
      // its consumers, so the payment ends the exposure but earns no reputation
      // (test/integration/federation.test.ts pays across hubs and sees it rise)
      assert.equal(rep.body.reputation, 0.5);
      assert.equal(rep.body.outstanding, 0);
      assert.equal(rep.body.paidVolume, 0);
    });

    it('defaults an unpaid obligation past dueBy and lowers the reputation', async () => {
      const before = (await cloud.call<{ reputation: number }>('GET', '/domains/c1/reputation')).body.reputation;
      // due soon, but with room for a busy machine to accept it first
      const { res } = await buy(cloud, scd, 'p1', 'p1-spd-1', { dueInMs: 400 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await sleep(450);
      await cloud.runJob('watch');
      const list = await cloud.call<{ obligations: { status: string }[] }>('GET', '/domains/c1/obligations?status=defaulted');
      assert.equal(list.body.obligations.length, 1);
      const after = (await cloud.call<{ reputation: number }>('GET', '/domains/c1/reputation')).body.reputation;
      assert.ok(after < before, `${after} < ${before}`);
    });

    it('makes offers only for devices enrolled in the provider domain', async () => {
      const r = await cloud.call<{ error: { code: string } }>('POST', '/offers', offerRequest(scd, 'p1', 'p1-nobody'));
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'F09_NOT_FOUND');
    });

    it('refuses a payment term longer than the provider accepts (7 days by default)', async () => {
      const day = 86_400_000;
      const tooLong = await buy(cloud, scd, 'p1', 'p1-spd-1', { dueInMs: 8 * day });
      assert.equal(tooLong.res.status, 400);
      assert.equal(tooLong.res.body.error?.code, 'F03_EXPIRED');
      const fine = await buy(cloud, scd, 'p1', 'p1-spd-1', { dueInMs: 6 * day });
      assert.equal(fine.res.status, 201);
    });

    it('counters equal a full recomputation from the ledger', async () => {
      await cloud.runJob('publish');
      const r = await cloud.call<{
        rScaled: number;
        sScaled: number;
        paidVolume: number;
        reputation: number;
        ledger: { rScaled: number; sScaled: number; paidVolume: number; reputation: number; fulfilled: number; defaulted: number };
      }>('GET', '/domains/c1/reputation/verify');
      const { ledger } = r.body;
      assert.equal(ledger.fulfilled, 2);
      assert.equal(ledger.defaulted, 1);
      assert.ok(Math.abs(ledger.rScaled - r.body.rScaled) <= 1e-9 * Math.max(1, r.body.rScaled));
      assert.ok(Math.abs(ledger.sScaled - r.body.sScaled) <= 1e-9 * Math.max(1, r.body.sScaled));
      assert.equal(ledger.paidVolume, r.body.paidVolume);
    });
  });
}
