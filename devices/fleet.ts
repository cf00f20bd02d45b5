/**
 * Fleet simulator: N consumer domains with M devices each, P provider
 * domains with their devices, a share of consumer domains that never pay.
 * Choices (who buys what from whom) come from a seeded PRNG, so a run is
 * repeatable. Devices are real SDK clients; the back-ends are reached through
 * the HTTP API (domain registration, enrolment, queries) and IoT (trading).
 *
 * With several hubs (FleetEnv.hubs), domains are hosted round-robin over them
 * and a consumer buys only from provider domains hosted at other hubs (from its
 * own hub's providers only when no other hub hosts one). A device is an MQTT
 * thing of its own hub only, so it buys from a foreign provider through that
 * hub's public HTTP API (POST /offers, POST /obligations); the provider's grant
 * still reaches the SPD over the provider hub's MQTT.
 */
import { readFile } from 'node:fs/promises';
import { makeDirs, writeFileAtomic } from './atomic-file.ts';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../core/types.ts';
import type { DeviceLink } from './link.ts';
import { ConsumerDevice, FileChainStore, MemoryChainStore, type BuyResult, type ChainStore } from './scd.ts';
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

/** One hub as the fleet reaches it (the embedded cloud, or an AWS deployment). */
export interface HubEnv {
  api: string;
  /** Make a device's connection to this hub (registration of the thing is done by `registerThing`). */
  link(thing: string, keys: KeyPair): DeviceLink;
  /** Register an IoT thing for the device (AWS: the provisioning script does this). */
  registerThing?(thing: string, domain: string, key: PublicKeyRef): void | Promise<void>;
  /** Give a consumer domain money to pay with (regtest faucet). */
  fund?(domain: string): Promise<void>;
}

/** What the fleet needs from its surroundings: one hub (itself), or several (`hubs`). */
export interface FleetEnv extends HubEnv {
  chainStore?(deviceId: string): ChainStore;
  /** A device's signing keys, kept between runs (so its chain goes on); fresh keys each run when absent. */
  deviceKeys?(deviceId: string): Promise<KeyPair>;
  /** Several hubs: domains are hosted round-robin over these, and the fields above are not used. */
  hubs?: HubEnv[];
}

/**
 * Device state kept in `dir` between runs (`npm start -- --data DIR`): each
 * device's chain head (<id>.chain.json) and signing keys (<id>.key.json,
 * mode 600, created on first use). A device that comes back with the same key
 * and chain continues its chain where the back-end's table has it.
 */
