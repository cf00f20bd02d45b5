/**
 * Test support for the embedded cloud: device keys and a real
 * aws-iot-device-sdk-v2 MQTT 3.1.1 connection over plain TCP.
 */
import { generateKeyPairSync } from 'node:crypto';
import { io, mqtt } from 'aws-iot-device-sdk-v2';
import type { KeyAlg, PublicKeyRef } from '../../core/types.ts';
import type { DevicePrivateKey } from '../../local/certs.ts';

export interface DeviceKeys {
  publicKey: PublicKeyRef;
  privateKey: DevicePrivateKey;
}

export function deviceKeys(alg: KeyAlg = 'ed25519'): DeviceKeys {
  const pair = alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKey: { alg, spki: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url') },
    privateKey: { alg, pkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url') },
  };
}

export interface SdkConnectOptions {
  port: number;
  clientId: string;
  username: string;
  password: string;
  /** Leave the SDK's metrics on (it then appends `?SDK=...` to the username). Default false. */
  metrics?: boolean;
}

/**
 * An MQTT 3.1.1 connection built the way a device on the SDK would, minus TLS:
 * the IoT builders always set up TLS, so the plain MqttConnectionConfig is used.
 * disable_metrics stops the SDK appending `?SDK=...` to the username. Reconnects are kept
 * at 1 s: disconnect() on a dropped connection waits for the next reconnect, so a long
 * reconnect delay would hang the teardown.
 */
export function sdkConnection(opts: SdkConnectOptions): mqtt.MqttClientConnection {
  const client = new mqtt.MqttClient();
  return client.new_connection({
    client_id: opts.clientId,
    host_name: '127.0.0.1',
    port: opts.port,
    socket_options: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.IPV4, 3000),
    use_websocket: false,
    clean_session: true,
    keep_alive: 30,
    username: opts.username,
    password: opts.password,
    disable_metrics: !(opts.metrics ?? false),
    reconnect_min_sec: 1,
    reconnect_max_sec: 1,
  });
}

/**
 * Resolves with the first value of `poll()` that is not undefined (polled every few ms).
 * Rejects after `timeoutMs` so a missing event fails the test instead of hanging the run.
 */
export function waitFor<T>(poll: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const v = poll();
      if (v !== undefined) resolve(v);
      else if (Date.now() > deadline) reject(new Error(`waitFor: nothing after ${timeoutMs} ms`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}
