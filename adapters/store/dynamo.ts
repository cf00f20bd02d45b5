/**
 * The Store on DynamoDB (one table, see adapters/table.ts). Works the same on
 * AWS, LocalStack and dynalite: only conditional writes and single-item
 * updates are used (dynalite has no transactions), so every write is
 * idempotent by obligation id and every multi-item change is ordered so that a
 * retry after a crash completes it.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import { TTL_ATTRIBUTE } from '../table.ts';
import type {
  AcceptedObligation,
  DomainRecord,
  KeyAlg,
  OutcomeBody,
  ObligationStatus,
  Offer,
  Signed,
  PublicKeyRef,
  ReputationCounters,
  SettlementRecord,
} from '../../core/types.ts';

export interface HostedDomain {
  domain: string;
  role: 'consumer' | 'provider' | 'both';
  publicKey: PublicKeyRef;
  /** PKCS8 DER, base64url. Locally kept in the table; see README (production: KMS/Secrets Manager). */
  privateKey: { alg: KeyAlg; pkcs8: string };
  /** Minimum consumer reputation this domain accepts as a provider. */
  threshold: number;
  /** Bitcoin wallet name of the domain. */
  wallet: string;
  /** Provider payment address (providers). */
  payTo?: string;
  /** Where to send coins so the domain can pay its obligations (consumers). */
  fundingAddress?: string;
  /** Price list of a provider, sats per service. */
  prices: Record<string, number>;
  /** Consumers: settle automatically on schedule (false models a domain that never pays). */
  autoSettle: boolean;
  /** Providers: the longest payment term (dueBy − issuedAt) accepted, ms. */
  maxTermMs?: number;
  /** Providers: the shortest payment term accepted, ms (default: the configured MIN_TERM_MS). */
  minTermMs?: number;
  createdAt: number;
}

export interface ObligationItem {
  id: string;
  status: ObligationStatus;
  accepted: AcceptedObligation;
  consumerDomain: string;
  consumerDevice: string;
  providerDomain: string;
  amount: number;
  payTo: string;
  acceptedAt: number;
  dueBy: number;
  /** Ledger txid of the accepted obligation once published. */
  ledgerTxid?: string;
  /** Ledger txid of the outcome (fulfilled/defaulted) record once published. */
  outcomeTxid?: string;
  settlementId?: string;
  paidTxid?: string;
  /** Evidence weight applied when fulfilled (Sybil guard). */
  weight?: number;
  /** True once the outcome's evidence is in the consumer's counters. */
  counted?: boolean;
  closedAt?: number;
  /** 'ledger': accepted at another hub and learnt by the ledger follower (never published from here). */
  origin?: 'ledger';
  /** Ledger-learnt obligations: true once their amount is in the consumer's outstanding exposure. */
  exposed?: boolean;
  /** Ledger-learnt obligations: when this hub's follower applied their outcome (epoch ms). */
  followedAt?: number;
  /** Ledger-learnt obligations: when this hub's follower first stored them (epoch ms). */
  learntAt?: number;
  /** Why the ledger refused to publish it for good (it left the publication queue: parked). */
  publishError?: { field: 'ledgerTxid' | 'outcomeTxid'; code: string; message: string; at: number };
}

/** Fulfilled evidence waiting for its provider's standing (core/reputation.ts vouches). */
export interface ParkedEvidence {
  obligationId: string;
  consumerDomain: string;
  consumerHub: string;
  providerDomain: string;
  amount: number;
  at: number;
}

/** A consumer's settlement record naming an obligation, as the ledger follower read it. */
export interface SettlementRef {
  obligationId: string;
  settlementId: string;
  consumerDomain: string;
  txid: string;
  payTo: string;
}

/** An outcome claim the follower could not check yet (its payment unconfirmed, or its settlement not yet read). */
export interface PendingClaim {
  obligationId: string;
  /** The signed outcome as read from the ledger. */
  outcome: Signed<OutcomeBody>;
  firstSeen: number;
}


export interface StoredCounters extends ReputationCounters {
  version: number;
  /** Recently applied event keys (bounded ring): makes counter updates idempotent under retries. */
  recent: string[];
}

