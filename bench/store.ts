/**
 * Store benchmarks on DynamoDB Local (the full-fidelity stand-in, with real
 * transactions and consumed-capacity accounting), through the embedded cloud
 * and real SDK devices over MQTT (watch, settle and publication off: they are
 * measured by other rows):
 * - DynamoDB write and read units per accepted obligation, summed from the
 *   ConsumedCapacity that DynamoDB Local returns when every request carries
 *   ReturnConsumedCapacity: INDEXES (set by an SDK middleware on the store's client);
 * - sequential store round trips per acceptance (the same middleware counts
 *   "waves": a request that starts while no other store request is in flight);
 * - accepted obligations/s for ONE consumer domain with 32 devices, and the
 *   bound checked exactly afterwards (outstanding = Σ accepted ≤ limit);
 * - cost per million accepted obligations, COMPUTED from the measured units,
 *   Lambda invocations and IoT Core messages (counted at the embedded broker as
 *   IoT Core meters them, local/broker.ts) plus list prices (stated in the row).
 * Skipped (no rows) when java or DynamoDBLocal.jar is missing.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoStore } from '../adapters/store/dynamo.ts';
import { createStateTable, localDynamoClient } from '../local/dynamo.ts';
import { generateKeyPair } from '../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../core/types.ts';
import { createLink } from '../devices/link.ts';
import { ConsumerDevice } from '../devices/scd.ts';
import { ProviderDevice } from '../devices/spd.ts';
import { startCloud, type LocalCloud } from '../local/cloud.ts';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import type { BenchRow } from './types.ts';

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** List prices, us-east-1, used by the computed cost row (see the row's unit for the sources). */
export const PRICES = {
  /** DynamoDB on-demand, per write / read request unit (after the Nov 2024 cut: $0.625 / $0.125 per million). */
  wru: 0.625e-6,
  rru: 0.125e-6,
  /** AWS IoT Core messaging, per message (5 KB metering unit), first billion a month: $1.00 per million. */
  iotMessage: 1.0e-6,
  /** AWS IoT rules engine: $0.15 per million rules triggered plus $0.15 per million actions. */
  iotRule: 0.3e-6,
  /** AWS Lambda x86: $0.20 per million requests, $0.0000166667 per GB-s. */
  lambdaRequest: 0.2e-6,
  lambdaGbS: 0.0000166667,
};

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'TransactGetItemsCommand', 'QueryCommand', 'ScanCommand']);
const CAPACITY = new Set([...READS, 'PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);

interface Capacity {
  CapacityUnits?: number;
  Table?: { CapacityUnits?: number };
}

type Phase = 'offer' | 'accept';

/**
 * Sums consumed capacity and counts sequential waves on a DynamoDB client, per
 * phase of a purchase: a GetItem of the provider device (DEVICE#…) starts the
 * offer phase (service/offers.ts), the acceptance's BatchGetItem starts the
 * accept phase (service/accept.ts); a wave (a request started while no other is
 * in flight) and its units count for the phase it started in.
 */
export class StoreMeter {
  readonly units = { offer: { rcu: 0, wcu: 0 }, accept: { rcu: 0, wcu: 0 } };
  readonly waves = { offer: 0, accept: 0 };
  /** Table units of TransactWriteItems as DynamoDB Local reports them (1 per KB per item; DynamoDB bills 2). */
  txTableUnits = 0;
  private phase: Phase = 'accept';
  private inFlight = 0;

  constructor(doc: DynamoDBDocumentClient) {
    doc.middlewareStack.add(
      (next, context) => async (args) => {
        const op = String((context as { commandName?: string }).commandName ?? '');
        const input = args.input as Record<string, unknown>;
        const key = (input.Key ?? input.Item) as { pk?: string | { S?: string } } | undefined;
        const pk = String(typeof key?.pk === 'object' ? key.pk.S : (key?.pk ?? ''));
        if (op === 'GetItemCommand' && pk.startsWith('DEVICE#')) this.phase = 'offer';
        if (op === 'BatchGetItemCommand' && JSON.stringify(input).includes('"CREDIT#')) this.phase = 'accept';
        const phase = this.phase;
        if (CAPACITY.has(op)) input.ReturnConsumedCapacity = 'INDEXES';
        if (this.inFlight === 0) this.waves[phase] += 1;
        this.inFlight += 1;
        try {
          const out = await next(args);
          const cc = (out.output as { ConsumedCapacity?: Capacity | Capacity[] }).ConsumedCapacity;
          const units = (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce((t, c) => t + (c.CapacityUnits ?? 0), 0);
          if (op === 'TransactWriteItemsCommand') {
            this.txTableUnits += (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce((t, c) => t + (c.Table?.CapacityUnits ?? 0), 0);
          }
          if (READS.has(op)) this.units[phase].rcu += units;
          else this.units[phase].wcu += units;
          return out;
        } finally {
          this.inFlight -= 1;
        }
      },
      { step: 'initialize', name: 'ocStoreMeter' },
    );
  }

  reset(): void {
    for (const p of ['offer', 'accept'] as const) {
      this.units[p] = { rcu: 0, wcu: 0 };
      this.waves[p] = 0;
    }
    this.txTableUnits = 0;
  }
}


/**
 * The store alone (no MQTT, no signing): `workers` concurrent acceptances for ONE
 * consumer domain, each as service/accept.ts does it (offer put, batched read,
 * transaction; rebalance and retry when its shard is short), for `seconds`.
 * Returns accepted/s and whether outstanding = Σ accepted exactly.
 */
async function storeOnly(endpoint: string, shards: number, workers: number, seconds: number): Promise<{ rate: number; exact: boolean; conflicts: number }> {
  const client = localDynamoClient(endpoint);
  const table = `oc-bench-${randomBytes(4).toString('hex')}`;
  await createStateTable(client, table);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  let conflicts = 0;
  doc.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (e) {
        if ((e as { CancellationReasons?: { Code?: string }[] }).CancellationReasons?.some((r) => r.Code === 'TransactionConflict')) conflicts += 1;
        throw e;
      }
    },
    { step: 'initialize', name: 'ocConflicts' },
  );
  const store = new DynamoStore(doc, table, 5_000, { shards });
  const domain = 'one';
  const limitFn = () => 1e12;
  const now = Date.now();
  await store.rebalance(domain, { limit: limitFn, now });
  let accepted = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let seq = 1; performance.now() < until; seq++) {
        const id = randomBytes(16).toString('hex');
        const offerId = randomBytes(16).toString('hex');
        const device = `dev-${w}`;
        await store.putOffer({ body: { version: 1, offerId, providerDomain: 'p', providerDevice: 'p-1', service: 's', price: 2_000, payTo: 'R', consumer: `${domain}/${device}`, expiresAt: now + 600_000 }, sig: 's', by: 'p' });
        const shard = Math.floor(Math.random() * shards);
        const read = await store.readForAcceptance({ obligationId: id, offerId, consumerDomain: domain, consumerDevice: device, shard });
        if (read.shard.free < 2_000 || read.shard.until < now) await store.rebalance(domain, { limit: limitFn, now, prefer: shard, need: 2_000 });
        const item = { id, status: 'accepted' as const, accepted: { obligation: { id }, acceptance: {} } as never, consumerDomain: domain, consumerDevice: device, providerDomain: 'p', amount: 2_000, payTo: 'R', acceptedAt: now, dueBy: now + 60_000, shard };
        const out = await store.commitAcceptance(item, { seq, prev: read.head?.id ?? 'genesis' }, offerId, now);
        if (out === 'accepted') accepted += 1;
      }
    }),
  );
  const rate = accepted / ((performance.now() - t0) / 1000);
  const c = await store.getCounters(domain);
  store.close();
  return { rate, exact: c.outstanding === accepted * 2_000, conflicts };
}

