/**
 * Joining and enrolment: a back-end registers a hosted domain (key pair,
 * wallet, self-signed record on the `domains` stream) and enrols its devices
 * (signed credentials: the bridge between trust domains).
 */
import { ForbiddenError, MalformedError, NotFoundError } from '../core/errors.ts';
import { generateKeyPair, type KeyPair } from '../core/keys.ts';
import { createDomainRecord, issueCredential } from '../core/records.ts';
import type { DeviceCredential, DomainRecord, Json, KeyAlg, PublicKeyRef, Signed } from '../core/types.ts';
import type { HostedDomain } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { domainKey } from './directory.ts';

export interface RegisterDomainInput {
  domain: string;
  role: HostedDomain['role'];
  /** Minimum consumer reputation accepted (providers). */
  threshold?: number;
  alg?: KeyAlg;
  operates?: string[];
  prices?: Record<string, number>;
  autoSettle?: boolean;
  maxTermMs?: number;
}

/** Default price list (sats). Every price is above Bitcoin's dust limit, so even one obligation can be paid alone. */
export const DEFAULT_PRICES: Record<string, number> = { 'wifi-access': 2_000, charging: 5_000, 'data-feed': 1_000 };

/** Smallest price a provider may set: outputs below ~546 sats are dust that nodes refuse to relay. */
export const MIN_PRICE_SATS = 1_000;

export interface RegisteredDomain {
  domain: string;
  role: HostedDomain['role'];
  record: Signed<DomainRecord>;
  payTo?: string;
  /** Send coins here so the domain can settle (consumers). */
  fundingAddress?: string;
  threshold: number;
  created: boolean;
}

const DEFAULT_THRESHOLD = 0.4;

/** Register a hosted domain; idempotent: a second call returns the existing domain. */
export async function registerDomain(deps: Deps, input: RegisterDomainInput): Promise<RegisteredDomain> {
  const existing = await deps.store.getHostedDomain(input.domain);
  if (existing) return describe(deps, existing, false);
  const onLedger = await deps.directory.get(input.domain);
  if (onLedger) {
    throw new ForbiddenError(`domain ${input.domain} is already on the ledger with another key`, { domain: input.domain });
  }
  const keys: KeyPair = generateKeyPair(input.alg ?? 'ed25519');
  const wallet = `oc-${input.domain}`;
  const payments = await deps.payments(wallet);
  const payTo = input.role === 'consumer' ? undefined : await payments.newAddress('provider');
  const fundingAddress = input.role === 'provider' ? undefined : await payments.newAddress('funding');
  const hosted: HostedDomain = {
    domain: input.domain,
    role: input.role,
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    threshold: input.threshold ?? DEFAULT_THRESHOLD,
    wallet,
    ...(payTo ? { payTo } : {}),
    ...(fundingAddress ? { fundingAddress } : {}),
    prices: input.prices ?? DEFAULT_PRICES,
    autoSettle: input.autoSettle ?? true,
    ...(input.maxTermMs ? { maxTermMs: input.maxTermMs } : {}),
    createdAt: deps.now(),
  };
  const created = await deps.store.putHostedDomain(hosted);
  const stored = created ? hosted : await deps.store.getHostedDomain(input.domain);
  if (!stored) throw new NotFoundError(`domain ${input.domain} vanished while registering`);
  return describe(deps, stored, created, input.operates);
}

async function describe(deps: Deps, d: HostedDomain, created: boolean, operates?: string[]): Promise<RegisteredDomain> {
  // Publishing the record is idempotent by domain: re-running registration after a crash completes it.
  let record = await deps.directory.get(d.domain);
  if (!record) {
    record = createDomainRecord(
      // the hub's real ledger address: readers check the record was published from it
      { domain: d.domain, publisher: await deps.ledger.identity(), operates: operates ?? [], createdAt: d.createdAt },
      { publicKey: d.publicKey, privateKey: d.privateKey },
    );
    await deps.ledger.publish('domains', domainKey(d.domain), [], record as unknown as Json);
    record = (await deps.directory.get(d.domain)) ?? record;
  }
  return {
    domain: d.domain,
    role: d.role,
    record,
    threshold: d.threshold,
    created,
    ...(d.payTo ? { payTo: d.payTo } : {}),
    ...(d.fundingAddress ? { fundingAddress: d.fundingAddress } : {}),
  };
}

export interface EnrolInput {
  domain: string;
  deviceId: string;
  deviceKey: PublicKeyRef;
  /** Largest single obligation the device may sign (sats). */
  creditLimit: number;
  validForMs?: number;
}

/** Issue a device credential signed by the domain's key. */
export async function enrolDevice(deps: Deps, input: EnrolInput): Promise<Signed<DeviceCredential>> {
  const d = await deps.store.getHostedDomain(input.domain);
  if (!d) throw new NotFoundError(`domain ${input.domain} is not hosted here`, { domain: input.domain });
  if (!Number.isSafeInteger(input.creditLimit) || input.creditLimit < 0) {
    throw new MalformedError('creditLimit must be a non-negative integer (sats)');
  }
  const now = deps.now();
  const credential = issueCredential(
    {
      domain: input.domain,
      deviceId: input.deviceId,
      deviceKey: input.deviceKey,
      creditLimit: input.creditLimit,
      notBefore: now - 60_000,
      notAfter: now + (input.validForMs ?? 365 * 86_400_000),
    },
    d.privateKey,
  );
  await deps.store.putDevice(input.domain, input.deviceId, input.deviceKey);
  return credential;
}