export interface SettlementItem extends Omit<SettlementRecord, 'phase'> {
  /**
   * The record phases, and 'failed' (kept here only): never broadcast (a run
   * could not move every obligation into it) or rejected with inputs spent
   * elsewhere; its obligations are back to 'accepted'.
   */
  phase: SettlementRecord['phase'] | 'failed';
  /** Signed raw transaction, kept so a crash after intent re-broadcasts the very same payment. */
  hex: string;
  /** Fencing token of the settle lease under which it was prepared. */
  fence?: number;
  failure?: string;
  failedAt?: number;
}

const RECENT_MAX = 256;
const EMPTY_COUNTERS: StoredCounters = {
  rScaled: 0,
  sScaled: 0,
  paidVolume: 0,
  outstanding: 0,
  version: 0,
  recent: [],
};

const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException || (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/** gsi3 partition of obligations with something still to publish on the ledger. */
const PENDING = 'PENDING';
/** gsi3 partition of obligations the ledger refused for good: set aside with their error for an operator. */
const PARKED = 'PARKED';

export class DynamoStore {
  /** Hosted-domain configs, cached briefly: read on every offer and acceptance, changed almost never. */
  private readonly hosted = new Map<string, { at: number; value: HostedDomain }>();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly hostedTtlMs = 5_000,
  ) {}

  close(): void {
    this.doc.destroy();
  }

  /** Run a conditional write: true when it was written, false when its condition failed. */
  private async conditional(op: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.send(op);
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  /** Wraps transport failures as UnavailableError; condition failures pass through. */
  private async send<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (isConditionFailure(e)) throw e;
      const name = (e as { name?: string } | null)?.name ?? 'Error';
      if (name === 'ValidationException' || name === 'ResourceNotFoundException') throw e;
      throw new UnavailableError(`store unavailable: ${name}`, { cause: String((e as Error).message ?? e) });
    }
  }

  private async get<T>(pk: string, sk: string, consistent = true): Promise<T | undefined> {
    const out = await this.send(() =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: consistent })),
    );
    return out.Item as T | undefined;
  }

  /** Put if absent. Returns false (and writes nothing) when the item exists. */
  private async putNew(item: Record<string, unknown>): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
      ),
    );
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>, limit = Infinity): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.send(() =>
        this.doc.send(new QueryCommand({ ...input, TableName: this.table, ExclusiveStartKey: start })),
      );
      items.push(...((out.Items ?? []) as Record<string, unknown>[]));
      start = out.LastEvaluatedKey;
    } while (start && items.length < limit);
    return items.slice(0, limit);
  }

  // ---- hosted domains -------------------------------------------------------

  async putHostedDomain(d: HostedDomain): Promise<boolean> {
    return this.putNew({ pk: `DOM#${d.domain}`, sk: 'CONFIG', gsi1pk: 'HOSTED', gsi1sk: d.domain, ...d });
  }

  async getHostedDomain(domain: string): Promise<HostedDomain | undefined> {
    const hit = this.hosted.get(domain);
    if (hit && Date.now() - hit.at < this.hostedTtlMs) return hit.value;
    const item = await this.get<HostedDomain & { pk: string }>(`DOM#${domain}`, 'CONFIG');
    const value = item && strip(item);
    if (value) this.hosted.set(domain, { at: Date.now(), value });
    return value;
  }

  async listHostedDomains(): Promise<HostedDomain[]> {
    const items = await this.queryAll({
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': 'HOSTED' },
    });
    return items.map((i) => strip(i) as unknown as HostedDomain);
  }

  // ---- domain records (verified, from the ledger) --------------------------------

  /** Keep a verified domain record; the first one of a domain wins. */
  async putDomainRecord(record: Signed<DomainRecord>): Promise<boolean> {
    return this.putNew({ pk: `DOMREC#${record.body.domain}`, sk: 'RECORD', record });
  }

  async getDomainRecord(domain: string): Promise<Signed<DomainRecord> | undefined> {
    const item = await this.get<{ record: Signed<DomainRecord> }>(`DOMREC#${domain}`, 'RECORD', false);
    return item?.record;
  }

  // ---- enrolled devices -------------------------------------------------------

  /** Record an enrolled device (a later enrolment of the same id replaces its key). */
  async putDevice(domain: string, deviceId: string, key: PublicKeyRef): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new PutCommand({ TableName: this.table, Item: { pk: `DEVICE#${domain}/${deviceId}`, sk: 'DEVICE', domain, deviceId, key } }),
      ),
    );
  }

  async getDevice(domain: string, deviceId: string): Promise<{ domain: string; deviceId: string; key: PublicKeyRef } | undefined> {
    const item = await this.get<{ domain: string; deviceId: string; key: PublicKeyRef }>(`DEVICE#${domain}/${deviceId}`, 'DEVICE');
    return item && { domain: item.domain, deviceId: item.deviceId, key: item.key };
  }

  // ---- counters ---------------------------------------------------------------

  async getCounters(domain: string): Promise<StoredCounters> {
    const item = await this.get<StoredCounters>(`REP#${domain}`, 'COUNTERS');
    return item ? { ...EMPTY_COUNTERS, ...strip(item) } : { ...EMPTY_COUNTERS, recent: [] };
  }

  /**
   * Apply `delta` to a domain's counters once per `eventKey`, with optimistic
   * concurrency (version). `guard` sees the current counters before the write
   * and may throw (e.g. OverCreditError) to refuse it; it is re-run on every
   * retry, so a check-then-write is never raced by a concurrent writer.
   * Returns applied=false when this event was already applied.
   */
  async applyCounters(
    domain: string,
    eventKey: string,
    delta: Partial<ReputationCounters>,
    guard?: (current: StoredCounters) => void,
    snapshot?: StoredCounters,
  ): Promise<{ applied: boolean; counters: StoredCounters }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      // a caller that just read the counters saves the first read; a conflict re-reads
      const cur = attempt === 0 && snapshot ? snapshot : await this.getCounters(domain);
      if (cur.recent.includes(eventKey)) return { applied: false, counters: cur };
      guard?.(cur);
      const next: StoredCounters = {
        rScaled: cur.rScaled + (delta.rScaled ?? 0),
        sScaled: cur.sScaled + (delta.sScaled ?? 0),
        paidVolume: cur.paidVolume + (delta.paidVolume ?? 0),
        outstanding: cur.outstanding + (delta.outstanding ?? 0),
        version: cur.version + 1,
        recent: [...cur.recent, eventKey].slice(-RECENT_MAX),
      };
      try {
        await this.send(() =>
          this.doc.send(
            new PutCommand({
              TableName: this.table,
              Item: { pk: `REP#${domain}`, sk: 'COUNTERS', domain, ...next },
              ConditionExpression: cur.version === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
              ExpressionAttributeValues: cur.version === 0 ? undefined : { ':v': cur.version },
            }),
          ),
        );
        return { applied: true, counters: next };
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
    throw new ConflictError(`counters of ${domain} are too contended; retry`, { domain, eventKey });
  }

  /** Overwrite counters (used by reconciliation from the ledger). */
  async resetCounters(domain: string, c: ReputationCounters): Promise<void> {
    const cur = await this.getCounters(domain);
    await this.send(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `REP#${domain}`, sk: 'COUNTERS', domain, ...c, version: cur.version + 1, recent: cur.recent },
        }),
      ),
    );
  }

  // ---- device chains ----------------------------------------------------------

  async getChainHead(domain: string, device: string): Promise<{ seq: number; id: string } | undefined> {
    const item = await this.get<{ seq: number; id: string }>(`DEV#${domain}/${device}`, 'CHAIN');
    return item ? { seq: item.seq, id: item.id } : undefined;
  }

  /**
   * Move the device's chain head from `prev` (seq-1), or from an older head, to {seq,id}. Idempotent: if
   * the head already is {seq,id} it succeeds. Returns false when another
   * obligation took that place first.
   */
  async advanceChain(domain: string, device: string, seq: number, id: string, prev: string): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `DEV#${domain}/${device}`, sk: 'CHAIN' },
          UpdateExpression: 'SET seq = :seq, id = :id',
          // after the head it knows, or a forward gap over links accepted at other hubs (core/policy.ts)
          ConditionExpression:
            seq === 1
              ? 'attribute_not_exists(pk) OR id = :id'
              : 'attribute_not_exists(pk) OR (seq = :prevSeq AND id = :prev) OR seq < :prevSeq OR id = :id',
          ExpressionAttributeValues:
            seq === 1 ? { ':seq': seq, ':id': id } : { ':seq': seq, ':id': id, ':prevSeq': seq - 1, ':prev': prev },
        }),
      ),
    );
  }

  // ---- obligations ------------------------------------------------------------

  /** Store an accepted obligation once; returns false if it was already stored. */
  async putObligation(item: ObligationItem): Promise<boolean> {
    return this.putNew({ pk: `OB#${item.id}`, sk: 'OB', ...obligationIndexes(item), ...item });
  }

  async getObligation(id: string): Promise<ObligationItem | undefined> {
    const item = await this.get<ObligationItem>(`OB#${id}`, 'OB');
    return item && (strip(item) as ObligationItem);
  }

  /**
   * Move an obligation from one of `from` to `to`, setting `extra`. Returns the
   * new item, or undefined when it is not in one of `from` (nothing written).
   * `expect.settlementId` adds a condition on the settlement it is in as the
   * write happens (null: in none), so a decision taken on an earlier read is
   * never applied to an obligation that moved meanwhile; `remove` deletes
   * attributes (e.g. settlementId when a failed settlement releases it).
   */
  async transition(
    id: string,
    from: ObligationStatus[],
    to: ObligationStatus,
    extra: Partial<ObligationItem> = {},
    opts: { pending?: boolean; expect?: { settlementId: string | null }; remove?: (keyof ObligationItem)[] } = {},
  ): Promise<ObligationItem | undefined> {
    const current = await this.getObligation(id);
    if (!current || !from.includes(current.status)) return undefined;
    const expected = opts.expect?.settlementId;
    if (expected !== undefined && (current.settlementId ?? null) !== expected) return undefined;
    const fields: Record<string, unknown> = { ...extra, status: to };
    if (opts.pending) {
      fields.gsi3pk = PENDING;
      fields.gsi3sk = `${String(current.acceptedAt).padStart(15, '0')}#${id}`;
    }
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries(fields).map(([k, v], i) => {
      names[`#a${i}`] = k;
      values[`:a${i}`] = v;
      return `#a${i} = :a${i}`;
    });
    names['#s'] = 'status';
    from.forEach((s, i) => (values[`:f${i}`] = s));
    const removes = (opts.remove ?? []).map((k, i) => {
      names[`#r${i}`] = k;
      return `#r${i}`;
    });
    let condition = `#s IN (${from.map((_, i) => `:f${i}`).join(', ')})`;
    if (expected !== undefined) {
      names['#sid'] = 'settlementId';
      if (expected === null) condition += ' AND attribute_not_exists(#sid)';
      else {
        values[':sid'] = expected;
        condition += ' AND #sid = :sid';
      }
    }
    const written = await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `OB#${id}`, sk: 'OB' },
          UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      ),
    );
    if (!written) return undefined;
    const next: ObligationItem = { ...current, ...extra, status: to };
    for (const k of opts.remove ?? []) delete next[k];
    return next;
  }

  /**
   * Record a ledger txid (of the acceptance or of the outcome) once. When
   * `doneIfStatus` is given and the obligation is still in that status, it
   * also leaves the pending-publication index; if the status moved meanwhile
   * (an outcome arrived), it stays pending so the outcome is published too.
   */
  async markPublished(
    id: string,
    field: 'ledgerTxid' | 'outcomeTxid',
    txid: string,
    doneIfStatus?: ObligationStatus,
  ): Promise<void> {
    const update = (done: boolean) =>
      this.conditional(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: `OB#${id}`, sk: 'OB' },
            UpdateExpression: `SET #f = if_not_exists(#f, :t)${done ? ' REMOVE gsi3pk, gsi3sk' : ''}`,
            ConditionExpression: done ? 'attribute_exists(pk) AND #s = :s' : 'attribute_exists(pk)',
            ExpressionAttributeNames: done ? { '#f': field, '#s': 'status' } : { '#f': field },
            ExpressionAttributeValues: done ? { ':t': txid, ':s': doneIfStatus } : { ':t': txid },
          }),
        ),
      );
    if (doneIfStatus !== undefined && (await update(true))) return;
    if (!(await update(false))) throw new NotFoundError(`obligation ${id} is not stored`, { id });
  }

  /**
   * The outcome's evidence is in the counters: the obligation leaves the
   * "open" partitions of its consumer and provider indexes, so the jobs that
   * look for open work never read it again.
   */
  async markCounted(item: Pick<ObligationItem, 'id' | 'consumerDomain' | 'providerDomain'>): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `OB#${item.id}`, sk: 'OB' },
          UpdateExpression: 'SET counted = :t, gsi1pk = :c, gsi2pk = :p',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: {
            ':t': true,
            ':c': partition('CONS', item.consumerDomain, false),
            ':p': partition('PROV', item.providerDomain, false),
          },
        }),
      ),
    );
  }

  /**
   * Set an obligation aside from the publication queue with the ledger's final
   * refusal (e.g. too large for a transaction): later runs no longer try it,
   * and `listParkedPublication` shows it to an operator.
   */
  async parkPublication(id: string, error: NonNullable<ObligationItem['publishError']>): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `OB#${id}`, sk: 'OB' },
          UpdateExpression: 'SET publishError = :e, gsi3pk = :parked',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':e': error, ':parked': PARKED },
        }),
      ),
    );
  }

  /** Obligations the ledger refused for good, oldest first (at most `limit`). */
  async listParkedPublication(limit = 100): Promise<ObligationItem[]> {
    const items = await this.queryAll(
      { IndexName: 'gsi3', KeyConditionExpression: 'gsi3pk = :p', ExpressionAttributeValues: { ':p': PARKED } },
      limit,
    );
    return items.map((i) => strip(i) as unknown as ObligationItem);
  }

  /** Obligations with an acceptance or outcome still to publish, oldest first. */
  async listPendingPublication(limit = 100): Promise<ObligationItem[]> {
    const items = await this.queryAll(
      { IndexName: 'gsi3', KeyConditionExpression: 'gsi3pk = :p', ExpressionAttributeValues: { ':p': PENDING } },
      limit,
    );
    return items.map((i) => strip(i) as unknown as ObligationItem);
  }

  /** A consumer domain's obligations, oldest first; open statuses read only the open partition. */
  async listByConsumer(domain: string, status?: ObligationStatus): Promise<ObligationItem[]> {
    return this.listIndex('gsi1', 'CONS', domain, status);
  }

  async listByProvider(domain: string, status?: ObligationStatus): Promise<ObligationItem[]> {
    return this.listIndex('gsi2', 'PROV', domain, status);
  }

  /** A provider's obligations not yet closed and counted (accepted, settling, or closed but uncounted). */
  async listOpenByProvider(domain: string): Promise<ObligationItem[]> {
    return this.queryPartition('gsi2', partition('PROV', domain, true));
  }

  private async listIndex(
    index: 'gsi1' | 'gsi2',
    kind: 'CONS' | 'PROV',
    domain: string,
    status?: ObligationStatus,
  ): Promise<ObligationItem[]> {
    const open = status === 'accepted' || status === 'settling';
    const parts = open ? [true] : [true, false];
    const items = (await Promise.all(parts.map((o) => this.queryPartition(index, partition(kind, domain, o), status)))).flat();
    return items.sort((a, b) => a.acceptedAt - b.acceptedAt || (a.id < b.id ? -1 : 1));
  }

  private async queryPartition(index: 'gsi1' | 'gsi2', pk: string, status?: ObligationStatus): Promise<ObligationItem[]> {
    const items = await this.queryAll({
      IndexName: index,
      KeyConditionExpression: `${index}pk = :p`,
      ...(status
        ? {
            FilterExpression: '#s = :s',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':p': pk, ':s': status },
          }
        : { ExpressionAttributeValues: { ':p': pk } }),
    });
    return items.map((i) => strip(i) as unknown as ObligationItem);
  }

  // ---- offers -----------------------------------------------------------------

  async putOffer(offer: Signed<Offer>): Promise<void> {
    // kept a day past expiry (replies to late duplicates), then removed by TTL
    const ttl = Math.ceil(offer.body.expiresAt / 1000) + 86_400;
    await this.putNew({ pk: `OFFER#${offer.body.offerId}`, sk: 'OFFER', offer, [TTL_ATTRIBUTE]: ttl });
  }

  async getOffer(offerId: string): Promise<{ offer: Signed<Offer>; usedBy?: string } | undefined> {
    const item = await this.get<{ offer: Signed<Offer>; usedBy?: string }>(`OFFER#${offerId}`, 'OFFER');
    return item && { offer: item.offer, ...(item.usedBy ? { usedBy: item.usedBy } : {}) };
  }

  /** Bind an offer to the one obligation that uses it; idempotent for that obligation. */
  async claimOffer(offerId: string, obligationId: string): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `OFFER#${offerId}`, sk: 'OFFER' },
          UpdateExpression: 'SET usedBy = :id',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(usedBy) OR usedBy = :id)',
          ExpressionAttributeValues: { ':id': obligationId },
        }),
      ),
    );
  }

  // ---- settlements ------------------------------------------------------------

  async putSettlement(s: SettlementItem): Promise<boolean> {
    const at = `${String(s.at).padStart(15, '0')}#${s.settlementId}`;
    return this.putNew({
      pk: `SET#${s.settlementId}`,
      sk: 'SET',
      gsi1pk: `SETC#${s.consumerDomain}`,
      gsi1sk: at,
      // sparse: only an unfinished settlement (an intent) is in the open partition that recovery reads
      ...(s.phase === 'intent' ? { gsi2pk: openSettlements(s.consumerDomain), gsi2sk: at } : {}),
      ...s,
    });
  }

  async getSettlement(id: string): Promise<SettlementItem | undefined> {
    const item = await this.get<SettlementItem>(`SET#${id}`, 'SET');
    return item && (strip(item) as SettlementItem);
  }

  async setSettlementPhase(id: string, phase: SettlementRecord['phase']): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `SET#${id}`, sk: 'SET' },
          UpdateExpression: phase === 'intent' ? 'SET phase = :p' : 'SET phase = :p REMOVE gsi2pk, gsi2sk',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':p': phase },
        }),
      ),
    );
  }

  /** A settlement that can never be paid: it leaves recovery, its obligations are released separately. */
  async failSettlement(id: string, reason: string, at: number): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `SET#${id}`, sk: 'SET' },
          UpdateExpression: 'SET phase = :p, failure = :r, failedAt = :t REMOVE gsi2pk, gsi2sk',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':p': 'failed', ':r': reason, ':t': at },
        }),
      ),
    );
  }

  /** Unfinished settlements (phase 'intent') of a consumer domain, oldest first: the sparse open partition, never the history. */
  async listOpenSettlements(consumerDomain: string): Promise<SettlementItem[]> {
    const items = await this.queryAll({
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :p',
      ExpressionAttributeValues: { ':p': openSettlements(consumerDomain) },
    });
    return items.map((i) => strip(i) as unknown as SettlementItem);
  }

  /** Every settlement of a consumer domain (history included), oldest first. */
  async listSettlements(consumerDomain: string): Promise<SettlementItem[]> {
    const items = await this.queryAll({
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': `SETC#${consumerDomain}` },
    });
    return items.map((i) => strip(i) as unknown as SettlementItem);
  }

  // ---- payments seen by a provider's watcher ------------------------------------

  /** Remember a payment received to a provider's address (idempotent: same txid, same value). */
  async putPayment(domain: string, txid: string, amount: number): Promise<void> {
    await this.send(() =>
      this.doc.send(new PutCommand({ TableName: this.table, Item: { pk: `PAY#${domain}#${txid}`, sk: 'PAY', txid, amount } })),
    );
  }

  async getPayment(domain: string, txid: string): Promise<{ txid: string; amount: number } | undefined> {
    const item = await this.get<{ txid: string; amount: number }>(`PAY#${domain}#${txid}`, 'PAY');
    return item && { txid: item.txid, amount: item.amount };
  }

  /** Consume a received payment for one settlement output, once: false if it was already used. */
  async consumePayment(domain: string, txid: string, settlementId: string): Promise<boolean> {
    const ok = await this.putNew({ pk: `USED#${domain}#${txid}`, sk: 'USED', settlementId });
    if (ok) return true;
    const item = await this.get<{ settlementId: string }>(`USED#${domain}#${txid}`, 'USED');
    return item?.settlementId === settlementId;
  }

  async isPaymentUsed(domain: string, txid: string): Promise<boolean> {
    return (await this.get(`USED#${domain}#${txid}`, 'USED')) !== undefined;
  }

  // ---- leases (singleton jobs) ---------------------------------------------------

  /**
   * Take the lease `name` for `ttlMs` when it is free, expired, or already
   * ours. Every grant increments the fencing token, so a holder whose lease
   * expired and was taken by another can tell (checkLease fails). Returns the
   * token, or undefined when another owner holds an unexpired lease.
   */
  async acquireLease(name: string, owner: string, ttlMs: number, now: number): Promise<number | undefined> {
    try {
      const out = await this.send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: `LEASE#${name}`, sk: 'LEASE' },
            UpdateExpression: 'SET #o = :o, expiresAt = :e ADD #t :one',
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now OR #o = :o',
            ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
            ExpressionAttributeValues: { ':o': owner, ':e': now + ttlMs, ':now': now, ':one': 1 },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return Number((out.Attributes as { token?: number } | undefined)?.token);
    } catch (e) {
      if (isConditionFailure(e)) return undefined;
      throw e;
    }
  }

  /** Still the holder with this fencing token, and unexpired? Extends the lease by `ttlMs` when so. */
  async checkLease(name: string, owner: string, token: number, ttlMs: number, now: number): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `LEASE#${name}`, sk: 'LEASE' },
          UpdateExpression: 'SET expiresAt = :e',
          ConditionExpression: '#o = :o AND #t = :t AND expiresAt > :now',
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: { ':o': owner, ':t': token, ':e': now + ttlMs, ':now': now },
        }),
      ),
    );
  }

  /** Give the lease up (only the holder with this token can). */
  async releaseLease(name: string, owner: string, token: number): Promise<void> {
    await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `LEASE#${name}`, sk: 'LEASE' },
          UpdateExpression: 'SET expiresAt = :z',
          ConditionExpression: '#o = :o AND #t = :t',
          ExpressionAttributeNames: { '#o': 'owner', '#t': 'token' },
          ExpressionAttributeValues: { ':o': owner, ':t': token, ':z': 0 },
        }),
      ),
    );
  }

  // ---- what the ledger follower learns -------------------------------------------

  /** A ledger-learnt obligation's amount is now in its consumer's outstanding exposure. */
  async markExposed(id: string): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `OB#${id}`, sk: 'OB' },
          UpdateExpression: 'SET exposed = :t',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':t': true },
        }),
      ),
    );
  }

  /**
   * Move this hub's view of a device's chain head forward to an obligation accepted
   * elsewhere (never backward), so the device's next obligation links here too.
   */
  async followChain(domain: string, device: string, seq: number, id: string): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `DEV#${domain}/${device}`, sk: 'CHAIN' },
          UpdateExpression: 'SET seq = :seq, id = :id',
          ConditionExpression: 'attribute_not_exists(pk) OR seq < :seq',
          ExpressionAttributeValues: { ':seq': seq, ':id': id },
        }),
      ),
    );
  }

  async putSettlementRef(ref: SettlementRef): Promise<void> {
    await this.send(() =>
      this.doc.send(new PutCommand({ TableName: this.table, Item: { pk: `SETREF#${ref.obligationId}`, sk: ref.txid, ...ref } })),
    );
  }

  /** Every settlement record (by transaction) that named this obligation. */
  async listSettlementRefs(obligationId: string): Promise<SettlementRef[]> {
    const items = await this.queryAll({ KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `SETREF#${obligationId}` } });
    return items.map((i) => strip(i) as unknown as SettlementRef);
  }

  async putClaim(claim: PendingClaim): Promise<void> {
    await this.putNew({ pk: `CLAIM#${claim.obligationId}`, sk: 'CLAIM', gsi1pk: 'CLAIMS', gsi1sk: `${claim.firstSeen}`, ...claim });
  }

  async listClaims(limit = 100): Promise<PendingClaim[]> {
    const items = await this.queryAll(
      { IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': 'CLAIMS' } },
      limit,
    );
    return items.map((i) => strip(i) as unknown as PendingClaim);
  }

  async deleteClaim(obligationId: string): Promise<void> {
    await this.send(() => this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: `CLAIM#${obligationId}`, sk: 'CLAIM' } })));
  }

  // ---- provider standing (core/reputation.ts vouches) --------------------------

  /** Add a hub to the hubs whose consumers have paid `provider`; returns the whole set (ADD to a string set: idempotent). */
  async addPayerHub(provider: string, hub: string): Promise<string[]> {
    const out = await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `STANDING#${provider}`, sk: 'STANDING' },
          UpdateExpression: 'ADD payerHubs :h',
          ExpressionAttributeValues: { ':h': new Set([hub]) },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return [...((out.Attributes as { payerHubs?: Set<string> } | undefined)?.payerHubs ?? [])];
  }

  async getPayerHubs(provider: string): Promise<string[]> {
    const item = await this.get<{ payerHubs?: Set<string> }>(`STANDING#${provider}`, 'STANDING');
    return [...(item?.payerHubs ?? [])];
  }

  /** Hold fulfilled evidence back until its provider vouches for the consumer's hub. */
  async park(e: ParkedEvidence): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new PutCommand({ TableName: this.table, Item: { pk: `PARK#${e.providerDomain}`, sk: `${e.consumerHub}#${e.obligationId}`, ...e } }),
      ),
    );
  }

  async listParked(provider: string, consumerHub: string): Promise<ParkedEvidence[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :p AND begins_with(sk, :h)',
      ExpressionAttributeValues: { ':p': `PARK#${provider}`, ':h': `${consumerHub}#` },
    });
    return items.map((i) => strip(i) as unknown as ParkedEvidence);
  }

  async unpark(e: Pick<ParkedEvidence, 'providerDomain' | 'consumerHub' | 'obligationId'>): Promise<void> {
    await this.send(() =>
      this.doc.send(new DeleteCommand({ TableName: this.table, Key: { pk: `PARK#${e.providerDomain}`, sk: `${e.consumerHub}#${e.obligationId}` } })),
    );
  }

  // ---- cursors ----------------------------------------------------------------

  async getCursor(name: string): Promise<string | undefined> {
    const item = await this.get<{ value: string }>(`CURSOR#${name}`, 'CURSOR');
    return item?.value;
  }

  async putCursor(name: string, value: string): Promise<void> {
    await this.send(() =>
      this.doc.send(new PutCommand({ TableName: this.table, Item: { pk: `CURSOR#${name}`, sk: 'CURSOR', value } })),
    );
  }
}

