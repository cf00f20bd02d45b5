/**
 * Soak run (`npm run soak`, not part of `npm test`): real SDK devices trade on
 * the embedded cloud with every background job running, for a bounded time;
 * then everything is drained (publish / settle / mine / watch until nothing is
 * pending, or a time-out) and the three records are checked against each
 * other: every accepted obligation is stored and on the ledger exactly once,
 * each ended fulfilled or defaulted, and every consumer domain's counters
 * equal a recomputation from the ledger alone.
 *
 *   npm run soak -- [--seconds 30] [--consumers 4] [--devices 20] [--providers 2] [--defaulters 1] [--credit-base 1000000] [--out soak/results.json]   (--help for all)
 *
 * Prints a table, writes the figures as JSON, exits 1 when a check fails.
 * All traffic is on 127.0.0.1; every loop is bounded in count and time.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../core/types.ts';
import type { DeviceLink } from '../devices/link.ts';
import type { BuyResult, ConsumerDevice as ConsumerDeviceT } from '../devices/scd.ts';
import type { LocalCloud } from '../local/cloud.ts';
import { percentile } from '../local/stats.ts';
import { checkOutputFile } from '../local/data-dir.ts';
import { isMain, parse, runCli, UsageError, type CommandSpec, type Options } from '../cli/args.ts';

export interface SoakConfig {
  seconds: number;
  consumers: number;
  /** Consumer devices in all, spread over the consumer domains. */
  devices: number;
  providers: number;
  devicesPerProvider: number;
  /** Consumer domains that never settle (their obligations default). */
  defaulters: number;
  /** dueBy − issuedAt for payers and for defaulters. */
  payWindowMs: number;
  defaultWindowMs: number;
  drainTimeoutMs: number;
  /** Upper bound on purchases per device, whatever the time. */
  maxPerDevice: number;
  /** CREDIT_BASE of the back-end (sats): high by default so the run measures acceptance, not the credit line. */
  creditBase: number;
  out: string;
}

export const DEFAULT_SOAK: SoakConfig = {
  seconds: 30,
  consumers: 4,
  devices: 20,
  providers: 2,
  devicesPerProvider: 2,
  defaulters: 1,
  payWindowMs: 120_000,
  defaultWindowMs: 4_000,
  drainTimeoutMs: 90_000,
  maxPerDevice: 20_000,
  creditBase: 1_000_000,
  out: fileURLToPath(new URL('./results.json', import.meta.url)),
};

const SOAK_OPTIONS = {
  seconds: { type: 'number', min: 1, max: 86_400, default: DEFAULT_SOAK.seconds, arg: 'S', help: 'how long devices trade' },
  consumers: { type: 'int', min: 1, max: 1_000, default: DEFAULT_SOAK.consumers, arg: 'N', help: 'consumer domains' },
  devices: { type: 'int', min: 1, max: 10_000, default: DEFAULT_SOAK.devices, arg: 'N', help: 'consumer devices in all, spread over the domains' },
  providers: { type: 'int', min: 1, max: 1_000, default: DEFAULT_SOAK.providers, arg: 'N', help: 'provider domains' },
  'devices-per-provider': { type: 'int', min: 1, max: 1_000, default: DEFAULT_SOAK.devicesPerProvider, arg: 'N', help: 'devices per provider domain' },
  defaulters: { type: 'int', min: 0, max: 999, default: DEFAULT_SOAK.defaulters, arg: 'N', help: 'consumer domains that never pay (fewer than --consumers)' },
  'pay-window': { type: 'int', min: 1, max: 86_400_000, default: DEFAULT_SOAK.payWindowMs, arg: 'MS', help: "payers' dueBy − issuedAt" },
  'default-window': { type: 'int', min: 1, max: 86_400_000, default: DEFAULT_SOAK.defaultWindowMs, arg: 'MS', help: "defaulters' dueBy − issuedAt" },
  'drain-timeout': { type: 'int', min: 1, max: 86_400_000, default: DEFAULT_SOAK.drainTimeoutMs, arg: 'MS', help: 'give up draining after' },
  'max-per-device': { type: 'int', min: 1, max: 10_000_000, default: DEFAULT_SOAK.maxPerDevice, arg: 'N', help: 'purchases per device at most' },
  'credit-base': { type: 'int', min: 0, max: 2_100_000_000_000_000, default: DEFAULT_SOAK.creditBase, arg: 'SATS', help: "the back-end's CREDIT_BASE" },
  out: { type: 'string', default: DEFAULT_SOAK.out, arg: 'FILE', help: 'where the figures go (JSON)' },
} as const satisfies Options;

