/**
 * Signed records other than obligations, and the structural validators for every
 * record that crosses a boundary. Validators check shape, types and lengths only
 * (no signatures) and reject unknown fields, so the typed value is exactly what is
 * hashed and signed. Every failure is a MalformedError naming the field.
 */
import { randomBytes } from 'node:crypto';
import { BadCredentialError, BadSignatureError, MalformedError } from './errors.ts';
import { sameKey, signValue, verifySigned, verifySignedOnce, type AsyncSigner, type PrivateKeyRef } from './keys.ts';
import type {
  AcceptanceBody,
  AcceptedObligation,
  DeviceCredential,
  DomainRecord,
  HubKeyCertificate,
  KeyAlg,
  KeyRotationBody,
  Obligation,
  ObligationBody,
  Offer,
  OutcomeBody,
  PublicKeyRef,
  RenewalRequest,
  RevocationBody,
  SettlementRecord,
  Signed,
} from './types.ts';

/** A private key in hand (tests, devices, in-memory hub keys) or a signer behind the Signer port (KMS, local key file). */
export type SigningKey = PrivateKeyRef | AsyncSigner;

/** Domain, device and offer names. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Content ids (sha256 hex, lower case). */
export const ID_RE = /^[0-9a-f]{64}$/;
/** Service names, e.g. `wifi-access` or `power:kwh`. */
export const SERVICE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Bitcoin addresses: formats differ between networks and node implementations, so only the alphabet is fixed. */
export const ADDRESS_RE = /^[A-Za-z0-9]{1,100}$/;
/** Ledger publisher addresses or local names. */
export const PUBLISHER_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A signer: `domain` or `domain/device`. */
export const SIGNER_RE = /^[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})?$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;
/** 21 million BTC in satoshis: no amount can be larger. */
export const MAX_SATS = 2_100_000_000_000_000;
const MAX_KEY_CHARS = 256;
const MAX_SIG_CHARS = 256;
const MAX_OPERATES = 64;
/** Bitcoin txids (hex, lower case). */
export const TXID_RE = /^[0-9a-f]{64}$/;
/** Outputs of one settlement and obligations of one output: bounded so a record cannot be made huge. */
const MAX_OUTPUTS = 1_000;
const MAX_IDS_PER_OUTPUT = 10_000;
/** Longest validity of a hub key certificate: a leaked in-memory hub key is useless after this. */
export const MAX_HUB_KEY_MS = 7 * 86_400_000;
const REASON_RE = /^[\x20-\x7e]{0,200}$/;

type Obj = Record<string, unknown>;

function object(value: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedError(`${path} must be an object`);
  }
  const obj = value as Obj;
  for (const key of Object.keys(obj)) {
    if (!keys.includes(key)) throw new MalformedError(`${path}.${key} is not an allowed field`);
  }
  return obj;
}

function string(obj: Obj, key: string, path: string, re: RegExp): string {
  const value = obj[key];
  if (typeof value !== 'string' || !re.test(value)) {
    throw new MalformedError(`${path}.${key} must be a string matching ${re.source}`);
  }
  return value;
}

