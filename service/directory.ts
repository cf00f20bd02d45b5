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
import { InvalidRecordError } from '../core/errors.ts';
import { parseDomainRecord, verifyDomainRecord } from '../core/records.ts';
import type { DomainRecord, Signed } from '../core/types.ts';
import type { Ledger, LedgerItem } from '../adapters/ports.ts';

export const domainKey = (domain: string) => `domain:${domain}`;

/** The part of the Store the directory needs. */
export interface DomainRecordStore {
  getDomainRecord(domain: string): Promise<Signed<DomainRecord> | undefined>;
  /** First one wins: false (nothing written) when the domain already has a record. */
  putDomainRecord(record: Signed<DomainRecord>): Promise<boolean>;
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

export class DomainDirectory {
  private readonly cache = new Map<string, Signed<DomainRecord>>();

  constructor(
    private readonly ledger: Ledger,
    private readonly store: DomainRecordStore,
  ) {}

  /** The domain's record, or undefined when none valid is known here or on the ledger. */
  async get(domain: string): Promise<Signed<DomainRecord> | undefined> {
    const hit = this.cache.get(domain) ?? (await this.store.getDomainRecord(domain));
    if (hit) {
      this.cache.set(domain, hit);
      return hit;
    }
    for (const item of await this.ledger.listByKey('domains', domainKey(domain))) {
      const record = validOrUndefined(item);
      if (record?.body.domain !== domain) continue;
      return this.remember(record);
    }
    return undefined;
  }

  /** Keep a verified record (first one wins); returns the record that stands. */
  async remember(record: Signed<DomainRecord>): Promise<Signed<DomainRecord>> {
    const domain = record.body.domain;
    if (!(await this.store.putDomainRecord(record))) {
      const first = await this.store.getDomainRecord(domain);
      if (first) record = first;
    }
    this.cache.set(domain, record);
    return record;
  }

  /** Every valid domain record on the ledger (first per domain). */
  async all(): Promise<Signed<DomainRecord>[]> {
    const seen = new Map<string, Signed<DomainRecord>>();
    for (const item of await this.ledger.list('domains')) {
      const record = validOrUndefined(item);
      if (record && !seen.has(record.body.domain)) seen.set(record.body.domain, record);
    }
    for (const [d, r] of seen) this.cache.set(d, r);
    return [...seen.values()];
  }
}

function validOrUndefined(item: LedgerItem): Signed<DomainRecord> | undefined {
  try {
    return readDomainItem(item);
  } catch {
    return undefined; // not a valid record: ignored, as every reader of the ledger ignores it
  }
}
