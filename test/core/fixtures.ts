/** Shared test fixtures: two domains, a consumer device, an offer, and helpers to build obligations. */
import {
  GENESIS,
  createObligation,
  createOffer,
  generateKeyPair,
  issueCredential,
  type DeviceCredential,
  type KeyAlg,
  type KeyPair,
  type Obligation,
  type Offer,
  type Signed,
} from '../../core/index.ts';

export const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface World {
  consumerDomain: KeyPair;
  providerDomain: KeyPair;
  device: KeyPair;
  credential: Signed<DeviceCredential>;
  offer: Offer;
}

/** A consumer domain `acme` with device `meter-1`, and a provider domain `wifico` offering wifi-access for 1,000 sats. */
export function makeWorld(alg: KeyAlg = 'ed25519', creditLimit = 100_000): World {
  const consumerDomain = generateKeyPair(alg);
  const providerDomain = generateKeyPair(alg);
  const device = generateKeyPair(alg);
  const credential = issueCredential(
    { domain: 'acme', deviceId: 'meter-1', deviceKey: device.publicKey, creditLimit, notBefore: NOW - DAY, notAfter: NOW + 365 * DAY },
    consumerDomain.privateKey,
  );
  const offer = makeOffer(providerDomain, 'offer-1');
  return { consumerDomain, providerDomain, device, credential, offer };
}

export function makeOffer(providerDomain: KeyPair, offerId: string, overrides: Partial<Offer> = {}): Offer {
  return createOffer(
    {
      offerId,
      providerDomain: 'wifico',
      providerDevice: 'ap-7',
      service: 'wifi-access',
      price: 1_000,
      payTo: 'RwifiPayAddr1',
      consumer: 'acme/meter-1',
      expiresAt: NOW + HOUR,
      ...overrides,
    },
    providerDomain.privateKey,
  ).body;
}

/** The obligation after `prev` (or the first one), issued at NOW, due in a week. */
export function obligationFor(w: World, prev?: Obligation, offer: Offer = w.offer): Obligation {
  return createObligation({
    credential: w.credential,
    deviceKey: w.device.privateKey,
    offer,
    seq: prev === undefined ? 1 : prev.body.seq + 1,
    prev: prev === undefined ? GENESIS : prev.id,
    issuedAt: NOW,
    dueBy: NOW + 7 * DAY,
  });
}

/** A chain of `n` consecutive obligations of the world's device. */
export function chainOf(w: World, n: number): Obligation[] {
  const chain: Obligation[] = [];
  for (let i = 0; i < n; i++) chain.push(obligationFor(w, chain[i - 1]));
  return chain;
}

/** A deep copy through JSON, as a value arriving over the wire. */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