function integer(obj: Obj, key: string, path: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max || Object.is(value, -0)) {
    throw new MalformedError(`${path}.${key} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

const amount = (obj: Obj, key: string, path: string): number => integer(obj, key, path, 1, MAX_SATS);
const time = (obj: Obj, key: string, path: string): number => integer(obj, key, path, 0);

function version(obj: Obj, path: string): 1 {
  if (obj['version'] !== 1) throw new MalformedError(`${path}.version must be 1`);
  return 1;
}

function signature(obj: Obj, key: string, path: string): string {
  const value = obj[key];
  if (typeof value !== 'string' || value.length > MAX_SIG_CHARS || !BASE64URL_RE.test(value)) {
    throw new MalformedError(`${path}.${key} must be a base64url signature`);
  }
  return value;
}

/** Validate a published public key reference. */
export function parsePublicKey(value: unknown, path = 'key'): PublicKeyRef {
  const obj = object(value, path, ['alg', 'spki']);
  const alg = obj['alg'];
  if (alg !== 'ed25519' && alg !== 'p256') throw new MalformedError(`${path}.alg must be ed25519 or p256`);
  const spki = obj['spki'];
  if (typeof spki !== 'string' || spki.length > MAX_KEY_CHARS || !BASE64URL_RE.test(spki)) {
    throw new MalformedError(`${path}.spki must be base64url of at most ${MAX_KEY_CHARS} characters`);
  }
  return { alg: alg satisfies KeyAlg, spki };
}

function parseSigned<T>(value: unknown, path: string, parseBody: (body: unknown, path: string) => T): Signed<T> {
  const obj = object(value, path, ['body', 'sig', 'by']);
  const body = parseBody(obj['body'], `${path}.body`);
  return { body, sig: signature(obj, 'sig', path), by: string(obj, 'by', path, SIGNER_RE) };
}

function domainRecordBody(value: unknown, path: string): DomainRecord {
  const obj = object(value, path, ['version', 'domain', 'key', 'publisher', 'operates', 'createdAt']);
  const operates = obj['operates'];
  if (!Array.isArray(operates) || operates.length > MAX_OPERATES) {
    throw new MalformedError(`${path}.operates must be an array of at most ${MAX_OPERATES} names`);
  }
  const names = operates.map((name: unknown, i) => {
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new MalformedError(`${path}.operates[${i}] must be a name`);
    return name;
  });
  return {
    version: version(obj, path),
    domain: string(obj, 'domain', path, NAME_RE),
    key: parsePublicKey(obj['key'], `${path}.key`),
    publisher: string(obj, 'publisher', path, PUBLISHER_RE),
    operates: names,
    createdAt: time(obj, 'createdAt', path),
  };
}

function certificateBody(value: unknown, path: string): HubKeyCertificate {
  const obj = object(value, path, ['version', 'kind', 'domain', 'key', 'notBefore', 'notAfter']);
  if (obj['kind'] !== 'hub-key') throw new MalformedError(`${path}.kind must be "hub-key"`);
  const body: HubKeyCertificate = {
    version: version(obj, path),
    kind: 'hub-key',
    domain: string(obj, 'domain', path, NAME_RE),
    key: parsePublicKey(obj['key'], `${path}.key`),
    notBefore: time(obj, 'notBefore', path),
    notAfter: time(obj, 'notAfter', path),
  };
  if (body.notAfter < body.notBefore || body.notAfter - body.notBefore > MAX_HUB_KEY_MS) {
    throw new MalformedError(`${path} must be valid for at most ${MAX_HUB_KEY_MS} ms`);
  }
  return body;
}

/** The `certificate` field of an offer or acceptance body, kept only when present (absent fields are not signed). */
function optionalCertificate(obj: Obj, path: string): { certificate?: Signed<HubKeyCertificate> } {
  if (obj['certificate'] === undefined) return {};
  return { certificate: parseSigned(obj['certificate'], `${path}.certificate`, certificateBody) };
}

function revocationBody(value: unknown, path: string): RevocationBody {
  const obj = object(value, path, ['version', 'kind', 'domain', 'deviceId', 'deviceKey', 'reason', 'at']);
  if (obj['kind'] !== 'revocation') throw new MalformedError(`${path}.kind must be "revocation"`);
  return {
    version: version(obj, path),
    kind: 'revocation',
    domain: string(obj, 'domain', path, NAME_RE),
    deviceId: string(obj, 'deviceId', path, NAME_RE),
    deviceKey: parsePublicKey(obj['deviceKey'], `${path}.deviceKey`),
    reason: string(obj, 'reason', path, REASON_RE),
    at: time(obj, 'at', path),
  };
}

/** Key rotations per domain: far more than any domain needs, so a domain's key chain stays a small item. */
export const MAX_ROTATIONS = 1_000;

function keyRotationBody(value: unknown, path: string): KeyRotationBody {
  const obj = object(value, path, ['version', 'kind', 'domain', 'seq', 'key', 'previous', 'at']);
  if (obj['kind'] !== 'key-rotation') throw new MalformedError(`${path}.kind must be "key-rotation"`);
  return {
    version: version(obj, path),
    kind: 'key-rotation',
    domain: string(obj, 'domain', path, NAME_RE),
    seq: integer(obj, 'seq', path, 1, MAX_ROTATIONS),
    key: parsePublicKey(obj['key'], `${path}.key`),
    previous: string(obj, 'previous', path, ID_RE),
    at: time(obj, 'at', path),
  };
}

function renewalBody(value: unknown, path: string): RenewalRequest {
  const obj = object(value, path, ['version', 'kind', 'domain', 'deviceId', 'at']);
  if (obj['kind'] !== 'renewal') throw new MalformedError(`${path}.kind must be "renewal"`);
  return {
    version: version(obj, path),
    kind: 'renewal',
    domain: string(obj, 'domain', path, NAME_RE),
    deviceId: string(obj, 'deviceId', path, NAME_RE),
    at: time(obj, 'at', path),
  };
}

function credentialBody(value: unknown, path: string): DeviceCredential {
  const obj = object(value, path, ['version', 'domain', 'deviceId', 'deviceKey', 'creditLimit', 'notBefore', 'notAfter']);
  return {
    version: version(obj, path),
    domain: string(obj, 'domain', path, NAME_RE),
    deviceId: string(obj, 'deviceId', path, NAME_RE),
    deviceKey: parsePublicKey(obj['deviceKey'], `${path}.deviceKey`),
    creditLimit: integer(obj, 'creditLimit', path, 0, MAX_SATS),
    notBefore: time(obj, 'notBefore', path),
    notAfter: time(obj, 'notAfter', path),
  };
}

function offerBody(value: unknown, path: string): Offer {
  const obj = object(value, path, [
    'version', 'offerId', 'providerDomain', 'providerDevice', 'service', 'price', 'payTo', 'consumer', 'expiresAt', 'cap', 'certificate',
  ]);
  const offer: Offer = {
    ...optionalCertificate(obj, path),
    ...(obj['cap'] === undefined ? {} : { cap: amount(obj, 'cap', path) }),
    version: version(obj, path),
    offerId: string(obj, 'offerId', path, NAME_RE),
    providerDomain: string(obj, 'providerDomain', path, NAME_RE),
    providerDevice: string(obj, 'providerDevice', path, NAME_RE),
    service: string(obj, 'service', path, SERVICE_RE),
    price: amount(obj, 'price', path),
    payTo: string(obj, 'payTo', path, ADDRESS_RE),
    consumer: string(obj, 'consumer', path, SIGNER_RE),
    expiresAt: time(obj, 'expiresAt', path),
  };
  if (offer.cap !== undefined && offer.cap < offer.price) {
    throw new MalformedError(`${path}.cap (${offer.cap}) is below the price (${offer.price})`);
  }
  return offer;
}

function obligationBody(value: unknown, path: string): ObligationBody {
  const obj = object(value, path, [
    'version', 'consumerDomain', 'consumerDevice', 'providerDomain', 'providerDevice', 'service', 'amount', 'payTo',
    'offerId', 'issuedAt', 'dueBy', 'seq', 'prev', 'credential',
  ]);
  return {
    version: version(obj, path),
    consumerDomain: string(obj, 'consumerDomain', path, NAME_RE),
    consumerDevice: string(obj, 'consumerDevice', path, NAME_RE),
    providerDomain: string(obj, 'providerDomain', path, NAME_RE),
    providerDevice: string(obj, 'providerDevice', path, NAME_RE),
    service: string(obj, 'service', path, SERVICE_RE),
    amount: amount(obj, 'amount', path),
    payTo: string(obj, 'payTo', path, ADDRESS_RE),
    offerId: string(obj, 'offerId', path, NAME_RE),
    issuedAt: time(obj, 'issuedAt', path),
    dueBy: time(obj, 'dueBy', path),
    seq: integer(obj, 'seq', path, 1),
    prev: string(obj, 'prev', path, ID_RE),
    credential: parseSigned(obj['credential'], `${path}.credential`, credentialBody),
  };
}

function acceptanceBody(value: unknown, path: string): AcceptanceBody {
  const obj = object(value, path, ['version', 'obligationId', 'providerDomain', 'payTo', 'acceptedAt', 'certificate']);
  return {
    ...optionalCertificate(obj, path),
    version: version(obj, path),
    obligationId: string(obj, 'obligationId', path, ID_RE),
    providerDomain: string(obj, 'providerDomain', path, NAME_RE),
    payTo: string(obj, 'payTo', path, ADDRESS_RE),
    acceptedAt: time(obj, 'acceptedAt', path),
  };
}

/** Validate the structure of an obligation (not its signatures). */
export function parseObligation(json: unknown, path = 'obligation'): Obligation {
  const obj = object(json, path, ['id', 'body', 'sig']);
  return {
    id: string(obj, 'id', path, ID_RE),
    body: obligationBody(obj['body'], `${path}.body`),
    sig: signature(obj, 'sig', path),
  };
}

/** Validate the structure of a signed offer. */
export function parseOffer(json: unknown): Signed<Offer> {
  return parseSigned(json, 'offer', offerBody);
}

/** Validate the structure of a signed device credential. */
export function parseCredential(json: unknown): Signed<DeviceCredential> {
  return parseSigned(json, 'credential', credentialBody);
}

/** Validate the structure of a signed domain record. */
export function parseDomainRecord(json: unknown): Signed<DomainRecord> {
  return parseSigned(json, 'domainRecord', domainRecordBody);
}

/** Validate the structure of an obligation with its acceptance, as stored on the `obligations` stream. */
export function parseAccepted(json: unknown): AcceptedObligation {
  const obj = object(json, 'accepted', ['obligation', 'acceptance']);
  return {
    obligation: parseObligation(obj['obligation'], 'accepted.obligation'),
    acceptance: parseSigned(obj['acceptance'], 'accepted.acceptance', acceptanceBody),
  };
}

function outcomeBody(value: unknown, path: string): OutcomeBody {
  const obj = object(value, path, [
    'version', 'kind', 'obligationId', 'outcome', 'consumerDomain', 'providerDomain', 'amount', 'at', 'txid',
  ]);
  if (obj['kind'] !== 'outcome') throw new MalformedError(`${path}.kind must be "outcome"`);
  const outcome = obj['outcome'];
  if (outcome !== 'fulfilled' && outcome !== 'defaulted') throw new MalformedError(`${path}.outcome must be fulfilled or defaulted`);
  const txid = obj['txid'] === null ? null : string(obj, 'txid', path, TXID_RE);
  if ((outcome === 'fulfilled') !== (txid !== null)) {
    throw new MalformedError(`${path}.txid must name the payment of a fulfilled obligation, and only then`);
  }
  return {
    version: version(obj, path),
    kind: 'outcome',
    obligationId: string(obj, 'obligationId', path, ID_RE),
    outcome,
    consumerDomain: string(obj, 'consumerDomain', path, NAME_RE),
    providerDomain: string(obj, 'providerDomain', path, NAME_RE),
    amount: amount(obj, 'amount', path),
    at: time(obj, 'at', path),
    txid,
  };
}

function array(value: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max) {
    throw new MalformedError(`${path} must be an array of 1 to ${max} entries`);
  }
  return value;
}

/** Fee bumps of one settlement a record may list. */
const MAX_REPLACES = 16;

function settlementBody(value: unknown, path: string): SettlementRecord {
  const obj = object(value, path, ['version', 'settlementId', 'consumerDomain', 'phase', 'txid', 'outputs', 'at', 'replaces']);
  const phase = obj['phase'];
  if (phase !== 'intent' && phase !== 'broadcast' && phase !== 'confirmed') {
    throw new MalformedError(`${path}.phase must be intent, broadcast or confirmed`);
  }
  const outputs = array(obj['outputs'], `${path}.outputs`, MAX_OUTPUTS).map((o, i) => {
    const at = `${path}.outputs[${i}]`;
    const out = object(o, at, ['payTo', 'providerDomain', 'amount', 'obligationIds']);
    const ids = array(out['obligationIds'], `${at}.obligationIds`, MAX_IDS_PER_OUTPUT).map((id, j) => {
      if (typeof id !== 'string' || !ID_RE.test(id)) throw new MalformedError(`${at}.obligationIds[${j}] must be an obligation id`);
      return id;
    });
    return {
      payTo: string(out, 'payTo', at, ADDRESS_RE),
      providerDomain: string(out, 'providerDomain', at, NAME_RE),
      amount: amount(out, 'amount', at),
      obligationIds: ids,
    };
  });
  return {
    version: version(obj, path),
    settlementId: string(obj, 'settlementId', path, ID_RE),
    consumerDomain: string(obj, 'consumerDomain', path, NAME_RE),
    phase,
    txid: string(obj, 'txid', path, TXID_RE),
    outputs,
    at: time(obj, 'at', path),
    ...(obj['replaces'] === undefined ? {} : { replaces: replaced(obj, path) }),
  };
}

/** A settlement record's `replaces`: 1 to MAX_REPLACES txids, none of them its own `txid`. */
function replaced(obj: Obj, path: string): string[] {
  const txids = array(obj['replaces'], `${path}.replaces`, MAX_REPLACES).map((t, i) => {
    if (typeof t !== 'string' || !TXID_RE.test(t)) throw new MalformedError(`${path}.replaces[${i}] must be a txid`);
    if (t === obj['txid']) throw new MalformedError(`${path}.replaces[${i}] is the record's own txid`);
    return t;
  });
  if (new Set(txids).size !== txids.length) throw new MalformedError(`${path}.replaces names a txid twice`);
  return txids;
}

