/**
 * Fleet simulator: N consumer domains with M devices each, P provider
 * domains with their devices, a share of consumer domains that never pay.
 * Choices (who buys what from whom) come from a seeded PRNG, so a run is
 * repeatable. Devices are real SDK clients; the back-ends are reached through
 * the HTTP API (domain registration, enrolment, queries) and IoT (trading).
 */
import { generateKeyPair, type KeyPair } from '../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../core/types.ts';
import type { DeviceLink } from './link.ts';
import { ConsumerDevice, MemoryChainStore, type BuyResult, type ChainStore } from './scd.ts';
import { ProviderDevice } from './spd.ts';

export interface FleetConfig {
  consumers: number;
  devicesPerConsumer: number;
  providers: number;
  devicesPerProvider: number;
  /** Share of consumer domains that never settle (0..1). */
  defaulterShare: number;
  rounds: number;
  /** Pause between rounds (ms): settlements, blocks and the watcher run meanwhile. */
  roundMs: number;
  /** Payment window of each obligation (dueBy − issuedAt). */
  payWindowMs: number;
  seed: number;
  services: string[];
  /** Provider threshold (minimum consumer reputation). */
  threshold: number;
}

export const DEFAULT_FLEET: FleetConfig = {
  consumers: 4,
  devicesPerConsumer: 3,
  providers: 2,
  devicesPerProvider: 2,
  defaulterShare: 0.25,
  rounds: 14,
  roundMs: 900,
  payWindowMs: 3_000,
  seed: 42,
  services: ['wifi-access', 'charging', 'data-feed'],
  threshold: 0.4,
};

/** What the fleet needs from its surroundings (the embedded cloud, or AWS). */
export interface FleetEnv {
  api: string;
  /** Make a device's connection (registration of the thing is done by `registerThing`). */
  link(thing: string, keys: KeyPair): DeviceLink;
  /** Register an IoT thing for the device (AWS: the provisioning script does this). */
  registerThing?(thing: string, domain: string, key: PublicKeyRef): void | Promise<void>;
  /** Give a consumer domain money to pay with (regtest faucet). */
  fund?(domain: string): Promise<void>;
  chainStore?(deviceId: string): ChainStore;
}

export interface ReputationPoint {
  round: number;
  at: number;
  reputation: number;
  creditLimit: number;
  outstanding: number;
}

export interface ConsumerReport {
  domain: string;
  defaulter: boolean;
  accepted: number;
  refused: Record<string, number>;
  timeouts: number;
  history: ReputationPoint[];
}

export interface FleetProgress {
  round: number;
  rounds: number;
  accepted: number;
  refused: number;
  latencies: number[];
}