/**
 * Index partitions split by openness: `CONS#<d>#open` holds a domain's
 * obligations until their outcome is counted, `CONS#<d>#closed` the rest, so
 * the periodic jobs read only open work however long the history grows.
 */
function partition(kind: 'CONS' | 'PROV', domain: string, open: boolean): string {
  return `${kind}#${domain}#${open ? 'open' : 'closed'}`;
}

/** gsi2 partition of a consumer domain's unfinished settlements (sparse: an item leaves it when it is broadcast or failed). */
function openSettlements(domain: string): string {
  return `SETOPEN#${domain}`;
}

function obligationIndexes(item: ObligationItem): Record<string, string> {
  const at = `${String(item.acceptedAt).padStart(15, '0')}#${item.id}`;
  const idx: Record<string, string> = {
    gsi1pk: partition('CONS', item.consumerDomain, !item.counted),
    gsi1sk: at,
    gsi2pk: partition('PROV', item.providerDomain, !item.counted),
    gsi2sk: at,
  };
  if (item.ledgerTxid === undefined) {
    idx.gsi3pk = PENDING;
    idx.gsi3sk = at;
  }
  return idx;
}

function strip<T extends object>(item: T): T {
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, gsi3pk: _e, gsi3sk: _f, ...rest } =
    item as Record<string, unknown>;
  return rest as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
