/**
 * The embedded broker's IoT Core messaging meter (local/broker.ts: IotMessageMeter),
 * against AWS's metering rules (https://aws.amazon.com/iot-core/pricing/additional-details/):
 * each PUBLISH from a device and each PUBLISH delivered to a subscriber in 5 KB units of
 * topic + payload, a back-end (HTTP) publish in 5 KB units of its body, one message per
 * device PUBACK, nothing for a rule invocation or the broker's own $SYS traffic, and nothing
 * for a Basic Ingest publish ("without incurring messaging costs",
 * https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html), which is
 * counted apart as a rule-triggering ingest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mqtt } from 'aws-iot-device-sdk-v2';
import { connectPassword, MapThingRegistry, meteredMessages, startBroker, type LocalBroker } from '../../local/broker.ts';
import { basicIngestTopic } from '../../service/topics.ts';
import { deviceKeys, sdkConnection, waitFor } from './support.ts';

const BACKEND = { username: 'oc-backend', password: 'local-secret' };
const keys = deviceKeys('ed25519');

describe('IoT Core message meter', () => {
  let broker: LocalBroker;
  let dev: mqtt.MqttClientConnection;
  before(async () => {
    broker = await startBroker({
      things: new MapThingRegistry().put('m1-dev-1', { domain: 'm1', key: keys.publicKey }).put('m1-dev-2', { domain: 'm1', key: keys.publicKey }),
      backend: BACKEND,
    });
    dev = sdkConnection({ port: broker.port, clientId: 'm1-dev-1', username: 'm1-dev-1', password: connectPassword('m1-dev-1', keys.privateKey) });
    await dev.connect();
    // aedes counts the session just after the CONNACK the SDK resolves on: one CONNECT, metered once
    await waitFor(() => (broker.meter.byKind['connect'] === 1 ? true : undefined));
  });
  after(async () => {
    await dev.disconnect().catch(() => undefined);
    await broker.stop();
  });

  test('5 KB units, rounded up, at least one', () => {
    assert.equal(meteredMessages(0), 1);
    assert.equal(meteredMessages(5120), 1);
    assert.equal(meteredMessages(5121), 2);
    assert.equal(meteredMessages(8 * 1024), 2); // the pricing page's example: 8 KB is two messages
  });

  test('a device publish to a rule by Basic Ingest is no billed message: it is counted as ingest (5 KB units), and the rule invocation is no message either', async () => {
    let ran = 0;
    broker.addRule({ name: 'r', topicFilter: 'oc/+/+/out/request', handler: async () => void ran++ });
    const before = { ...broker.meter, byKind: { ...broker.meter.byKind }, ingestByKind: { ...broker.meter.ingestByKind } };
    await dev.publish(basicIngestTopic('r', 'oc/m1/m1-dev-1/out/request'), '{"a":1}', mqtt.QoS.AtLeastOnce);
    await dev.publish(basicIngestTopic('r', 'oc/m1/m1-dev-1/out/request'), JSON.stringify({ a: 'x'.repeat(6 * 1024) }), mqtt.QoS.AtLeastOnce);
    await broker.settled();
    assert.equal(ran, 2);
    assert.equal(broker.meter.inbound - before.inbound, 0);
    assert.equal(broker.meter.outbound - before.outbound, 0);
    assert.equal(broker.meter.total - before.total, 0);
    assert.deepEqual(broker.meter.byKind, before.byKind);
    assert.equal(broker.meter.ingest - before.ingest, 1 + 2);
    assert.equal((broker.meter.ingestByKind['request'] ?? 0) - (before.ingestByKind['request'] ?? 0), 3);
  });

  test('a back-end publish of 6 KB to a QoS 1 subscriber: 2 (HTTP body) + 2 (delivery) + 1 (the device PUBACK)', async () => {
    const got: number[] = [];
    dev.on('message', (_topic, payload) => void got.push(payload.byteLength));
    await dev.subscribe('oc/m1/m1-dev-1/in/#', mqtt.QoS.AtLeastOnce);
    const before = { ...broker.meter };
    await broker.publish('oc/m1/m1-dev-1/in/big', 'x'.repeat(6 * 1024), 1);
    await waitFor(() => (got.length > 0 && broker.meter.pubacks > before.pubacks ? true : undefined));
    assert.equal(broker.meter.backend - before.backend, 2);
    assert.equal(broker.meter.outbound - before.outbound, 2);
    assert.equal(broker.meter.pubacks - before.pubacks, 1);
    assert.equal(broker.meter.total - before.total, 5);
  });

  test('a QoS 0 delivery has no PUBACK; a plain publish nobody subscribes to is still metered inbound', async () => {
    // a client allowed plain topics (things publish by Basic Ingest only)
    const ops = sdkConnection({ port: broker.port, clientId: 'm1-ops', ...BACKEND });
    await ops.connect();
    try {
      await waitFor(() => (broker.meter.byKind['connect'] === 2 ? true : undefined));
      const before = { ...broker.meter };
      await broker.publish('oc/m1/m1-dev-1/in/small', '{}', 0);
      await waitFor(() => (broker.meter.outbound > before.outbound ? true : undefined));
      await ops.publish('oc/m1/m1-dev-1/out/nobody', '{}', mqtt.QoS.AtMostOnce);
      await waitFor(() => (broker.meter.inbound > before.inbound ? true : undefined));
      assert.equal(broker.meter.pubacks - before.pubacks, 0);
      assert.equal(broker.meter.total - before.total, 3);
    } finally {
      await ops.disconnect().catch(() => undefined);
    }
  });

  test("a connect is one message; the broker's own $SYS notices (aedes announces every new client) are not", async () => {
    const before = broker.meter.total;
    const second = sdkConnection({ port: broker.port, clientId: 'm1-dev-2', username: 'm1-dev-2', password: connectPassword('m1-dev-2', keys.privateKey) });
    await second.connect();
    try {
      await waitFor(() => (broker.meter.byKind['connect'] === 3 ? true : undefined));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(broker.meter.total - before, 1);
    } finally {
      await second.disconnect().catch(() => undefined);
    }
  });

  test('a thing may subscribe to the accepted replies naming it as provider device, and to no other outside its inbox', async () => {
    const before = broker.stats.refusedSubscribe;
    assert.equal((await dev.subscribe('oc/+/+/in/reply/m1/m1-dev-1', mqtt.QoS.AtLeastOnce)).qos, 1);
    for (const filter of ['oc/+/+/in/reply/m1/m1-dev-2', 'oc/+/+/in/reply/#', 'oc/+/+/in/reply/+/m1-dev-1', 'oc/x/y/in/reply/m1/m1-dev-1']) {
      assert.equal((await dev.subscribe(filter, mqtt.QoS.AtLeastOnce)).qos, 128, filter);
    }
    assert.equal(broker.stats.refusedSubscribe, before + 4);
  });
});
