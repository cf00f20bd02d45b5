/**
 * At-least-once delivery everywhere: every message arrives 2–5 times, often at
 * the same moment (HTTP retries, QoS1 redelivery, Lambda async retries,
 * overlapping scheduled runs). Each obligation is stored once, reserves its
 * amount once, goes on the ledger once, is paid once and counted once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handler as acceptHandler } from '../../functions/accept.ts';
import { lambdaContext } from '../../local/lambda.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { settleDomain } from '../../service/settle.ts';
import { watchAll } from '../../service/watch.ts';
import { topics } from '../../service/topics.ts';
import type { Obligation } from '../../core/types.ts';
import { enrol, getOffer, registerDomain, sign, type TestDevice } from '../integration/support.ts';
import { eventually, linkFor, receivedBy } from './support.ts';

describe('duplicate deliveries', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;
  const accepted: Obligation[] = [];

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'dc', 'consumer');
    await registerDomain(cloud, 'dp', 'provider', { threshold: 0.3 });
    await cloud.fund('dc');
    dev = await enrol(cloud, 'dc', 'dc-dev-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  const stored = async () => cloud.deps.store.listByConsumer('dc');
  const outstanding = async () => (await cloud.deps.store.getCounters('dc')).outstanding;
  const sum = (obs: Obligation[]) => obs.reduce((s, o) => s + o.body.amount, 0);

  it('the same obligation POSTed 5 times at once: one 201, the rest 200 duplicates, stored and reserved once', async () => {
    const ob = sign(dev, await getOffer(cloud, dev, 'dp', 'dp-spd-1'));
    const results = await Promise.all(
      Array.from({ length: 5 }, () => cloud.call<{ obligationId: string; duplicate: boolean }>('POST', '/obligations', { obligation: ob })),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 201], JSON.stringify(results.map((r) => r.body)));
    for (const r of results) assert.equal(r.body.obligationId, ob.id);
    dev.head = { seq: ob.body.seq, id: ob.id };
    accepted.push(ob);
    assert.deepEqual((await stored()).map((o) => o.id), [ob.id]);
    assert.equal(await outstanding(), ob.body.amount);
  });

  it('the same obligation published 4 times at QoS1 by a real device: one stored, the device told accepted each time', async (t) => {
    const link = linkFor(cloud, dev);
    t.after(() => link.close());
    const replies: { obligationId?: string; accepted?: boolean; error?: unknown }[] = [];
    link.onMessage((topic, p) => {
      // a first acceptance comes on in/reply/{provider domain}/{provider device} (with the grant), duplicates on in/reply
      if (topic.split('/')[4] === 'reply') replies.push(p as (typeof replies)[number]);
    });
    await link.connect();
    await link.subscribe(topics.inbox('dc', dev.id), 1);
    const ob = sign(dev, await getOffer(cloud, dev, 'dp', 'dp-spd-1'));
    const invocations = cloud.broker.stats.ruleInvocations;
    await Promise.all(
      Array.from({ length: 4 }, () => link.publish(topics.ingest('dc', dev.id, 'obligation'), { requestId: ob.id, obligation: ob }, 1)),
    );
    await eventually(() => (cloud.broker.stats.ruleInvocations >= invocations + 4 ? true : undefined));
    await cloud.broker.settled();
    await eventually(() => (replies.length >= 4 ? true : undefined));
    assert.equal(replies.length, 4);
    for (const r of replies) {
      assert.equal(r.accepted, true, JSON.stringify(r));
      assert.equal(r.obligationId, ob.id);
    }
    dev.head = { seq: ob.body.seq, id: ob.id };
    accepted.push(ob);
    assert.deepEqual((await stored()).map((o) => o.id).sort(), accepted.map((o) => o.id).sort());
    assert.equal(await outstanding(), sum(accepted));
  });

  it('the accept rule handler invoked 5 times in parallel (Lambda retries): one stored, one reservation', async () => {
    const ob = sign(dev, await getOffer(cloud, dev, 'dp', 'dp-spd-1'));
    const event = { domain: 'dc', thing: dev.id, topic: topics.fromDevice('dc', dev.id, 'obligation'), requestId: ob.id, obligation: ob };
    const outs = (await Promise.all(
      Array.from({ length: 5 }, () => cloud.invoke(() => acceptHandler(event as never, lambdaContext('accept')))),
    )) as { accepted: boolean; duplicate?: boolean }[];
    assert.ok(outs.every((o) => o.accepted), JSON.stringify(outs));
    assert.equal(outs.filter((o) => o.duplicate === false).length, 1, JSON.stringify(outs));
    dev.head = { seq: ob.body.seq, id: ob.id };
    accepted.push(ob);
    assert.equal((await stored()).length, accepted.length);
    assert.equal(await outstanding(), sum(accepted));
  });

  it('the publish job run twice, concurrently and again: each obligation on the ledger exactly once', async () => {
    await Promise.all([cloud.runJob('publish'), cloud.runJob('publish')]);
    await cloud.runJob('publish');
    const ledger = await cloud.ledger();
    for (const ob of accepted) assert.equal((await ledger.listByKey('obligations', ob.id)).length, 1, ob.id);
    assert.equal((await ledger.listByKey('obligations', 'c:dc')).length, accepted.length);
    for (const o of await stored()) assert.ok(o.ledgerTxid, `${o.id} marked published`);
  });

  it('settlement run twice at once: one transaction, the payee paid once', async () => {
    const [a, b] = await Promise.all([settleDomain(cloud.deps, 'dc'), settleDomain(cloud.deps, 'dc')]);
    const txids = new Set([...a.settlements, ...b.settlements].map((s) => s.txid));
    assert.equal(txids.size, 1, JSON.stringify({ a, b }));
    await settleDomain(cloud.deps, 'dc'); // and a third, later: nothing new
    assert.equal((await cloud.deps.store.listSettlements('dc')).length, 1);
    await cloud.regtest.mine(1);
    const paid = await receivedBy(cloud, 'dp');
    assert.equal(new Set(paid.map((p) => p.txid)).size, 1, JSON.stringify(paid));
    assert.equal(paid.reduce((s, p) => s + p.amount, 0), sum(accepted));
  });

  it('the watcher run twice at once: fulfilled once, evidence counted once, one outcome on the ledger', async () => {
    await Promise.all([watchAll(cloud.deps), watchAll(cloud.deps)]);
    await watchAll(cloud.deps);
    const items = await stored();
    assert.deepEqual(items.map((o) => o.status), items.map(() => 'fulfilled'));
    const c = await cloud.deps.store.getCounters('dc');
    // one hub hosts both sides: no paid volume (Sybil guard); evidence applied twice would take outstanding below 0
    assert.equal(c.paidVolume, 0);
    assert.equal(c.outstanding, 0);
    await Promise.all([cloud.runJob('publish'), cloud.runJob('publish')]);
    const ledger = await cloud.ledger();
    for (const ob of accepted) assert.equal((await ledger.listByKey('obligations', `outcome:${ob.id}`)).length, 1);
    const verify = await cloud.call<{ paidVolume: number; rScaled: number; ledger: { paidVolume: number; rScaled: number; fulfilled: number } }>(
      'GET',
      '/domains/dc/reputation/verify',
    );
    assert.equal(verify.body.ledger.fulfilled, accepted.length);
    assert.equal(verify.body.ledger.paidVolume, verify.body.paidVolume);
    assert.ok(Math.abs(verify.body.ledger.rScaled - verify.body.rScaled) <= 1e-9 * Math.max(1, verify.body.rScaled));
  });
});