async function consumer(cloud: LocalCloud, domain: string, id: string, providerKey: PublicKeyRef): Promise<ConsumerDevice> {
  const keys = generateKeyPair();
  const { body } = await cloud.call<{ credential: Signed<DeviceCredential> }>('POST', `/domains/${domain}/devices`, {
    deviceId: id,
    deviceKey: keys.publicKey,
    creditLimit: 1_000_000,
  });
  cloud.registerThing(id, domain, keys.publicKey);
  const scd = new ConsumerDevice({
    domain,
    deviceId: id,
    privateKey: keys.privateKey,
    credential: body.credential,
    link: createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: id, privateKey: keys.privateKey }),
    providerKey: async () => providerKey,
    payWindowMs: 3_600_000,
    timeoutMs: 10_000,
  });
  await scd.start();
  return scd;
}

export async function benchStore(opts: { devices?: number; seconds?: number; sequential?: number } = {}): Promise<BenchRow[]> {
  const devicesN = opts.devices ?? 32;
  const seconds = opts.seconds ?? 10;
  const sequential = opts.sequential ?? 100;
  const ddb = await startDynamoDbLocal({ readyTimeoutMs: 120_000 });
  if (!ddb) {
    process.stderr.write('store bench skipped: java or DynamoDBLocal.jar missing\n');
    return [];
  }
  const limit = 2_000_000_000;
  let cloud: LocalCloud | undefined;
  const devices: ConsumerDevice[] = [];
  let spd: ProviderDevice | undefined;
  try {
    cloud = await startCloud({
      dynamoEndpoint: ddb.endpoint,
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: { CREDIT_BASE: String(limit), CREDIT_CAP: String(limit) },
    });
    const meter = new StoreMeter(cloud.deps.store.doc);
    await cloud.call('POST', '/domains', { domain: 'sc', role: 'consumer' });
    await cloud.call('POST', '/domains', { domain: 'sp', role: 'provider', threshold: 0.4 });
    const providerKey = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/sp')).body.record.body.key;
    const spdKeys = generateKeyPair();
    await cloud.call('POST', '/domains/sp/devices', { deviceId: 'sp-spd-1', deviceKey: spdKeys.publicKey, creditLimit: 0 });
    cloud.registerThing('sp-spd-1', 'sp', spdKeys.publicKey);
    spd = new ProviderDevice('sp', 'sp-spd-1', createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: 'sp-spd-1', privateKey: spdKeys.privateKey }));
    await spd.start();
    for (let i = 1; i <= devicesN; i++) devices.push(await consumer(cloud, 'sc', `sc-scd-${i}`, providerKey));
    const first = devices[0];
    if (!first) throw new Error('no device');

    // 1. units and round trips: one device buying sequentially (offer + accept per purchase)
    for (let i = 0; i < 10; i++) await first.buy('sp', 'sp-spd-1', 'wifi-access'); // warm-up: caches, first rebalance
    const rulesBefore = cloud.broker.stats.ruleInvocations;
    const iotBefore = cloud.broker.meter.total; // IoT Core billed messages, counted at the broker (bench/iot.ts)
    meter.reset();
    let accepted = 0;
    for (let i = 0; i < sequential; i++) {
      const r = await first.buy('sp', 'sp-spd-1', 'wifi-access');
      if (!r.ok) throw new Error(`refused: ${r.error.code} ${r.error.message}`);
      accepted += 1;
    }
    const rulesPerPurchase = (cloud.broker.stats.ruleInvocations - rulesBefore) / sequential;
    const iotMessages = (cloud.broker.meter.total - iotBefore) / sequential;
    const wcu = (meter.units.offer.wcu + meter.units.accept.wcu) / accepted;
    const rcu = (meter.units.offer.rcu + meter.units.accept.rcu) / accepted;
    // DynamoDB bills a transactional write 2 units per KB per item (developer guide, "Capacity management for
    // transactions"); DynamoDB Local reports 1 for the table part, so that part is counted twice here
    const billedWcu = wcu + meter.txTableUnits / accepted;
    const acceptWaves = meter.waves.accept;
    const offerWaves = meter.waves.offer;
    const split = `offer ${round(meter.units.offer.wcu / accepted)} + accept ${round(meter.units.accept.wcu / accepted)} WCU; offer ${round(meter.units.offer.rcu / accepted)} + accept ${round(meter.units.accept.rcu / accepted)} RCU`;

    // 2. one consumer domain, all devices at once
    let n = 0;
    let refused = 0;
    const until = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      devices.map(async (d) => {
        while (performance.now() < until) {
          const r = await d.buy('sp', 'sp-spd-1', 'wifi-access');
          if (r.ok) n += 1;
          else refused += 1;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const c = await cloud.deps.store.getCounters('sc');
    const totalAccepted = 10 + sequential + n;
    const exact = c.outstanding === totalAccepted * 2_000 && c.outstanding <= limit;

    // 3. the store alone, one consumer domain, 32 concurrent acceptances: escrow shards vs one credit item
    const sharded = await storeOnly(ddb.endpoint, 8, devicesN, seconds);
    const single = await storeOnly(ddb.endpoint, 1, devicesN, seconds);

    const lambdaGbS = rulesPerPurchase * 0.25 * 0.05; // assumed: 256 MB, 50 ms per handler invocation
    const perMillion =
      1e6 *
      (billedWcu * PRICES.wru + rcu * PRICES.rru + iotMessages * PRICES.iotMessage + rulesPerPurchase * PRICES.iotRule + rulesPerPurchase * PRICES.lambdaRequest + lambdaGbS * PRICES.lambdaGbS);
    return [
      { name: `dynamodb write units per accepted obligation (offer + accept, DynamoDB Local, measured; ${split})`, value: round(wcu), unit: 'WCU', target: '≤ 12', ok: wcu <= 12 },
      {
        name: 'dynamodb write units per accepted obligation as DynamoDB bills transactions (COMPUTED: DynamoDB Local units + its TransactWriteItems table units again)',
        value: round(billedWcu),
        unit: 'WCU',
        target: '≤ 12',
        ok: billedWcu <= 12,
      },
      { name: 'dynamodb read units per accepted obligation (offer + accept, DynamoDB Local, measured)', value: round(rcu), unit: 'RCU', target: '≤ 6', ok: rcu <= 6 },
      { name: 'sequential store round trips per acceptance (SDK middleware)', value: round(acceptWaves / accepted), unit: 'round trips', target: '≤ 2', ok: acceptWaves / accepted <= 2 },
      { name: 'sequential store round trips per offer (SDK middleware)', value: round(offerWaves / accepted), unit: 'round trips' },
      {
        name: `accepted obligations/s for ONE consumer domain (${devicesN} devices, MQTT, DynamoDB Local, ${seconds} s; bound exact: ${exact ? 'yes' : 'NO'})`,
        value: round(n / elapsed, 1),
        unit: 'obligations/s',
        target: `≥ 1,000${refused ? `; ${refused} refused` : ''}`,
        ok: n / elapsed >= 1_000 && exact,
      },
      {
        name: `store-only accepted obligations/s for ONE consumer domain (${devicesN} concurrent, 8 escrow shards, DynamoDB Local, ${seconds} s; ${sharded.conflicts} transaction conflicts retried; bound exact: ${sharded.exact ? 'yes' : 'NO'})`,
        value: round(sharded.rate, 1),
        unit: 'obligations/s',
        ratio: round(single.rate / Math.max(sharded.rate, 1e-9), 2),
        target: `ratio: time per acceptance vs 1 shard (${round(single.rate, 1)}/s, ${single.conflicts} conflicts); ≥ 1,000/s`,
        ok: sharded.rate >= 1_000 && sharded.exact,
      },
      {
        name: `cost per million accepted obligations (COMPUTED: ${round(billedWcu)} WCU as billed, ${round(rcu)} RCU, ${round(rulesPerPurchase)} Lambda invocations; ${round(iotMessages)} IoT messages per purchase measured at the broker; Lambda 256 MB × 50 ms assumed)`,
        value: round(perMillion),
        unit: 'USD (us-east-1 list: DynamoDB on-demand $0.625/M WRU, $0.125/M RRU; IoT Core $1.00/M messages, rules $0.15/M + actions $0.15/M; Lambda $0.20/M requests, $0.0000166667/GB-s)',
        target: '≤ $15',
        ok: perMillion <= 15,
      },
    ];
  } finally {
    for (const d of devices) await d.close();
    await spd?.close();
    await cloud?.stop();
    await ddb.stop();
  }
}
