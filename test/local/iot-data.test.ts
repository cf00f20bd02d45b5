/**
 * The in-process transport of the IoT data plane stand-in: the real
 * IoTDataPlaneClient (serialisation, signing) with local/iot-data.ts as its
 * requestHandler delivers each PublishCommand to the broker with its topic,
 * payload and QoS, as the HTTP route of local/cloud.ts does.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { InProcessIotData, publishTopic } from '../../local/iot-data.ts';

const client = (sink: { topic: string; text: string; qos: number }[]) =>
  new IoTDataPlaneClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:1', // never dialled: the transport answers in-process
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: new InProcessIotData(async (topic, text, qos) => {
      sink.push({ topic, text, qos });
    }),
  });

describe('IoT data plane, in-process transport', () => {
  test('a publish reaches the broker with its topic, UTF-8 payload and QoS (1 unless 0 is asked for)', async () => {
    const got: { topic: string; text: string; qos: number }[] = [];
    const iot = client(got);
    const payload = JSON.stringify({ requestId: 'r-1', note: 'naïve ✓' });
    await iot.send(new PublishCommand({ topic: 'oc/bc/bc-scd-1/in/reply', qos: 1, payload: new TextEncoder().encode(payload) }));
    await iot.send(new PublishCommand({ topic: 'oc/bp/bp spd#2/in/grant', qos: 0, payload: new TextEncoder().encode('{}') }));
    await iot.send(new PublishCommand({ topic: 'oc/bp/x/in/grant', payload: new TextEncoder().encode('{}') }));
    assert.deepEqual(got, [
      { topic: 'oc/bc/bc-scd-1/in/reply', text: payload, qos: 1 },
      { topic: 'oc/bp/bp spd#2/in/grant', text: '{}', qos: 0 },
      { topic: 'oc/bp/x/in/grant', text: '{}', qos: 1 },
    ]);
    iot.destroy();
  });

  test('a broker failure fails the publish (the notifier then reports the hub unavailable)', async () => {
    const iot = new IoTDataPlaneClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
      requestHandler: new InProcessIotData(async () => {
        throw new Error('broker stopped');
      }),
    });
    await assert.rejects(iot.send(new PublishCommand({ topic: 'oc/a/b/in/reply', payload: new TextEncoder().encode('{}') })), /broker stopped/);
    iot.destroy();
  });

  test('only POST /topics/{topic} is a publish', () => {
    assert.equal(publishTopic('POST', '/topics/oc%2Fa%2Fb%2Fin%2Freply'), 'oc/a/b/in/reply');
    assert.equal(publishTopic('GET', '/topics/oc%2Fa'), undefined);
    assert.equal(publishTopic('POST', '/topics/'), undefined);
    assert.equal(publishTopic('POST', '/retainedThing/x'), undefined);
  });
});
