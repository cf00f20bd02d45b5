/**
 * A device's one MQTT connection, on aws-iot-device-sdk-v2:
 * - `local`: MQTT 3.1.1 to the embedded broker (aedes speaks 3.1.1 only), plain
 *   TCP, the thing name as client id and a signed connect token as password
 *   (the embedded stand-in for IoT Core's certificate authentication);
 * - `iot-core`: MQTT5 with mTLS (the thing's X.509 certificate) to AWS IoT Core.
 * Both reconnect with backoff (the SDK's own), keep a persistent session and
 * re-subscribe on reconnect, so QoS1 messages survive a broker restart.
 */
import { iot, io, mqtt, mqtt5 } from 'aws-iot-device-sdk-v2';
import { ForbiddenError, UnavailableError } from '../core/errors.ts';
import { connectPassword, type DevicePrivateKey } from './connect-token.ts';

export type LinkConfig =
  | {
      kind: 'local';
      host: string;
      port: number;
      thing: string;
      privateKey: DevicePrivateKey;
    }
  | {
      kind: 'iot-core';
      endpoint: string;
      thing: string;
      certPath: string;
      keyPath: string;
      /** Broker port; IoT Core's default (8883) when absent. */
      port?: number;
      /** PEM file of the CA that signed the broker's certificate; the system trust store when absent. */
      caPath?: string;
    };

export type MessageHandler = (topic: string, payload: unknown) => void;

export interface DeviceLink {
  readonly thing: string;
  connect(): Promise<void>;
  subscribe(filter: string, qos: 0 | 1): Promise<void>;
  publish(topic: string, payload: unknown, qos: 0 | 1): Promise<void>;
  onMessage(handler: MessageHandler): void;
  /** Counts of connection interruptions and resumptions (for progress and tests). */
  readonly stats: { interrupted: number; resumed: number };
  close(): Promise<void>;
}

const decode = (payload: ArrayBuffer | Buffer | Uint8Array | string | undefined): unknown => {
  if (payload === undefined) return undefined;
  const text =
    typeof payload === 'string' ? payload : Buffer.from(payload instanceof ArrayBuffer ? new Uint8Array(payload) : payload).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

export function createLink(cfg: LinkConfig): DeviceLink {
  return cfg.kind === 'local' ? new Mqtt311Link(cfg) : new Mqtt5Link(cfg);
}

class Mqtt311Link implements DeviceLink {
  readonly thing: string;
  readonly stats = { interrupted: 0, resumed: 0 };
  private readonly handlers: MessageHandler[] = [];
  private readonly subscriptions = new Map<string, 0 | 1>();
  private readonly conn: mqtt.MqttClientConnection;

  constructor(cfg: Extract<LinkConfig, { kind: 'local' }>) {
    this.thing = cfg.thing;
    this.conn = new mqtt.MqttClient().new_connection({
      client_id: cfg.thing,
      host_name: cfg.host,
      port: cfg.port,
      socket_options: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.IPV4, 5000),
      use_websocket: false,
      clean_session: false,
      keep_alive: 30,
      username: cfg.thing,
      password: connectPassword(cfg.thing, cfg.privateKey),
      disable_metrics: true,
      reconnect_min_sec: 1,
      reconnect_max_sec: 4,
    });
    this.conn.on('interrupt', () => {
      this.stats.interrupted += 1;
    });
    this.conn.on('resume', (_code: number, sessionPresent: boolean) => {
      this.stats.resumed += 1;
      if (!sessionPresent) for (const [f, q] of this.subscriptions) void this.subscribe(f, q).catch(() => undefined);
    });
  }

  async connect(): Promise<void> {
    await this.conn.connect();
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    const res = await this.conn.subscribe(filter, qos === 1 ? mqtt.QoS.AtLeastOnce : mqtt.QoS.AtMostOnce, (topic, payload) => {
      const value = decode(payload);
      for (const h of this.handlers) h(topic, value);
    });
    if ((res as { qos?: number }).qos === 128) throw new Error(`subscription to ${filter} refused by the broker`);
  }

  async publish(topic: string, payload: unknown, qos: 0 | 1): Promise<void> {
    await this.conn.publish(topic, JSON.stringify(payload), qos === 1 ? mqtt.QoS.AtLeastOnce : mqtt.QoS.AtMostOnce);
  }

  onMessage(handler: MessageHandler): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    await this.conn.disconnect().catch(() => undefined);
  }
}

/**
 * MQTT5 over mTLS (AWS IoT Core). Tested against mosquitto 2.0 with client-certificate
 * authentication and a per-thing ACL (test/mqtt5). Refusals are typed: a connection that
 * fails is an UnavailableError; a SUBACK/PUBACK with a failure reason code (>= 0x80, e.g.
 * 0x87 Not authorized) is a ForbiddenError.
 */
class Mqtt5Link implements DeviceLink {
  readonly thing: string;
  readonly stats = { interrupted: 0, resumed: 0 };
  private readonly handlers: MessageHandler[] = [];
  private readonly subscriptions = new Map<string, 0 | 1>();
  /**
   * Dropped on close(): aws-crt releases the client's native callbacks, which hold the
   * Node event loop open, only when the JS client is garbage-collected (aws-crt-nodejs#600),
   * so nothing here may keep it reachable afterwards.
   */
  private clientRef: mqtt5.Mqtt5Client | undefined;
  /** Whether start() has been called and stop() not since. */
  private running = false;
  private stopping: Promise<void> | undefined;