/** Validate the structure of a signed outcome record (`outcome:<id>` on the `obligations` stream). */
export function parseOutcome(json: unknown): Signed<OutcomeBody> {
  return parseSigned(json, 'outcome', outcomeBody);
}

/** Validate the structure of a signed settlement record (the `settlements` stream). */
export function parseSettlement(json: unknown): Signed<SettlementRecord> {
  return parseSigned(json, 'settlement', settlementBody);
}

// ---- builders and verifiers ----

/** The provider domain signs the outcome it decided. */
export function createOutcome(body: OutcomeBody, providerDomainKey: PrivateKeyRef): Signed<OutcomeBody>;
export function createOutcome(body: OutcomeBody, providerDomainKey: AsyncSigner): Promise<Signed<OutcomeBody>>;
export function createOutcome(body: OutcomeBody, providerDomainKey: SigningKey): Signed<OutcomeBody> | Promise<Signed<OutcomeBody>> {
  outcomeBody(body, 'outcome.body');
  return signValue(body, providerDomainKey, body.providerDomain);
}

/** The consumer domain signs each phase of its settlement. */
export function createSettlementRecord(body: SettlementRecord, consumerDomainKey: PrivateKeyRef): Signed<SettlementRecord>;
export function createSettlementRecord(body: SettlementRecord, consumerDomainKey: AsyncSigner): Promise<Signed<SettlementRecord>>;
export function createSettlementRecord(
  body: SettlementRecord,
  consumerDomainKey: SigningKey,
): Signed<SettlementRecord> | Promise<Signed<SettlementRecord>> {
  settlementBody(body, 'settlement.body');
  return signValue(body, consumerDomainKey, body.consumerDomain);
}

