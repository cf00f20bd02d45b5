/**
 * AWS IoT Core messages per purchase, MEASURED at the embedded broker
 * (local/broker.ts: IotMessageMeter) while real SDK devices buy on the
 * embedded cloud: every PUBLISH a device sends, every back-end publish (AWS:
 * iot-data Publish), every PUBLISH delivered to a subscriber, each in 5 KB
 * units of topic + payload, and every PUBACK a device sends for a QoS 1
 * delivery — what IoT Core's pricing page says it meters
 * (https://aws.amazon.com/iot-core/pricing/additional-details/). Connects and
 * subscriptions happen before the measured purchases and are not in the count.
 * Devices send their request and obligation by Basic Ingest ($aws/rules/<rule>/…),
 * which AWS does not bill as messaging
 * (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html): those
 * are counted apart (meter.ingest), as rule-triggering ingests; the rules and actions they
 * trigger are billed as rules (the cost row of bench/store.ts counts them).
 *
 * Two rows: a device that asks for an offer before every purchase, and one that
 * holds a standing offer (service/offers.ts) and asks again only when it ends.
 * `npm run bench -- iot` runs this suite alone.
 */
import { generateKeyPair } from '../core/keys.ts';
import type { DeviceCredential, Signed } from '../core/types.ts';
import { createLink } from '../devices/link.ts';
import { ConsumerDevice } from '../devices/scd.ts';
import { ProviderDevice } from '../devices/spd.ts';
import { startCloud, type LocalCloud } from '../local/cloud.ts';
import type { IotMessageMeter } from '../local/broker.ts';
import type { BenchRow } from './types.ts';
import { provider } from './system.ts';

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export interface IotCount {
  /** Billed messages per accepted purchase. */
  perPurchase: number;
  /** Per topic kind, per purchase. */
  byKind: Record<string, number>;
  /** Basic Ingest publishes per purchase (5 KB units; not billed as messaging, each triggers a rule). */
  ingestPerPurchase: number;
  /** The same per kind. */
  ingestByKind: Record<string, number>;
  purchases: number;
}

/** Measure `purchases` sequential purchases of one device on a fresh embedded cloud. */
export async function measureIotMessages(opts: { standing: boolean; purchases?: number; standingPurchases?: number }): Promise<IotCount> {
  const purchases = opts.purchases ?? 100;
  const cloud: LocalCloud = await startCloud({
    schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
    env: {
      CREDIT_BASE: '1000000000000',
      CREDIT_CAP: '1000000000000',
      ...(opts.standingPurchases ? { STANDING_OFFER_PURCHASES: String(opts.standingPurchases) } : {}),
    },
  });
  let spd: ProviderDevice | undefined;
  let scd: ConsumerDevice | undefined;
  try {
    await cloud.call('POST', '/domains', { domain: 'ic', role: 'consumer' });
    await cloud.call('POST', '/domains', { domain: 'ip', role: 'provider', threshold: 0.4 });
    const started = await provider(cloud, 'ip', 'ip-spd-1');
    spd = started.spd;
    const providerKey = started.providerKey;
    const keys = generateKeyPair();
    const { body } = await cloud.call<{ credential: Signed<DeviceCredential> }>('POST', '/domains/ic/devices', {
      deviceId: 'ic-scd-1',
      deviceKey: keys.publicKey,
      creditLimit: 1_000_000,
    });
    cloud.registerThing('ic-scd-1', 'ic', keys.publicKey);
    scd = new ConsumerDevice({
      domain: 'ic',
      deviceId: 'ic-scd-1',
      privateKey: keys.privateKey,
      credential: body.credential,
      link: createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: 'ic-scd-1', privateKey: keys.privateKey }),
      providerKey: async () => providerKey,
      payWindowMs: 3_600_000,
      timeoutMs: 10_000,
      standingOffers: opts.standing,
    });
    await scd.start();
    const grants = new Set<string>();
    spd.onGrant((g) => grants.add(g.obligationId));
    const before = snapshot(cloud.broker.meter);
    for (let i = 0; i < purchases; i++) {
      const r = await scd.buy('ip', 'ip-spd-1', 'wifi-access');
      if (!r.ok) throw new Error(`refused during the IoT bench: ${r.error.code} ${r.error.message}`);
    }
    // the provider device's copy (and its PUBACK) may arrive after the consumer's: wait for every grant
    for (let i = 0; i < 500 && grants.size < purchases; i++) await new Promise((r) => setTimeout(r, 10));
    if (grants.size < purchases) throw new Error(`${grants.size} of ${purchases} grants reached the provider device`);
    await new Promise((r) => setTimeout(r, 50));
    await cloud.broker.settled();
    const after = snapshot(cloud.broker.meter);
    return {
      perPurchase: (after.total - before.total) / purchases,
      byKind: perKind(after.byKind, before.byKind, purchases),
      ingestPerPurchase: (after.ingest - before.ingest) / purchases,
      ingestByKind: perKind(after.ingestByKind, before.ingestByKind, purchases),
      purchases,
    };
  } finally {
    await scd?.close();
    await spd?.close();
    await cloud.stop();
  }
}

function snapshot(m: Readonly<IotMessageMeter>): { total: number; byKind: Record<string, number>; ingest: number; ingestByKind: Record<string, number> } {
  return { total: m.total, byKind: { ...m.byKind }, ingest: m.ingest, ingestByKind: { ...m.ingestByKind } };
}

/** (after − before) / n per key, rounded; keys that did not change are left out. */
function perKind(after: Record<string, number>, before: Record<string, number>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = round(d / n, 3);
  }
  return out;
}

const list = (byKind: Record<string, number>) =>
  Object.entries(byKind)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
const breakdown = (c: IotCount) =>
  `${list(c.byKind)}; not billed: ${round(c.ingestPerPurchase, 3)} Basic Ingest publishes (${list(c.ingestByKind)}), each one rule + one action`;

export async function benchIot(opts: { purchases?: number } = {}): Promise<BenchRow[]> {
  const purchases = opts.purchases ?? 100;
  const single = await measureIotMessages({ standing: false, purchases });
  const standing = await measureIotMessages({ standing: true, purchases });
  return [
    {
      name: `IoT Core billed messages per purchase, an offer per purchase (MEASURED at the embedded broker, ${purchases} purchases; ${breakdown(single)})`,
      value: round(single.perPurchase),
      unit: 'messages (5 KB units)',
    },
    {
      name: `IoT Core billed messages per purchase, standing offer (MEASURED at the embedded broker, ${purchases} purchases; ${breakdown(standing)})`,
      value: round(standing.perPurchase),
      unit: 'messages (5 KB units)',
      ratio: round(standing.perPurchase / single.perPurchase),
      target: 'ratio to an offer per purchase; AWS meters device and service PUBLISH, back-end HTTP publish and device PUBACK, 5 KB each; Basic Ingest ($aws/rules/…) is not billed as messaging',
    },
  ];
}
