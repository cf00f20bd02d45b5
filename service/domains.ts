/**
 * Joining and enrolment: a back-end registers a hosted domain (key pair,
 * wallet, self-signed record on the `domains` stream) and enrols its devices
 * (signed credentials: the bridge between trust domains).
 */
import { AlreadyExistsError, ForbiddenError, MalformedError, NotFoundError, TermTooShortError } from '../core/errors.ts';
import { generateKeyPair, type KeyPair } from '../core/keys.ts';
import { createDomainRecord, issueCredential } from '../core/records.ts';
import type { DeviceCredential, DomainRecord, Json, KeyAlg, PublicKeyRef, Signed } from '../core/types.ts';
import type { HostedDomain } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { DEFAULT_MAX_TERM_MS } from './accept.ts';
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
  /** Providers: shortest payment term accepted; must exceed the settlement interval (default: config MIN_TERM_MS). */
  minTermMs?: number;
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

/**
 * Register a hosted domain; idempotent: a second call with the same settings
 * returns the existing domain (created: false). A second call that asks for
 * other settings (another role, threshold, prices, …) is refused with
 * AlreadyExistsError (409) naming them: nothing is silently kept or changed.
 */
export async function registerDomain(deps: Deps, input: RegisterDomainInput): Promise<RegisteredDomain> {
  const existing = await deps.store.getHostedDomain(input.domain);
  if (existing) {
    const conflicts = conflictsWith(existing, input);
    if (Object.keys(conflicts).length > 0) {
      throw new AlreadyExistsError(
        `domain ${input.domain} is already registered with other settings (${Object.keys(conflicts).join(', ')}); nothing was changed`,
        { domain: input.domain, conflicts },
      );
    }
    return describe(deps, existing, false);
  }
  checkTerms(deps, input);
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
    ...(input.minTermMs ? { minTermMs: input.minTermMs } : {}),
    createdAt: deps.now(),
  };
  const created = await deps.store.putHostedDomain(hosted);
  const stored = created ? hosted : await deps.store.getHostedDomain(input.domain);
  if (!stored) throw new NotFoundError(`domain ${input.domain} vanished while registering`);
  return describe(deps, stored, created, input.operates);
}

/** The settings a re-registration asks for that differ from the registered ones: name → {registered, requested}. */
function conflictsWith(d: HostedDomain, input: RegisterDomainInput): Record<string, { registered: unknown; requested: unknown }> {
  const out: Record<string, { registered: unknown; requested: unknown }> = {};
  const check = (name: string, registered: unknown, requested: unknown) => {
    if (requested !== undefined && JSON.stringify(registered) !== JSON.stringify(requested)) out[name] = { registered, requested };
  };
  check('role', d.role, input.role);
  check('threshold', d.threshold, input.threshold);
  check('alg', d.publicKey.alg, input.alg);
  check('autoSettle', d.autoSettle, input.autoSettle);
  check('maxTermMs', d.maxTermMs, input.maxTermMs);
  check('minTermMs', d.minTermMs, input.minTermMs);
  if (input.prices !== undefined) {
    const sorted = (p: Record<string, number>) => Object.fromEntries(Object.entries(p).sort(([a], [b]) => (a < b ? -1 : 1)));
    check('prices', sorted(d.prices), sorted(input.prices));
  }
  return out;
}

/**
 * A provider's shortest payment term must exceed the settlement interval:
 * otherwise an honest consumer whose settle job runs on schedule is late by
 * construction. And it cannot exceed the longest term.
 */
function checkTerms(deps: Deps, input: RegisterDomainInput): void {
  if (input.role === 'consumer') return;
  const min = input.minTermMs ?? deps.config.minTermMs;
  const interval = deps.config.settleIntervalMs;
  if (min <= interval) {
    throw new TermTooShortError(`minimum payment term ${min} ms must exceed the settlement interval of ${interval} ms`, {
      minTermMs: min,
      settleIntervalMs: interval,
    });
  }
  const max = input.maxTermMs ?? DEFAULT_MAX_TERM_MS;
  if (min > max) {
    throw new MalformedError(`minimum payment term ${min} ms exceeds the maximum ${max} ms`, { minTermMs: min, maxTermMs: max });
  }
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