export const SOAK: CommandSpec<typeof SOAK_OPTIONS> = {
  name: 'npm run soak',
  usage: '[-- options]',
  summary: 'Soak run: SDK devices trade on the embedded cloud for a bounded time, then the stored, ledger and counter records are checked against each other.',
  options: SOAK_OPTIONS,
};

/** Flags over the defaults; undefined on --help. Throws UsageError on any mistake. */
export function soakConfig(argv: readonly string[]): SoakConfig | undefined {
  const { values: v, help } = parse(SOAK, argv);
  if (help) return undefined;
  if (v.defaulters >= v.consumers) throw new UsageError(`--defaulters ${v.defaulters} must be fewer than --consumers ${v.consumers}: at least one consumer domain must pay`);
  if (v.devices < v.consumers) throw new UsageError(`--devices ${v.devices} must be at least --consumers ${v.consumers} (every domain needs a device)`);
  return {
    seconds: v.seconds,
    consumers: v.consumers,
    devices: v.devices,
    providers: v.providers,
    devicesPerProvider: v['devices-per-provider'],
    defaulters: v.defaulters,
    payWindowMs: v['pay-window'],
    defaultWindowMs: v['default-window'],
    drainTimeoutMs: v['drain-timeout'],
    maxPerDevice: v['max-per-device'],
    creditBase: v['credit-base'],
    out: v.out,
  };
}

const SERVICES = ['wifi-access', 'charging', 'data-feed'];

interface Row {
  consumer: string;
  provider: string;
  result: BuyResult;
}

async function api<T>(cloud: LocalCloud, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const r = await cloud.call<T>(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function device(cloud: LocalCloud, domain: string, id: string, creditLimit: number) {
  const keys = generateKeyPair();
  const { credential } = await api<{ credential: Signed<DeviceCredential> }>(cloud, 'POST', `/domains/${domain}/devices`, {
    deviceId: id,
    deviceKey: keys.publicKey,
    creditLimit,
  });
  cloud.registerThing(id, domain, keys.publicKey);
  const { createLink } = await import('../devices/link.ts');
  const link: DeviceLink = createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: id, privateKey: keys.privateKey });
  return { keys, credential, link };
}

