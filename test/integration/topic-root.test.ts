/**
 * A stage's MQTT topic root (service/topics.ts): on AWS two stages in one account
 * and region share IoT Core's topic space, so each stage's rules, device policy and
 * replies live under its own root (`oc` for dev, `oc-<stage>` otherwise). Here a
 * hub whose TOPIC_ROOT is `oc-demo` serves devices configured with that root end to
 * end, and a device still on `oc` reaches neither the rules nor its inbox.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from '../../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../../core/types.ts';
import { createLink } from '../../devices/link.ts';
import { ConsumerDevice } from '../../devices/scd.ts';
import { ProviderDevice } from '../../devices/spd.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { ingestRules, topicRoot, topicsUnder } from '../../service/topics.ts';
import { registerDomain, sleep } from './support.ts';

describe('a stage topic root (TOPIC_ROOT=oc-demo)', () => {
  let cloud: LocalCloud;
  let providerKey: PublicKeyRef;

  const device = async (domain: string, id: string, creditLimit: number) => {
    const keys = generateKeyPair();
    const { body } = await cloud.call<{ credential: Signed<DeviceCredential> }>('POST', `/domains/${domain}/devices`, { deviceId: id, deviceKey: keys.publicKey, creditLimit });
    cloud.registerThing(id, domain, keys.publicKey);
    const link = createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: id, privateKey: keys.privateKey });
    return { keys, credential: body.credential, link };
  };

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 }, env: { TOPIC_ROOT: 'oc-demo' } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 's1', 'provider', { threshold: 0.3 });
    providerKey = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/s1')).body.record.body.key;
  });
  after(async () => {
    await cloud?.stop();
  });

  it('stage names map to roots: dev keeps oc, others get their own; a root is one topic level', () => {
    assert.equal(topicRoot('dev'), 'oc');
    assert.equal(topicRoot('orgb'), 'oc-orgb');
    assert.equal(topicsUnder('oc-orgb').rule('obligation'), 'oc-orgb/+/+/out/obligation');
    // each stage's topic rules have their own names (rule names are the account's, per region), reached by Basic Ingest
    assert.deepEqual(ingestRules('oc'), { request: 'oc_request', obligation: 'oc_obligation' });
    assert.deepEqual(ingestRules('oc-orgb'), { request: 'oc_orgb_request', obligation: 'oc_orgb_obligation' });
    assert.equal(topicsUnder('oc-orgb').ingest('c1', 'd1', 'obligation'), '$aws/rules/oc_orgb_obligation/oc-orgb/c1/d1/out/obligation');
    for (const bad of ['', 'a/b', '+', '#', '$aws', 'x'.repeat(33)]) assert.throws(() => topicsUnder(bad), /topic root/);
  });

  it('devices on the stage root buy end to end: offer, obligation, reply and grant all under oc-demo', async () => {
    const p = await device('s1', 's1-spd-1', 0);
    const c = await device('c1', 'c1-scd-1', 1_000_000);
    const spd = new ProviderDevice('s1', 's1-spd-1', p.link, { topicRoot: 'oc-demo' });
    const scd = new ConsumerDevice({ domain: 'c1', deviceId: 'c1-scd-1', privateKey: c.keys.privateKey, credential: c.credential, link: c.link, topicRoot: 'oc-demo', providerKey: async () => providerKey, timeoutMs: 5_000 });
    const granted: string[] = [];
    spd.onGrant((g) => granted.push(g.obligationId));
    try {
      await spd.start();
      await scd.start();
      for (let i = 0; i < 2; i++) {
        const r = await scd.buy('s1', 's1-spd-1', 'wifi-access');
        assert.ok(r.ok, JSON.stringify(r));
      }
      for (let i = 0; i < 300 && granted.length < 2; i++) await sleep(10);
      assert.equal(granted.length, 2, 'both purchases granted on the provider device');
      assert.equal(cloud.broker.stats.refusedPublish + cloud.broker.stats.refusedSubscribe, 0);
      // by Basic Ingest to the stage's rules: not billed as messages
      assert.ok((cloud.broker.meter.ingestByKind['obligation'] ?? 0) >= 2, JSON.stringify(cloud.broker.meter.ingestByKind));
      assert.equal(cloud.broker.meter.byKind['obligation'], undefined);
    } finally {
      await scd.close();
      await spd.close();
    }
  });

  it('a device still on the default root is refused by the broker (as by the stage\'s IoT policy): no rule sees its request', async () => {
    const c = await device('c1', 'c1-scd-2', 1_000_000);
    const old = topicsUnder('oc');
    const refused = () => cloud.broker.stats.refusedSubscribe + cloud.broker.stats.refusedPublish;
    const before = refused();
    const offersBefore = cloud.broker.meter.byKind['offer'] ?? 0;
    try {
      await c.link.connect();
      await c.link.subscribe(old.inbox('c1', 'c1-scd-2'), 0).catch(() => undefined);
      await c.link.publish(old.ingest('c1', 'c1-scd-2', 'request'), { requestId: 'r1', providerDomain: 's1', providerDevice: 's1-spd-1', service: 'wifi-access' }, 0).catch(() => undefined);
      for (let i = 0; i < 200 && refused() < before + 2; i++) await sleep(10);
      assert.equal(refused() - before, 2, 'the subscription and the publish under oc/ were refused');
      await sleep(100);
      assert.equal((cloud.broker.meter.byKind['offer'] ?? 0) - offersBefore, 0, 'no offer was made');
    } finally {
      await c.link.close();
    }
  });
});