  constructor(cfg: Extract<LinkConfig, { kind: 'iot-core' }>) {
    this.thing = cfg.thing;
    const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(cfg.endpoint, cfg.certPath, cfg.keyPath);
    if (cfg.port !== undefined) builder.withPort(cfg.port);
    if (cfg.caPath !== undefined) builder.withCertificateAuthorityFromPath(undefined, cfg.caPath);
    builder.withConnectProperties({ clientId: cfg.thing, keepAliveIntervalSeconds: 60, sessionExpiryIntervalSeconds: 3600 });
    builder.withSessionBehavior(mqtt5.ClientSessionBehavior.RejoinAlways);
    const client = new mqtt5.Mqtt5Client(builder.build());
    this.clientRef = client;
    client.on('messageReceived', (e) => {
      const value = decode(e.message.payload as ArrayBuffer | undefined);
      for (const h of this.handlers) h(e.message.topicName, value);
    });
    client.on('disconnection', () => {
      this.stats.interrupted += 1;
    });
    client.on('connectionSuccess', (e) => {
      this.stats.resumed += 1;
      // The broker forgot the session (expired, or a broker without persistence): subscribe again.
      if (!e.connack.sessionPresent) for (const [f, q] of this.subscriptions) void this.subscribe(f, q).catch(() => undefined);
    });
  }

  /**
   * Starts the client and resolves on the first CONNACK. On the first failure (TLS handshake
   * refused, CONNACK with a failure code) the client is stopped, so no retry loop is left behind,
   * and the promise rejects with an UnavailableError, as it does if close() comes first. Later
   * drops are retried by the SDK with backoff.
   */
  connect(): Promise<void> {
    let client: mqtt5.Mqtt5Client;
    try {
      client = this.client;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      let failure: string | undefined;
      const done = (): void => {
        client.off('connectionSuccess', onSuccess);
        client.off('connectionFailure', onFailure);
        client.off('stopped', onStopped);
      };
      const onSuccess = (): void => {
        done();
        resolve();
      };
      const onFailure = (e: mqtt5.ConnectionFailureEvent): void => {
        failure ??= e.connack === undefined ? e.error.toString() : `CONNACK reason code ${e.connack.reasonCode}`;
        void this.stop(client);
      };
      const onStopped = (): void => {
        done();
        const why = failure === undefined ? 'stopped before it connected' : `failed: ${failure}`;
        reject(new UnavailableError(`MQTT5 connection of ${this.thing} ${why}`, { thing: this.thing }));
      };
      client.on('connectionSuccess', onSuccess);
      client.on('connectionFailure', onFailure);
      client.on('stopped', onStopped);
      this.running = true;
      client.start();
    });
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    this.subscriptions.set(filter, qos);
    const suback = await this.client.subscribe({
      subscriptions: [{ topicFilter: filter, qos: qos === 1 ? mqtt5.QoS.AtLeastOnce : mqtt5.QoS.AtMostOnce }],
    });
    const code = suback.reasonCodes[0];
    if (code === undefined || !mqtt5.isSuccessfulSubackReasonCode(code)) {
      this.subscriptions.delete(filter);
      throw new ForbiddenError(`subscription to ${filter} refused by the broker`, { thing: this.thing, filter, reasonCode: code });
    }
  }

  /** QoS1 resolves on a successful PUBACK (rejects on a failure reason code); QoS0 once written. */
  async publish(topic: string, payload: unknown, qos: 0 | 1): Promise<void> {
    const puback = await this.client.publish({
      topicName: topic,
      payload: JSON.stringify(payload),
      qos: qos === 1 ? mqtt5.QoS.AtLeastOnce : mqtt5.QoS.AtMostOnce,
    });
    if (puback !== undefined && !mqtt5.isSuccessfulPubackReasonCode(puback.reasonCode)) {
      throw new ForbiddenError(`publish to ${topic} refused by the broker`, { thing: this.thing, topic, reasonCode: puback.reasonCode });
    }
  }

  onMessage(handler: MessageHandler): void {
    this.handlers.push(handler);
  }

  /** Stops the client (if started) and frees its native resources. Idempotent; safe after a failed connect(). */
  async close(): Promise<void> {
    const client = this.clientRef;
    if (client === undefined) return;
    this.clientRef = undefined;
    await this.stop(client);
    client.close();
  }

  private get client(): mqtt5.Mqtt5Client {
    if (this.clientRef === undefined) throw new UnavailableError(`the MQTT5 link of ${this.thing} is closed`, { thing: this.thing });
    return this.clientRef;
  }

  /** stop(), then the STOPPED event (the SDK's documented order before close()); one stop shared by all callers. */
  private stop(client: mqtt5.Mqtt5Client): Promise<void> {
    if (!this.running) return this.stopping ?? Promise.resolve();
    this.running = false;
    this.stopping = new Promise((resolve) => {
      client.once('stopped', () => resolve());
      client.stop();
    });
    return this.stopping;
  }
}
