/**
 * The one DynamoDB table's key schema, shared by the CDK data stack and the
 * embedded cloud (local/dynamo.ts) so both create the same table.
 * Item kinds (pk / sk):
 * - obligation       OB#{id}                / OB        gsi1: CONS#{consumerDomain}#{open|closed}#{k} / {acceptedAt}#{id16}; gsi2: PROV#{providerDomain}#{open|closed}#{k} / ...;
 *                                                       gsi3 (sparse, while something is to publish): PENDING#{k} / {acceptedAt}; k = the id's index shard (INDEX_SHARDS, adapters/store/dynamo.ts);
 *                                                       `a` (the signed obligation and acceptance, compressed), then lt, si, pt, ot (ledger txid,
 *                                                       settlement id, payment txid, outcome txid: 32 bytes each) and ca (closedAt): within 1 KB
 * - device chain     DEV#{domain}/{device}  / CHAIN
 * - counters         REP#{domain}           / COUNTERS  (rScaled, sScaled, paidVolume, version: small)
 * - credit escrow    CREDIT#{domain}#{k}    / SHARD     (free, used, until; k < shards)
 * - event marker     EVT#{domain}#{event}   / EVT       (idempotency of counter events; removed by TTL)
 * - hosted domain    DOM#{domain}           / CONFIG
 * - settlement       SET#{settlementId}     / SET       gsi1: SETC#{consumerDomain} / {at}#{id}; gsi2 (sparse, unfinished only): SETOPEN#{consumerDomain} / {at}#{id}
 * - lease            LEASE#{name}           / LEASE     (settle:{domain}, publish)
 * - watcher cursor   CURSOR#{name}          / CURSOR
 */
export const TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

/**
 * The three GSIs project only what their queries read from the index itself:
 * keys, plus `status` on gsi1/gsi2 (the status filter of listByConsumer /
 * listByProvider). The store then reads the items from the table
 * (BatchGetItem, strongly consistent). An index write costs 1 unit per KB of the
 * projected item (DynamoDB developer guide, "Provisioned throughput
 * considerations for GSIs"), so a small projection keeps every obligation
 * write cheap: with ALL, each of the three indexes rewrote the whole
 * multi-KB obligation.
 */
export const TABLE_INDEXES = [
  { indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk', projection: 'INCLUDE', include: ['status'] },
  { indexName: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk', projection: 'INCLUDE', include: ['status'] },
  { indexName: 'gsi3', partitionKey: 'gsi3pk', sortKey: 'gsi3sk', projection: 'KEYS_ONLY', include: [] },
] as const;

/** Environment variable that names the table (set by CDK, or by local/). */
export const TABLE_ENV = 'TABLE_NAME';

/**
 * Attribute holding an item's expiry (epoch seconds) for DynamoDB TTL: set on
 * offers, which are useless once expired, and on counter-event markers. (dynalite ignores TTL; the items stay
 * locally, harmlessly.)
 */
export const TTL_ATTRIBUTE = 'ttl';