/** mulberry32: a small, good-enough seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function api<T>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

export class Fleet {
  readonly consumers: { domain: string; defaulter: boolean; devices: ConsumerDevice[] }[] = [];
  readonly providers: { domain: string; devices: ProviderDevice[] }[] = [];
  readonly reports = new Map<string, ConsumerReport>();
  readonly results: (BuyResult & { consumer: string; provider: string; round: number })[] = [];
  private readonly keyCache = new Map<string, PublicKeyRef>();

  constructor(
    readonly cfg: FleetConfig,
    private readonly env: FleetEnv,
  ) {}

  private async providerKey(domain: string): Promise<PublicKeyRef> {
    const hit = this.keyCache.get(domain);
    if (hit) return hit;
    const d = await api<{ record: { body: { key: PublicKeyRef } } }>(this.env.api, 'GET', `/domains/${domain}`);
    this.keyCache.set(domain, d.record.body.key);
    return d.record.body.key;
  }

  private async device(domain: string, id: string, creditLimit: number) {
    const keys = generateKeyPair();
    const { credential } = await api<{ credential: Signed<DeviceCredential> }>(this.env.api, 'POST', `/domains/${domain}/devices`, {
      deviceId: id,
      deviceKey: keys.publicKey,
      creditLimit,
    });
    await this.env.registerThing?.(id, domain, keys.publicKey);
    return { keys, credential, link: this.env.link(id, keys) };
  }

  /** Register domains, enrol and connect every device. */
  async setUp(): Promise<void> {
    const { cfg } = this;
    const defaulters = Math.round(cfg.consumers * cfg.defaulterShare);
    for (let p = 1; p <= cfg.providers; p++) {
      const domain = `p${p}`;
      await api(this.env.api, 'POST', '/domains', { domain, role: 'provider', threshold: cfg.threshold });
      const devices: ProviderDevice[] = [];
      for (let d = 1; d <= cfg.devicesPerProvider; d++) {
        const dev = await this.device(domain, `${domain}-spd-${d}`, 0);
        const spd = new ProviderDevice(domain, `${domain}-spd-${d}`, dev.link);
        await spd.start();
        devices.push(spd);
      }
      this.providers.push({ domain, devices });
    }
    for (let c = 1; c <= cfg.consumers; c++) {
      const domain = `c${c}`;
      // the last `defaulters` consumer domains never pay
      const defaulter = c > cfg.consumers - defaulters;
      await api(this.env.api, 'POST', '/domains', { domain, role: 'consumer', autoSettle: !defaulter });
      await this.env.fund?.(domain);
      const devices: ConsumerDevice[] = [];
      for (let d = 1; d <= cfg.devicesPerConsumer; d++) {
        const id = `${domain}-scd-${d}`;
        const dev = await this.device(domain, id, 100_000);
        const scd = new ConsumerDevice({
          domain,
          deviceId: id,
          privateKey: dev.keys.privateKey,
          credential: dev.credential,
          link: dev.link,
          providerKey: (pd) => this.providerKey(pd),
          chain: this.env.chainStore?.(id) ?? new MemoryChainStore(),
          payWindowMs: cfg.payWindowMs,
          timeoutMs: 3_000,
        });
        await scd.start();
        devices.push(scd);
      }
      this.consumers.push({ domain, defaulter, devices });
      this.reports.set(domain, { domain, defaulter, accepted: 0, refused: {}, timeouts: 0, history: [] });
    }
  }

  /** Every consumer device buys once from a provider device chosen by the PRNG. */
  async round(n: number, rand: () => number): Promise<void> {
    const buys: Promise<void>[] = [];
    for (const c of this.consumers) {
      for (const scd of c.devices) {
        const prov = this.providers[Math.floor(rand() * this.providers.length)];
        if (!prov) continue;
        const spd = prov.devices[Math.floor(rand() * prov.devices.length)];
        const service = this.cfg.services[Math.floor(rand() * this.cfg.services.length)] ?? 'wifi-access';
        if (!spd) continue;
        // devices do not all wake at the same instant: a seeded offset within half a round
        const offset = rand() * this.cfg.roundMs * 0.5;
        buys.push(
          new Promise((r) => setTimeout(r, offset)).then(() => scd.buy(prov.domain, spd.id, service)).then((r) => {
            this.results.push({ ...r, consumer: c.domain, provider: prov.domain, round: n });
            const rep = this.reports.get(c.domain);
            if (!rep) return;
            if (r.ok) rep.accepted += 1;
            else if (r.error.code === 'TIMEOUT') rep.timeouts += 1;
            else rep.refused[r.error.code] = (rep.refused[r.error.code] ?? 0) + 1;
          }),
        );
      }
    }
    await Promise.all(buys);
  }

  async sampleReputation(round: number): Promise<void> {
    for (const c of this.consumers) {
      const r = await api<{ reputation: number; creditLimit: number; outstanding: number }>(
        this.env.api,
        'GET',
        `/domains/${c.domain}/reputation`,
      );
      this.reports.get(c.domain)?.history.push({ round, at: Date.now(), ...r });
    }
  }

  /** Run every round, telling `progress` after each. */
  async run(progress?: (p: FleetProgress) => void): Promise<void> {
    const rand = prng(this.cfg.seed);
    await this.sampleReputation(0);
    for (let n = 1; n <= this.cfg.rounds; n++) {
      await this.round(n, rand);
      await new Promise((r) => setTimeout(r, this.cfg.roundMs));
      await this.sampleReputation(n);
      const okCount = this.results.filter((r) => r.ok).length;
      progress?.({
        round: n,
        rounds: this.cfg.rounds,
        accepted: okCount,
        refused: this.results.length - okCount,
        latencies: this.results.filter((r) => r.ok).map((r) => (r.ok ? r.acceptMs : 0)),
      });
    }
  }

  async close(): Promise<void> {
    for (const c of this.consumers) for (const d of c.devices) await d.close();
    for (const p of this.providers) for (const d of p.devices) await d.close();
  }
}
