/**
 * Domain records: the only source of other domains' keys and hub identities.
 * A record counts only when it is validly self-signed AND was actually
 * published on the ledger by the address it names as its publisher (its hub);
 * the first such record of a domain wins and a later one can never replace it.
 *
 * Lookups go memory → store → ledger. The ledger follower (service/follow.ts)
 * puts every valid record it reads into the store, so acceptance finds keys
 * without the ledger, even in a fresh container with the ledger down.
 */
import { InvalidRecordError, ObligationError } from '../core/errors.ts';
import { checkRotation, currentKey, withRotation, type DomainKeys } from '../core/domain-keys.ts';
import { verifySignedOnce } from '../core/keys.ts';
import { parseDomainRecord, parseKeyRotation, verifyDomainRecord } from '../core/records.ts';
import type { DomainRecord, KeyRotationBody, PublicKeyRef, Signed } from '../core/types.ts';
import type { Ledger, LedgerItem } from '../adapters/ports.ts';

export const domainKey = (domain: string) => `domain:${domain}`;
/** A key rotation's own ledger key (its first); it is also under its domain's `domain:` key. */
export const rotationKey = (domain: string, seq: number) => `key-rotation:${domain}:${seq}`;

/** True when the item looks like a key rotation (its first key); the reader still verifies everything. */
export const isKeyRotationItem = (item: LedgerItem): boolean => item.keys[0]?.startsWith('key-rotation:') ?? false;

/** How long a process trusts its copy of a domain's keys before reading the store again (a rotation shows within this). */
export const DOMAIN_KEYS_TTL_MS = 60_000;
/** A copy younger than this is not read again for a signature that fails with it (a flood of forgeries costs no reads). */
const REREAD_AFTER_MS = 1_000;

/** The part of the Store the directory needs. */
export interface DomainRecordStore {
  /** The domain's record and rotations, in order. */
  getDomainKeys(domain: string): Promise<DomainKeys | undefined>;
  /** First one wins: false (nothing written) when the domain already has a record. */
  putDomainRecord(record: Signed<DomainRecord>): Promise<boolean>;
  /** Appends rotation `seq` if exactly `seq − 1` are held; false (nothing written) otherwise. */
  addKeyRotation(rotation: Signed<KeyRotationBody>): Promise<boolean>;
}

/**
 * A domain record read from the ledger: structure, self-signature, and the item's
 * real publisher equal to the publisher the record names. InvalidRecordError otherwise.
 */
export function readDomainItem(item: LedgerItem): Signed<DomainRecord> {
  let record: Signed<DomainRecord>;
  try {
    record = parseDomainRecord(item.data);
    verifyDomainRecord(record);
  } catch (e) {
    throw new InvalidRecordError(`domain record: ${(e as Error).message}`, { txid: item.txid });
  }
  if (item.publisher !== record.body.publisher) {
    throw new InvalidRecordError(`domain record of ${record.body.domain} names publisher ${record.body.publisher} but was published by ${item.publisher}`, {
      txid: item.txid,
      domain: record.body.domain,
    });
  }
  if (!item.keys.includes(domainKey(record.body.domain))) {
    throw new InvalidRecordError(`domain record of ${record.body.domain} is not under its key`, { txid: item.txid });
  }
  return record;
}

/**
 * A key rotation read from the ledger: its structure and ledger keys (the chain,
 * its signature and its publisher are checked by DomainDirectory.rotate, against
 * the domain's keys). InvalidRecordError otherwise.
 */
export function readKeyRotationItem(item: LedgerItem): Signed<KeyRotationBody> {
  let rotation: Signed<KeyRotationBody>;
  try {
    rotation = parseKeyRotation(item.data);
  } catch (e) {
    throw new InvalidRecordError(`key rotation: ${(e as Error).message}`, { txid: item.txid });
  }
  const r = rotation.body;
  if (item.keys[0] !== rotationKey(r.domain, r.seq) || !item.keys.includes(domainKey(r.domain))) {
    throw new InvalidRecordError(`key rotation ${r.seq} of ${r.domain} is not under its keys`, { txid: item.txid });
  }
  return rotation;
}

export class DomainDirectory {
  private readonly cache = new Map<string, { keys: DomainKeys; at: number }>();

  constructor(
    private readonly ledger: Ledger,
    private readonly store: DomainRecordStore,
    private readonly ttlMs = DOMAIN_KEYS_TTL_MS,
  ) {}

  /** The domain's record (its identity: name, first key, hub), or undefined when none valid is known here or on the ledger. */
  async get(domain: string): Promise<Signed<DomainRecord> | undefined> {
    return (await this.keys(domain))?.record;
  }