export async function soak(cfg: SoakConfig, log: (line: string) => void = console.log) {
  // loaded here, not at the top: `npm run soak -- --bad-flag` answers at once
  const [{ startCloud }, { ConsumerDevice }, { ProviderDevice }, { recomputeFromLedger }] = await Promise.all([
    import('../local/cloud.ts'),
    import('../devices/scd.ts'),
    import('../devices/spd.ts'),
    import('../service/reputation.ts'),
  ]);
  const cloud = await startCloud({ env: { SETTLEMENT_GRACE_MS: '30000', CREDIT_BASE: String(cfg.creditBase) } });
  const closers: (() => Promise<void>)[] = [];
  try {
    const consumers = Array.from({ length: cfg.consumers }, (_, i) => ({ domain: `sc${i + 1}`, defaulter: i >= cfg.consumers - cfg.defaulters }));
    const providers = Array.from({ length: cfg.providers }, (_, i) => `sp${i + 1}`);
    for (const p of providers) await api(cloud, 'POST', '/domains', { domain: p, role: 'provider', threshold: 0.4 });
    for (const c of consumers) {
      await api(cloud, 'POST', '/domains', { domain: c.domain, role: 'consumer', autoSettle: !c.defaulter });
      if (!c.defaulter) await cloud.fund(c.domain, 4);
    }
    const keyCache = new Map<string, PublicKeyRef>();
    const providerKey = async (d: string) => {
      const hit = keyCache.get(d);
      if (hit) return hit;
      const r = await api<{ key: PublicKeyRef }>(cloud, 'GET', `/domains/${d}`);
      keyCache.set(d, r.key);
      return r.key;
    };
    const spds: { domain: string; id: string }[] = [];
    for (const p of providers) {
      for (let k = 1; k <= cfg.devicesPerProvider; k++) {
        const id = `${p}-spd-${k}`;
        const d = await device(cloud, p, id, 0);
        const spd = new ProviderDevice(p, id, d.link);
        await spd.start();
        closers.push(() => spd.close());
        spds.push({ domain: p, id });
      }
    }
    const scds: { domain: string; scd: ConsumerDeviceT }[] = [];
    for (let i = 0; i < cfg.devices; i++) {
      const c = consumers[i % consumers.length];
      if (!c) continue;
      const id = `${c.domain}-scd-${Math.floor(i / consumers.length) + 1}`;
      const d = await device(cloud, c.domain, id, 100_000);
      const scd = new ConsumerDevice({
        domain: c.domain,
        deviceId: id,
        privateKey: d.keys.privateKey,
        credential: d.credential,
        link: d.link,
        providerKey,
        payWindowMs: c.defaulter ? cfg.defaultWindowMs : cfg.payWindowMs,
      });
      await scd.start();
      closers.push(() => scd.close());
      scds.push({ domain: c.domain, scd });
    }
    log(`soak: ${scds.length} consumer devices in ${consumers.length} domains (${cfg.defaulters} never pay), ${spds.length} provider devices in ${providers.length} domains, ${cfg.seconds} s`);

    // ---- load ---------------------------------------------------------------
    const rows: Row[] = [];
    const started = Date.now();
    const end = started + cfg.seconds * 1000;
    await Promise.all(
      scds.map(async ({ domain, scd }, i) => {
        for (let n = 0; n < cfg.maxPerDevice && Date.now() < end; n++) {
          const spd = spds[(i + n) % spds.length];
          if (!spd) break;
          const result = await scd.buy(spd.domain, spd.id, SERVICES[n % SERVICES.length] ?? 'wifi-access');
          rows.push({ consumer: domain, provider: spd.domain, result });
          // a refused device backs off a little, as a real one would, instead of spinning
          if (!result.ok) await new Promise((r) => setTimeout(r, 100));
        }
      }),
    );
    const loadSeconds = (Date.now() - started) / 1000;
    for (const close of closers.splice(0)) await close().catch(() => undefined);

    // ---- drain --------------------------------------------------------------
    await cloud.scheduler.stop();
    const drainStart = Date.now();
    const consumerDomains = consumers.map((c) => c.domain);
    let drained = false;
    let rounds = 0;
    while (Date.now() - drainStart < cfg.drainTimeoutMs && rounds < 10_000) {
      rounds += 1;
      await cloud.runJob('publish');
      await cloud.runJob('settle');
      await cloud.regtest.mine(1);
      await cloud.runJob('watch');
      await cloud.runJob('publish');
      const open = (await Promise.all(consumerDomains.map((d) => cloud.deps.store.listByConsumer(d))))
        .flat()
        .filter((o) => o.status === 'accepted' || o.status === 'settling').length;
      const pending = (await cloud.deps.store.listPendingPublication(100_000)).length;
      if (open === 0 && pending === 0) {
        drained = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const drainSeconds = (Date.now() - drainStart) / 1000;

    // ---- checks -------------------------------------------------------------
    const problems: string[] = [];
    const stored = (await Promise.all(consumerDomains.map((d) => cloud.deps.store.listByConsumer(d)))).flat();
    const storedIds = new Set(stored.map((o) => o.id));
    const okRows = rows.filter((r): r is Row & { result: Extract<BuyResult, { ok: true }> } => r.result.ok);
    const lost = okRows.filter((r) => !storedIds.has(r.result.obligationId));
    if (lost.length > 0) problems.push(`${lost.length} obligations accepted on a device are not stored`);
    if (!drained) problems.push(`not drained after ${cfg.drainTimeoutMs} ms`);

    const ledger = await cloud.ledger();
    const onLedger = new Map<string, number>();
    for (const item of await ledger.list('obligations', 0, 10_000_000)) {
      const id = item.keys[0];
      if (id !== undefined) onLedger.set(id, (onLedger.get(id) ?? 0) + 1);
    }
    let notOnce = 0;
    let outcomeNotOnce = 0;
    for (const o of stored) {
      if (onLedger.get(o.id) !== 1) notOnce += 1;
      if (onLedger.get(`outcome:${o.id}`) !== 1) outcomeNotOnce += 1;
    }
    if (notOnce > 0) problems.push(`${notOnce} obligations not on the ledger exactly once`);
    if (outcomeNotOnce > 0) problems.push(`${outcomeNotOnce} outcomes not on the ledger exactly once`);
    const byStatus: Record<string, number> = {};
    for (const o of stored) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
    const unfinished = stored.filter((o) => o.status !== 'fulfilled' && o.status !== 'defaulted').length;
    if (unfinished > 0) problems.push(`${unfinished} obligations neither fulfilled nor defaulted`);

    const recomputed = await recomputeFromLedger(cloud.deps);
    const domains: Record<string, unknown> = {};
    for (const d of consumerDomains) {
      const c = await cloud.deps.store.getCounters(d);
      const l = recomputed.get(d);
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
      const agree =
        l !== undefined &&
        close(c.rScaled, l.rScaled) &&
        close(c.sScaled, l.sScaled) &&
        c.paidVolume === l.paidVolume &&
        c.outstanding === l.outstanding;
      if (!agree) problems.push(`counters of ${d} differ from the ledger: ${JSON.stringify({ counters: c, ledger: l })}`);
      const rep = await api<{ reputation: number; creditLimit: number }>(cloud, 'GET', `/domains/${d}/reputation`);
      domains[d] = {
        defaulter: consumers.find((x) => x.domain === d)?.defaulter ?? false,
        accepted: okRows.filter((r) => r.consumer === d).length,
        reputation: Number(rep.reputation.toFixed(4)),
        creditLimit: rep.creditLimit,
        paidVolume: c.paidVolume,
        fulfilled: l?.fulfilled ?? 0,
        defaulted: l?.defaulted ?? 0,
        countersAgree: agree,
      };
    }

    // ---- figures ------------------------------------------------------------
    const purchase = okRows.map((r) => r.result.latencyMs).sort((a, b) => a - b);
    const acceptLat = okRows.map((r) => r.result.acceptMs).sort((a, b) => a - b);
    const refusals: Record<string, number> = {};
    for (const r of rows) if (!r.result.ok) refusals[r.result.error.code] = (refusals[r.result.error.code] ?? 0) + 1;
    const results = {
      when: new Date().toISOString(),
      command: `npx tsx soak/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { node: process.version, platform: process.platform, arch: process.arch },
      config: cfg,
      load: {
        seconds: Number(loadSeconds.toFixed(1)),
        attempts: rows.length,
        accepted: okRows.length,
        acceptedPerSecond: Number((okRows.length / loadSeconds).toFixed(1)),
        purchaseLatencyMs: { p50: percentile(purchase, 50), p99: percentile(purchase, 99), max: purchase.at(-1) ?? NaN },
        acceptLatencyMs: { p50: percentile(acceptLat, 50), p99: percentile(acceptLat, 99), max: acceptLat.at(-1) ?? NaN },
        refusals,
      },
      drain: { drained, seconds: Number(drainSeconds.toFixed(1)), rounds },
      checks: {
        stored: stored.length,
        lostAfterAccept: lost.length,
        onLedgerExactlyOnce: stored.length - notOnce,
        outcomesExactlyOnce: stored.length - outcomeNotOnce,
        byStatus,
        problems,
        ok: problems.length === 0,
      },
      domains,
      broker: { ...cloud.broker.stats, ruleErrors: cloud.broker.ruleErrors.length },
    };

    const table: [string, string][] = [
      ['load (s)', String(results.load.seconds)],
      ['purchases attempted', String(rows.length)],
      ['accepted', String(okRows.length)],
      ['accepted / s', String(results.load.acceptedPerSecond)],
      ['purchase latency p50 / p99 (ms)', `${results.load.purchaseLatencyMs.p50} / ${results.load.purchaseLatencyMs.p99}`],
      ['accept latency p50 / p99 (ms)', `${results.load.acceptLatencyMs.p50} / ${results.load.acceptLatencyMs.p99}`],
      ['refusals by code', Object.entries(refusals).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'],
      ['drained in (s)', `${results.drain.seconds} (${drained ? 'yes' : 'NO'})`],
      ['stored / on ledger once / outcome once', `${stored.length} / ${results.checks.onLedgerExactlyOnce} / ${results.checks.outcomesExactlyOnce}`],
      ['fulfilled / defaulted', `${byStatus['fulfilled'] ?? 0} / ${byStatus['defaulted'] ?? 0}`],
      ['lost after accept', String(lost.length)],
      ['counters == ledger recomputation', consumerDomains.every((d) => (domains[d] as { countersAgree: boolean }).countersAgree) ? 'yes, every domain' : 'NO'],
    ];
    const w = Math.max(...table.map(([k]) => k.length));
    log(table.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n'));
    for (const p of problems) log(`PROBLEM: ${p}`);
    await writeFile(cfg.out, `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${cfg.out}`);
    return results;
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await cloud.stop();
  }
}

if (isMain(import.meta.url)) {
  runCli(
    'npm run soak',
    async () => {
      const cfg = soakConfig(process.argv.slice(2));
      if (!cfg) return 0;
      // written when the soak ends: a path it cannot be written to is refused now, not after the soak
      await checkOutputFile(cfg.out, '--out');
      const r = await soak(cfg);
      return r.checks.ok ? 0 : 1;
    },
    // bcoin and aws-crt may keep a timer or two alive after close: do not hang a CI step on them
    { exit: true },
  );
}