/** The domain revokes a device key: published on the `domains` stream, honoured at every hub. */
export function createRevocation(body: Omit<RevocationBody, 'version' | 'kind'>, domainKey: PrivateKeyRef): Signed<RevocationBody>;
export function createRevocation(body: Omit<RevocationBody, 'version' | 'kind'>, domainKey: AsyncSigner): Promise<Signed<RevocationBody>>;
export function createRevocation(
  input: Omit<RevocationBody, 'version' | 'kind'>,
  domainKey: SigningKey,
): Signed<RevocationBody> | Promise<Signed<RevocationBody>> {
  const body: RevocationBody = { version: 1, kind: 'revocation', ...input };
  revocationBody(body, 'revocation.body');
  return signValue(body, domainKey, body.domain);
}

/** Validate the structure of a signed revocation record. */
export function parseRevocation(json: unknown): Signed<RevocationBody> {
  return parseSigned(json, 'revocation', revocationBody);
}

/** The domain replaces its key: signed by the key it replaces (core/domain-keys.ts checks the chain). */
export function createKeyRotation(body: Omit<KeyRotationBody, 'version' | 'kind'>, replacedKey: PrivateKeyRef): Signed<KeyRotationBody>;
export function createKeyRotation(body: Omit<KeyRotationBody, 'version' | 'kind'>, replacedKey: AsyncSigner): Promise<Signed<KeyRotationBody>>;
export function createKeyRotation(
  input: Omit<KeyRotationBody, 'version' | 'kind'>,
  replacedKey: SigningKey,
): Signed<KeyRotationBody> | Promise<Signed<KeyRotationBody>> {
  const body: KeyRotationBody = { version: 1, kind: 'key-rotation', ...input };
  keyRotationBody(body, 'rotation.body');
  return signValue(body, replacedKey, body.domain);
}

