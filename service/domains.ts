/**
 * Joining and enrolment: a back-end registers a hosted domain (key pair,
 * wallet, self-signed record on the `domains` stream) and enrols its devices
 * (signed credentials: the bridge between trust domains).
 */
import {
  AlreadyExistsError,
  BadCredentialError,
  BadSignatureError,
  ConflictError,
  ExpiredError,
  ForbiddenError,
  InvalidRecordError,
  MalformedError,
  NotFoundError,
  ObligationError,
  RevokedError,
  TermTooShortError,
} from '../core/errors.ts';
import { currentKey, ROTATION_GRACE_MS } from '../core/domain-keys.ts';
import { keyFingerprint, sameKey, verifySigned } from '../core/keys.ts';
import { createDomainRecord, createKeyRotation, createRevocation, issueCredential, parseRenewalRequest } from '../core/records.ts';
import { MAX_CLOCK_SKEW_MS } from '../core/obligation.ts';
import type { DeviceCredential, DomainRecord, Json, KeyAlg, KeyRotationBody, PublicKeyRef, RevocationBody, Signed } from '../core/types.ts';
import type { HostedDomain, PendingRotation } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { DEFAULT_MAX_TERM_MS } from './accept.ts';
import { checkPayTo } from './addresses.ts';
import { domainKey, rotationKey } from './directory.ts';
import { domainSigner } from './keys.ts';
import { ledgerKeys } from './ledger-records.ts';

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
  // The private half stays in the signer (KMS on AWS); the table keeps its id and public key.
  const key = await deps.signer.createKey(input.domain, input.alg ?? deps.signer.defaultAlg);
  const wallet = `oc-${input.domain}`;
  const payments = await deps.payments(wallet);
  // The node's own addresses are checked too: a node on another network than BITCOIN_NETWORK fails here, at registration.
  const payTo = input.role === 'consumer' ? undefined : checkPayTo(deps, await payments.newAddress('provider'));
  const fundingAddress = input.role === 'provider' ? undefined : checkPayTo(deps, await payments.newAddress('funding'));
  const hosted: HostedDomain = {
    domain: input.domain,
    role: input.role,
    publicKey: key.publicKey,
    keyId: key.keyId,
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
    record = await createDomainRecord(
      // the hub's real ledger address: readers check the record was published from it
      { domain: d.domain, publisher: await deps.ledger.identity(), operates: operates ?? [], createdAt: d.createdAt },
      { publicKey: d.publicKey, privateKey: domainSigner(deps, d) },
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

/** What a hosted domain has and owes on the Bitcoin network (GET /domains/{domain}). */
export interface FundingView {
  network: string;
  /** Where to send coins so the domain can settle (consumers; a provider-only domain: its payTo). */
  address: string | null;
  /** sats: trusted = spendable now; pending = incoming, unconfirmed (Core getbalances mine.untrusted_pending). */
  balance: { trusted: number; pending: number; total: number };
  /** sats of accepted obligations not yet in a settlement, and of those paid and awaiting confirmation. */
  owed: number;
  settling: number;
  /** owed − trusted, when positive: what must arrive before the next settlement can pay everything. */
  shortfall: number;
}

export async function fundingOf(deps: Deps, d: HostedDomain): Promise<FundingView> {
  const wallet = await deps.walletReads(d.wallet);
  const [balance, accepted, settling] = await Promise.all([
    wallet.balances(),
    d.role === 'provider' ? [] : deps.store.listByConsumer(d.domain, 'accepted'),
    d.role === 'provider' ? [] : deps.store.listByConsumer(d.domain, 'settling'),
  ]);
  const owed = accepted.filter((o) => o.settlementId === undefined).reduce((sum, o) => sum + o.amount, 0);
  return {
    network: deps.config.bitcoin.network,
    address: d.fundingAddress ?? d.payTo ?? null,
    balance: { ...balance, total: balance.trusted + balance.pending },
    owed,
    settling: settling.reduce((sum, o) => sum + o.amount, 0),
    shortfall: Math.max(0, owed - balance.trusted),
  };
}

/** Blocks mined after the faucet's so its coinbase can be spent (consensus: coinbase maturity of 100 blocks). */
export const COINBASE_MATURITY = 100;

/**
 * Regtest faucet (admin): mine `blocks` blocks to the domain's funding address,
 * then 100 more so their coinbase matures. Refused on any other network:
 * there, a domain is funded by sending it real (test) coins.
 */
export async function fundDomain(deps: Deps, domain: string, blocks = 1): Promise<{ domain: string; address: string; blocks: number; funding: FundingView }> {
  if (deps.config.bitcoin.network !== 'regtest') {
    throw new ForbiddenError(`the faucet exists on regtest only; send ${deps.config.bitcoin.network} coins to the domain's funding address`, {
      network: deps.config.bitcoin.network,
    });
  }
  if (!Number.isSafeInteger(blocks) || blocks < 1 || blocks > 50) throw new MalformedError('blocks must be an integer from 1 to 50', { blocks });
  const d = await deps.store.getHostedDomain(domain);
  if (!d) throw new NotFoundError(`domain ${domain} is not hosted here`, { domain });
  const wallet = await deps.payments(d.wallet);
  const address = checkPayTo(deps, d.fundingAddress ?? d.payTo ?? (await wallet.newAddress('faucet')));
  await wallet.mine(blocks, address);
  await wallet.mine(COINBASE_MATURITY);
  return { domain, address, blocks, funding: await fundingOf(deps, d) };
}

export interface EnrolInput {
  domain: string;
  deviceId: string;
  deviceKey: PublicKeyRef;
  /** Largest single obligation the device may sign (sats). */
  creditLimit: number;
  /** At most, and by default, the configured CREDENTIAL_TTL_MS: credentials are short-lived and renewed. */
  validForMs?: number;
}

async function hostedOrThrow(deps: Deps, domain: string): Promise<HostedDomain> {
  const d = await deps.store.getHostedDomain(domain);
  if (!d) throw new NotFoundError(`domain ${domain} is not hosted here`, { domain });
  return d;
}

/** Issue a device credential signed by the domain's key (refused for a revoked device key). */
export async function enrolDevice(deps: Deps, input: EnrolInput): Promise<Signed<DeviceCredential>> {
  const d = await hostedOrThrow(deps, input.domain);
  if (!Number.isSafeInteger(input.creditLimit) || input.creditLimit < 0) {
    throw new MalformedError('creditLimit must be a non-negative integer (sats)');
  }
  const ttl = deps.config.credentialTtlMs;
  if (input.validForMs !== undefined && input.validForMs > ttl) {
    throw new MalformedError(`credentials are valid for at most ${ttl} ms (CREDENTIAL_TTL_MS); devices renew them`, { maxValidForMs: ttl });
  }
  if (await deps.store.getRevocation(input.domain, input.deviceId, input.deviceKey)) {
    throw new RevokedError(`the key of ${input.domain}/${input.deviceId} is revoked; enrol a new key`, { domain: input.domain, device: input.deviceId });
  }
  return issue(deps, d, input.deviceId, input.deviceKey, input.creditLimit, input.validForMs ?? ttl);
}

async function issue(
  deps: Deps,
  d: HostedDomain,
  deviceId: string,
  deviceKey: PublicKeyRef,
  creditLimit: number,
  validForMs: number,
): Promise<Signed<DeviceCredential>> {
  const now = deps.now();
  const credential = await issueCredential(
    { domain: d.domain, deviceId, deviceKey, creditLimit, notBefore: now - 60_000, notAfter: now + validForMs },
    domainSigner(deps, d),
  );
  await deps.store.putDevice(d.domain, deviceId, deviceKey, { creditLimit, notAfter: credential.body.notAfter });
  return credential;
}

/**
 * A device renews its credential through its own back-end: the request is signed with
 * the enrolled device key, recent, and the device's latest credential has not ended
 * (an expired device is enrolled again by an operator); the key must not be revoked.
 * The new credential has the same key and credit limit, valid CREDENTIAL_TTL_MS.
 */
export async function renewCredential(deps: Deps, domain: string, deviceId: string, raw: unknown): Promise<Signed<DeviceCredential>> {
  const d = await hostedOrThrow(deps, domain);
  const request = parseRenewalRequest(raw);
  const r = request.body;
  if (r.domain !== domain || r.deviceId !== deviceId) {
    throw new ForbiddenError(`a renewal request of ${r.domain}/${r.deviceId} sent for ${domain}/${deviceId}`);
  }
  const device = await deps.store.getDevice(domain, deviceId);
  if (!device) throw new NotFoundError(`device ${deviceId} is not enrolled in ${domain}`, { domain, device: deviceId });
  if (request.by !== `${domain}/${deviceId}` || !verifySigned(request, device.key)) {
    throw new BadSignatureError(`renewal request is not signed by the enrolled key of ${domain}/${deviceId}`);
  }
  const now = deps.now();
  if (Math.abs(now - r.at) > MAX_CLOCK_SKEW_MS) {
    throw new ExpiredError('renewal request is stale or from the future', { at: r.at, now });
  }
  if (await deps.store.getRevocation(domain, deviceId, device.key)) {
    throw new RevokedError(`the key of ${domain}/${deviceId} is revoked`, { domain, device: deviceId });
  }
  if (device.notAfter === undefined || device.notAfter < now || device.creditLimit === undefined) {
    throw new BadCredentialError(`the credential of ${domain}/${deviceId} has ended; enrol the device again`, {
      notAfter: device.notAfter ?? null,
      now,
    });
  }
  return issue(deps, d, deviceId, device.key, device.creditLimit, deps.config.credentialTtlMs);
}

/**
 * Revoke a device key (default: its enrolled key): kept in this hub's store at once (its
 * acceptances refuse the device from now on) and published on the `domains` stream as a
 * record signed by the domain, which every other hub's follower verifies and keeps.
 * Idempotent: a retry re-publishes the same record (the ledger dedupes by its id).
 */
export async function revokeDevice(
  deps: Deps,
  domain: string,
  deviceId: string,
  input: { deviceKey?: PublicKeyRef; reason?: string } = {},
): Promise<Signed<RevocationBody>> {
  const d = await hostedOrThrow(deps, domain);
  const device = await deps.store.getDevice(domain, deviceId);
  const deviceKey = input.deviceKey ?? device?.key;
  if (!deviceKey) throw new NotFoundError(`device ${deviceId} is not enrolled in ${domain}`, { domain, device: deviceId });
  let record = await deps.store.getRevocation(domain, deviceId, deviceKey);
  if (!record) {
    record = await createRevocation({ domain, deviceId, deviceKey, reason: input.reason ?? '', at: deps.now() }, domainSigner(deps, d));
    if (!(await deps.store.putRevocation(record))) record = (await deps.store.getRevocation(domain, deviceId, deviceKey)) ?? record;
  }
  await deps.ledger.publish('domains', ledgerKeys.revocation(domain, deviceId, keyFingerprint(deviceKey)), [ledgerKeys.revocations(domain)], record as unknown as Json);
  return record;
}


/**
 * Replace a hosted domain's key (admin): a new key in the signer, a rotation record
 * signed by the current key, published on the `domains` stream, after which the domain
 * signs with the new key. Every hub's follower verifies the record (signed by the key it
 * replaces, published by this hub) and from then on wants credentials and hub key
 * certificates of the new key; ledger records keep verifying with the key in force at
 * their date or a later one (core/domain-keys.ts). Devices renew their credentials to buy again.
 *
 * Crash-safe: the rotation is recorded as begun in the hosted domain's item before it is
 * published; calling again finishes a begun one (the same record, or the same key dated
 * afresh when it began long ago: redatedIfLate) instead of starting another. Once the rotation
 * stands on the ledger the replaced key is retired in the signer (on AWS its KMS key's deletion
 * is scheduled, cancellable for RETIRED_KEY_WINDOW_DAYS).
 */
export interface KeyRotationResult {
  domain: string;
  /** The record every hub holds. */
  rotation: Signed<KeyRotationBody>;
  /** Whether the replaced key was retired in the signer; when not, why (retire it by hand). */
  retired: boolean;
  notRetired?: string;
}

export async function rotateDomainKey(deps: Deps, domain: string): Promise<KeyRotationResult> {
  const d = await hostedOrThrow(deps, domain);
  let pending = d.rotating;
  if (!pending) {
    const keys = await deps.directory.keys(domain);
    if (!keys) throw new NotFoundError(`domain ${domain} has no record on the ledger yet; register it again to publish it`, { domain });
    if (keyFingerprint(currentKey(keys)) !== keyFingerprint(d.publicKey)) {
      throw new ConflictError(`the ledger's current key of ${domain} is not the key it signs with here; try again in a minute`, { domain });
    }
    const key = await deps.signer.createKey(domain, d.publicKey.alg);
    const rotation = await createKeyRotation(
      { domain, seq: keys.rotations.length + 1, key: key.publicKey, previous: keyFingerprint(d.publicKey), at: deps.now() },
      domainSigner(deps, d),
    );
    pending = { keyId: key.keyId, publicKey: key.publicKey, rotation };
    if (!(await deps.store.beginKeyRotation(domain, d.keyId, pending))) {
      throw new ConflictError(`another key rotation of ${domain} began or finished meanwhile; ask again to finish it`, { domain });
    }
  }
  pending = await redatedIfLate(deps, d, pending);
  const r = pending.rotation;
  await deps.ledger.publish('domains', rotationKey(domain, r.body.seq), [domainKey(domain)], r as unknown as Json);
  let standing = r;
  try {
    await deps.directory.rotate(r, await deps.ledger.identity());
  } catch (e) {
    // an earlier publication of this same rotation (another date) that landed late stands: the same key
    const held = (await deps.directory.keys(domain))?.rotations[r.body.seq - 1];
    if (!(e instanceof InvalidRecordError) || !held || !sameKey(held.body.key, r.body.key)) throw e;
    standing = held;
  }
  const notRetired = await retireReplacedKey(deps, d);
  await deps.store.finishKeyRotation(domain, pending);
  // the record every hub holds (the late-landed one when it stands), not the copy that lost
  return { domain, rotation: standing, retired: notRetired === undefined, ...(notRetired === undefined ? {} : { notRetired }) };
}

/**
 * The rotation stands on the ledger: the replaced key signs nothing more. Retired before the
 * rotation is marked finished, so a crash in between is finished by calling again (retiring twice
 * does nothing); meanwhile a signature asked of the old key fails retry-class and is asked again of
 * the new one. A signer that is down fails the call (ask again); one that refuses for good (no
 * permission, say) does not keep the domain on the old key: the switch goes on, and the answer
 * says the key was not retired, and why.
 */
async function retireReplacedKey(deps: Deps, d: HostedDomain): Promise<string | undefined> {
  try {
    await deps.signer.retireKey({ keyId: d.keyId, publicKey: d.publicKey });
    return undefined;
  } catch (e) {
    if (e instanceof ObligationError && e.errorClass === 'retry') throw e;
    return `key ${d.keyId}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
}

/** A begun rotation older than this is dated afresh before it is published (see redatedIfLate). */
export const REDATE_ROTATION_AFTER_MS = ROTATION_GRACE_MS / 2;

/**
 * A rotation cut short (the ledger was down) leaves the domain signing with the old key
 * until it is finished. Other hubs check a record signed by a retired key only when it is
 * dated before the rotation plus ROTATION_GRACE_MS, so a rotation finished long after it
 * began would disown what the old key signed meanwhile (a settlement's records, a
 * credential inside an obligation). One begun more than REDATE_ROTATION_AFTER_MS ago and
 * not yet on the ledger is therefore signed again, dated now: the same key and number.
 */
async function redatedIfLate(deps: Deps, d: HostedDomain, pending: PendingRotation): Promise<PendingRotation> {
  const r = pending.rotation.body;
  if (deps.now() - r.at <= REDATE_ROTATION_AFTER_MS) return pending;
  if ((await deps.ledger.listByKey('domains', rotationKey(d.domain, r.seq))).length > 0) return pending; // published: it stands
  const next = { ...pending, rotation: await createKeyRotation({ ...r, at: deps.now() }, domainSigner(deps, d)) };
  if (!(await deps.store.redateKeyRotation(d.domain, pending, next))) {
    throw new ConflictError(`the key rotation of ${d.domain} changed meanwhile; ask again to finish it`, { domain: d.domain });
  }
  return next;
}
