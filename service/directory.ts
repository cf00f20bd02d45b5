/**
 * Domain records from the ledger's `domains` stream: the only source of other
 * domains' keys. The first validly self-signed record published for a domain
 * wins (a later record cannot replace a key); records are cached once found.
 */
import { parseDomainRecord, verifyDomainRecord } from '../core/records.ts';
import type { DomainRecord, Signed } from '../core/types.ts';
import type { Ledger } from '../adapters/ports.ts';

export const domainKey = (domain: string) => `domain:${domain}`;

export class DomainDirectory {
  private readonly cache = new Map<string, Signed<DomainRecord>>();

  constructor(private readonly ledger: Ledger) {}

  /** The domain's record, or undefined when none valid is on the ledger. */
  async get(domain: string): Promise<Signed<DomainRecord> | undefined> {
    const hit = this.cache.get(domain);
    if (hit) return hit;
    for (const item of await this.ledger.listByKey('domains', domainKey(domain))) {
      try {
        const record = parseDomainRecord(item.data);
        verifyDomainRecord(record);
        if (record.body.domain !== domain) continue;
        this.cache.set(domain, record);
        return record;
      } catch {
        // not a valid record: ignore it, as every reader of the ledger would
      }
    }
    return undefined;
  }

  /** Every valid domain record on the ledger (first per domain). */
  async all(): Promise<Signed<DomainRecord>[]> {
    const seen = new Map<string, Signed<DomainRecord>>();
    for (const item of await this.ledger.list('domains')) {
      try {
        const record = parseDomainRecord(item.data);
        verifyDomainRecord(record);
        if (!seen.has(record.body.domain)) seen.set(record.body.domain, record);
      } catch {
        // skip invalid records
      }
    }
    for (const [d, r] of seen) this.cache.set(d, r);
    return [...seen.values()];
  }
}