/** Validate the structure of a signed key rotation record. */
export function parseKeyRotation(json: unknown): Signed<KeyRotationBody> {
  return parseSigned(json, 'rotation', keyRotationBody);
}

/** A device's request for a fresh credential, signed with its own key (`by` = `domain/device`). */
export function createRenewalRequest(input: Omit<RenewalRequest, 'version' | 'kind'>, deviceKey: PrivateKeyRef): Signed<RenewalRequest> {
  const body: RenewalRequest = { version: 1, kind: 'renewal', ...input };
  renewalBody(body, 'renewal.body');
  return signValue(body, deviceKey, `${body.domain}/${body.deviceId}`);
}

/** Validate the structure of a signed renewal request. */
export function parseRenewalRequest(json: unknown): Signed<RenewalRequest> {
  return parseSigned(json, 'renewal', renewalBody);
}

/** The domain key certifies a hub key for [notBefore, notAfter] (at most MAX_HUB_KEY_MS). */
export function certifyHubKey(body: Omit<HubKeyCertificate, 'version' | 'kind'>, domainKey: PrivateKeyRef): Signed<HubKeyCertificate>;
export function certifyHubKey(body: Omit<HubKeyCertificate, 'version' | 'kind'>, domainKey: AsyncSigner): Promise<Signed<HubKeyCertificate>>;
export function certifyHubKey(
  input: Omit<HubKeyCertificate, 'version' | 'kind'>,
  domainKey: SigningKey,
): Signed<HubKeyCertificate> | Promise<Signed<HubKeyCertificate>> {
  const body: HubKeyCertificate = { version: 1, kind: 'hub-key', ...input };
  certificateBody(body, 'certificate.body');
  return signValue(body, domainKey, body.domain);
}

