/**
 * Device chain resync (devices/scd.ts): a consumer device whose acceptance
 * reply was lost keeps its old chain head, so its next obligation is a replay
 * (F04) at the back-end. It then asks its back-end for its chain head
 * (GET /domains/{d}/devices/{dev}/head), adopts it only when the head
 * obligation verifies with its own key, and tries once more. A head the
 * back-end forged (signed by another key, or not matching the id it names)
 * is refused and the chain stays where it was. A refusal as a replay or a
 * broken link carries the head itself, so a device reaching its hub over MQTT
 * alone resumes too, with the same check.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { hubEnv } from '../../local/federation.ts';
import { ConsumerDevice, MemoryChainStore } from '../../devices/scd.ts';
import type { DeviceLink, MessageHandler } from '../../devices/link.ts';
import { createObligation } from '../../core/obligation.ts';
import { generateKeyPair } from '../../core/keys.ts';
import type { PublicKeyRef } from '../../core/types.ts';
import { ensureProviderDevice, enrol, getOffer, idleLink, registerDomain, type TestDevice } from '../integration/support.ts';

/** A device link that drops the replies to obligations while `dropReplies` is set (a lost acceptance). */
function lossy(inner: DeviceLink): DeviceLink & { dropReplies: boolean; dropped: number } {
  const handlers: MessageHandler[] = [];
  const link = {
    dropReplies: false,
    dropped: 0,
    get thing() {
      return inner.thing;
    },
    get stats() {
      return inner.stats;
    },
    connect: () => inner.connect(),
    subscribe: (f: string, q: 0 | 1) => inner.subscribe(f, q),
    publish: (t: string, p: unknown, q: 0 | 1) => inner.publish(t, p, q),
    onMessage: (h: MessageHandler) => void handlers.push(h),
    close: () => inner.close(),
  };
  inner.onMessage((topic, payload) => {
    if (link.dropReplies && topic.split('/')[4] === 'reply') {
      link.dropped += 1;
      return;
    }
    for (const h of handlers) h(topic, payload);
  });
  return link;
}

