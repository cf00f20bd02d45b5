/**
 * The embedded stand-in for AWS IoT Core: an aedes MQTT 3.1.1 broker with
 * - per-thing authentication (a signed connect token in place of the X.509 client certificate),
 * - per-thing authorisation mirroring the project's IoT policy (lib/constructs/device-policy.ts):
 *   publish only by Basic Ingest, `$aws/rules/{rule}/oc/{domain}/{thing}/out/{kind}` to an
 *   existing rule whose filter takes that kind; subscribe/receive only `oc/{domain}/{thing}/in/...`
 *   and the one filter `oc/+/+/in/reply/{domain}/{thing}`: accepted replies granting it a service),
 * - topic rules that invoke handlers asynchronously with Lambda's async retry semantics
 *   and an error action, reached by Basic Ingest as IoT Core does
 *   (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html): the rule
 *   named in the topic runs on the topic without its `$aws/rules/{rule}` prefix, no client
 *   receives the message (nobody may subscribe to `$aws/rules/...`), and the meter does not
 *   bill it as messaging (it counts it apart, as a rule-triggering ingest).
 */
import { BASIC_INGEST_PREFIX, DEFAULT_TOPIC_ROOT, parseBasicIngest, RULE_NAME } from '../service/topics.ts';
import { createServer, type Server, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { Json, PublicKeyRef } from '../core/types.ts';
import { ForbiddenError, MalformedError } from '../core/errors.ts';
import type { Notifier } from '../adapters/ports.ts';
import { TOKEN_SKEW_MS, verifyConnectPassword } from './certs.ts';
import { errorMessage, invokeAsync } from './lambda.ts';
import { listenLoopback } from './net.ts';

export { connectMessage, connectPassword, verifyConnectPassword, type DevicePrivateKey } from './certs.ts';

/** What the registry knows of a thing: its `domain` attribute and its registered device key. */
export interface ThingRecord {
  domain: string;
  key: PublicKeyRef;
}

/** The thing registry (AWS: IoT things with attributes and attached certificates). */
export interface ThingRegistry {
  get(thing: string): ThingRecord | undefined;
}

/** An in-memory ThingRegistry. */
export class MapThingRegistry implements ThingRegistry {
  private readonly things = new Map<string, ThingRecord>();
  get(thing: string): ThingRecord | undefined {
    return this.things.get(thing);
  }
  put(thing: string, rec: ThingRecord): this {
    if (!THING_NAME.test(thing)) throw new MalformedError(`invalid thing name: ${thing}`);
    this.things.set(thing, rec);
    return this;
  }
  delete(thing: string): boolean {
    return this.things.delete(thing);
  }
}

/** The event a topic rule hands its action: `SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic`. */
export type RuleEvent = Record<string, unknown> & { domain: string; thing: string; topic: string };

/** What the error action receives. */
export interface RuleFailure {
  rule: string;
  topic: string;
  error: string;
  /** Handler attempts made (0 when the payload could not be parsed). */
  attempts: number;
  at: number;
}

export interface TopicRule {
  /** The rule's name: devices reach it by Basic Ingest at `$aws/rules/{name}/...` (service/topics.ts: ingestRuleName). */
  name: string;
  /** MQTT filter the rule's SQL selects FROM, e.g. `oc/+/+/out/obligation`. */
  topicFilter: string;
  handler: (event: RuleEvent) => Promise<unknown>;
  /** The rule's error action. Default: publish `{rule, error, topic}` to `oc/$errors`. Failures are recorded in `ruleErrors` either way. */
  onError?: (failure: RuleFailure) => Promise<void> | void;
  /** Retries after a failed invocation (Lambda async default: 2). */
  retries?: number;
  /** Waits before each retry. Default [50, 100] ms. */
  backoffMs?: readonly number[];
}

export interface BrokerStats {
  connected: number;
  refusedConnect: number;
  refusedPublish: number;
  refusedSubscribe: number;
  ruleInvocations: number;
  ruleRetries: number;
  ruleFailures: number;
}

export type RefusalKind = 'connect' | 'publish' | 'subscribe';

/**
 * AWS IoT Core's messaging meter, as its pricing page states it
 * (https://aws.amazon.com/iot-core/pricing/additional-details/, "MQTT Message Metering"):
 * a PUBLISH received from a device and a PUBLISH sent by the service to a subscriber are
 * each metered on the size of topic + payload, in 5 KB messages (rounded up); an HTTP
 * request (the back-end's iot-data Publish) on the size of its body; a PUBACK received
 * from a device as one 5 KB message under MQTT 3.1.1 (MQTT5: on its size, so at least
 * one); CONNECT and SUBSCRIBE on their size. Not metered: PINGREQ/PINGRESP, DISCONNECT,
 * CONNACK, SUBACK, UNSUBSCRIBE and the PUBACK the service sends. Topic-rule invocations
 * are billed as rules, not messages (AWS: the broker does not deliver to a rule as to a
 * client), so they are not counted here. A Basic Ingest PUBLISH ($aws/rules/...) is not a
 * billed message either ("without incurring messaging costs",
 * https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html): it is
 * counted in `ingest`, apart from `total`; its rule and action are billed as rules (the
 * cost row counts rule invocations, bench/store.ts).
 */
export interface IotMessageMeter {
  /** PUBLISH received from device clients. */
  inbound: number;
  /** Back-end publishes (AWS: iot-data Publish, an HTTP request metered on its body). */
  backend: number;
  /** PUBLISH sent by the broker to subscribed clients. */
  outbound: number;
  /** PUBACK received from clients (QoS 1 deliveries). */
  pubacks: number;
  /** CONNECT and SUBSCRIBE: per session, not per purchase. */
  sessions: number;
  /** Everything above: the messages AWS IoT Core would bill. */
  total: number;
  /** The same total by the topic's kind (`request`, `offer`, `obligation`, `reply`, …, `reply-puback`; `connect`, `subscribe`). */
  byKind: Record<string, number>;
  /** Basic Ingest PUBLISHes routed to a rule, in 5 KB units like a message: NOT in `total` (not billed as messaging). */
  ingest: number;
  /** `ingest` by the kind of the topic the rule saw. */
  ingestByKind: Record<string, number>;
}

/** IoT Core's metering unit: 5 KB. */
export const IOT_MESSAGE_BYTES = 5 * 1024;

/** Messages metered for `bytes` (at least one: an empty payload is still a message). */
export const meteredMessages = (bytes: number): number => Math.max(1, Math.ceil(bytes / IOT_MESSAGE_BYTES));

/** The running broker. As a Notifier it is what handlers use locally to push to devices. */
export interface LocalBroker extends Notifier {
  /** `mqtt://127.0.0.1:{port}` */
  readonly url: string;
  readonly port: number;
  readonly stats: Readonly<BrokerStats>;
  /** What AWS IoT Core would bill for messaging since the broker started (see IotMessageMeter). */
  readonly meter: Readonly<IotMessageMeter>;
  /** Every rule failure that reached the error action, oldest first. */
  readonly ruleErrors: readonly RuleFailure[];
  /** Emits `refused` (kind: RefusalKind, clientId: string, detail: string) and `ruleFailed` (RuleFailure). */
  readonly events: EventEmitter;
  addRule(rule: TopicRule): void;
  /**
   * Publish as the back-end (AWS: iot-data Publish). A string is sent as is, anything else
   * JSON-encoded. Resolves once the broker has routed it. Default QoS 1.
   */
  publish(topic: string, payload: Json | object, qos?: 0 | 1): Promise<void>;
  /** Resolves when every rule invocation under way (retries included) has finished. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export interface BrokerOptions {
  /** 0 or absent: a free port. */
  port?: number;
  things: ThingRegistry;
  /** Credentials of the privileged back-end client (may publish/subscribe anywhere). */
  backend: { username: string; password: string };
  /** Accepted clock skew of connect tokens. Default 5 min. */
  tokenSkewMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /** Where broker-internal errors go. Default console.error. */
  log?: (message: string, error: unknown) => void;
  /** The stage's topic root things are confined under (service/topics.ts). Default `oc`. */
  topicRoot?: string;
}

/** Topic the default error action publishes to. */
export const ERRORS_TOPIC = 'oc/$errors';

/** AWS IoT thing names: [a-zA-Z0-9:_-]+, at most 128 characters. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

// CONNACK return codes (MQTT 3.1.1 §3.2.2.3). aedes declares them as a const enum, unusable with isolatedModules.
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Who a connected client is. */
type Identity = { kind: 'backend' } | { kind: 'thing'; thing: string; domain: string };

function connectRefused(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new ForbiddenError(message), { returnCode }) as unknown as AuthenticateError;
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** Split off what the AWS SDK appends to the username (`?SDK=...&Platform=...`). */
function baseUsername(username: string | undefined): string | undefined {
  if (username === undefined) return undefined;
  const q = username.indexOf('?');
  return q < 0 ? username : username.slice(0, q);
}

/** Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Parse a rule payload the way `SELECT *` needs it: a JSON object. */
function parsePayload(payload: Buffer | string): Record<string, unknown> {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedError('payload is not a JSON object');
  }
  return value as Record<string, unknown>;
}

