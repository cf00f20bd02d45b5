/**
 * The devices' MQTT5 + mTLS link (createLink kind 'iot-core', the AWS IoT Core path)
 * against a real MQTT5 broker: Debian's mosquitto with client-certificate
 * authentication (CN = thing name) and an ACL that mirrors the IoT device policy.
 * Needs `mosquitto` (bash .ci/install-mosquitto.sh) and `openssl`; skips without them.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { createLink, type DeviceLink } from '../../devices/link.ts';
import { ForbiddenError, UnavailableError } from '../../core/errors.ts';
import { findTool, makePki, startMosquitto, type Identity, type Mosquitto, type Pki } from './broker.ts';
import { collectGarbage, connectWithoutCertificate, Inbox } from './support.ts';
import { skippable } from '../skippable.ts';

const mosquittoBin = await findTool('mosquitto');
const opensslBin = await findTool('openssl');
const skip =
  mosquittoBin === undefined
    ? 'mosquitto is not installed (run: bash .ci/install-mosquitto.sh)'
    : opensslBin === undefined
      ? 'openssl is not installed'
      : false;
// Each test skips with the reason (and is counted as skipped); the hooks then do nothing.
const { it, before, after } = skippable(skip);

const IDENTITIES: Identity[] = [
  { name: 't1', domain: 'd1' },
  { name: 't2', domain: 'd2' },
  // The back-end side (in AWS: topic rules and the IoT data plane), allowed everywhere under oc/.
  { name: 'backend', privileged: true },
];

describe('MQTT5 + mTLS device link against mosquitto', () => {
  let pki: Pki | undefined;
  let broker: Mosquitto | undefined;
  /** Every link made, closed in teardown; cleared so the closed clients can be collected. */
  const links = new Set<DeviceLink>();
  const inboxes = new Map<string, Inbox>();

  const link = (thing: string, cert?: { certPath: string; keyPath: string }): DeviceLink => {
    if (pki === undefined || broker === undefined) throw new Error('broker not started');
    const c = cert ?? pki.clients.get(thing);
    if (c === undefined) throw new Error(`no certificate for ${thing}`);
    const l = createLink({
      kind: 'iot-core',
      endpoint: '127.0.0.1',
      port: broker.port,
      caPath: pki.caPath,
      thing,
      certPath: c.certPath,
      keyPath: c.keyPath,
    });
    links.add(l);
    return l;
  };
  const inbox = (thing: string): Inbox => {
    const box = inboxes.get(thing);
    if (box === undefined) throw new Error(`no inbox for ${thing}`);
    return box;
  };
  const connected = new Map<string, DeviceLink>();
  const dev = (thing: string): DeviceLink => {
    const l = connected.get(thing);
    if (l === undefined) throw new Error(`${thing} not connected`);
    return l;
  };

  before(async () => {
    // Only narrows the types: without either tool skippable() never runs this hook.
    if (mosquittoBin === undefined || opensslBin === undefined) return;
    pki = await makePki(opensslBin, IDENTITIES, 'rogue');
    broker = await startMosquitto(mosquittoBin, pki, IDENTITIES);
    for (const id of IDENTITIES) {
      const l = link(id.name);
      inboxes.set(id.name, new Inbox(l));
      await l.connect();
      connected.set(id.name, l);
    }
    await dev('t1').subscribe('oc/d1/t1/in/#', 1);
    await dev('t2').subscribe('oc/d2/t2/in/#', 1);
    await dev('backend').subscribe('oc/+/+/out/#', 1);
  });

  after(async () => {
    for (const l of links) await l.close();
    links.clear();
    connected.clear();
    inboxes.clear();
    await broker?.stop();
    await pki?.dispose();
    await collectGarbage();
  });

  it('connects each thing with its certificate, the CN becoming its identity', () => {
    for (const id of IDENTITIES) assert.equal(dev(id.name).stats.resumed, 1, id.name);
    const log = broker?.log() ?? '';
    assert.match(log, /as t1 \(p5, [^)]*u't1'\)/, 'MQTT 5 (p5) with the certificate CN as username');
  });

  it('delivers a QoS1 message the back-end publishes into a thing inbox, JSON decoded', async () => {
    const offer = { requestId: 'r-1', service: 'wifi-access', price: 1500, payTo: 'bcrt1qexample' };
    await dev('backend').publish('oc/d1/t1/in/offer', offer, 1);
    const got = await inbox('t1').next('oc/d1/t1/in/offer');
    assert.deepEqual(got.payload, offer);
  });

  it('round-trips QoS1: a thing publishes on its out topic, the back-end receives and replies', async () => {
    await dev('t2').publish('oc/d2/t2/out/request', { requestId: 'r-2', service: 'parking' }, 1);
    const req = await inbox('backend').next('oc/d2/t2/out/request');
    assert.deepEqual(req.payload, { requestId: 'r-2', service: 'parking' });
    await dev('backend').publish('oc/d2/t2/in/reply', { requestId: 'r-2', ok: true }, 1);
    const reply = await inbox('t2').next('oc/d2/t2/in/reply');
    assert.deepEqual(reply.payload, { requestId: 'r-2', ok: true });
  });

  it('refuses (PUBACK 0x87) a QoS1 publish into another thing\'s topic, and does not deliver it', async () => {
    await assert.rejects(dev('t1').publish('oc/d2/t2/in/grant', { forged: true }, 1), (e: unknown) => {
      assert.ok(e instanceof ForbiddenError);
      assert.equal(e.details?.['reasonCode'], 135);
      return true;
    });
    // mosquitto routes messages in order on one thread: once t2 has the back-end's later
    // fence message, a delivered forgery would already be in t2's inbox.
    await dev('backend').publish('oc/d2/t2/in/fence', { n: 1 }, 1);
    await inbox('t2').next('oc/d2/t2/in/fence');
    assert.deepEqual(inbox('t2').messages.filter((m) => m.topic === 'oc/d2/t2/in/grant'), []);
  });

  it('does not deliver a QoS0 publish into another thing\'s topic (no PUBACK to refuse)', async () => {
    await dev('t1').publish('oc/d2/t2/in/offer', { forged: 'qos0' }, 0);
    await dev('t1').publish('oc/d1/t1/out/request', { after: 'qos0' }, 1); // same connection, so ordered after it
    await inbox('backend').next('oc/d1/t1/out/request');
    await dev('backend').publish('oc/d2/t2/in/fence2', { n: 2 }, 1);
    await inbox('t2').next('oc/d2/t2/in/fence2');
    assert.deepEqual(inbox('t2').messages.filter((m) => m.topic === 'oc/d2/t2/in/offer'), []);
  });

  it('refuses a publish under the thing\'s own name in another domain', async () => {
    await assert.rejects(dev('t1').publish('oc/d2/t1/out/request', { wrongDomain: true }, 1), (e: unknown) => {
      assert.ok(e instanceof ForbiddenError);
      assert.equal(e.details?.['reasonCode'], 135);
      return true;
    });
  });

  it('delivers nothing to a subscription outside the thing\'s prefix', async () => {
    // mosquitto grants the SUBACK and filters on delivery; IoT Core refuses the SUBACK, which the link turns into ForbiddenError.
    try {
      await dev('t1').subscribe('oc/d2/t2/in/#', 1);
    } catch (e) {
      assert.ok(e instanceof ForbiddenError);
    }
    await dev('backend').publish('oc/d2/t2/in/secret', { s: 42 }, 1);
    // The message was really published: its owner gets it.
    assert.deepEqual((await inbox('t2').next('oc/d2/t2/in/secret')).payload, { s: 42 });
    await dev('backend').publish('oc/d1/t1/in/fence', { n: 3 }, 1);
    await inbox('t1').next('oc/d1/t1/in/fence');
    assert.deepEqual(inbox('t1').under('oc/d2/'), []);
  });

  it('refuses a client certificate from a CA the broker does not trust: connect() rejects', async () => {
    if (pki === undefined) throw new Error('no pki');
    const rogue = link('rogue', pki.rogue);
    await assert.rejects(rogue.connect(), UnavailableError);
    await rogue.close();
  });

  it('refuses a TLS client that presents no certificate', async () => {
    if (pki === undefined || broker === undefined) throw new Error('no broker');
    const outcome = await connectWithoutCertificate(broker.port, pki.caPath, 'anonymous-probe');
    assert.notEqual(outcome, 'connected');
  });

  it('after a broker restart that lost the session, reconnects and subscribes again', async () => {
    if (mosquittoBin === undefined || pki === undefined || broker === undefined) throw new Error('no broker');
    const port = broker.port;
    await broker.stop();
    broker = await startMosquitto(mosquittoBin, pki, IDENTITIES, { port }); // persistence false: sessions are gone
    // The SDK reconnects with backoff and the link re-subscribes on a CONNACK without a session;
    // publish until the inbox sees one (bounded: the guard in next() fails the test).
    const arrived = inbox('t1').next('oc/d1/t1/in/after-restart', 15_000);
    let stop = false;
    void arrived.finally(() => {
      stop = true;
    });
    for (let i = 0; i < 150 && !stop; i++) {
      await dev('backend').publish('oc/d1/t1/in/after-restart', { i }, 1).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await arrived;
    assert.ok(dev('t1').stats.interrupted >= 1 && dev('t1').stats.resumed >= 2, JSON.stringify(dev('t1').stats));
  });

  it('close() is idempotent and later operations reject as unavailable', async () => {
    const l = link('t1-extra', pki?.clients.get('t2'));
    await l.close(); // never connected
    await l.close();
    await assert.rejects(l.connect(), UnavailableError);
    await assert.rejects(l.publish('oc/d2/t2/out/request', {}, 1), UnavailableError);
  });
});