  /**
   * The domain's record and key rotations: memory (for `ttlMs`) → store → ledger.
   * The ledger follower keeps the store's copy current.
   */
  async keys(domain: string): Promise<DomainKeys | undefined> {
    const hit = this.cache.get(domain);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.keys;
    const stored = await this.store.getDomainKeys(domain);
    if (stored) return this.keep(stored);
    let keys: DomainKeys | undefined;
    for (const item of await this.ledger.listByKey('domains', domainKey(domain))) {
      if (keys === undefined) {
        const record = validOrUndefined(item);
        if (record?.body.domain === domain) keys = { record: await this.remember(record), rotations: [] };
      } else if (isKeyRotationItem(item)) {
        try {
          await this.rotate(readKeyRotationItem(item), item.publisher);
        } catch (e) {
          if (!(e instanceof InvalidRecordError)) throw e; // an invalid one is ignored, as every reader of the ledger ignores it
        }
      }
    }
    return keys && this.cache.get(domain)?.keys;
  }

  /**
   * The domain's key now, to check `signed` (a credential, say) live: only the current key
   * counts (core/domain-keys.ts). When `signed` does not verify with this process's copy,
   * the store is read again once, since another process may have followed a rotation.
   * Undefined for an unknown domain.
   */
  async currentKey(domain: string, signed: Signed<unknown>): Promise<PublicKeyRef | undefined> {
    let keys = await this.keys(domain);
    const at = this.cache.get(domain)?.at ?? 0;
    if (keys && !verifySignedOnce(signed, currentKey(keys)) && Date.now() - at >= REREAD_AFTER_MS) {
      this.cache.delete(domain);
      keys = await this.keys(domain);
    }
    return keys && currentKey(keys);
  }

  /** Keep a verified record (first one wins); returns the record that stands. */
  async remember(record: Signed<DomainRecord>): Promise<Signed<DomainRecord>> {
    const domain = record.body.domain;
    if (!(await this.store.putDomainRecord(record))) {
      const first = await this.store.getDomainKeys(domain);
      if (first) return this.keep(first).record;
    }
    this.keep({ record, rotations: [] });
    return record;
  }

  /**
   * Add a key rotation published by `publisher`: it must come from the domain's hub and
   * extend the domain's chain (core/domain-keys.ts checkRotation). True when it was new
   * here, false when already held; InvalidRecordError otherwise.
   */
  async rotate(rotation: Signed<KeyRotationBody>, publisher: string): Promise<boolean> {
    const domain = rotation.body.domain;
    const invalid = (why: string) => new InvalidRecordError(`key rotation ${rotation.body.seq} of ${domain}: ${why}`, { domain, seq: rotation.body.seq });
    // the store's copy, not this process's (another process may have added rotations)
    const keys = (await this.store.getDomainKeys(domain)) ?? (this.cache.delete(domain), await this.keys(domain));
    if (!keys) throw invalid('no record of the domain');
    if (publisher !== keys.record.body.publisher) throw invalid(`published by ${publisher}, not by its hub ${keys.record.body.publisher}`);
    const next = verdict(() => withRotation(keys, rotation), domain);
    if (next === keys) {
      this.keep(keys);
      return false;
    }
    if (await this.store.addKeyRotation(rotation)) {
      this.keep(next);
      return true;
    }
    // another process added one at this place first: ours stands only if it is the same
    const now = await this.store.getDomainKeys(domain);
    if (!now || verdict(() => checkRotation(now, rotation), domain) !== 'known') throw invalid('another rotation took its place');
    this.keep(now);
    return false;
  }

  /** Every valid domain record on the ledger (first per domain). */
  async all(): Promise<Signed<DomainRecord>[]> {
    const seen = new Map<string, Signed<DomainRecord>>();
    for (const item of await this.ledger.list('domains')) {
      const record = validOrUndefined(item);
      if (record && !seen.has(record.body.domain)) seen.set(record.body.domain, record);
    }
    return [...seen.values()];
  }

  private keep(keys: DomainKeys): DomainKeys {
    this.cache.set(keys.record.body.domain, { keys, at: Date.now() });
    return keys;
  }
}

/** A core check's typed failure (its message names the rotation) as the record's InvalidRecordError. */
function verdict<T>(check: () => T, domain: string): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof ObligationError) throw new InvalidRecordError(e.message, { domain, code: e.code });
    throw e;
  }
}

function validOrUndefined(item: LedgerItem): Signed<DomainRecord> | undefined {
  try {
    return readDomainItem(item);
  } catch {
    return undefined; // not a valid record: ignored, as every reader of the ledger ignores it
  }
}