describe('device chain resync', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;
  let providerKey: PublicKeyRef;
  const devices: ConsumerDevice[] = [];

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 } });
    await registerDomain(cloud, 'yc', 'consumer');
    await registerDomain(cloud, 'yp', 'provider', { threshold: 0.3 });
    await ensureProviderDevice(cloud, 'yp', 'yp-spd');
    dev = await enrol(cloud, 'yc', 'yc-dev');
    providerKey = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/yp')).body.record.body.key;
  });
  const closeAll = async () => {
    for (const d of devices.splice(0)) await d.close();
  };
  after(async () => {
    await closeAll();
    await cloud?.stop();
  });

  const device = (link: DeviceLink, backendApi: string | undefined, chain = new MemoryChainStore()) => {
    const d = new ConsumerDevice({
      domain: 'yc',
      deviceId: dev.id,
      privateKey: dev.keys.privateKey,
      credential: dev.credential,
      link,
      providerKey: async () => providerKey,
      ...(backendApi ? { backendApi } : {}),
      chain,
      timeoutMs: 1_500,
      attempts: 2,
    });
    devices.push(d);
    return d;
  };

  it('a lost acceptance reply: the next purchase is a replay, the device resyncs from its back-end once and is accepted', async () => {
    const link = lossy(hubEnv(cloud).link(dev.id, dev.keys));
    const chain = new MemoryChainStore();
    const scd = device(link, cloud.api, chain);
    await scd.start();
    const first = await scd.buy('yp', 'yp-spd', 'wifi-access');
    assert.ok(first.ok, JSON.stringify(first));

    link.dropReplies = true;
    const lost = await scd.buy('yp', 'yp-spd', 'wifi-access');
    link.dropReplies = false;
    assert.equal(lost.ok, false);
    assert.ok(link.dropped > 0, 'the acceptance reply was dropped');
    assert.equal((await chain.load()).seq, 1, 'the device did not see its acceptance: its head is behind');
    const backend = await cloud.call<{ seq: number }>('GET', `/domains/yc/devices/${dev.id}/head`);
    assert.equal(backend.body.seq, 2, 'the back-end accepted it');

    const next = await scd.buy('yp', 'yp-spd', 'wifi-access');
    assert.ok(next.ok, JSON.stringify(next));
    assert.equal(next.seq, 3, 'linked to the head it resynced to');
    assert.deepEqual(await chain.load(), { seq: 3, id: next.obligationId });
    await closeAll();
  });

  it('over MQTT alone (no API to ask), the refusal carries the chain head: the device adopts it and is accepted', async () => {
    const backend = (await cloud.call<{ seq: number; id: string }>('GET', `/domains/yc/devices/${dev.id}/head`)).body;
    const link = lossy(hubEnv(cloud).link(dev.id, dev.keys));
    const chain = new MemoryChainStore(); // a device that lost its chain state: it starts again at seq 1
    const scd = device(link, undefined, chain);
    await scd.start();
    const r = await scd.buy('yp', 'yp-spd', 'wifi-access');
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.seq, backend.seq + 1, 'linked to the head the refusal carried');
    assert.deepEqual(await chain.load(), { seq: backend.seq + 1, id: r.obligationId });

    // the refusal over HTTP carries the same head
    const offer = (await getOffer(cloud, dev, 'yp', 'yp-spd')).body;
    const replay = createObligation({ credential: dev.credential, deviceKey: dev.keys.privateKey, offer, seq: 1, prev: '0'.repeat(64), issuedAt: Date.now(), dueBy: Date.now() + 3_600_000 });
    const refused = await cloud.call<{ error: { code: string; details: { head: { seq: number; id: string; obligation: { id: string } } } } }>('POST', '/obligations', { obligation: replay });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'F04_REPLAY');
    const head = refused.body.error.details.head;
    assert.deepEqual([head.seq, head.id, head.obligation.id], [r.seq, r.obligationId, r.obligationId]);
    await closeAll();
  });

  it('a head the back-end forged is refused: the chain stays where it was', async () => {
    const real = (await cloud.call<{ seq: number; id: string; obligation: { body: unknown } }>('GET', `/domains/yc/devices/${dev.id}/head`)).body;
    const offer = (await getOffer(cloud, dev, 'yp', 'yp-spd')).body;
    // an obligation for this device at seq + 5, signed with a key that is not the device's
    const forged = createObligation({
      credential: dev.credential,
      deviceKey: generateKeyPair().privateKey,
      offer,
      seq: real.seq + 5,
      prev: real.id,
      issuedAt: Date.now(),
      dueBy: Date.now() + 3_600_000,
    });
    const answers = [
      { seq: forged.body.seq, id: forged.id, obligation: forged }, // not signed by the device
      { seq: real.seq + 5, id: forged.id, obligation: real.obligation }, // the device's own link, under another id and seq
      { seq: real.seq + 5, id: forged.id }, // no obligation at all
    ];
    let served = 0;
    const server: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answers[served++]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const chain = new MemoryChainStore();
      await chain.save({ seq: 1, id: 'a'.repeat(64) });
      // resync() talks HTTP only: a link that is never connected
      const idle = idleLink(dev.id);
      const scd = device(idle, base, chain);
      for (let i = 0; i < answers.length; i++) {
        assert.equal(await scd.resync(), false, `forged head ${i} refused`);
        assert.deepEqual(await chain.load(), { seq: 1, id: 'a'.repeat(64) });
        // the same heads carried by a refusal: the same check
        assert.equal(await scd.adopt(answers[i]), false, `forged head ${i} in a refusal refused`);
        assert.deepEqual(await chain.load(), { seq: 1, id: 'a'.repeat(64) });
      }
      assert.equal(served, answers.length);
      assert.equal(await scd.adopt(real), true, 'the real head, signed by the device, is adopted');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
