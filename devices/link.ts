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
import { connectPassword, type DevicePrivateKey } from '../local/certs.ts';

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

  constructor(private readonly cfg: Extract<LinkConfig, { kind: 'local' }>) {
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

class Mqtt5Link implements DeviceLink {
  readonly thing: string;
  readonly stats = { interrupted: 0, resumed: 0 };
  private readonly handlers: MessageHandler[] = [];
  private readonly client: mqtt5.Mqtt5Client;

  constructor(cfg: Extract<LinkConfig, { kind: 'iot-core' }>) {
    this.thing = cfg.thing;
    const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(cfg.endpoint, cfg.certPath, cfg.keyPath);
    if (cfg.port !== undefined) builder.withPort(cfg.port);
    if (cfg.caPath !== undefined) builder.withCertificateAuthorityFromPath(undefined, cfg.caPath);
    builder.withConnectProperties({ clientId: cfg.thing, keepAliveIntervalSeconds: 60, sessionExpiryIntervalSeconds: 3600 });
    builder.withSessionBehavior(mqtt5.ClientSessionBehavior.RejoinAlways);
    this.client = new mqtt5.Mqtt5Client(builder.build());
    this.client.on('messageReceived', (e) => {
      const value = decode(e.message.payload as ArrayBuffer | undefined);
      for (const h of this.handlers) h(e.message.topicName, value);
    });
    this.client.on('disconnection', () => {
      this.stats.interrupted += 1;
    });
    this.client.on('connectionSuccess', () => {
      this.stats.resumed += 1;
    });
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.once('connectionSuccess', () => resolve());
      this.client.once('connectionFailure', (e) => reject(new Error(`IoT Core connection failed: ${e.error.toString()}`)));
      this.client.start();
    });
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    await this.client.subscribe({ subscriptions: [{ topicFilter: filter, qos: qos === 1 ? mqtt5.QoS.AtLeastOnce : mqtt5.QoS.AtMostOnce }] });
  }

  async publish(topic: string, payload: unknown, qos: 0 | 1): Promise<void> {
    await this.client.publish({ topicName: topic, payload: JSON.stringify(payload), qos: qos === 1 ? mqtt5.QoS.AtLeastOnce : mqtt5.QoS.AtMostOnce });
  }

  onMessage(handler: MessageHandler): void {
    this.handlers.push(handler);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.client.once('stopped', () => {
        this.client.close();
        resolve();
      });
      this.client.stop();
    });
  }
}
