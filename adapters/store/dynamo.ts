/**
 * The Store on DynamoDB (one table, see adapters/table.ts). One code path for
 * DynamoDB, DynamoDB Local and the embedded stand-in (dynalite behind
 * local/transact.ts, which adds the transactions): an acceptance is one batched
 * read and one TransactWriteItems (acceptObligation), counter changes are
 * transactions with a per-event idempotency marker, and a consumer domain's
 * credit is split into escrow shards so no single item takes every acceptance.
 * Every write is idempotent by obligation id or event key.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactGetCommand,
  TransactWriteCommand,
  UpdateCommand,
  type QueryCommandInput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import { TTL_ATTRIBUTE } from '../table.ts';
import type {
  AcceptedObligation,
  DomainRecord,
  OutcomeBody,
  ObligationStatus,
  Offer,
  Signed,
  PublicKeyRef,
  ReputationCounters,
  RevocationBody,
  SettlementRecord,
  KeyRotationBody,
} from '../../core/types.ts';
import type { DomainKeys } from '../../core/domain-keys.ts';
import { keyFingerprint } from '../../core/keys.ts';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

/** An enrolled device: its key and what its latest credential says (renewal reissues it). */
export interface DeviceItem {
  domain: string;
  deviceId: string;
  key: PublicKeyRef;
  /** Per-obligation cap of its credentials (sats). */
  creditLimit?: number;
  /** End of its latest credential (epoch ms). */
  notAfter?: number;
}

export interface HostedDomain {
  domain: string;
  role: 'consumer' | 'provider' | 'both';
  publicKey: PublicKeyRef;
  /** The domain key's id in the Signer (a KMS key ARN on AWS): the table never holds a private key. */
  keyId: string;
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
  /** A key rotation begun and not finished (service/domains.ts rotateDomainKey): the next key and its signed record. */
  rotating?: PendingRotation;
}

/** The key a hosted domain is moving to, and the rotation record (signed by its current key) that says so. */
export interface PendingRotation {
  keyId: string;
  publicKey: PublicKeyRef;
  rotation: Signed<KeyRotationBody>;
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
  /**
   * True when it was closed by closeObligation: its outstanding amount was
   * released (and a default's evidence applied) in the closing transaction, so
   * only the evidence step may be left (recordEvidence).
   */
  released?: boolean;
  closedAt?: number;
  /** 'ledger': accepted at another hub and learnt by the ledger follower (never published from here). */
  origin?: 'ledger';
  /** Ledger-learnt obligations: true once their amount is in the consumer's outstanding exposure. */
  exposed?: boolean;
  /** Ledger-learnt obligations: when this hub's follower applied their outcome (epoch ms). */
  followedAt?: number;
  /** Ledger-learnt obligations: when this hub's follower first stored them (epoch ms). */
  learntAt?: number;
  /** The escrow shard its credit was drawn from (accepted here). */
  shard?: number;
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


/** What acceptance reads, in one batch (DynamoStore.readForAcceptance). */
export interface AcceptanceRead {
  stored?: ObligationItem;
  offer?: { offer: Signed<Offer>; usedBy?: string };
  head?: { seq: number; id: string };
  counters: Omit<StoredCounters, 'outstanding'>;
  shard: CreditShard;
  /** The revocation of the device key asked about (`deviceKey`), if any: read eventually consistent, see getRevocation. */
  revocation?: Signed<RevocationBody>;
}

export interface StoredCounters extends ReputationCounters {
  /** Bumped by every change of the evidence counters and every rebalance of the escrow (serialises them). */
  version: number;
}

/** One escrow shard of a consumer domain's credit. */
export interface CreditShard {
  /** Credit granted to this shard and not yet drawn (never below 0). */
  free: number;
  /** Outstanding sats drawn from this shard (accepted here, or learnt from the ledger). */
  used: number;
  /** The grant expires at this time (epoch ms): no acceptance draws on it later. */
  until: number;
  /** Fulfilled evidence (rScaled, paidVolume) added here and not yet folded into the counters item (see counterWrites). */
  rScaled: number;
  paidVolume: number;
}

export interface CreditSnapshot {
  counters: StoredCounters;
  shards: CreditShard[];
}

/** The consumer's credit limit for these counters at time `at` (core/credit.ts over core/reputation.ts). */
export type CreditLimitFn = (c: ReputationCounters, at: number) => number;

export interface CreditOptions {
  /** Escrow shards per consumer domain (default 8). */
  shards: number;
  /**
   * How long a grant stays valid (default 5 min): the limit is the smallest over
   * it. Longer than two runs of the scheduled rebalancer (EventBridge's finest
   * rate is 1 minute), so it refreshes grants before they lapse.
   */
  grantMs: number;
  /** Idempotency markers of counter events are removed by TTL after this many seconds (default 30 days). */
  markerTtlS: number;
}

export const DEFAULT_CREDIT_OPTIONS: CreditOptions = { shards: 8, grantMs: 300_000, markerTtlS: 30 * 86_400 };

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
  /** Chain height when its current transaction was broadcast (phase 'broadcast', not yet confirmed). */
  broadcastHeight?: number;
  /** A fee bump's rate (sat/vB) and the transaction it replaces (hex): what a bump refused by the node is outbid from. */
  satVb?: number;
  replacedHex?: string;
  /** Set once a transaction of it confirmed (its current one, or one it replaced): it leaves the unconfirmed list. */
  confirmedTxid?: string;
  confirmedAt?: number;
  failure?: string;
  failedAt?: number;
}

