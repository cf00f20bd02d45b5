/** Helpers for tests on the embedded cloud: actors that use the HTTP API as a client would. */
import { generateKeyPair, signValue, type KeyPair } from '../../core/keys.ts';
import { createObligation } from '../../core/obligation.ts';
import { GENESIS, type DeviceCredential, type Obligation, type Offer, type Signed } from '../../core/types.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import { startFederation, type Federation } from '../../local/federation.ts';
import { followLedger } from '../../service/follow.ts';
import type { DeviceLink } from '../../devices/link.ts';

export interface TestDevice {
  domain: string;
  id: string;
  keys: KeyPair;
  credential: Signed<DeviceCredential>;
  head: { seq: number; id: string };
}

export async function registerDomain(cloud: LocalCloud, domain: string, role: 'consumer' | 'provider' | 'both', extra: Record<string, unknown> = {}) {
  const r = await cloud.call<{ domain: string; payTo?: string }>('POST', '/domains', { domain, role, ...extra });
  if (r.status !== 201 && r.status !== 200) throw new Error(`register ${domain}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function enrol(cloud: LocalCloud, domain: string, id: string, creditLimit = 1_000_000): Promise<TestDevice> {
  const keys = generateKeyPair();
  const r = await cloud.call<{ credential: Signed<DeviceCredential> }>('POST', `/domains/${domain}/devices`, {
    deviceId: id,
    deviceKey: keys.publicKey,
    creditLimit,
  });
  if (r.status !== 201) throw new Error(`enrol ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  cloud.registerThing(id, domain, keys.publicKey);
  return { domain, id, keys, credential: r.body.credential, head: { seq: 0, id: GENESIS } };
}

const enrolledProviderDevices = new WeakMap<LocalCloud, Set<string>>();

/** Offers are made only for enrolled provider devices: enrol `domain/device` once per cloud. */
export async function ensureProviderDevice(cloud: LocalCloud, domain: string, device: string): Promise<void> {
  let seen = enrolledProviderDevices.get(cloud);
  if (!seen) enrolledProviderDevices.set(cloud, (seen = new Set()));
  if (seen.has(`${domain}/${device}`)) return;
  const r = await cloud.call('POST', `/domains/${domain}/devices`, {
    deviceId: device,
    deviceKey: generateKeyPair().publicKey,
    creditLimit: 0,
  });
  if (r.status !== 201) throw new Error(`enrol provider device ${device}: ${r.status} ${JSON.stringify(r.body)}`);
  seen.add(`${domain}/${device}`);
}

/** A POST /offers body: the request signed by the consumer device, with its credential. */
export function offerRequest(dev: TestDevice, providerDomain: string, providerDevice: string, service = 'wifi-access', issuedAt = Date.now()) {
  const body = { requestId: 'http', consumerDomain: dev.domain, consumerDevice: dev.id, providerDomain, providerDevice, service, issuedAt };
  return { request: signValue(body, dev.keys.privateKey, `${dev.domain}/${dev.id}`), credential: dev.credential };
}

export async function getOffer(cloud: LocalCloud, dev: TestDevice, providerDomain: string, providerDevice: string, service = 'wifi-access') {
  await ensureProviderDevice(cloud, providerDomain, providerDevice);
  const r = await cloud.call<{ offer: Signed<Offer> }>('POST', '/offers', offerRequest(dev, providerDomain, providerDevice, service));
  if (r.status !== 201) throw new Error(`offer: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.offer;
}

export function sign(dev: TestDevice, offer: Signed<Offer>, opts: { dueInMs?: number; now?: number; seq?: number; prev?: string } = {}): Obligation {
  const now = opts.now ?? Date.now();
  return createObligation({
    credential: dev.credential,
    deviceKey: dev.keys.privateKey,
    offer: offer.body,
    seq: opts.seq ?? dev.head.seq + 1,
    prev: opts.prev ?? dev.head.id,
    issuedAt: now,
    dueBy: now + (opts.dueInMs ?? 60_000),
  });
}

export async function submit(cloud: LocalCloud, dev: TestDevice, ob: Obligation) {
  const r = await cloud.call<{ obligationId?: string; duplicate?: boolean; error?: { code: string; class: string } }>(
    'POST',
    '/obligations',
    { obligation: ob },
  );
  if (r.status === 201) dev.head = { seq: ob.body.seq, id: ob.id };
  return r;
}

/** Offer, sign and submit one obligation. */
export async function buy(cloud: LocalCloud, dev: TestDevice, providerDomain: string, providerDevice: string, opts: { dueInMs?: number; service?: string } = {}) {
  const offer = await getOffer(cloud, dev, providerDomain, providerDevice, opts.service);
  const ob = sign(dev, offer, opts);
  return { ob, res: await submit(cloud, dev, ob) };
}

/** `n` purchases one after another, each accepted (201, or the test fails); their obligation ids. */
export async function acceptMany(cloud: LocalCloud, dev: TestDevice, providerDomain: string, providerDevice: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const { ob, res } = await buy(cloud, dev, providerDomain, providerDevice);
    if (res.status !== 201) throw new Error(`purchase ${i + 1} of ${n} not accepted: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(ob.id);
  }
  return ids;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A device link that is never connected: for a device that talks HTTP only (buying at another hub, resync, renewal). */
export function idleLink(thing: string, publish: DeviceLink['publish'] = async () => {}): DeviceLink {
  return {
    thing,
    stats: { interrupted: 0, resumed: 0 },
    connect: async () => {},
    subscribe: async () => {},
    publish,
    onMessage: () => {},
    close: async () => {},
  };
}

/** Run hub `hub`'s ledger follower once, as its scheduled function would. */
export const follow = (hub: LocalCloud) => hub.invoke(() => followLedger(hub.deps));

/**
 * Two hubs sharing a ledger whose items reach the other node after `delayMs`, no job
 * scheduled: consumer c1 and provider p1 at hub 1, provider p2 at hub 2, every record
 * followed by both.
 */
export async function twoHubs(
  delayMs: number,
  /** Runs before any domain is registered (e.g. to give a hub a signer of the test's own). */
  prepare?: (hub1: LocalCloud, hub2: LocalCloud) => Promise<void>,
): Promise<{ fed: Federation; hub1: LocalCloud; hub2: LocalCloud }> {
  const fed = await startFederation({ hubs: 2, ledgerDelayMs: delayMs, schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
  const [hub1, hub2] = fed.hubs as [LocalCloud, LocalCloud];
  await prepare?.(hub1, hub2);
  await registerDomain(hub1, 'c1', 'consumer');
  await registerDomain(hub1, 'p1', 'provider', { threshold: 0.3 });
  await registerDomain(hub2, 'p2', 'provider', { threshold: 0.3 });
  await sleep(delayMs * 4);
  for (const h of fed.hubs) await follow(h);
  return { fed, hub1, hub2 };
}