/**
 * The key that must have signed a body of `domain` at time `at`: the hub key its
 * certificate names when it carries one (the certificate signed by `domainKey`,
 * for `domain`, valid at `at`), else `domainKey` itself. BadSignatureError otherwise.
 */
export function signingKeyOf(
  body: { certificate?: Signed<HubKeyCertificate> },
  domain: string,
  domainKey: PublicKeyRef,
  at: number,
): PublicKeyRef {
  const cert = body.certificate;
  if (cert === undefined) return domainKey;
  const c = cert.body;
  // the same certificate comes with every acceptance and standing offer of its hub key: verified once per process
  if (cert.by !== domain || c.domain !== domain || !verifySignedOnce(cert, domainKey)) {
    throw new BadSignatureError(`hub key certificate is not signed by ${domain}`, { domain });
  }
  if (at < c.notBefore || at > c.notAfter) {
    throw new BadSignatureError(`hub key certificate of ${domain} is not valid at ${at}`, { at, notBefore: c.notBefore, notAfter: c.notAfter });
  }
  return c.key;
}

/**
 * Checks `record` is signed by `domain` with `domainKey` (the key of that domain's record on
 * the ledger); BadSignatureError otherwise.
 */
export function verifySignedBy<T>(record: Signed<T>, domain: string, domainKey: PublicKeyRef): void {
  if (record.by !== domain || !verifySigned(record, domainKey)) {
    throw new BadSignatureError(`record is not signed by ${domain}`, { domain, by: record.by });
  }
}

