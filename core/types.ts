/**
 * The data of the obligation chain. Everything here is plain JSON so that the
 * canonical encoding (core/canonical.ts) can hash and sign it.
 * Amounts are integer satoshis; times are epoch milliseconds.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type KeyAlg = 'ed25519' | 'p256';

/** A public key as published: algorithm plus base64url of its SPKI DER encoding. */
export interface PublicKeyRef {
  alg: KeyAlg;
  spki: string;
}

/** A value with a detached signature over canonical(body). `by` names the signer (a domain or `domain/device`). */
export interface Signed<T> {
  body: T;
  sig: string; // base64url
  by: string;
}

/** Published on the `domains` stream when a back-end joins; self-signed with its root key. */
export interface DomainRecord {
  version: 1;
  domain: string;
  key: PublicKeyRef;
  /** Ledger address the back-end publishes from (MultiChain address, or a local name). Used by the Sybil guard. */
  publisher: string;
  /** Domains this domain declares it operates (self-dealing guard). */
  operates: string[];
  createdAt: number;
}

/**
 * A hub key certificate: the domain key (in KMS on AWS) vouches for a key that one hub
 * process holds in memory only, for a short time. Offers and acceptances are signed with
 * it, so the per-purchase signatures stay off the network (no KMS call on the hot path);
 * the certificate travels inside what it signs, so readers need nothing else.
 */
export interface HubKeyCertificate {
  version: 1;
  kind: 'hub-key';
  domain: string;
  key: PublicKeyRef;
  notBefore: number;
  notAfter: number;
}

/**
 * Published on the `domains` stream, signed by the domain: every credential binding
 * `deviceKey` to `domain/deviceId` is void from now on, at every hub.
 */
export interface RevocationBody {
  version: 1;
  kind: 'revocation';
  domain: string;
  deviceId: string;
  deviceKey: PublicKeyRef;
  reason: string;
  at: number;
}

/**
 * A domain replaces its key: rotation `seq` (1, 2, …) names the new key and the
 * fingerprint of the one it replaces, is signed by that replaced key, and is
 * published by the domain's hub on the `domains` stream. From `at` on, the new key
 * signs for the domain (core/domain-keys.ts says which key counts when).
 */
export interface KeyRotationBody {
  version: 1;
  kind: 'key-rotation';
  domain: string;
  seq: number;
  key: PublicKeyRef;
  /** keyFingerprint of the key this one replaces (the key that signs the rotation). */
  previous: string;
  at: number;
}

/** A device asks its own back-end for a fresh credential; signed with the device key. */
export interface RenewalRequest {
  version: 1;
  kind: 'renewal';
  domain: string;
  deviceId: string;
  at: number;
}

/** Issued by an SCB to each of its devices: the bridge between trust domains. */
export interface DeviceCredential {
  version: 1;
  domain: string;
  deviceId: string;
  deviceKey: PublicKeyRef;
  /** Per-device cap on a single obligation's amount (sats). */
  creditLimit: number;
  notBefore: number;
  notAfter: number;
}

/** Signed by the SP domain, handed by an SPD to a requesting SCD. */
export interface Offer {
  version: 1;
  offerId: string;
  providerDomain: string;
  providerDevice: string;
  service: string;
  price: number;
  /** Provider's Bitcoin payment address. */
  payTo: string;
  /** The consumer device the offer was made to ("domain/device"). */
  consumer: string;
  expiresAt: number;
  /**
   * A standing offer: the consumer device may buy at this price again and again until
   * expiresAt, as long as the amounts of its obligations under the offer add up to at most
   * `cap` (sats). Absent: the offer is good for one obligation.
   */
  cap?: number;
  /** When signed with a certified hub key rather than the domain key itself. */
  certificate?: Signed<HubKeyCertificate>;
}

export interface ObligationBody {
  version: 1;
  consumerDomain: string;
  consumerDevice: string;
  providerDomain: string;
  providerDevice: string;
  service: string;
  amount: number;
  payTo: string;
  offerId: string;
  issuedAt: number;
  dueBy: number;
  /** Per-device sequence number, starting at 1. */
  seq: number;
  /** id of the device's previous obligation; GENESIS for seq 1. */
  prev: string;
  credential: Signed<DeviceCredential>;
}

export const GENESIS = '0'.repeat(64);

/** The consumer-signed obligation. id = sha256(canonical(body)) in hex. */
export interface Obligation {
  id: string;
  body: ObligationBody;
  /** SCD signature over canonical(body). */
  sig: string;
}

/** The provider's countersignature, published with the obligation. */
export interface AcceptanceBody {
  version: 1;
  obligationId: string;
  providerDomain: string;
  payTo: string;
  acceptedAt: number;
  /** When signed with a certified hub key rather than the domain key itself. */
  certificate?: Signed<HubKeyCertificate>;
}

/** What goes on the `obligations` stream: the obligation and its signed acceptance. */
export interface AcceptedObligation {
  obligation: Obligation;
  acceptance: Signed<AcceptanceBody>;
}

export type ObligationStatus = 'accepted' | 'settling' | 'fulfilled' | 'defaulted';

/** What goes on the `settlements` stream: intent before broadcast, then broadcast, then confirmed. */
export interface SettlementRecord {
  version: 1;
  settlementId: string;
  consumerDomain: string;
  phase: 'intent' | 'broadcast' | 'confirmed';
  txid: string;
  /** Per provider address, the amount paid and the obligations it covers. */
  outputs: { payTo: string; providerDomain: string; amount: number; obligationIds: string[] }[];
  at: number;
  /**
   * Set on a fee bump (replace-by-fee): the earlier transactions of this same
   * settlement, oldest first, that `txid` replaces. `txid` spends every input
   * of each, so at most one of them all ever confirms.
   */
  replaces?: string[];
}

/**
 * What goes on the `obligations` stream (key `outcome:<id>`) when an obligation ends,
 * signed by the provider domain that decided it. Readers never trust its amount or
 * parties: they take them from the signed obligation it names, and check the claim
 * against the consumer's settlement record and the Bitcoin transaction it names.
 */
export interface OutcomeBody {
  version: 1;
  kind: 'outcome';
  obligationId: string;
  outcome: 'fulfilled' | 'defaulted';
  consumerDomain: string;
  providerDomain: string;
  amount: number;
  at: number;
  /** The paying transaction of a fulfilled obligation; null for a default. */
  txid: string | null;
}

/** Per consumer domain counters kept with atomic ADD; see core/reputation.ts. */
export interface ReputationCounters {
  /** Faded, amount-weighted fulfilled evidence, stored scaled by lambda^-(t/day) relative to `epoch`. */
  rScaled: number;
  sScaled: number;
  /** Total paid volume (sats), unfaded. */
  paidVolume: number;
  /** Accepted but not yet fulfilled or defaulted (sats). */
  outstanding: number;
}
