/**
 * Outages and crashes: the ledger down while obligations are accepted,
 * bitcoind down during settlement, the settlement process dying between its
 * intent and the broadcast or between the broadcast and its record, and the
 * MQTT broker restarting under connected SDK devices. Acceptance never waits
 * for the ledger; everything deferred completes exactly once when the part is
 * back; no payment is made twice and no accepted obligation is lost.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { settleDomain } from '../../service/settle.ts';
import { watchAll } from '../../service/watch.ts';
import { ConsumerDevice, type BuyResult } from '../../devices/scd.ts';
import { ProviderDevice } from '../../devices/spd.ts';
import type { PublicKeyRef } from '../../core/types.ts';
import { buy, enrol, registerDomain } from '../integration/support.ts';
import { eventually, linkFor, receivedBy } from './support.ts';

class Crash extends Error {}

describe('outages and crashes', () => {
  let cloud: LocalCloud;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
  });
  after(async () => {
    await cloud?.stop();
  });

  /** A consumer and a provider of their own, funded, with one enrolled device; `n` obligations accepted and published. */
  async function pair(c: string, p: string, n: number, publish = true) {
    await registerDomain(cloud, c, 'consumer', { autoSettle: false });
    await registerDomain(cloud, p, 'provider', { threshold: 0.3 });
    await cloud.fund(c);
    const dev = await enrol(cloud, c, `${c}-dev`);
    const ids: string[] = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const { ob, res } = await buy(cloud, dev, p, `${p}-spd`);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(ob.id);
      total += ob.body.amount;
    }
    if (publish) await cloud.runJob('publish');
    return { dev, ids, total };
  }

  const statuses = async (c: string) => (await cloud.deps.store.listByConsumer(c)).map((o) => o.status);

  it('ledger down: obligations still accepted at once, publication deferred, then each published exactly once', async () => {
    await registerDomain(cloud, 'lc', 'consumer');
    await registerDomain(cloud, 'lp', 'provider', { threshold: 0.3 });
    const dev = await enrol(cloud, 'lc', 'lc-dev');
    const ledger = await cloud.ledger();
    ledger.setAvailable(false);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { ob, res } = await buy(cloud, dev, 'lp', 'lp-spd');
        assert.equal(res.status, 201, JSON.stringify(res.body));
        ids.push(ob.id);
      }
      await cloud.runJob('publish'); // defers, does not throw
      await cloud.runJob('publish');
      const items = await cloud.deps.store.listByConsumer('lc');
      assert.equal(items.length, 3);
      for (const o of items) assert.equal(o.ledgerTxid, undefined, 'nothing published while the ledger is down');
      await assert.rejects(ledger.listByKey('obligations', 'c:lc'), /unavailable/);
      ledger.setAvailable(true);
      await cloud.runJob('publish');
      await Promise.all([cloud.runJob('publish'), cloud.runJob('publish')]);
      for (const id of ids) assert.equal((await ledger.listByKey('obligations', id)).length, 1, id);
      assert.equal((await ledger.listByKey('obligations', 'c:lc')).length, 3);
      for (const o of await cloud.deps.store.listByConsumer('lc')) assert.ok(o.ledgerTxid);
    } finally {
      ledger.setAvailable(true);
    }
  });

  it('bitcoind down during settlement: deferred (202), nothing marked; back up: settled once', async () => {
    const { ids, total } = await pair('bc', 'bp', 2);
    await cloud.regtest.setAvailable(false);
    try {
      const res = await cloud.call<{ deferred?: string; settlements: unknown[] }>('POST', '/domains/bc/settlements', {});
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.ok(res.body.deferred);
      assert.equal(res.body.settlements.length, 0);
      assert.deepEqual(await statuses('bc'), ['accepted', 'accepted']);
      for (const o of await cloud.deps.store.listByConsumer('bc')) assert.equal(o.settlementId, undefined);
      assert.equal((await cloud.deps.store.listSettlements('bc')).length, 0);
    } finally {
      await cloud.regtest.setAvailable(true);
    }
    const ok = await cloud.call<{ settlements: { txid: string; obligations: number }[] }>('POST', '/domains/bc/settlements', {});
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.settlements.length, 1);
    assert.equal(ok.body.settlements[0]?.obligations, ids.length);
    await cloud.regtest.mine(1);
    await watchAll(cloud.deps);
    assert.deepEqual(await statuses('bc'), ['fulfilled', 'fulfilled']);
    const paid = await receivedBy(cloud, 'bp');
    assert.equal(paid.length, 1);
    assert.equal(paid[0]?.amount, total);
  });

  it('crash between intent and broadcast: the next run broadcasts the same transaction; paid once, fulfilled once', async () => {
    const { total } = await pair('ic', 'ip', 2);
    let intentTxid = '';
    await assert.rejects(
      settleDomain(cloud.deps, 'ic', {
        hooks: {
          afterIntent: (s) => {
            intentTxid = s.txid;
            throw new Crash('died after recording the intent');
          },
        },
      }),
      Crash,
    );
    const [s] = await cloud.deps.store.listSettlements('ic');
    assert.equal(s?.phase, 'intent');
    assert.equal(s?.txid, intentTxid);
    const hosted = await cloud.deps.store.getHostedDomain('ic');
    assert.ok(hosted);
    const wallet = await cloud.deps.payments(hosted.wallet);
    assert.equal(await wallet.getTransaction(intentTxid), null, 'not broadcast yet');
    assert.deepEqual(await statuses('ic'), ['settling', 'settling']);
    const ledger = await cloud.ledger();
    assert.equal((await ledger.listByKey('settlements', intentTxid)).length, 1, 'the intent is on the ledger before any payment');

    const again = await settleDomain(cloud.deps, 'ic');
    assert.equal(again.recovered, 1);
    assert.equal(again.settlements.length, 0, 'no new payment planned');
    await settleDomain(cloud.deps, 'ic');
    assert.equal((await cloud.deps.store.getSettlement(s.settlementId))?.phase, 'broadcast');
    await cloud.regtest.mine(1);
    const paid = await receivedBy(cloud, 'ip');
    assert.deepEqual(paid.map((p) => p.txid), [intentTxid], 'the very transaction of the intent, once');
    assert.equal(paid[0]?.amount, total);
    await watchAll(cloud.deps);
    await watchAll(cloud.deps);
    assert.deepEqual(await statuses('ic'), ['fulfilled', 'fulfilled']);
    assert.equal((await cloud.deps.store.getCounters('ic')).outstanding, 0, 'evidence applied once (twice would go below 0)');
  });

  it('crash between broadcast and record: the next run records it and pays nothing more', async () => {
    const { total } = await pair('rc', 'rp', 3);
    let txid = '';
    await assert.rejects(
      settleDomain(cloud.deps, 'rc', {
        hooks: {
          afterBroadcast: (s) => {
            txid = s.txid;
            throw new Crash('died after broadcasting');
          },
        },
      }),
      Crash,
    );
    const [s] = await cloud.deps.store.listSettlements('rc');
    assert.equal(s?.phase, 'intent', 'the broadcast was never recorded');
    const hosted = await cloud.deps.store.getHostedDomain('rc');
    assert.ok(hosted);
    const wallet = await cloud.deps.payments(hosted.wallet);
    assert.notEqual(await wallet.getTransaction(txid), null, 'it was broadcast');
    const again = await settleDomain(cloud.deps, 'rc');
    assert.equal(again.recovered, 1);
    assert.equal(again.settlements.length, 0);
    assert.equal((await cloud.deps.store.getSettlement(s.settlementId))?.phase, 'broadcast');
    const ledger = await cloud.ledger();
    const phases = (await ledger.listByKey('settlements', txid)).map((i) => (i.data as { body: { phase: string } }).body.phase);
    assert.deepEqual(phases, ['intent', 'broadcast']);
    await cloud.regtest.mine(1);
    const paid = await receivedBy(cloud, 'rp');
    assert.deepEqual(paid.map((p) => p.txid), [txid]);
    assert.equal(paid[0]?.amount, total);
    await watchAll(cloud.deps);
    assert.deepEqual(await statuses('rc'), ['fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('broker restart under connected SDK devices: they reconnect, later purchases succeed, no accepted obligation is lost', async (t) => {
    await registerDomain(cloud, 'mc', 'consumer');
    await registerDomain(cloud, 'mp', 'provider', { threshold: 0.3 });
    const key = async (d: string): Promise<PublicKeyRef> => {
      const r = await cloud.deps.directory.get(d);
      assert.ok(r);
      return r.body.key;
    };
    const spdDev = await enrol(cloud, 'mp', 'mp-spd', 0);
    const spdLink = linkFor(cloud, spdDev);
    const spd = new ProviderDevice('mp', spdDev.id, spdLink);
    t.after(() => spd.close());
    await spd.start();
    const scds: ConsumerDevice[] = [];
    const links = [spdLink];
    for (let i = 1; i <= 2; i++) {
      const d = await enrol(cloud, 'mc', `mc-dev-${i}`);
      const link = linkFor(cloud, d);
      links.push(link);
      const scd = new ConsumerDevice({
        domain: 'mc',
        deviceId: d.id,
        privateKey: d.keys.privateKey,
        credential: d.credential,
        link,
        providerKey: key,
        timeoutMs: 1_000,
        attempts: 5,
      });
      t.after(() => scd.close());
      await scd.start();
      scds.push(scd);
    }
    const results: BuyResult[][] = scds.map(() => []);
    const run = async (i: number, n: number) => {
      const scd = scds[i];
      assert.ok(scd);
      for (let k = 0; k < n; k++) results[i]?.push(await scd.buy('mp', 'mp-spd', 'data-feed'));
    };
    await Promise.all(scds.map((_, i) => run(i, 2)));
    // restart while the next purchases are under way
    const during = Promise.all(scds.map((_, i) => run(i, 3)));
    await new Promise((r) => setTimeout(r, 20));
    await cloud.restartBroker();
    await during;
    await Promise.all(scds.map((_, i) => run(i, 2)));

    for (const l of links) {
      assert.ok(l.stats.interrupted >= 1 && l.stats.resumed >= 1, `${l.thing} lost and regained its connection: ${JSON.stringify(l.stats)}`);
    }
    const flat = results.flat();
    const ok = flat.filter((r): r is Extract<BuyResult, { ok: true }> => r.ok);
    // after the restart (the last two rounds of each device), every purchase succeeded
    for (const r of results) for (const last of r.slice(-2)) assert.equal(last.ok, true, JSON.stringify(last));
    assert.ok(ok.length >= 8, `accepted ${ok.length} of ${flat.length}: ${JSON.stringify(flat.filter((r) => !r.ok))}`);
    const stored = new Set((await cloud.deps.store.listByConsumer('mc')).map((o) => o.id));
    for (const r of ok) assert.ok(stored.has(r.obligationId), `accepted ${r.obligationId} is stored`);
    await cloud.runJob('publish');
    const ledger = await cloud.ledger();
    for (const r of ok) assert.equal((await ledger.listByKey('obligations', r.obligationId)).length, 1);
    // the provider device was granted every accepted obligation (grants are QoS1 after its re-subscribe)
    await eventually(() => (ok.every((r) => spd.delivered.has(r.obligationId)) ? true : undefined), 200, 25).catch(() => undefined);
    assert.ok(ok.filter((r) => spd.delivered.has(r.obligationId)).length >= 4, 'grants reach the provider device after the restart');
  });
});