/** Start the embedded IoT Core broker on 127.0.0.1. */
export async function startBroker(opts: BrokerOptions): Promise<LocalBroker> {
  const now = opts.now ?? Date.now;
  const root = opts.topicRoot ?? DEFAULT_TOPIC_ROOT;
  const skewMs = opts.tokenSkewMs ?? TOKEN_SKEW_MS;
  const identities = new WeakMap<Client, Identity>();
  const stats: BrokerStats = {
    connected: 0,
    refusedConnect: 0,
    refusedPublish: 0,
    refusedSubscribe: 0,
    ruleInvocations: 0,
    ruleRetries: 0,
    ruleFailures: 0,
  };
  const meter: IotMessageMeter = { inbound: 0, backend: 0, outbound: 0, pubacks: 0, sessions: 0, total: 0, byKind: {}, ingest: 0, ingestByKind: {} };
  const count = (field: 'inbound' | 'backend' | 'outbound' | 'pubacks' | 'sessions', kind: string, n: number): void => {
    meter[field] += n;
    meter.total += n;
    meter.byKind[kind] = (meter.byKind[kind] ?? 0) + n;
  };
  const size = (p: Buffer | string): number => (typeof p === 'string' ? Buffer.byteLength(p) : p.length);
  // oc/{domain}/{thing}/{in|out}/{kind}[/…] → kind; other topics: their last segment
  const kindOf = (topic: string): string => {
    const parts = topic.split('/');
    return (parts[0] === root && parts.length > 4 ? parts[4] : parts[parts.length - 1]) ?? topic;
  };
  const ruleErrors: RuleFailure[] = [];
  /** The rules by name: what a Basic Ingest topic names. */
  const rules = new Map<string, TopicRule>();
  const events = new EventEmitter();
  const inflight = new Set<Promise<void>>();
  let stopping = false;

  const refuse = (kind: RefusalKind, clientId: string, detail: string): void => {
    if (kind === 'connect') stats.refusedConnect++;
    else if (kind === 'publish') stats.refusedPublish++;
    else stats.refusedSubscribe++;
    events.emit('refused', kind, clientId, detail);
  };

  const aedes = await Aedes.createBroker({
    authenticate(client, rawUsername, password, done) {
      const username = baseUsername(rawUsername);
      const secret = password?.toString('utf8') ?? '';
      if (username === opts.backend.username && sameSecret(secret, opts.backend.password)) {
        identities.set(client, { kind: 'backend' });
        return done(null, true);
      }
      if (username === undefined || !THING_NAME.test(username)) {
        refuse('connect', client.id, 'missing or invalid username');
        return done(connectRefused(BAD_USERNAME_OR_PASSWORD, 'missing or invalid username'), false);
      }
      const rec = opts.things.get(username);
      if (!rec) {
        refuse('connect', client.id, `unknown thing ${username}`);
        return done(connectRefused(NOT_AUTHORIZED, 'unknown thing'), false);
      }
      // iot:Connect is allowed only on client/${iot:Connection.Thing.ThingName}.
      if (client.id !== username) {
        refuse('connect', client.id, `client id ${client.id} is not the thing name ${username}`);
        return done(connectRefused(NOT_AUTHORIZED, 'client id must equal the thing name'), false);
      }
      if (!verifyConnectPassword(username, secret, rec.key, now(), skewMs)) {
        refuse('connect', client.id, 'bad connect token');
        return done(connectRefused(BAD_USERNAME_OR_PASSWORD, 'bad connect token'), false);
      }
      identities.set(client, { kind: 'thing', thing: username, domain: rec.domain });
      return done(null, true);
    },

    authorizePublish(client, packet, done) {
      if (client === null) return done(null); // broker-internal (e.g. wills are re-checked with the client)
      const who = identities.get(client);
      const ingest = parseBasicIngest(packet.topic);
      if (ingest === undefined) {
        // a plain topic: the back-end only; a thing's policy has no plain publish grant (it uses Basic Ingest only)
        if (who?.kind === 'backend') return done(null);
      } else {
        // Basic Ingest, to a rule that exists (the IoT policy names the stage's rules, nothing else). A thing:
        // iot:Publish on `$aws/rules/{rule}/{root}/{its domain}/{its name}/out/{the rule's kind}` only
        // (lib/constructs/device-policy.ts): its own prefix, and the rest as the rule's filter takes it.
        const rule = rules.get(ingest.rule);
        const own = who?.kind === 'thing' ? `${root}/${who.domain}/${who.thing}/out/` : undefined;
        const allowed = who?.kind === 'backend' || (own !== undefined && ingest.topic.startsWith(own) && topicMatches(rule?.topicFilter ?? '', ingest.topic));
        if (rule !== undefined && allowed) {
          // routed here, before the PUBACK, as IoT Core hands it to the rules engine; aedes then
          // publishes it to no one (no subscription can match it: authorizeSubscribe, authorizeForward)
          routeIngest(rule, ingest.topic, packet.payload);
          return done(null);
        }
      }
      refuse('publish', client.id, packet.topic);
      // An error makes aedes drop the client, as IoT Core disconnects on a policy violation.
      return done(new ForbiddenError(`publish to ${packet.topic} not allowed`));
    },

    authorizeSubscribe(client, sub, done) {
      const who = identities.get(client);
      // "Your devices and rules can't subscribe to Basic Ingest reserved topics" (iot-basic-ingest.html)
      if (sub.topic.startsWith(BASIC_INGEST_PREFIX)) {
        refuse('subscribe', client.id, sub.topic);
        return done(null, null);
      }
      if (who?.kind === 'backend') return done(null, sub);
      const prefix = who ? `${root}/${who.domain}/${who.thing}/in/` : undefined;
      // The filter must stay inside the prefix: the prefix is literal, so wildcards can only follow it.
      if (prefix !== undefined && sub.topic.startsWith(prefix) && sub.topic.length > prefix.length) {
        return done(null, sub);
      }
      // and exactly one filter outside it: the accepted replies that grant this (provider) thing a service
      if (who?.kind === 'thing' && sub.topic === `${root}/+/+/in/reply/${who.domain}/${who.thing}`) return done(null, sub);
      refuse('subscribe', client.id, sub.topic);
      return done(null, null); // SUBACK 0x80 for this filter
    },

    // Called for every PUBLISH the broker sends a client (rules are internal subscriptions: not here).
    authorizeForward(_client, packet) {
      // Basic Ingest bypasses the publish/subscribe broker: no client ever receives it (e.g. through `$aws/#`)
      if (packet.topic.startsWith(BASIC_INGEST_PREFIX)) return undefined;
      count('outbound', kindOf(packet.topic), meteredMessages(Buffer.byteLength(packet.topic) + size(packet.payload)));
      return packet;
    },
  });

  const log = opts.log ?? ((msg: string, error: unknown) => console.error(msg, error));
  // aedes emits 'error' for internal failures (e.g. will processing); unhandled, it would crash the process.
  (aedes as EventEmitter).on('error', (error: unknown) => log('broker error', error));
  aedes.on('clientReady', () => {
    stats.connected++;
  });
  aedes.on('clientDisconnect', () => {
    stats.connected--;
  });
  aedes.on('publish', (packet, client) => {
    if (packet.topic.startsWith('$SYS/')) return; // the broker's own heartbeat: no IoT Core counterpart
    if (packet.topic.startsWith(BASIC_INGEST_PREFIX)) return; // not billed as messaging: counted in routeIngest
    const kind = kindOf(packet.topic);
    if (client === null) count('backend', kind, meteredMessages(size(packet.payload)));
    else count('inbound', kind, meteredMessages(Buffer.byteLength(packet.topic) + size(packet.payload)));
  });
  // 'ack': a client's PUBACK for a QoS 1 PUBLISH the broker sent it (the original packet, when still known)
  aedes.on('ack', (packet) => {
    const topic = (packet as { topic?: string } | undefined)?.topic;
    count('pubacks', `${topic === undefined ? '' : kindOf(topic)}-puback`, 1);
  });
  aedes.on('clientReady', () => count('sessions', 'connect', 1));
  aedes.on('subscribe', (subs) => {
    for (const sub of subs) count('sessions', 'subscribe', meteredMessages(Buffer.byteLength(sub.topic)));
  });

  const sockets = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    // Feasibility 2b: without TCP_NODELAY, QoS1 request/response on one aws-crt connection stalls on Nagle.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  const port = await listenLoopback(server, opts.port, 'broker');

  const publish = (topic: string, payload: Json | object, qos: 0 | 1 = 1): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(body, 'utf8'), qos, retain: false, dup: false };
      aedes.publish(packet, (err) => (err ? reject(err) : resolve()));
    });

  const fail = async (rule: TopicRule, failure: RuleFailure): Promise<void> => {
    stats.ruleFailures++;
    ruleErrors.push(failure);
    events.emit('ruleFailed', failure);
    try {
      if (rule.onError) await rule.onError(failure);
      else if (!aedes.closed) await publish(ERRORS_TOPIC, { rule: failure.rule, error: failure.error, topic: failure.topic }, 0);
    } catch {
      // An error action that fails is dropped, as IoT Core does.
    }
  };

  /** Run `rule` on a message whose topic, as the rule's SQL sees it (`topic()`), is `topic`. */
  const runRule = async (rule: TopicRule, topic: string, payload: Buffer | string): Promise<void> => {
    const segments = topic.split('/');
    let event: RuleEvent;
    try {
      // Fields selected by the rule's SQL win over payload fields of the same name.
      event = { ...parsePayload(payload), domain: segments[1] ?? '', thing: segments[2] ?? '', topic };
    } catch (error) {
      return fail(rule, { rule: rule.name, topic, error: `unparsable payload: ${errorMessage(error)}`, attempts: 0, at: now() });
    }
    stats.ruleInvocations++;
    const outcome = await invokeAsync(rule.handler, event, {
      retries: rule.retries ?? 2,
      backoffMs: rule.backoffMs ?? [50, 100],
      functionName: rule.name,
      onAttemptFailed: (_error, attempt) => {
        if (attempt <= (rule.retries ?? 2)) stats.ruleRetries++;
      },
    });
    if (!outcome.ok) {
      await fail(rule, { rule: rule.name, topic, error: errorMessage(outcome.error), attempts: outcome.attempts, at: now() });
    }
  };

  const dispatch = (rule: TopicRule, topic: string, payload: Buffer | string): void => {
    if (stopping && aedes.closed) return;
    const run = runRule(rule, topic, payload).finally(() => inflight.delete(run));
    inflight.add(run);
  };

  // A Basic Ingest publish (authorised in authorizePublish): to the named rule only, on the topic
  // without the `$aws/rules/{rule}` prefix ("isn't available to the topic(Decimal) function"). The
  // rule's FROM filter is not what selects it (service/topics.ts); a thing's topic was checked against it.
  function routeIngest(rule: TopicRule, topic: string, payload: Buffer | string): void {
    const n = meteredMessages(Buffer.byteLength(topic) + size(payload));
    meter.ingest += n;
    const kind = kindOf(topic);
    meter.ingestByKind[kind] = (meter.ingestByKind[kind] ?? 0) + n;
    dispatch(rule, topic, payload);
  }

  const settled = async (): Promise<void> => {
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
  };

  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stats,
    meter,
    ruleErrors,
    events,
    addRule(rule) {
      if (!RULE_NAME.test(rule.name)) throw new MalformedError(`rule name ${rule.name}: letters, digits and '_' only, at most 128`);
      if (rules.has(rule.name)) throw new MalformedError(`a rule named ${rule.name} exists`);
      rules.set(rule.name, rule);
      // A plain publish matching the filter (the back-end's; things may only use Basic Ingest).
      // The deliver callback is called at once: an IoT rule's Lambda action is an asynchronous invoke.
      aedes.subscribe(
        rule.topicFilter,
        (packet, cb) => {
          cb();
          dispatch(rule, packet.topic, packet.payload);
        },
        () => {},
      );
    },
    publish,
    settled,
    async stop() {
      if (stopping) return;
      stopping = true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await settled();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await serverClosed;
    },
  };
}