/** One write of a TransactWriteItems. */
type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException || (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/** Partition of the list of consumer domains with escrow here (sk: the domain): what the scheduled rebalancer tops up. */
const CREDIT_DOMAINS = 'CREDITDOMAINS';

/** gsi3 partition of obligations with something still to publish on the ledger. */
const PENDING = 'PENDING';
/** gsi3 partition of obligations the ledger refused for good: set aside with their error for an operator. */
const PARKED = 'PARKED';

export class DynamoStore {
  /** Hosted-domain configs, cached briefly: read on every offer and acceptance, changed almost never. */
  private readonly hosted = new Map<string, { at: number; value: HostedDomain }>();

  private readonly credit: CreditOptions;

  constructor(
    /** Public so that a meter can be added to its middleware stack (bench/store.ts). */
    readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly hostedTtlMs = 5_000,
    credit: Partial<CreditOptions> = {},
  ) {
    this.credit = { ...DEFAULT_CREDIT_OPTIONS, ...credit };
  }

  close(): void {
    this.doc.destroy();
  }

  /** The table's name (bench/store.ts reads items back to size them). */
  get tableName(): string {
    return this.table;
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

  /** Wraps transport failures as UnavailableError; condition failures and cancelled transactions pass through. */
  private async send<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (isConditionFailure(e) || cancellation(e)) throw e;
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

  /**
   * Every item a query matches (up to `limit`). On a GSI the index holds only
   * keys (and `status`, see adapters/table.ts), so the items are then read from
   * the table in batches, strongly consistent unless `consistent` is false; an
   * item that left the queried index partition (or status) since the index was
   * read is dropped.
   */
  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>, limit = Infinity, consistent = true): Promise<Record<string, unknown>[]> {
    const found = await this.queryRows(input, limit);
    if (!input.IndexName) return found;
    const values = input.ExpressionAttributeValues ?? {};
    const indexPk = `${input.IndexName}pk`;
    return this.itemsOf(found, consistent, (i) => i[indexPk] === values[':p'] && (values[':s'] === undefined || i.status === values[':s']));
  }

  /** What a query matches (on an index: its entries), page after page, at most `limit`. */
  private async queryRows(input: Omit<QueryCommandInput, 'TableName'>, limit = Infinity): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.send(() =>
        this.doc.send(new QueryCommand({ ...input, TableName: this.table, ExclusiveStartKey: start })),
      );
      rows.push(...((out.Items ?? []) as Record<string, unknown>[]));
      start = out.LastEvaluatedKey;
    } while (start && rows.length < limit);
    return rows.slice(0, limit);
  }

  /** The table items of index entries `rows`, in their order, those that still `keep` (they may have moved since the index was read). */
  private async itemsOf(rows: Record<string, unknown>[], consistent: boolean, keep: (item: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
    if (rows.length === 0) return [];
    const got = await this.batchGet(rows.map((r) => ({ pk: String(r.pk), sk: String(r.sk) })), consistent);
    return rows
      .map((r) => got.get(`${String(r.pk)}\u0000${String(r.sk)}`))
      .filter((i): i is Record<string, unknown> => i !== undefined && keep(i));
  }

  /**
   * The entries of several partitions `pks` of an obligation index (a domain's
   * shards, see INDEX_SHARDS), each read by key condition with a Limit and in
   * parallel, merged in sort-key order (newest first with `newest`), each item
   * once, at most `limit`. Each partition is sorted, so the first `limit` of
   * the merge are among the first `limit` of each.
   */
  private async indexEntries(
    index: 'gsi1' | 'gsi2' | 'gsi3',
    pks: readonly string[],
    opts: { limit?: number; after?: string; newest?: boolean; status?: ObligationStatus } = {},
  ): Promise<Record<string, unknown>[]> {
    const limit = opts.limit ?? Infinity;
    const cmp = opts.newest ? '<' : '>';
    const parts = await Promise.all(
      pks.map((pk) =>
        this.queryRows(
          {
            IndexName: index,
            KeyConditionExpression: `${index}pk = :p${opts.after === undefined ? '' : ` AND ${index}sk ${cmp} :a`}`,
            ScanIndexForward: !opts.newest,
            ...(Number.isFinite(limit) ? { Limit: limit } : {}),
            ExpressionAttributeValues: {
              ':p': pk,
              ...(opts.after === undefined ? {} : { ':a': opts.after }),
              ...(opts.status ? { ':s': opts.status } : {}),
            },
            ...(opts.status ? { FilterExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'status' } } : {}),
          },
          limit,
        ),
      ),
    );
    const sk = `${index}sk`;
    // by table key: an item that moved between two of the partitions while they were read counts once
    const byKey = new Map(parts.flat().map((r) => [String(r.pk), r]));
    const sign = opts.newest ? -1 : 1;
    return [...byKey.values()].sort((a, b) => (String(a[sk]) < String(b[sk]) ? -sign : String(a[sk]) > String(b[sk]) ? sign : 0)).slice(0, limit);
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

  /** Record a key rotation as begun, if the domain still signs with `keyId` and none is under way; false otherwise. */
  async beginKeyRotation(domain: string, keyId: string, pending: PendingRotation): Promise<boolean> {
    return this.updateHostedIf(domain, 'SET rotating = :p', 'keyId = :k AND attribute_not_exists(rotating)', { ':p': pending, ':k': keyId });
  }

  /** Replace a begun rotation's record by `next` (the same key, dated later), if `begun` is still the one under way. */
  async redateKeyRotation(domain: string, begun: PendingRotation, next: PendingRotation): Promise<boolean> {
    return this.updateHostedIf(domain, 'SET rotating = :n', 'rotating.keyId = :k AND rotating.rotation.sig = :s', {
      ':n': next,
      ':k': begun.keyId,
      ':s': begun.rotation.sig,
    });
  }

  /** The domain signs with the key its begun rotation names from now on (idempotent: false once done). */
  async finishKeyRotation(domain: string, pending: PendingRotation): Promise<boolean> {
    return this.updateHostedIf(domain, 'SET keyId = :k, publicKey = :pk REMOVE rotating', 'rotating.keyId = :k', {
      ':k': pending.keyId,
      ':pk': pending.publicKey,
    });
  }

  /** A conditional update of a hosted domain's item (its cached copy dropped); false when the condition fails. */
  private updateHostedIf(domain: string, update: string, condition: string, values: Record<string, unknown>): Promise<boolean> {
    this.hosted.delete(domain);
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `DOM#${domain}`, sk: 'CONFIG' },
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  async listHostedDomains(): Promise<HostedDomain[]> {
    const items = await this.queryAll({
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': 'HOSTED' },
    });
    return items.map((i) => strip(i) as unknown as HostedDomain);
  }

  /** One page of hosted domains in name order, strictly after `after` (a domain name); `more` when another page follows. */
  async pageHostedDomains(limit: number, after?: string): Promise<Page<HostedDomain>> {
    const items = await this.queryAll(
      {
        IndexName: 'gsi1',
        KeyConditionExpression: after === undefined ? 'gsi1pk = :p' : 'gsi1pk = :p AND gsi1sk > :a',
        ExpressionAttributeValues: { ':p': 'HOSTED', ...(after === undefined ? {} : { ':a': after }) },
        Limit: limit + 1,
      },
      limit + 1,
    );
    const page = items.slice(0, limit).map((i) => strip(i) as unknown as HostedDomain);
    return { items: page, ...(items.length > limit && page.length > 0 ? { last: page[page.length - 1]!.domain } : {}) };
  }

  // ---- domain records (verified, from the ledger) --------------------------------

  /** Keep a verified domain record; the first one of a domain wins. */
  async putDomainRecord(record: Signed<DomainRecord>): Promise<boolean> {
    return this.putNew({ pk: `DOMREC#${record.body.domain}`, sk: 'RECORD', record });
  }

  async getDomainRecord(domain: string): Promise<Signed<DomainRecord> | undefined> {
    return (await this.getDomainKeys(domain))?.record;
  }

  /** A domain's record and its key rotations, in order (one item: the record's). */
  async getDomainKeys(domain: string): Promise<DomainKeys | undefined> {
    const item = await this.get<{ record: Signed<DomainRecord>; rotations?: Signed<KeyRotationBody>[] }>(`DOMREC#${domain}`, 'RECORD', false);
    return item && { record: item.record, rotations: item.rotations ?? [] };
  }

  /**
   * Append the domain's rotation number `rotation.body.seq` to its record's item, only
   * if the item holds exactly the rotations before it (so concurrent followers add each
   * once, in order). False (nothing written) otherwise, or when the domain has no record.
   */
  async addKeyRotation(rotation: Signed<KeyRotationBody>): Promise<boolean> {
    const held = rotation.body.seq - 1;
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `DOMREC#${rotation.body.domain}`, sk: 'RECORD' },
          UpdateExpression: 'SET rotations = list_append(if_not_exists(rotations, :none), :one), rotationCount = :n',
          ConditionExpression: held === 0 ? 'attribute_exists(pk) AND attribute_not_exists(rotationCount)' : 'rotationCount = :held',
          ExpressionAttributeValues: { ':none': [], ':one': [rotation], ':n': rotation.body.seq, ...(held === 0 ? {} : { ':held': held }) },
        }),
      ),
    );
  }

  // ---- enrolled devices -------------------------------------------------------

  /** Record an enrolled device (a later enrolment of the same id replaces its key). */
  async putDevice(domain: string, deviceId: string, key: PublicKeyRef, credential?: { creditLimit: number; notAfter: number }): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `DEVICE#${domain}/${deviceId}`, sk: 'DEVICE', domain, deviceId, key, ...(credential ?? {}) },
        }),
      ),
    );
  }

  /** An enrolled device; `consistent: false` (offers: an enrolment is written once, read by every offer) halves the read units. */
  async getDevice(domain: string, deviceId: string, consistent = true): Promise<DeviceItem | undefined> {
    const item = await this.get<DeviceItem>(`DEVICE#${domain}/${deviceId}`, 'DEVICE', consistent);
    return (
      item && {
        domain: item.domain,
        deviceId: item.deviceId,
        key: item.key,
        ...(item.creditLimit !== undefined ? { creditLimit: item.creditLimit } : {}),
        ...(item.notAfter !== undefined ? { notAfter: item.notAfter } : {}),
      }
    );
  }

  // ---- revocations (this hub's own, and those the follower verified on the ledger) ----

  /** Remember a verified revocation of a device key; idempotent (the first record stands). */
  async putRevocation(record: Signed<RevocationBody>): Promise<boolean> {
    const r = record.body;
    return this.putNew({ pk: `REVOKED#${r.domain}/${r.deviceId}`, sk: keyFingerprint(r.deviceKey), record });
  }

  /**
   * The revocation of this device key, if any. Strongly consistent unless
   * `consistent` is false: offers and acceptances read it eventually consistent
   * (half the read units, read-write-operations.html), in the same wave as their
   * other reads. A revocation is one write, read by every later purchase; one
   * that this hub stored within the last second may be missed once, a far
   * smaller window than a revocation learnt from another hub (follower lag).
   * Revoking (service/domains.ts) reads it strongly.
   */
  async getRevocation(domain: string, deviceId: string, key: PublicKeyRef, consistent = true): Promise<Signed<RevocationBody> | undefined> {
    const item = await this.get<{ record: Signed<RevocationBody> }>(`REVOKED#${domain}/${deviceId}`, keyFingerprint(key), consistent);
    return item?.record;
  }

  // ---- counters and credit escrow ----------------------------------------------
  //
  // A consumer domain's reputation evidence is one small item (REP#d / COUNTERS:
  // rScaled, sScaled, paidVolume, version). Its credit is held in N escrow shards
  // (CREDIT#d#k / SHARD: free, used, until), each its own partition, so acceptances
  // for one domain spread over N items instead of one hot key. Invariant J, kept
  // by every write below:
  //
  //   Σ used + Σ free ≤ L_min,  every free ≥ 0,
  //
  // where L_min is the smallest credit limit over the grant's horizon (now … until):
  // an acceptance draws `amount` from one shard's `free` only while that shard's
  // grant is unexpired, so outstanding (Σ used) never exceeds the limit in force.
  // An acceptance (ADD used, −free, condition free ≥ amount) and a release (ADD
  // −used) keep J; only a rebalance (serialised by the counters' version) or a
  // change that may lower the limit (a default, exposure learnt from another hub)
  // moves free, and each does so in one transaction with its counters change.
  //
  // Fulfilled evidence (rScaled, paidVolume: they only ever grow) is added to the
  // escrow shard the obligation drew from, in the transaction that closes it and
  // releases its credit there, not to the counters item: a busy consumer's
  // outcomes spread over N items as its acceptances do, and the close writes one
  // item fewer. The counters are the counters item plus Σ of the shards'
  // evidence (creditSnapshot); every rebalance folds the shards' evidence into
  // the counters item (ADDs, exact whatever runs concurrently), so the counters
  // item alone, which an acceptance reads first, lags by at most one rebalancer
  // period on the rising side only (it may under-rate a payer briefly, never
  // over-rate); an acceptance about to refuse for reputation reads getCounters.

  /** Evidence counters, and outstanding (Σ used of the escrow shards), as one consistent snapshot. */
  async getCounters(domain: string): Promise<StoredCounters> {
    return (await this.creditSnapshot(domain)).counters;
  }

  /** The counters item and every escrow shard of a domain, read in one TransactGetItems (a serialisable snapshot). */
  async creditSnapshot(domain: string): Promise<CreditSnapshot> {
    const keys = [{ pk: `REP#${domain}`, sk: 'COUNTERS' }, ...this.shardKeys(domain)];
    const out = await this.send(() =>
      this.doc.send(new TransactGetCommand({ TransactItems: keys.map((Key) => ({ Get: { TableName: this.table, Key } })) })),
    );
    const items = (out.Responses ?? []).map((r) => r.Item as Record<string, unknown> | undefined);
    const c = items[0] ?? {};
    const shards = items.slice(1).map(creditShardOf);
    return { counters: countersOf(c, shards), shards };
  }

  private shardKeys(domain: string): { pk: string; sk: string }[] {
    return Array.from({ length: this.credit.shards }, (_, k) => shardKey(domain, k));
  }

  /** The shard an obligation draws from when none was recorded (exposure learnt from the ledger). */
  shardOf(obligationId: string): number {
    return shardIndex(obligationId, this.credit.shards);
  }

  /** Most obligations closeObligationsTogether takes at once. */
  get closeBatch(): number {
    return CLOSE_BATCH;
  }

  get creditShards(): number {
    return this.credit.shards;
  }

  /**
   * Apply `delta` to a domain's counters once per `eventKey`: a marker item
   * (EVT#d#key, removed by TTL after `markerTtlS`) is put in the same
   * TransactWriteItems as the counters and escrow change, so a retry finds the
   * marker and applies nothing. `outstanding` moves the `shard`'s `used`; a
   * change that may lower the credit limit (more defaulted evidence, or exposure
   * added by the ledger follower) takes the excess back from the shards' free
   * credit in the same transaction, so invariant J holds at every instant.
   * Returns applied=false when this event was already applied.
   */
  async applyCounters(
    domain: string,
    eventKey: string,
    delta: Partial<ReputationCounters>,
    opts: { limit: CreditLimitFn; now: number; shard?: number },
  ): Promise<{ applied: boolean }> {
    const marker = { pk: `EVT#${domain}#${eventKey}`, sk: 'EVT' };
    const guard: TransactItem = {
      Put: {
        TableName: this.table,
        Item: { ...marker, [TTL_ATTRIBUTE]: Math.ceil(opts.now / 1000) + this.credit.markerTtlS },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
    const applied = await this.withCounters(domain, delta, opts, [guard], () => this.hasMarker(marker));
    return { applied };
  }

  /**
   * One TransactWriteItems of `guards` (the writes that make the change happen
   * once) and the counters and escrow writes of `delta` (see applyCounters).
   * False, and nothing written, when a guard's condition fails (or `done`
   * says so after a snapshot); conflicts with concurrent transactions are retried.
   */
  private async withCounters(
    domain: string,
    delta: Partial<ReputationCounters>,
    opts: { limit: CreditLimitFn; now: number; shard?: number },
    guards: TransactItem[],
    done?: () => Promise<boolean>,
  ): Promise<boolean> {
    const lowers = (delta.sScaled ?? 0) > 0 || (delta.outstanding ?? 0) > 0 || (delta.rScaled ?? 0) < 0 || (delta.paidVolume ?? 0) < 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      let snapshot: CreditSnapshot | undefined;
      if (lowers) {
        // may lower the limit: judge the excess on a snapshot, and apply it only if the counters did not move meanwhile
        snapshot = await this.creditSnapshot(domain);
        if (done && (await done())) return false;
      }
      try {
        await this.transact([...guards, ...this.counterWrites(domain, delta, opts, snapshot)]);
        return true;
      } catch (e) {
        const reasons = cancellation(e);
        if (!reasons) throw e;
        if (reasons.slice(0, guards.length).includes('ConditionalCheckFailed')) return false;
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
    throw new ConflictError(`counters of ${domain} are too contended; retry`, { domain });
  }

  /** The counters and escrow shard updates of `delta`, judged on `snapshot` when it may lower the limit. */
  private counterWrites(
    domain: string,
    delta: Partial<ReputationCounters>,
    opts: { limit: CreditLimitFn; now: number; shard?: number },
    snapshot: CreditSnapshot | undefined,
  ): TransactItem[] {
    const items: TransactItem[] = [];
    const shard = opts.shard ?? 0;
    const adds: Record<string, number> = {};
    // evidence that only grows goes to the escrow shard (see above); the rest to the counters item
    const evidence: Record<string, number> = {};
    for (const k of ['rScaled', 'sScaled', 'paidVolume'] as const) {
      const v = delta[k];
      if (!v) continue;
      if (k !== 'sScaled' && v > 0) evidence[k] = v;
      else adds[k] = v;
    }
    if (Object.keys(adds).length > 0 || snapshot) {
      const names: Record<string, string> = { '#v': 'version' };
      const values: Record<string, unknown> = { ':one': 1 };
      const parts = ['#v :one'];
      Object.entries(adds).forEach(([k, v], i) => {
        names[`#a${i}`] = k;
        values[`:a${i}`] = v;
        parts.push(`#a${i} :a${i}`);
      });
      const cond = snapshot
        ? snapshot.counters.version === 0
          ? { ConditionExpression: 'attribute_not_exists(#v)' }
          : { ConditionExpression: '#v = :v0', ExpressionAttributeValues: { ...values, ':v0': snapshot.counters.version } }
        : {};
      items.push({
        Update: {
          TableName: this.table,
          Key: { pk: `REP#${domain}`, sk: 'COUNTERS' },
          UpdateExpression: `ADD ${parts.join(', ')}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ...cond,
        },
      });
    }
    const shardDelta = new Map<number, { used: number; free: number; cond?: number }>();
    if (delta.outstanding || Object.keys(evidence).length > 0) shardDelta.set(shard, { used: delta.outstanding ?? 0, free: 0 });
    if (snapshot) {
      const next: ReputationCounters = {
        rScaled: snapshot.counters.rScaled + (delta.rScaled ?? 0),
        sScaled: snapshot.counters.sScaled + (delta.sScaled ?? 0),
        paidVolume: snapshot.counters.paidVolume + (delta.paidVolume ?? 0),
        outstanding: snapshot.counters.outstanding + (delta.outstanding ?? 0),
      };
      const until = Math.max(opts.now, ...snapshot.shards.map((x) => x.until));
      const lmin = Math.min(opts.limit(next, opts.now), opts.limit(next, until));
      let excess = next.outstanding + snapshot.shards.reduce((t, x) => t + x.free, 0) - lmin;
      for (const [k, x] of snapshot.shards.entries()) {
        if (excess <= 0) break;
        const take = Math.min(excess, x.free);
        if (take <= 0) continue;
        const d = shardDelta.get(k) ?? { used: 0, free: 0 };
        shardDelta.set(k, { ...d, free: d.free - take, cond: take });
        excess -= take;
      }
    }
    for (const [k, d] of shardDelta) {
      const names: Record<string, string> = { '#used': 'used', '#free': 'free' };
      const values: Record<string, unknown> = { ':u': d.used, ':f': d.free, ...(d.cond !== undefined ? { ':c': d.cond } : {}) };
      const parts = ['#used :u', '#free :f'];
      if (k === shard) {
        for (const [a, v] of Object.entries(evidence)) {
          names[`#${a}`] = a;
          values[`:${a}`] = v;
          parts.push(`#${a} :${a}`);
        }
      }
      items.push({
        Update: {
          TableName: this.table,
          Key: shardKey(domain, k),
          UpdateExpression: `ADD ${parts.join(', ')}`,
          ...(d.cond !== undefined ? { ConditionExpression: '#free >= :c' } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        },
      });
    }
    return items;
  }

  private async hasMarker(key: { pk: string; sk: string }): Promise<boolean> {
    return (await this.get(key.pk, key.sk)) !== undefined;
  }

  /**
   * Refill the escrow shards of a domain up to its credit limit (the smallest
   * over the next `grantMs`), evening their free credit out and giving `prefer`
   * at least `need` when the total allows; or take free credit back when the
   * limit fell. One TransactWriteItems, conditioned on the counters' version (so
   * rebalances and limit-lowering changes are serialised); refills are ADDs,
   * which commute with concurrent acceptances and releases. Returns the snapshot
   * it judged on and the free credit it left in each shard.
   */
  async rebalance(
    domain: string,
    opts: { limit: CreditLimitFn; now: number; prefer?: number; need?: number; drawn?: boolean; attempts?: number },
  ): Promise<{ free: number[]; limit: number; outstanding: number }> {
    for (let attempt = 0; attempt < (opts.attempts ?? 20); attempt++) {
      const snap = await this.creditSnapshot(domain);
      const mine = opts.prefer !== undefined ? snap.shards[opts.prefer] : undefined;
      if (mine && opts.need !== undefined && mine.free >= opts.need && mine.until >= opts.now) {
        // a concurrent rebalance already refilled the shard this caller needs
        const limit = Math.min(opts.limit(snap.counters, opts.now), opts.limit(snap.counters, mine.until));
        return { free: snap.shards.map((x) => x.free), limit, outstanding: snap.counters.outstanding };
      }
      const until = opts.now + this.credit.grantMs;
      const limit = Math.min(opts.limit(snap.counters, opts.now), opts.limit(snap.counters, until));
      const freeNow = snap.shards.reduce((t, x) => t + x.free, 0);
      const total = Math.max(0, limit - snap.counters.outstanding);
      const n = snap.shards.length;
      // first attempts even the free credit out (taking from full shards is conditioned, so it
      // can lose to concurrent acceptances); later ones only add to it, which cannot
      const evenOut = attempt < 5;
      const target = evenOut ? new Array<number>(n).fill(0) : snap.shards.map((x) => x.free);
      let left = evenOut ? total : Math.max(0, total - freeNow);
      const p = opts.prefer ?? 0;
      if (opts.need !== undefined && opts.need - (target[p] ?? 0) <= left) {
        const give = Math.max(0, opts.need - (target[p] ?? 0));
        target[p] = (target[p] ?? 0) + give;
        left -= give;
      }
      const each = Math.floor(left / n);
      for (let k = 0; k < n; k++) target[k] = (target[k] ?? 0) + each;
      target[p] = (target[p] ?? 0) + (left - each * n);
      // a limit below outstanding + free: take back (conditioned); otherwise only grant and even out
      if (total < freeNow) {
        let excess = freeNow - total;
        for (let k = 0; k < n; k++) target[k] = snap.shards[k]?.free ?? 0;
        for (let k = 0; k < n && excess > 0; k++) {
          const take = Math.min(excess, target[k] ?? 0);
          target[k] = (target[k] ?? 0) - take;
          excess -= take;
        }
      }
      // the shards' evidence folded into the counters item: what was read moves, what arrives meanwhile stays
      const foldR = snap.shards.reduce((t, x) => t + x.rScaled, 0);
      const foldP = snap.shards.reduce((t, x) => t + x.paidVolume, 0);
      const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
        {
          Update: {
            TableName: this.table,
            Key: { pk: `REP#${domain}`, sk: 'COUNTERS' },
            UpdateExpression: `ADD #v :one${foldR ? ', rScaled :r' : ''}${foldP ? ', paidVolume :p' : ''}`,
            ConditionExpression: snap.counters.version === 0 ? 'attribute_not_exists(#v)' : '#v = :v0',
            ExpressionAttributeNames: { '#v': 'version' },
            ExpressionAttributeValues: {
              ':one': 1,
              ...(snap.counters.version === 0 ? {} : { ':v0': snap.counters.version }),
              ...(foldR ? { ':r': foldR } : {}),
              ...(foldP ? { ':p': foldP } : {}),
            },
          },
        },
      ];
      // the domain's entry in the list the scheduled rebalancer tops up (see topUp): what was granted,
      // and when credit was last wanted (an acceptance asked, or the rebalancer saw credit drawn)
      items.push({
        Update: {
          TableName: this.table,
          Key: { pk: CREDIT_DOMAINS, sk: domain },
          UpdateExpression: `SET granted = :g, #ttl = :ttl, wanted = ${opts.drawn === false ? 'if_not_exists(wanted, :now)' : ':now'}`,
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':g': target.reduce((t, x) => t + x, 0), ':ttl': Math.ceil(opts.now / 1000) + 86_400, ':now': opts.now },
        },
      });
      for (let k = 0; k < n; k++) {
        const d = (target[k] ?? 0) - (snap.shards[k]?.free ?? 0);
        const r = snap.shards[k]?.rScaled ?? 0;
        const pv = snap.shards[k]?.paidVolume ?? 0;
        items.push({
          Update: {
            TableName: this.table,
            Key: shardKey(domain, k),
            UpdateExpression: `SET #u = :until ADD #free :d, #used :z${r ? ', rScaled :r' : ''}${pv ? ', paidVolume :p' : ''}`,
            ...(d < 0 ? { ConditionExpression: '#free >= :c' } : {}),
            ExpressionAttributeNames: { '#u': 'until', '#free': 'free', '#used': 'used' },
            ExpressionAttributeValues: { ':until': until, ':d': d, ':z': 0, ...(d < 0 ? { ':c': -d } : {}), ...(r ? { ':r': -r } : {}), ...(pv ? { ':p': -pv } : {}) },
          },
        });
      }
      try {
        await this.transact(items);
        return { free: target, limit, outstanding: snap.counters.outstanding };
      } catch (e) {
        if (!cancellation(e)) throw e;
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
    throw new ConflictError(`credit of ${domain} is too contended to rebalance; retry`, { domain });
  }

  /**
   * The consumer domains whose escrow was granted here in the last day (an
   * entry per domain, written by every rebalance, removed by TTL), with what
   * was granted and when credit was last wanted. Eventually consistent: the
   * scheduled rebalancer reads the list, and each domain's shards strongly.
   */
  async listCreditDomains(): Promise<{ domain: string; granted: number; wanted: number }[]> {
    const items = await this.queryAll({ KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': CREDIT_DOMAINS } });
    return items.map((i) => ({ domain: String(i.sk), granted: Number(i.granted ?? 0), wanted: Number(i.wanted ?? 0) }));
  }

  /**
   * What the scheduled rebalancer does for one domain: keep its escrow shards
   * topped up so acceptances almost never rebalance inline. It rebalances (the
   * same serialised, bound-keeping rebalance an acceptance would run) when a
   * grant lapses within `refreshBeforeMs` or a shard's free credit is below half
   * of an even share of the credit left, unless the domain is idle: nothing
   * drawn since its last grant and no credit wanted for `idleMs` (its grants
   * then lapse; the next acceptance rebalances inline). Returns what it did.
   */
  async topUp(
    domain: string,
    entry: { granted: number; wanted: number },
    opts: { limit: CreditLimitFn; now: number; refreshBeforeMs: number; idleMs: number },
  ): Promise<'refreshed' | 'fresh' | 'idle'> {
    // eventually consistent (half the units of a TransactGetItems' quarter): it only decides whether to
    // rebalance, and rebalance() judges on a serialisable snapshot of its own
    const got = await this.batchGet([{ pk: `REP#${domain}`, sk: 'COUNTERS' }, ...this.shardKeys(domain)], false);
    const c = got.get(`REP#${domain}\u0000COUNTERS`) ?? {};
    const shards = this.shardKeys(domain).map((k) => creditShardOf(got.get(`${k.pk}\u0000${k.sk}`)));
    const snap = { counters: countersOf(c, shards), shards };
    const free = snap.shards.reduce((t, x) => t + x.free, 0);
    const drawn = free < entry.granted;
    // evidence waiting in the shards is folded into the counters item (what acceptances read) by a rebalance, idle or not
    const unfolded = snap.shards.some((x) => x.rScaled !== 0 || x.paidVolume !== 0);
    if (unfolded) {
      await this.rebalance(domain, { limit: opts.limit, now: opts.now, drawn, attempts: 3 });
      return 'refreshed';
    }
    if (!drawn && opts.now - entry.wanted >= opts.idleMs) return 'idle';
    const until = Math.min(...snap.shards.map((x) => x.until));
    const left = Math.max(0, Math.min(opts.limit(snap.counters, opts.now), opts.limit(snap.counters, opts.now + this.credit.grantMs)) - snap.counters.outstanding);
    // nothing granted and nothing to grant (the limit is used up): a rebalance would change nothing but
    // contend with the acceptances' own (each over-credit acceptance rebalances once)
    if (free === 0 && left === 0) return 'fresh';
    const low = snap.shards.some((x) => x.free < left / snap.shards.length / 2);
    if (until - opts.now >= opts.refreshBeforeMs && !low) return 'fresh';
    // few attempts: on contention the job yields to the acceptances' own rebalances (ConflictError; the next run retries)
    await this.rebalance(domain, { limit: opts.limit, now: opts.now, drawn, attempts: 3 });
    return 'refreshed';
  }

  /** One TransactWriteItems (a TransactionCanceledException passes through; see cancellation()). */
  private async transact(items: NonNullable<TransactWriteCommandInput['TransactItems']>): Promise<void> {
    await this.send(() => this.doc.send(new TransactWriteCommand({ TransactItems: items })));
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
        new UpdateCommand(chainAdvance(this.table, domain, device, seq, id, prev)),
      ),
    );
  }

  // ---- obligations ------------------------------------------------------------

  /** Store an accepted obligation once; returns false if it was already stored. */
  async putObligation(item: ObligationItem): Promise<boolean> {
    return this.putNew(obligationRecord(item));
  }

  // ---- acceptance: one batched read, one transaction ------------------------------

  /**
   * Everything an acceptance decides on, in one wave of two BatchGetItems
   * issued together (a BatchGetItem has one consistency for a table):
   * - strongly consistent (1 read unit per 4 KB, read-write-operations.html):
   *   the offer (put by the offer request a moment before; its `usedBy` tells a
   *   duplicate of this very obligation) and the device's chain head (advanced
   *   by the device's previous obligation a moment before). A stale read of
   *   either would refuse a good obligation;
   * - eventually consistent (half that): the consumer's evidence counters (the
   *   reputation may lag by the read's staleness, far less than the ledger
   *   follower's lag) and the escrow shard it would draw from. The shard read
   *   only guides the decision: the transaction draws under the condition
   *   `free ≥ amount AND until ≥ now` on the committed item, so a stale value
   *   can cost a retry, never the bound.
   * The obligation itself is not read: it is stored in the same transaction
   * that claims the offer, so an offer used by this very obligation means it is
   * stored (`stored` is then read, for the duplicate's answer).
   */
  async readForAcceptance(q: {
    obligationId: string;
    offerId: string;
    consumerDomain: string;
    consumerDevice: string;
    shard: number;
    /** Also look up this device key's revocation, in the eventually consistent batch (one request fewer). */
    deviceKey?: PublicKeyRef;
  }): Promise<AcceptanceRead> {
    const keys = {
      offer: { pk: `OFFER#${q.offerId}`, sk: 'OFFER' },
      chain: { pk: `DEV#${q.consumerDomain}/${q.consumerDevice}`, sk: 'CHAIN' },
      counters: { pk: `REP#${q.consumerDomain}`, sk: 'COUNTERS' },
      shard: shardKey(q.consumerDomain, q.shard),
      revocation: q.deviceKey && { pk: `REVOKED#${q.consumerDomain}/${q.consumerDevice}`, sk: keyFingerprint(q.deviceKey) },
    };
    const [strong, eventual] = await Promise.all([
      this.batchGet([keys.offer, keys.chain], true),
      this.batchGet([keys.counters, keys.shard, ...(keys.revocation ? [keys.revocation] : [])], false),
    ]);
    const at = (k: { pk: string; sk: string }) => strong.get(`${k.pk}\u0000${k.sk}`) ?? eventual.get(`${k.pk}\u0000${k.sk}`);
    const offer = at(keys.offer) as { offer: Signed<Offer>; usedBy?: string } | undefined;
    const stored = offer?.usedBy === q.obligationId ? await this.getObligation(q.obligationId) : undefined;
    const chain = at(keys.chain) as { seq: number; id: string } | undefined;
    const c = at(keys.counters) ?? {};
    const sh = at(keys.shard) ?? {};
    const revoked = keys.revocation && (at(keys.revocation) as { record: Signed<RevocationBody> } | undefined);
    return {
      ...(stored ? { stored } : {}),
      offer: offer && { offer: offer.offer, ...(offer.usedBy ? { usedBy: offer.usedBy } : {}) },
      head: chain && { seq: chain.seq, id: chain.id },
      counters: {
        rScaled: Number(c.rScaled ?? 0),
        sScaled: Number(c.sScaled ?? 0),
        paidVolume: Number(c.paidVolume ?? 0),
        version: Number(c.version ?? 0),
      },
      shard: creditShardOf(sh),
      ...(revoked ? { revocation: revoked.record } : {}),
    };
  }

  /**
   * commitAcceptance for an obligation under a STANDING offer (service/offers.ts): the
   * same transaction — obligation (if absent), chain advance, escrow-shard draw — except
   * that the offer is not bound to one obligation: its `spent` grows by the amount, on
   * condition that spent + amount ≤ cap (and that it is not a single-use offer already
   * used). Each obligation stays unique by its id (the Put's condition) and by the device
   * chain (the chain advance's condition); concurrent acceptances under one offer cannot
   * overrun the cap, since the condition is checked inside the transaction. Returns as
   * commitAcceptance does; 'offer' here means the cap would be exceeded.
   */
  async commitStandingAcceptance(
    item: ObligationItem & { shard: number },
    chain: { seq: number; prev: string },
    offer: { offerId: string; cap: number },
    now: number,
  ): Promise<'accepted' | 'duplicate' | 'offer' | 'chain' | 'credit'> {
    if (item.amount > offer.cap) return 'offer';
    return this.acceptInTransaction(item, chain, now, {
      TableName: this.table,
      Key: { pk: `OFFER#${offer.offerId}`, sk: 'OFFER' },
      UpdateExpression: 'ADD spent :a',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(usedBy) AND (attribute_not_exists(spent) OR spent <= :room)',
      ExpressionAttributeValues: { ':a': item.amount, ':room': offer.cap - item.amount },
    });
  }

  /** How much has been accepted under a standing offer so far (0 when none, or no such offer). */
  async offerSpent(offerId: string): Promise<number> {
    const item = await this.get<{ spent?: number }>(`OFFER#${offerId}`, 'OFFER');
    return Number(item?.spent ?? 0);
  }

  /** BatchGetItem of distinct keys (strongly consistent unless `consistent` is false), unprocessed keys retried; items by `pk\0sk`. */
  private async batchGet(keys: { pk: string; sk: string }[], consistent = true): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    let pending: Record<string, unknown>[] = keys;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(100, 2 ** attempt));
      if (attempt > 10) throw new UnavailableError('store unavailable: BatchGetItem left keys unprocessed');
      const batch = pending.slice(0, 100);
      const out = await this.send(() =>
        this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: batch, ConsistentRead: consistent } } })),
      );
      for (const item of out.Responses?.[this.table] ?? []) found.set(`${String(item.pk)}\u0000${String(item.sk)}`, item);
      pending = [...(out.UnprocessedKeys?.[this.table]?.Keys ?? []), ...pending.slice(100)];
    }
    return found;
  }

  /**
   * Commit an acceptance in one TransactWriteItems: store the obligation (if
   * absent), claim the offer (unused, or used by this very obligation), advance
   * the device's chain, and draw `amount` from escrow shard `item.shard` (while
   * its grant is valid at `now` and its free credit suffices). All or nothing.
   * Returns 'accepted', or which condition refused it: 'duplicate' (stored
   * already), 'offer', 'chain' or 'credit' (the shard's free credit or grant).
   * Transaction conflicts (concurrent transactions on an item) are retried.
   */
  async commitAcceptance(
    item: ObligationItem & { shard: number },
    chain: { seq: number; prev: string },
    offerId: string,
    now: number,
  ): Promise<'accepted' | 'duplicate' | 'offer' | 'chain' | 'credit'> {
    return this.acceptInTransaction(item, chain, now, {
      TableName: this.table,
      Key: { pk: `OFFER#${offerId}`, sk: 'OFFER' },
      UpdateExpression: 'SET usedBy = :id',
      ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(usedBy) OR usedBy = :id)',
      ExpressionAttributeValues: { ':id': item.id },
    });
  }

  /**
   * The acceptance transaction of both kinds of offer: the obligation (if absent), the
   * offer's claim (`claim`: bind a single-use offer, or draw on a standing one's cap),
   * the chain advance and the escrow-shard draw, in that order (the order of the
   * outcomes a cancellation maps to).
   */
  private async acceptInTransaction(
    item: ObligationItem & { shard: number },
    chain: { seq: number; prev: string },
    now: number,
    claim: TransactUpdate,
  ): Promise<'accepted' | 'duplicate' | 'offer' | 'chain' | 'credit'> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      {
        Put: {
          TableName: this.table,
          Item: obligationRecord(item),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      { Update: claim },
      {
        Update: chainAdvance(this.table, item.consumerDomain, item.consumerDevice, chain.seq, item.id, chain.prev),
      },
      {
        Update: {
          TableName: this.table,
          Key: shardKey(item.consumerDomain, item.shard),
          UpdateExpression: 'ADD #used :a, #free :na',
          ConditionExpression: '#free >= :a AND #u >= :now',
          ExpressionAttributeNames: { '#u': 'until', '#free': 'free', '#used': 'used' },
          ExpressionAttributeValues: { ':a': item.amount, ':na': -item.amount, ':now': now },
        },
      },
    ];
    const outcomes = ['duplicate', 'offer', 'chain', 'credit'] as const;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.transact(items);
        return 'accepted';
      } catch (e) {
        const reasons = cancellation(e);
        if (!reasons) throw e;
        const failed = reasons.findIndex((r) => r === 'ConditionalCheckFailed');
        if (failed >= 0) return outcomes[failed] ?? 'credit';
        // TransactionConflict (or throttling): another transaction had one of these items
        if (attempt >= 20) throw new ConflictError('acceptance kept conflicting with concurrent transactions; retry', { id: item.id });
        await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
  }

  async getObligation(id: string): Promise<ObligationItem | undefined> {
    const item = await this.get<Record<string, unknown>>(`OB#${id}`, 'OB');
    return item && obligationFrom(item);
  }

  /**
   * Several obligations in one BatchGetItem, in the order of `ids` (those not
   * stored left out), eventually consistent unless `consistent`: for reads that
   * only choose which conditional writes to try.
   */
  async getObligations(ids: readonly string[], consistent = false): Promise<ObligationItem[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const got = await this.batchGet(unique.map((id) => ({ pk: `OB#${id}`, sk: 'OB' })), consistent);
    return unique.flatMap((id) => {
      const item = got.get(`OB#${id}\u0000OB`);
      return item ? [obligationFrom(item)] : [];
    });
  }

  /**
   * Move an obligation from one of `from` to `to`, setting `extra`. Returns the
   * new item, or undefined when it is not in one of `from` (nothing written).
   * `expect.settlementId` adds a condition on the settlement it is in as the
   * write happens (null: in none), so a decision taken on an earlier read is
   * never applied to an obligation that moved meanwhile; `remove` deletes
   * attributes (e.g. settlementId when a failed settlement releases it).
   * The write's condition alone decides, so nothing is read first; `current`
   * (the item as the caller read it) is needed only to queue it for
   * publication (`pending`: its acceptance time is the queue's order). The
   * item returned is the one written (ReturnValues ALL_NEW).
   */
  async transition(
    id: string,
    from: ObligationStatus[],
    to: ObligationStatus,
    extra: Partial<ObligationItem> = {},
    opts: { pending?: boolean; expect?: { settlementId: string | null }; remove?: (keyof ObligationItem)[]; current?: ObligationItem } = {},
  ): Promise<ObligationItem | undefined> {
    let current = opts.current;
    if (opts.pending && !current) {
      current = await this.getObligation(id);
      if (!current) return undefined;
    }
    const fields: Record<string, unknown> = { ...extra, status: to };
    if (opts.pending && current) Object.assign(fields, { gsi3pk: pendingPartition(indexShard(id)), gsi3sk: pendingPosition(current) });
    const update = obligationUpdate(from, fields, opts.expect, opts.remove);
    let written: Record<string, unknown> | undefined;
    const ok = await this.conditional(async () => {
      const out = await this.doc.send(
        new UpdateCommand({ TableName: this.table, Key: { pk: `OB#${id}`, sk: 'OB' }, ...update, ReturnValues: 'ALL_NEW' }),
      );
      written = out.Attributes;
    });
    if (!ok || !written) return undefined;
    return obligationFrom(written);
  }

  /**
   * Close an obligation (fulfilled or defaulted) and apply what its outcome does
   * to the consumer's counters (`delta`: its outstanding amount released from
   * the escrow shard it drew from, a default's evidence, a fulfilment's evidence
   * when it counts at once) in ONE TransactWriteItems. The obligation's own
   * conditional update (status in `from`, and the settlement as `expect` says)
   * is the event's idempotency: once closed, its condition fails and nothing is
   * applied again, so no marker item is written. `counted`: nothing is left to
   * do for its evidence, and it leaves the open partitions of its indexes in the
   * same write; otherwise the caller marks it counted after the last step.
   * `pending`: its outcome is queued for publication. Returns the item as
   * written, or undefined when it was not in `from` (nothing written).
   */
  async closeObligation(
    current: ObligationItem,
    from: ObligationStatus[],
    to: 'fulfilled' | 'defaulted',
    extra: Partial<ObligationItem>,
    delta: Partial<ReputationCounters>,
    opts: { limit: CreditLimitFn; now: number; shard?: number; counted: boolean; pending?: boolean; expect?: { settlementId: string | null } },
  ): Promise<ObligationItem | undefined> {
    const { guard, closed } = this.closing(current, from, to, extra, opts);
    if (!(await this.withCounters(current.consumerDomain, delta, opts, [guard]))) return undefined;
    return closed;
  }

  /**
   * Close several obligations of one consumer domain, all drawn from escrow shard
   * `opts.shard`, in ONE transaction: each one's status move (as closeObligation)
   * and one update of the shard with their summed `delta`. A transaction bills 2
   * units per item, so the obligations a settlement paid for pay for their shard
   * once, not once each. All or nothing: undefined when any of them was not in
   * `from` (nothing written; close them one by one). At most CLOSE_BATCH items.
   */
  async closeObligationsTogether(
    items: readonly ObligationItem[],
    from: ObligationStatus[],
    to: 'fulfilled' | 'defaulted',
    extra: Partial<ObligationItem>,
    delta: Partial<ReputationCounters>,
    opts: { limit: CreditLimitFn; now: number; shard: number; counted: boolean; pending?: boolean },
  ): Promise<ObligationItem[] | undefined> {
    const domain = items[0]?.consumerDomain;
    if (domain === undefined) return [];
    if (items.length > CLOSE_BATCH) throw new RangeError(`at most ${CLOSE_BATCH} obligations close together (${items.length})`);
    if (items.some((i) => i.consumerDomain !== domain)) throw new RangeError('obligations close together only within one consumer domain');
    const closing = items.map((item) => this.closing(item, from, to, extra, opts));
    if (!(await this.withCounters(domain, delta, opts, closing.map((c) => c.guard)))) return undefined;
    return closing.map((c) => c.closed);
  }

  /** The conditional update that closes `current`, and the item it leaves. */
  private closing(
    current: ObligationItem,
    from: ObligationStatus[],
    to: 'fulfilled' | 'defaulted',
    extra: Partial<ObligationItem>,
    opts: { counted: boolean; pending?: boolean; expect?: { settlementId: string | null } },
  ): { guard: TransactItem; closed: ObligationItem } {
    // Once counted, nothing reads its escrow shard or `released` again (the close released
    // the credit and applied the evidence), and `counted` is its closed index partition
    // (obligationFrom): left out, a closed obligation stays within 1 KB, where the close (a
    // transaction: 2 units per KB, rounded up) and every later write cost half
    const fields: Record<string, unknown> = { ...extra, status: to };
    const remove: (keyof ObligationItem)[] = [];
    if (opts.counted) {
      Object.assign(fields, {
        gsi1pk: partition('CONS', current.consumerDomain, false, indexShard(current.id)),
        gsi2pk: partition('PROV', current.providerDomain, false, indexShard(current.id)),
      });
      if (current.shard !== undefined) remove.push('shard');
    } else fields.released = true;
    if (opts.pending) Object.assign(fields, { gsi3pk: pendingPartition(indexShard(current.id)), gsi3sk: pendingPosition(current) });
    const update = obligationUpdate(from, fields, opts.expect, remove);
    const guard: TransactItem = { Update: { TableName: this.table, Key: { pk: `OB#${current.id}`, sk: 'OB' }, ...update } };
    const { gsi1pk: _a, gsi2pk: _b, gsi3pk: _c, gsi3sk: _d, ...set } = fields;
    const closed = { ...current, ...set, ...(opts.counted ? { counted: true } : {}) } as ObligationItem;
    for (const k of remove) delete closed[k];
    return { guard, closed };
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
            ExpressionAttributeNames: done ? { '#f': storedName(field), '#s': 'status' } : { '#f': storedName(field) },
            ExpressionAttributeValues: done ? { ':t': storedField(field, txid), ':s': doneIfStatus } : { ':t': storedField(field, txid) },
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
          // counted: its closed partition (obligationFrom); an older `counted` flag is dropped
          UpdateExpression: 'SET gsi1pk = :c, gsi2pk = :p REMOVE counted, released',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: {
            ':c': partition('CONS', item.consumerDomain, false, indexShard(item.id)),
            ':p': partition('PROV', item.providerDomain, false, indexShard(item.id)),
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
    return items.map(obligationFrom);
  }

  /**
   * Obligations with an acceptance or outcome still to publish, oldest first.
   * Read eventually consistent (half the read units): the index itself is, and a
   * copy a moment old costs at most a duplicate publication, which the ledger
   * refuses by id; the marks' conditions, not this copy, decide (markPublished).
   */
  async listPendingPublication(limit = 100): Promise<ObligationItem[]> {
    const rows = await this.indexEntries('gsi3', pendingPartitions(), { limit });
    const items = await this.itemsOf(rows, false, (i) => isPendingPartition(i.gsi3pk));
    return items.map(obligationFrom);
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
    return this.obligationsIn('gsi2', partitions('PROV', domain, true), { consistent: false });
  }

  /**
   * One page of a domain's obligations (as consumer or provider) in acceptance
   * order (`newest`: reversed), strictly beyond the position `after` (an
   * {@link obligationPosition}). Each partition is read by key condition from
   * that position with a Limit, so a page costs O(limit) reads however long the
   * history; `last` is set when another page follows.
   */
  async pageObligations(
    side: 'consumer' | 'provider',
    domain: string,
    opts: { limit: number; status?: ObligationStatus; after?: string; newest?: boolean },
  ): Promise<Page<ObligationItem>> {
    const [index, kind] = side === 'consumer' ? (['gsi1', 'CONS'] as const) : (['gsi2', 'PROV'] as const);
    const found = await this.obligationsIn(index, statusPartitions(kind, domain, opts.status), { ...opts, limit: opts.limit + 1, consistent: true });
    const items = found.slice(0, opts.limit);
    const lastItem = items[items.length - 1];
    return { items, ...(found.length > opts.limit && lastItem ? { last: obligationPosition(lastItem) } : {}) };
  }

  private async listIndex(index: 'gsi1' | 'gsi2', kind: 'CONS' | 'PROV', domain: string, status?: ObligationStatus): Promise<ObligationItem[]> {
    return this.obligationsIn(index, statusPartitions(kind, domain, status), { status, consistent: false });
  }

  /**
   * The obligations whose entries are in index partitions `pks` (and in `status`), in
   * sort-key order, i.e. by acceptance (indexEntries merges the partitions), each once,
   * read from the table; those that left the partitions since are dropped. The periodic
   * jobs read them eventually consistent (half the read units): the index itself is,
   * and every decision taken on them (settle, default, complete evidence) is a
   * conditional write that the current item, not this copy, decides.
   */
  private async obligationsIn(
    index: 'gsi1' | 'gsi2',
    pks: readonly string[],
    opts: { consistent: boolean; limit?: number; after?: string; newest?: boolean; status?: ObligationStatus },
  ): Promise<ObligationItem[]> {
    const rows = await this.indexEntries(index, pks, opts);
    const listed = new Set(pks);
    const items = await this.itemsOf(rows, opts.consistent, (i) => listed.has(String(i[`${index}pk`])) && (opts.status === undefined || i.status === opts.status));
    return items.map(obligationFrom);
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
    const at = settlementSortKey(s);
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

  /**
   * Broadcast at chain height `height`: out of recovery (the open partition)
   * and into the consumer's unconfirmed partition, where each settle run
   * checks it until a transaction of it confirms (and fee-bumps it when stuck).
   */
  async markBroadcast(s: SettlementItem, height: number): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `SET#${s.settlementId}`, sk: 'SET' },
          UpdateExpression: 'SET phase = :p, broadcastHeight = :h, gsi2pk = :w, gsi2sk = :k',
          ConditionExpression: 'attribute_exists(pk) AND txid = :t AND attribute_not_exists(confirmedAt)',
          ExpressionAttributeValues: {
            ':p': 'broadcast',
            ':h': height,
            ':w': unconfirmedSettlements(s.consumerDomain),
            ':k': settlementSortKey(s),
            ':t': s.txid,
          },
        }),
      ),
    ).catch((e: unknown) => {
      if (!isConditionFailure(e)) throw e;
    });
  }

  /** A transaction of it (`txid`) confirmed: it leaves the unconfirmed partition. */
  async confirmSettlement(id: string, txid: string, at: number): Promise<void> {
    await this.send(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `SET#${id}`, sk: 'SET' },
          UpdateExpression: 'SET confirmedTxid = :t, confirmedAt = :a REMOVE gsi2pk, gsi2sk',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':t': txid, ':a': at },
        }),
      ),
    );
  }

  /**
   * Record a fee bump before it is broadcast: `next` (same settlement, its
   * replacement txid and hex, `replaces` naming the earlier ones) becomes the
   * settlement's intent again, so a crash before its broadcast is completed
   * by recovery like any intent; with its fee rate and the transaction it
   * replaces (what it is outbid from if the node refuses it). Conditional on
   * the settlement still naming `fromTxid`: false when another run bumped or
   * changed it first.
   */
  async replaceSettlementTx(next: SettlementItem & Required<Pick<SettlementItem, 'satVb' | 'replacedHex'>>, fromTxid: string): Promise<boolean> {
    try {
      await this.send(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: `SET#${next.settlementId}`, sk: 'SET' },
            UpdateExpression: 'SET txid = :n, hex = :x, replaces = :r, phase = :p, #at = :a, gsi2pk = :o, gsi2sk = :k, satVb = :v, replacedHex = :h REMOVE broadcastHeight',
            ConditionExpression: 'attribute_exists(pk) AND txid = :f AND attribute_not_exists(confirmedAt)',
            ExpressionAttributeNames: { '#at': 'at' },
            ExpressionAttributeValues: {
              ':n': next.txid,
              ':x': next.hex,
              ':r': next.replaces ?? [],
              ':p': 'intent',
              ':a': next.at,
              ':o': openSettlements(next.consumerDomain),
              ':k': settlementSortKey(next),
              ':f': fromTxid,
              ':v': next.satVb,
              ':h': next.replacedHex,
            },
          }),
        ),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  /** Broadcast settlements of a consumer domain no transaction of which has confirmed yet (a sparse partition). */
  async listUnconfirmedSettlements(consumerDomain: string): Promise<SettlementItem[]> {
    const items = await this.queryAll({
      IndexName: 'gsi2',
      KeyConditionExpression: 'gsi2pk = :p',
      ExpressionAttributeValues: { ':p': unconfirmedSettlements(consumerDomain) },
    });
    return items.map((i) => strip(i) as unknown as SettlementItem);
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

  /**
   * Consume a received payment for one claim on it, once: false if another claim
   * used it. A claim is one settlement output, `settlementId` and the obligations
   * it pays for (the watcher's `paymentClaim`); the same claim again is true, so a
   * run that stopped after taking the payment completes its fulfilments.
   */
  async consumePayment(domain: string, txid: string, settlementId: string, claim: string = settlementId): Promise<boolean> {
    const ok = await this.putNew({ pk: `USED#${domain}#${txid}`, sk: 'USED', settlementId, claim });
    if (ok) return true;
    return (await this.paymentClaim(domain, txid)) === claim;
  }

  /** The claim that consumed a received payment, if one did (see consumePayment). */
  async paymentClaim(domain: string, txid: string): Promise<string | undefined> {
    const item = await this.get<{ settlementId: string; claim?: string }>(`USED#${domain}#${txid}`, 'USED');
    return item && (item.claim ?? item.settlementId);
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

  /**
   * The hubs whose consumers have paid `provider`, eventually consistent: the set
   * only grows, and a copy a moment old that lacks a hub only sends a fulfilment
   * the longer way (parked, then released), to the same counters.
   */
  async getPayerHubs(provider: string): Promise<string[]> {
    const item = await this.get<{ payerHubs?: Set<string> }>(`STANDING#${provider}`, 'STANDING', false);
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

/** A domain's counters: its counters item plus the evidence waiting on its escrow shards; outstanding = Σ used. */
function countersOf(c: Record<string, unknown>, shards: readonly CreditShard[]): StoredCounters {
  return {
    rScaled: Number(c.rScaled ?? 0) + shards.reduce((t, x) => t + x.rScaled, 0),
    sScaled: Number(c.sScaled ?? 0),
    paidVolume: Number(c.paidVolume ?? 0) + shards.reduce((t, x) => t + x.paidVolume, 0),
    outstanding: shards.reduce((t, x) => t + x.used, 0),
    version: Number(c.version ?? 0),
  };
}

/** An escrow shard as stored (absent: all zero). */
function creditShardOf(i: Record<string, unknown> | undefined): CreditShard {
  return {
    free: Number(i?.free ?? 0),
    used: Number(i?.used ?? 0),
    until: Number(i?.until ?? 0),
    rScaled: Number(i?.rScaled ?? 0),
    paidVolume: Number(i?.paidVolume ?? 0),
  };
}

/** Escrow shard k of a domain's credit: its own partition. */
function shardKey(domain: string, k: number): { pk: string; sk: string } {
  return { pk: `CREDIT#${domain}#${k}`, sk: 'SHARD' };
}

/** A stable shard for an obligation id (FNV-1a). */
function shardIndex(id: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/**
 * The per-action reason codes of a cancelled transaction (in request order:
 * 'None', 'ConditionalCheckFailed', 'TransactionConflict', ...), or undefined
 * when `e` is not a TransactionCanceledException.
 */
export function cancellation(e: unknown): string[] | undefined {
  const err = e as { name?: string; CancellationReasons?: { Code?: string }[] } | null;
  if (err?.name !== 'TransactionCanceledException') return undefined;
  return (err.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}

/**
 * Obligation index partitions are write-sharded. DynamoDB limits each partition's
 * throughput, on each GSI on its own, and when a GSI cannot take its writes it
 * throttles the writes to the table ("GSI back-pressure", developer guide
 * gsi-throttling.html; a GSI keyed by a few values, like a status, is its example
 * of a hot partition). An obligation's index entries are written about four times
 * in its life, so one partition key per consumer domain, per provider domain and
 * for the publication queue would cap a busy domain, and the hub, far below the
 * table's own scale. Each entry goes to one of INDEX_SHARDS partitions, chosen by
 * the obligation's id; readers query every shard in parallel and merge by sort
 * key (DynamoStore.indexEntries). Fixed: entries written under another count
 * would be read from the wrong partitions.
 */
export const INDEX_SHARDS = 8;

/**
 * Most obligations closed in one transaction (closeObligationsTogether): with the
 * escrow shard and the counters item, within DynamoDB's 100 actions per TransactWriteItems.
 */
const CLOSE_BATCH = 64;

/** The index shard of an obligation: a hash of its id. */
export function indexShard(id: string): number {
  return shardIndex(id, INDEX_SHARDS);
}

/**
 * Index partitions split by openness: `CONS#<d>#open#<k>` holds a domain's
 * obligations until their outcome is counted, `CONS#<d>#closed#<k>` the rest, so
 * the periodic jobs read only open work however long the history grows. Without
 * a shard: the single partition items had before sharding, still read.
 */
function partition(kind: 'CONS' | 'PROV', domain: string, open: boolean, shard?: number): string {
  const base = `${kind}#${domain}#${open ? 'open' : 'closed'}`;
  return shard === undefined ? base : `${base}#${shard}`;
}

/** The partitions that can hold a domain's obligations in `status`: the open ones for an open status, else open and closed. */
function statusPartitions(kind: 'CONS' | 'PROV', domain: string, status?: ObligationStatus): string[] {
  const open = status === 'accepted' || status === 'settling';
  return open ? partitions(kind, domain, true) : [...partitions(kind, domain, true), ...partitions(kind, domain, false)];
}

/** Every partition of a domain's open (or closed) obligations: its shards, and the one from before sharding. */
function partitions(kind: 'CONS' | 'PROV', domain: string, open: boolean): string[] {
  return [...Array.from({ length: INDEX_SHARDS }, (_, k) => partition(kind, domain, open, k)), partition(kind, domain, open)];
}

/** gsi3 partition of the publication queue's shard `shard` (without: the one from before sharding). */
function pendingPartition(shard?: number): string {
  return shard === undefined ? PENDING : `${PENDING}#${shard}`;
}

function pendingPartitions(): string[] {
  return [...Array.from({ length: INDEX_SHARDS }, (_, k) => pendingPartition(k)), pendingPartition()];
}

function isPendingPartition(pk: unknown): boolean {
  return pk === PENDING || (typeof pk === 'string' && pk.startsWith(`${PENDING}#`));
}

/** gsi2 partition of a consumer domain's unfinished settlements (sparse: an item leaves it when it is broadcast or failed). */
function openSettlements(domain: string): string {
  return `SETOPEN#${domain}`;
}

/** Sort key of a settlement in its consumer's partitions: oldest first. */
function settlementSortKey(s: Pick<SettlementItem, 'at' | 'settlementId'>): string {
  return `${String(s.at).padStart(15, '0')}#${s.settlementId}`;
}

/** gsi2 partition of a consumer domain's broadcast settlements whose payment has not confirmed yet. */
function unconfirmedSettlements(domain: string): string {
  return `SETWAIT#${domain}`;
}

/** A page of a listing; `last` (the position of its last item) when another page follows. */
export interface Page<T> {
  items: T[];
  last?: string;
}

/** An obligation's position in its domain's listings: the gsi sort key, acceptance time then id. */
export function obligationPosition(item: Pick<ObligationItem, 'acceptedAt' | 'id'>): string {
  // 16 hex digits of the id break ties within a millisecond (two ids sharing them: 2^-64); the
  // full id would put 48 more bytes in the item and in each of its two index entries
  return `${String(item.acceptedAt).padStart(15, '0')}#${item.id.slice(0, 16)}`;
}

function obligationIndexes(item: ObligationItem): Record<string, string> {
  const at = obligationPosition(item);
  const idx: Record<string, string> = {
    gsi1pk: partition('CONS', item.consumerDomain, !item.counted, indexShard(item.id)),
    gsi1sk: at,
    gsi2pk: partition('PROV', item.providerDomain, !item.counted, indexShard(item.id)),
    gsi2sk: at,
  };
  if (item.ledgerTxid === undefined) {
    idx.gsi3pk = pendingPartition(indexShard(item.id));
    idx.gsi3sk = pendingPosition(item);
  }
  return idx;
}

function strip<T extends object>(item: T): T {
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, gsi3pk: _e, gsi3sk: _f, ...rest } =
    item as Record<string, unknown>;
  return rest as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The update that moves a device's chain head to (seq, id): after the head it
 * knows, or a forward gap over links accepted at other hubs (core/policy.ts);
 * the same head again is idempotent. One definition for advanceChain and the
 * acceptance transaction.
 */
/** One Update of a TransactWriteItems. */
type TransactUpdate = NonNullable<NonNullable<TransactWriteCommandInput['TransactItems']>[number]['Update']>;

function chainAdvance(table: string, domain: string, device: string, seq: number, id: string, prev: string) {
  return {
    TableName: table,
    Key: { pk: `DEV#${domain}/${device}`, sk: 'CHAIN' },
    UpdateExpression: 'SET seq = :seq, id = :id',
    ConditionExpression:
      seq === 1
        ? 'attribute_not_exists(pk) OR id = :id'
        : 'attribute_not_exists(pk) OR (seq = :prevSeq AND id = :prev) OR seq < :prevSeq OR id = :id',
    ExpressionAttributeValues:
      seq === 1 ? { ':seq': seq, ':id': id } : { ':seq': seq, ':id': id, ':prevSeq': seq - 1, ':prev': prev },
  };
}

/**
 * Sort key of an obligation in the publication queue (gsi3): its acceptance
 * time alone. The queue is only read oldest first, never paged by position, so
 * no id is needed to break ties (DynamoDB keeps index entries with equal keys
 * apart by the table key); 80 bytes less in the item and in its index entry.
 */
function pendingPosition(item: Pick<ObligationItem, 'acceptedAt'>): string {
  return String(item.acceptedAt).padStart(15, '0');
}

/**
 * The update expression of an obligation's status move: SET `fields`, REMOVE
 * `remove`, on condition that its status is one of `from` (and, with `expect`,
 * that it is in that settlement, or in none for null).
 */
function obligationUpdate(
  from: ObligationStatus[],
  fields: Record<string, unknown>,
  expect?: { settlementId: string | null },
  remove: readonly string[] = [],
): { UpdateExpression: string; ConditionExpression: string; ExpressionAttributeNames: Record<string, string>; ExpressionAttributeValues: Record<string, unknown> } {
  const names: Record<string, string> = { '#s': 'status' };
  const values: Record<string, unknown> = {};
  const sets = Object.entries(fields).map(([k, v], i) => {
    names[`#a${i}`] = storedName(k);
    values[`:a${i}`] = storedField(k, v);
    return `#a${i} = :a${i}`;
  });
  from.forEach((s, i) => (values[`:f${i}`] = s));
  // an attribute written before the short names is removed under its old name too
  const removes = remove.flatMap((k) => (storedName(k) === k ? [k] : [storedName(k), k])).map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  let condition = `#s IN (${from.map((_, i) => `:f${i}`).join(', ')})`;
  if (expect !== undefined) {
    // the settlement it is in, under its short name as bytes, or as written before them (long name, text)
    names['#sid'] = storedName('settlementId');
    names['#sidText'] = 'settlementId';
    if (expect.settlementId === null) condition += ' AND attribute_not_exists(#sid) AND attribute_not_exists(#sidText)';
    else {
      values[':sid'] = storedField('settlementId', expect.settlementId);
      values[':sidText'] = expect.settlementId;
      condition += ' AND (#sid = :sid OR #sidText = :sidText)';
    }
  }
  return {
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: condition,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

// ---- the obligation item, compact ----------------------------------------------
//
// An accepted obligation is written in the acceptance transaction, where DynamoDB
// bills 2 write units per KB of item, rounded up per item ("Capacity management
// for transactions", transaction-apis.html), and read back as 1 read unit per
// 4 KB (read-write-operations.html). As plain attributes it was 1.9 KB (2 KB: 4
// units); kept below 1 KB it costs 2. So:
// - the signed obligation and acceptance (`accepted`, exactly what the ledger
//   record carries: its format does not change) are one binary attribute `a`:
//   their JSON compressed with raw DEFLATE and a preset dictionary of the field
//   names and fixed prefixes (base64url signatures and keys do not compress, the
//   structure does);
// - `id` is not stored (it is the pk), and the fields the item denormalises
//   (consumerDomain, consumerDevice, providerDomain, amount, payTo, acceptedAt,
//   dueBy) are stored only when they differ from what `accepted` says (they
//   never do for an obligation accepted here); obligationFrom() restores them.

/** Format byte of `a`: 1 = JSON, raw DEFLATE with OB_DICTIONARY. A new dictionary gets a new byte. */
const OB_FORMAT = 1;
/** Format byte of `a`: as 1, without obligation.id and acceptance.body.obligationId (both the pk's id). */
const OB_FORMAT_NO_IDS = 2;
const OB_DICTIONARY = Buffer.from(
  '"by":"","sig":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE","kind":"hub-key","key":{"alg":"p256","spki":"MCowBQYDK2VwAyEA"},' +
    '"notBefore":17,"notAfter":17,"certificate":{"body":{"version":1,"kind":"hub-key","domain":"","key":{"alg":"ed25519","spki":"MCowBQYDK2VwAyEA"},' +
    '"acceptance":{"body":{"version":1,"obligationId":"","providerDomain":"","payTo":"","acceptedAt":17' +
    '"offerId":"","issuedAt":17,"dueBy":17,"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000",' +
    '"credential":{"body":{"version":1,"domain":"","deviceId":"","deviceKey":{"alg":"ed25519","spki":"MCowBQYDK2VwAyEA"},"creditLimit":1,' +
    '{"obligation":{"id":"","body":{"version":1,"consumerDomain":"","consumerDevice":"","providerDomain":"","providerDevice":"","service":"wifi-access","amount":',
  'utf8',
);

/**
 * Format byte of `a`: as 2, with its signatures, keys and hashes as bytes. Deflate
 * codes base64url at about 6.2 bits a character and hex at about 4.2, a little more
 * than the bytes they stand for; so each such string (in walk order) becomes a
 * one-character placeholder in the JSON and its bytes follow the compressed JSON,
 * each after its length. 20 to 35 bytes less per obligation: with the rest, what
 * keeps a closed obligation within 1 KB (obligationRecord). Used where the ids
 * are left out and no string clashes with a placeholder; else format 2 (or 1).
 */
const OB_FORMAT_BYTES = 3;
/** Placeholders of format 3: base64url bytes, an Ed25519 SPKI key without its fixed DER prefix, 64 hex digits. */
const B64 = '\u0000';
const SPKI = '\u0001';
const HEX = '\u0002';
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const OB_DICTIONARY_BYTES = Buffer.concat([
  OB_DICTIONARY,
  Buffer.from(`"spki":"${'\\u0001'}"},"sig":"${'\\u0000'}","by":"","prev":"${'\\u0002'}",`, 'utf8'),
]);

/** The bytes a string of `a` stands for, and its placeholder; undefined: it stays text. */
function asBytes(v: string): { mark: string; bytes: Buffer } | undefined {
  if (v.length === 64 && /^[0-9a-f]+$/.test(v)) return /^0+$/.test(v) ? undefined : { mark: HEX, bytes: Buffer.from(v, 'hex') };
  if (v.length < 43 || !/^[A-Za-z0-9_-]+$/.test(v)) return undefined;
  const bytes = Buffer.from(v, 'base64url');
  if (bytes.length > 255 || bytes.toString('base64url') !== v) return undefined;
  if (bytes.length === 44 && bytes.subarray(0, 12).equals(ED25519_SPKI_PREFIX)) return { mark: SPKI, bytes: bytes.subarray(12) };
  return { mark: B64, bytes };
}

/**
 * Format 3 of `slim`, or undefined when it cannot be (a string equal to a placeholder, or
 * compressed JSON over 64 KB). Each string is replaced as JSON.stringify writes it, so the
 * placeholders come in the order of the text, which is the order JSON.parse gives its
 * keys back in (unpackBytes); asBytes replaces only what its bytes give back exactly.
 */
function packBytes(slim: unknown): Buffer | undefined {
  const chunks: Buffer[] = [];
  let clash = false;
  const json = JSON.stringify(slim, (_key, v: unknown) => {
    if (typeof v !== 'string') return v;
    if (v === B64 || v === SPKI || v === HEX) clash = true;
    const b = asBytes(v);
    if (!b) return v;
    chunks.push(Buffer.from([b.bytes.length]), b.bytes);
    return b.mark;
  });
  if (clash) return undefined;
  const z = deflateRawSync(Buffer.from(json, 'utf8'), { dictionary: OB_DICTIONARY_BYTES, level: 9, memLevel: 9 });
  if (z.length > 0xffff) return undefined;
  return Buffer.concat([Buffer.from([OB_FORMAT_BYTES, z.length >> 8, z.length & 0xff]), z, ...chunks]);
}

/** Every string of a parsed JSON value replaced by what `f` returns, in the order of its text (own keys, as parsed). */
function mapStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, f));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapStrings(x, f)]));
  return v;
}

function unpackBytes(b: Uint8Array): unknown {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const zLen = (buf[1]! << 8) | buf[2]!;
  const json = JSON.parse(inflateRawSync(buf.subarray(3, 3 + zLen), { dictionary: OB_DICTIONARY_BYTES }).toString('utf8')) as unknown;
  let at = 3 + zLen;
  const next = (): Buffer => {
    const n = buf[at];
    const out = n === undefined ? undefined : buf.subarray(at + 1, at + 1 + n);
    if (n === undefined || out?.length !== n) throw new Error('obligation item format 3: its bytes end early');
    at += 1 + n;
    return out;
  };
  const out = mapStrings(json, (s) =>
    s === B64 ? next().toString('base64url') : s === SPKI ? Buffer.concat([ED25519_SPKI_PREFIX, next()]).toString('base64url') : s === HEX ? next().toString('hex') : s,
  );
  if (at !== buf.length) throw new Error('obligation item format 3: bytes left over');
  return out;
}

function packAccepted(a: AcceptedObligation, id: string): Uint8Array {
  // the obligation id twice more is 2 × 64 hex digits that do not compress: left out when it is the pk's
  const o = (a as Partial<AcceptedObligation>).obligation;
  const acc = (a as Partial<AcceptedObligation>).acceptance;
  const idsOut = o?.id === id && acc?.body?.obligationId === id;
  const slim = idsOut
    ? { ...a, obligation: { ...o, id: undefined }, acceptance: { ...acc, body: { ...acc.body, obligationId: undefined } } }
    : a;
  const packed = idsOut ? packBytes(slim) : undefined;
  if (packed) return packed;
  const z = deflateRawSync(Buffer.from(JSON.stringify(slim), 'utf8'), { dictionary: OB_DICTIONARY, level: 9, memLevel: 9 });
  return Buffer.concat([Buffer.from([idsOut ? OB_FORMAT_NO_IDS : OB_FORMAT]), z]);
}

function unpackAccepted(b: Uint8Array, id: string): AcceptedObligation {
  if (b[0] !== OB_FORMAT && b[0] !== OB_FORMAT_NO_IDS && b[0] !== OB_FORMAT_BYTES) throw new Error(`obligation item format ${b[0]} is not known`);
  const a = (
    b[0] === OB_FORMAT_BYTES ? unpackBytes(b) : JSON.parse(inflateRawSync(b.subarray(1), { dictionary: OB_DICTIONARY }).toString('utf8'))
  ) as AcceptedObligation;
  if (b[0] !== OB_FORMAT) {
    a.obligation.id = id;
    a.acceptance.body.obligationId = id;
  }
  return a;
}

type Derived = Partial<Pick<ObligationItem, 'consumerDomain' | 'consumerDevice' | 'providerDomain' | 'amount' | 'payTo' | 'acceptedAt' | 'dueBy'>>;

/** The item fields that the signed obligation and acceptance already say. */
function derivedFields(a: AcceptedObligation | undefined): Derived {
  const b = (a as Partial<AcceptedObligation> | undefined)?.obligation?.body;
  const acc = (a as Partial<AcceptedObligation> | undefined)?.acceptance?.body;
  const d: Derived = {
    consumerDomain: b?.consumerDomain,
    consumerDevice: b?.consumerDevice,
    providerDomain: b?.providerDomain,
    amount: b?.amount,
    payTo: b?.payTo,
    acceptedAt: acc?.acceptedAt,
    dueBy: b?.dueBy,
  };
  for (const k of Object.keys(d) as (keyof Derived)[]) if (d[k] === undefined) delete d[k];
  return d;
}

/** The table item of an obligation: keys, index keys, `a`, and only the fields `a` does not already say. */
export function obligationRecord(item: ObligationItem): Record<string, unknown> {
  const { id, accepted, ...rest } = item;
  const derived = derivedFields(accepted) as Record<string, unknown>;
  const out: Record<string, unknown> = { pk: `OB#${id}`, sk: 'OB', ...obligationIndexes(item), a: packAccepted(accepted, id) };
  for (const [k, v] of Object.entries(rest)) {
    // `counted` is said by its index partition (obligationIndexes, obligationFrom)
    if (v === undefined || k === 'counted' || (k in derived && derived[k] === v)) continue;
    out[storedName(k)] = storedField(k, v);
  }
  return out;
}

/** An obligation as stored → the ObligationItem (its id from the pk, the derived fields from `a`). */
export function obligationFrom(raw: Record<string, unknown>): ObligationItem {
  const { a, ...fields } = strip(raw) as Record<string, unknown>;
  const id = String(raw.pk).slice('OB#'.length);
  const accepted = a instanceof Uint8Array ? unpackAccepted(a, id) : (fields.accepted as AcceptedObligation);
  for (const [long, short] of Object.entries(SHORT_NAMES)) {
    if (fields[short] === undefined) continue;
    fields[long] = fields[short];
    delete fields[short];
  }
  for (const k of HEX_FIELDS) if (fields[k] instanceof Uint8Array) fields[k] = Buffer.from(fields[k]).toString('hex');
  const item = { id, ...derivedFields(accepted), ...fields, accepted } as ObligationItem;
  if (item.counted === undefined && inClosedPartition(raw.gsi1pk, item)) item.counted = true;
  return item;
}

/** Is `pk` the closed gsi1 partition of this obligation (its shard's, or the one from before sharding)? */
function inClosedPartition(pk: unknown, item: Pick<ObligationItem, 'id' | 'consumerDomain'>): boolean {
  return pk === partition('CONS', item.consumerDomain, false, indexShard(item.id)) || pk === partition('CONS', item.consumerDomain, false);
}

/**
 * Fields holding a 32-byte hash as 64 hex digits (ledger and Bitcoin txids, the
 * settlement id): stored as the 32 bytes, half the size. An obligation gains
 * four of them over its life; as text they took it past 1 KB, and from there
 * every write of it (its close, a transaction, at 2 units per KB) bills twice.
 * Anything else (an id of another shape, a test's 'tx1') stays text, and text
 * written before this is still read (obligationFrom) and matched (obligationUpdate).
 */
const HEX_FIELDS = ['ledgerTxid', 'outcomeTxid', 'settlementId', 'paidTxid'] as const;
const HASH_HEX = /^[0-9a-f]{64}$/;

/**
 * Short stored names of the fields an obligation gains after its acceptance
 * (attribute names count in an item's size as much as values do): with the
 * bytes above, a closed obligation stays below 1 KB. Items written with the
 * long names are still read, matched and cleared (obligationFrom, obligationUpdate).
 */
const SHORT_NAMES: Readonly<Record<string, string>> = { ledgerTxid: 'lt', outcomeTxid: 'ot', settlementId: 'si', paidTxid: 'pt', closedAt: 'ca' };

function storedName(name: string): string {
  return SHORT_NAMES[name] ?? name;
}

function storedField(name: string, v: unknown): unknown {
  return typeof v === 'string' && HASH_HEX.test(v) && (HEX_FIELDS as readonly string[]).includes(name) ? Buffer.from(v, 'hex') : v;
}