export function deviceFiles(dir: string): Required<Pick<FleetEnv, 'chainStore' | 'deviceKeys'>> {
  return {
    chainStore: (id) => FileChainStore.forDevice(dir, id),
    async deviceKeys(id) {
      const file = join(dir, `${id}.key.json`);
      try {
        return JSON.parse(await readFile(file, 'utf8')) as KeyPair;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const keys = generateKeyPair();
      await makeDirs(dir, 0o700);
      await writeFileAtomic(file, JSON.stringify(keys), 0o600);
      return keys;
    },
  };
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

export interface FleetResult {
  consumer: string;
  provider: string;
  round: number;
  /** Consumer and provider domains are hosted at different hubs. */
  crossHub: boolean;
}

export class Fleet {
  readonly consumers: { domain: string; hub: number; defaulter: boolean; devices: ConsumerDevice[] }[] = [];
  readonly providers: { domain: string; hub: number; devices: ProviderDevice[] }[] = [];
  readonly reports = new Map<string, ConsumerReport>();
  readonly results: (BuyResult & FleetResult)[] = [];
  /** The hubs in use: FleetEnv.hubs, or the env itself as the only one. */
  readonly hubs: readonly HubEnv[];
  /** Provider keys as known at each hub (index), from that hub's view of the ledger. */
  private readonly keyCache = new Map<string, PublicKeyRef>();

  constructor(
    readonly cfg: FleetConfig,
    private readonly env: FleetEnv,
  ) {
    this.hubs = env.hubs && env.hubs.length > 0 ? env.hubs : [env];
  }

  /** Index of the hub hosting the n-th (1-based) domain of a kind: round-robin. */
  private hubFor(n: number): number {
    return (n - 1) % this.hubs.length;
  }

  private hub(i: number): HubEnv {
    const h = this.hubs[i];
    if (!h) throw new RangeError(`no hub ${i}`);
    return h;
  }

  /** Index of the hub hosting `domain` (a domain of this fleet). */
  hubOf(domain: string): number {
    const d = this.consumers.find((c) => c.domain === domain) ?? this.providers.find((p) => p.domain === domain);
    if (!d) throw new RangeError(`no domain ${domain} in the fleet`);
    return d.hub;
  }

  /**
   * The SP domain's key, as the consumer's own hub knows it from the ledger
   * (a domain hosted elsewhere appears there after the ledger's propagation
   * delay: a 404 is retried for a few seconds).
   */
  private async providerKey(hub: number, domain: string, fresh = false): Promise<PublicKeyRef> {
    const cacheKey = `${hub}/${domain}`;
    const hit = this.keyCache.get(cacheKey);
    if (hit && !fresh) return hit;
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        const d = await api<{ key: PublicKeyRef }>(this.hub(hub).api, 'GET', `/domains/${domain}`);
        this.keyCache.set(cacheKey, d.key);
        return d.key;
      } catch (e) {
        if (!/→ 404/.test((e as Error).message) || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async device(hub: number, domain: string, id: string, creditLimit: number) {
    const h = this.hub(hub);
    const keys = (await this.env.deviceKeys?.(id)) ?? generateKeyPair();
    const { credential } = await api<{ credential: Signed<DeviceCredential> }>(h.api, 'POST', `/domains/${domain}/devices`, {
      deviceId: id,
      deviceKey: keys.publicKey,
      creditLimit,
    });
    await h.registerThing?.(id, domain, keys.publicKey);
    return { keys, credential, link: h.link(id, keys) };
  }

  /** Providers a consumer at `hub` buys from: those hosted at other hubs, or all when no other hub hosts one. */
  private providersFor(hub: number): Fleet['providers'] {
    const foreign = this.providers.filter((p) => p.hub !== hub);
    return foreign.length > 0 ? foreign : this.providers;
  }

  /** Register domains, enrol and connect every device. */
  async setUp(): Promise<void> {
    const { cfg } = this;
    const defaulters = Math.round(cfg.consumers * cfg.defaulterShare);
    for (let p = 1; p <= cfg.providers; p++) {
      const domain = `p${p}`;
      // providers start at the last hub, consumers at the first: with as many
      // providers as hubs or fewer, consumers at the first hubs find foreign ones
      const hub = this.hubFor(p + this.hubs.length - 1);
      await api(this.hub(hub).api, 'POST', '/domains', { domain, role: 'provider', threshold: cfg.threshold });
      const devices: ProviderDevice[] = [];
      for (let d = 1; d <= cfg.devicesPerProvider; d++) {
        const dev = await this.device(hub, domain, `${domain}-spd-${d}`, 0);
        const spd = new ProviderDevice(domain, `${domain}-spd-${d}`, dev.link);
        await spd.start();
        devices.push(spd);
      }
      this.providers.push({ domain, hub, devices });
    }
    for (let c = 1; c <= cfg.consumers; c++) {
      const domain = `c${c}`;
      const hub = this.hubFor(c);
      // the last `defaulters` consumer domains never pay
      const defaulter = c > cfg.consumers - defaulters;
      await api(this.hub(hub).api, 'POST', '/domains', { domain, role: 'consumer', autoSettle: !defaulter });
      await this.hub(hub).fund?.(domain);
      const devices: ConsumerDevice[] = [];
      for (let d = 1; d <= cfg.devicesPerConsumer; d++) {
        const id = `${domain}-scd-${d}`;
        const dev = await this.device(hub, domain, id, 100_000);
        const scd = new ConsumerDevice({
          domain,
          deviceId: id,
          privateKey: dev.keys.privateKey,
          credential: dev.credential,
          link: dev.link,
          providerKey: (pd, fresh) => this.providerKey(hub, pd, fresh),
          // a provider hosted at another hub is reached through that hub's public HTTP API
          providerApi: (pd) => {
            const at = this.providers.find((p) => p.domain === pd)?.hub;
            return at === undefined || at === hub ? undefined : this.hub(at).api;
          },
          // its own hub's API: where it asks for its chain head after a replay or broken link
          backendApi: this.hub(hub).api,
          chain: this.env.chainStore?.(id) ?? new MemoryChainStore(),
          payWindowMs: cfg.payWindowMs,
          timeoutMs: 3_000,
        });
        await scd.start();
        devices.push(scd);
      }
      this.consumers.push({ domain, hub, defaulter, devices });
      this.reports.set(domain, { domain, defaulter, accepted: 0, refused: {}, timeouts: 0, history: [] });
    }
    if (this.hubs.length > 1) await this.untilKnownEverywhere();
  }

  /**
   * Wait until every hub knows every domain of the fleet from its ledger node
   * (a hub refuses an obligation of a consumer domain it has no record of).
   */
  private async untilKnownEverywhere(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const domains = [...this.providers, ...this.consumers].map((d) => d.domain);
    for (const h of this.hubs) {
      for (const d of domains) {
        for (;;) {
          const res = await fetch(`${h.api}/domains/${d}`);
          await res.body?.cancel();
          if (res.status === 200) break;
          if (Date.now() > deadline) throw new Error(`domain ${d} not known at ${h.api} after ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  }

  /** Every consumer device buys once from a provider device chosen by the PRNG. */
  async round(n: number, rand: () => number): Promise<void> {
    const buys: Promise<void>[] = [];
    for (const c of this.consumers) {
      const providers = this.providersFor(c.hub);
      for (const scd of c.devices) {
        const prov = providers[Math.floor(rand() * providers.length)];
        if (!prov) continue;
        const spd = prov.devices[Math.floor(rand() * prov.devices.length)];
        const service = this.cfg.services[Math.floor(rand() * this.cfg.services.length)] ?? 'wifi-access';
        if (!spd) continue;
        // devices do not all wake at the same instant: a seeded offset within half a round
        const offset = rand() * this.cfg.roundMs * 0.5;
        buys.push(
          new Promise((r) => setTimeout(r, offset)).then(() => scd.buy(prov.domain, spd.id, service)).then((r) => {
            this.results.push({ ...r, consumer: c.domain, provider: prov.domain, round: n, crossHub: prov.hub !== c.hub });
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
        this.hub(c.hub).api,
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
