/**
 * Small helpers for the MQTT5 link tests: an inbox that records what a link
 * receives, a raw client that tries to connect with no client certificate, and
 * a garbage collection that lets the process exit after aws-crt clients close.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { io, mqtt5 } from 'aws-iot-device-sdk-v2';
import type { DeviceLink } from '../../devices/link.ts';

export interface Received {
  topic: string;
  payload: unknown;
}

/** Everything a link receives, in order, with a way to wait for a given message. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: { match: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];

  constructor(link: DeviceLink) {
    link.onMessage((topic, payload) => {
      const m = { topic, payload };
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(m)) return true;
        w.resolve(m);
        return false;
      });
    });
  }

  /**
   * The first message (already received or to come) on `topic`. Rejects after `guardMs` so a
   * message that never comes fails the test instead of hanging the run (a guard, not a timing check).
   */
  next(topic: string, guardMs = 5000): Promise<Received> {
    const hit = this.messages.find((m) => m.topic === topic);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message on ${topic} within ${guardMs} ms`)), guardMs);
      this.waiters.push({
        match: (m) => m.topic === topic,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Messages received on topics that start with `prefix`. */
  under(prefix: string): Received[] {
    return this.messages.filter((m) => m.topic.startsWith(prefix));
  }
}

/**
 * Tries an MQTT5 connection over TLS that trusts `caPath` but presents no client
 * certificate. Resolves 'connected' or the failure's text; the client is always
 * stopped and closed before it resolves.
 */
export async function connectWithoutCertificate(port: number, caPath: string, clientId: string): Promise<string> {
  const tls = new io.TlsContextOptions();
  tls.override_default_trust_store_from_path(undefined, caPath);
  const client = new mqtt5.Mqtt5Client({
    hostName: '127.0.0.1',
    port,
    tlsCtx: new io.ClientTlsContext(tls),
    connectProperties: { clientId, keepAliveIntervalSeconds: 30 },
  });
  const outcome = await new Promise<string>((resolve) => {
    client.once('connectionSuccess', () => resolve('connected'));
    client.once('connectionFailure', (e) => resolve(e.error.toString()));
    client.start();
  });
  await new Promise<void>((resolve) => {
    client.once('stopped', () => resolve());
    client.stop();
  });
  client.close();
  return outcome;
}

/**
 * Runs a full garbage collection twice. aws-crt (1.33) releases an MQTT5 client's
 * native callbacks, which are referenced on the event loop, only when the closed JS
 * client is collected, so a process that closed its clients can still hang on exit
 * (aws-crt-nodejs issue #600). Called in teardown once nothing refers to the clients.
 * `--expose-gc` is switched on only for the moment it takes to fetch `gc`.
 */
export async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}
