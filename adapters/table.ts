/**
 * The one DynamoDB table's key schema, shared by the CDK data stack and the
 * embedded cloud (local/dynamo.ts) so both create the same table.
 * Item kinds (pk / sk):
 * - obligation       OB#{id}                / OB        gsi1: CONS#{consumerDomain} / {acceptedAt}#{id}; gsi2: PROV#{providerDomain} / ...; gsi3 (sparse): STATUS#{status} / {dueBy}#{id}
 * - device chain     DEV#{domain}/{device}  / CHAIN
 * - counters         REP#{domain}           / COUNTERS
 * - hosted domain    DOM#{domain}           / CONFIG
 * - settlement       SET#{settlementId}     / SET       gsi1: SETC#{consumerDomain} / {at}#{id}; gsi2 (sparse, unfinished only): SETOPEN#{consumerDomain} / {at}#{id}
 * - lease            LEASE#{name}           / LEASE     (settle:{domain}, publish)
 * - watcher cursor   CURSOR#{name}          / CURSOR
 */
export const TABLE_KEYS = { partitionKey: 'pk', sortKey: 'sk' } as const;

export const TABLE_INDEXES = [
  { indexName: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  { indexName: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  { indexName: 'gsi3', partitionKey: 'gsi3pk', sortKey: 'gsi3sk' },
] as const;

/** Environment variable that names the table (set by CDK, or by local/). */
export const TABLE_ENV = 'TABLE_NAME';

/**
 * Attribute holding an item's expiry (epoch seconds) for DynamoDB TTL: set on
 * offers, which are useless once expired. (dynalite ignores TTL; the items stay
 * locally, harmlessly.)
 */
export const TTL_ATTRIBUTE = 'ttl';