/** A domain's self-signed record, published on the `domains` stream when its back-end joins. */
export function createDomainRecord(
  input: { domain: string; publisher: string; operates?: string[]; createdAt: number },
  keys: { publicKey: PublicKeyRef; privateKey: PrivateKeyRef },
): Signed<DomainRecord>;
export function createDomainRecord(
  input: { domain: string; publisher: string; operates?: string[]; createdAt: number },
  keys: { publicKey: PublicKeyRef; privateKey: AsyncSigner },
): Promise<Signed<DomainRecord>>;
export function createDomainRecord(
  input: { domain: string; publisher: string; operates?: string[]; createdAt: number },
  keys: { publicKey: PublicKeyRef; privateKey: SigningKey },
): Signed<DomainRecord> | Promise<Signed<DomainRecord>> {
  const body: DomainRecord = {
    version: 1,
    domain: input.domain,
    key: keys.publicKey,
    publisher: input.publisher,
    operates: input.operates ?? [],
    createdAt: input.createdAt,
  };
  domainRecordBody(body, 'domainRecord.body');
  return signValue(body, keys.privateKey, input.domain);
}

/** Checks a domain record is self-signed by the key it publishes; BadSignatureError otherwise. */
export function verifyDomainRecord(record: Signed<DomainRecord>): void {
  if (record.by !== record.body.domain || !verifySigned(record, record.body.key)) {
    throw new BadSignatureError(`domain record of ${record.body.domain} is not self-signed`, { domain: record.body.domain });
  }
}

/** An SCB enrols a device: the credential binds the device key to the domain, with a per-obligation cap. */
export function issueCredential(input: Omit<DeviceCredential, 'version'>, domainKey: PrivateKeyRef): Signed<DeviceCredential>;
export function issueCredential(input: Omit<DeviceCredential, 'version'>, domainKey: AsyncSigner): Promise<Signed<DeviceCredential>>;
export function issueCredential(
  input: Omit<DeviceCredential, 'version'>,
  domainKey: SigningKey,
): Signed<DeviceCredential> | Promise<Signed<DeviceCredential>> {
  const body: DeviceCredential = { version: 1, ...input };
  credentialBody(body, 'credential.body');
  if (body.notAfter < body.notBefore) throw new MalformedError('credential.body.notAfter is before notBefore');
  return signValue(body, domainKey, input.domain);
}

/**
 * Checks the credential is signed by `domainKey` and, when `at` is given, valid at that
 * time (notBefore <= at <= notAfter). Throws BadCredentialError.
 */
export function verifyCredential(credential: Signed<DeviceCredential>, domainKey: PublicKeyRef, at?: number): void {
  const { domain, deviceId, notBefore, notAfter } = credential.body;
  if (credential.by !== domain || !verifySigned(credential, domainKey)) {
    throw new BadCredentialError(`credential of ${domain}/${deviceId} is not signed by its domain`, { domain, deviceId });
  }
  if (at !== undefined && (at < notBefore || at > notAfter)) {
    throw new BadCredentialError(`credential of ${domain}/${deviceId} is not valid at ${at}`, { at, notBefore, notAfter });
  }
}

/** A fresh random offer id (32 hex characters). */
export function newOfferId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The SP domain's signed offer, handed by an SPD to the requesting SCD: signed with the
 * domain key, or with a hub key whose certificate (input.certificate) the domain key signed.
 */
export function createOffer(input: Omit<Offer, 'version'>, providerKey: PrivateKeyRef): Signed<Offer> {
  const body: Offer = { version: 1, ...input };
  if (body.certificate === undefined) delete body.certificate;
  if (body.cap === undefined) delete body.cap;
  offerBody(body, 'offer.body');
  return signValue(body, providerKey, input.providerDomain);
}

/**
 * Checks the offer is signed by its provider domain's key, directly or through a hub key
 * certificate valid when the offer expires; BadSignatureError otherwise.
 */
export function verifyOffer(offer: Signed<Offer>, providerDomainKey: PublicKeyRef): void {
  const key = signingKeyOf(offer.body, offer.body.providerDomain, providerDomainKey, offer.body.expiresAt);
  if (offer.by !== offer.body.providerDomain || !verifySigned(offer, key)) {
    throw new BadSignatureError(`offer ${offer.body.offerId} is not signed by ${offer.body.providerDomain}`, {
      offerId: offer.body.offerId,
    });
  }
}

/** True when two domain records publish the same key. */
export function sameDomainKey(a: DomainRecord, b: DomainRecord): boolean {
  return sameKey(a.key, b.key);
}
