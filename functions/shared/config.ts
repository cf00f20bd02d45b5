/**
 * Configuration, read once from the environment at cold start and validated.
 * CDK sets these on every Lambda; local/cloud.ts sets them for the embedded
 * cloud. Nothing else in the code reads process.env.
 */
import { z } from 'zod';
import { DEFAULT_CREDIT } from '../../core/credit.ts';
import { DEFAULT_REPUTATION } from '../../core/reputation.ts';
import { DEFAULT_TOPIC_ROOT, TOPIC_ROOT } from '../../service/topics.ts';
import { BITCOIN_NETWORKS, NETWORK_DEFAULTS, type FeePolicy } from '../../core/network.ts';

const num = (def: number) => z.coerce.number().finite().default(def);

const EnvSchema = z.object({
  TABLE_NAME: z.string().min(1),
  LEDGER_KIND: z.enum(['multichain', 'embedded']).default('multichain'),
  LEDGER_FILE: z.string().optional(),
  LEDGER_PUBLISHER: z.string().default('local-hub'),
  MULTICHAIN_RPC_URL: z.string().url().optional(),
  MULTICHAIN_CHAIN_NAME: z.string().default('oc'),
  /** The back-end's own publishing address (publishfrom); the node's default address when absent. */
  MULTICHAIN_PUBLISHER: z.string().optional(),
  MULTICHAIN_RPC_SECRET_ARN: z.string().optional(),
  MULTICHAIN_RPC_USER: z.string().optional(),
  MULTICHAIN_RPC_PASSWORD: z.string().optional(),
  /** `host:port` other organisations join this chain through (the P2P load balancer), shown by GET /chain. */
  MULTICHAIN_P2P_ENDPOINT: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'host:port')
    .optional(),
  BITCOIN_KIND: z.enum(['bitcoind', 'bcoin']).default('bitcoind'),
  BITCOIN_RPC_URL: z.string().url(),
  BITCOIN_WALLET_RPC_URL: z.string().url().optional(),
  BITCOIN_RPC_SECRET_ARN: z.string().optional(),
  BITCOIN_RPC_USER: z.string().optional(),
  BITCOIN_RPC_PASSWORD: z.string().optional(),
  /** bitcoind's read-only RPC user (rpcwhitelist of read calls): for functions that only read. */
  BITCOIN_READER_SECRET_ARN: z.string().optional(),
  BITCOIN_READER_USER: z.string().optional(),
  BITCOIN_READER_PASSWORD: z.string().optional(),
  /** How long an RPC secret read from Secrets Manager is trusted before it is read again (rotation). */
  SECRETS_MAX_AGE_S: z.coerce.number().int().min(0).default(300),
  /** The Bitcoin network paid on; sets the defaults of CONFIRMATIONS and FEE_* and which addresses are valid. */
  BITCOIN_NETWORK: z.enum(BITCOIN_NETWORKS).default('regtest'),
  /** Default per network: 1 regtest, 3 signet and testnet4, 6 mainnet (core/network.ts). */
  CONFIRMATIONS: z.coerce.number().int().min(0).optional(),
  /** Settlement fee: estimatesmartfee FEE_TARGET_BLOCKS, clamped to [FEE_FLOOR, FEE_CAP] sat/vB, FEE_FALLBACK without an estimate. */
  FEE_TARGET_BLOCKS: z.coerce.number().int().min(1).max(1008).optional(),
  FEE_FLOOR_SAT_VB: z.coerce.number().finite().positive().optional(),
  FEE_CAP_SAT_VB: z.coerce.number().finite().positive().optional(),
  FEE_FALLBACK_SAT_VB: z.coerce.number().finite().positive().optional(),
  IOT_DATA_ENDPOINT: z.string().optional(),
  /** The stage's MQTT topic root (service/topics.ts: `oc` for the default stage, `oc-<stage>` for others; set by the stack). */
  TOPIC_ROOT: z.string().regex(TOPIC_ROOT, "one topic level of letters, digits, '-' or '_'").default(DEFAULT_TOPIC_ROOT),
  ECS_CLUSTER_ARN: z.string().optional(),
  ECS_SERVICES: z.string().optional(),
  /** The SDK's own endpoint override, read here too for callers that build clients without process.env. */
  AWS_ENDPOINT_URL_ECS: z.string().url().optional(),
  /** Log a summary line after every scheduled run ('false' for the embedded cloud, which runs them often). */
  LOG_JOBS: z.enum(['true', 'false']).default('true'),
  OFFER_TTL_MS: num(60_000),
  /**
   * Standing offers (a device that asks for one may buy at the offered price again and again):
   * how long one lasts (at most half HUB_KEY_TTL_MS, so the hub key that signed it stays
   * certified) and how many purchases its cap allows (cap = price × this; 0: single-use offers only).
   */
  STANDING_OFFER_TTL_MS: z.coerce.number().int().positive().default(3_600_000),
  STANDING_OFFER_PURCHASES: z.coerce.number().int().min(0).max(1_000_000).default(100),
  /** How long after dueBy an obligation in settlement (paid, unconfirmed) may still be fulfilled. */
  SETTLEMENT_GRACE_MS: num(3_600_000),
  /** How often the settle job runs (CDK: its schedule; embedded cloud: its scheduler). */
  SETTLE_INTERVAL_MS: z.coerce.number().int().positive().default(300_000),
  /**
   * How long after dueBy an obligation its consumer has not started to settle
   * (still 'accepted') is defaulted. Default: two settlement intervals, so one
   * slow or failed settle run never defaults a paying domain.
   */
  ACCEPTED_GRACE_MS: z.coerce.number().int().min(0).optional(),
  /** Shortest payment term (dueBy − issuedAt) a provider accepts by default; must exceed SETTLE_INTERVAL_MS. Default 1.5 intervals. */
  MIN_TERM_MS: z.coerce.number().int().positive().optional(),
  /** How long one settle run holds a consumer domain's lease (longer than the settle function's timeout). */
  SETTLE_LEASE_MS: z.coerce.number().int().positive().default(180_000),
  /** A broadcast settlement still unconfirmed this many blocks later is fee-bumped (replace-by-fee). */
  BUMP_AFTER_BLOCKS: z.coerce.number().int().min(1).default(6),
  /** How long one publish run holds the hub's publication lease (longer than the publish function's timeout). */
  PUBLISH_LEASE_MS: z.coerce.number().int().positive().default(120_000),
  /**
   * One publish run reads page after page of pending obligations until none is
   * left or this long has passed (a page started before is finished): under the
   * publish function's 60 s timeout and PUBLISH_LEASE_MS.
   */
  PUBLISH_BUDGET_MS: z.coerce.number().int().min(0).default(40_000),
  /** Ledger batches (up to 32 items each) a publish run has in flight at once. */
  PUBLISH_PARALLEL: z.coerce.number().int().min(1).max(16).default(4),
  /** Where domain keys live: AWS KMS, or a local signer (memory, or SIGNER_KEY_FILE) for the embedded cloud. */
  SIGNER_KIND: z.enum(['kms', 'local']).default('kms'),
  SIGNER_KEY_FILE: z.string().optional(),
  /** KMS: the key policy of every new domain key (JSON), and extra tags as a JSON object (e.g. {"oc:app":"…"}). */
  SIGNER_KEY_POLICY: z.string().optional(),
  SIGNER_KEY_TAGS: z.string().optional(),
  /** How long a device credential is valid (default 7 days); devices renew before it ends. */
  CREDENTIAL_TTL_MS: z.coerce.number().int().positive().default(7 * 86_400_000),
  /** How long a hub key certificate is valid (default 1 day); a process rotates its hub key at half-life. */
  HUB_KEY_TTL_MS: z.coerce.number().int().positive().max(7 * 86_400_000).default(86_400_000),
  REPUTATION_LAMBDA: num(DEFAULT_REPUTATION.lambda),
  REPUTATION_UNIT: num(DEFAULT_REPUTATION.unit),
  CREDIT_BASE: num(DEFAULT_CREDIT.base),
  CREDIT_K: num(DEFAULT_CREDIT.k),
  CREDIT_CAP: num(DEFAULT_CREDIT.cap),
  CREDIT_MIN_REPUTATION: num(DEFAULT_CREDIT.minReputation),
});

// The configuration's type is the services' (service/deps.ts): this module only reads it from the environment.
export type { Config, RpcTarget } from '../../service/deps.ts';
import type { Config } from '../../service/deps.ts';

/** Parse the environment; throws a readable error naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  if (e.LEDGER_KIND === 'multichain' && !e.MULTICHAIN_RPC_URL) {
    throw new Error('invalid configuration: MULTICHAIN_RPC_URL is required when LEDGER_KIND=multichain');
  }
  if (e.BITCOIN_KIND === 'bcoin' && e.BITCOIN_NETWORK !== 'regtest') {
    throw new Error(`invalid configuration: BITCOIN_KIND=bcoin runs regtest only (BITCOIN_NETWORK=${e.BITCOIN_NETWORK})`);
  }
  const netDefaults = NETWORK_DEFAULTS[e.BITCOIN_NETWORK];
  const fees: FeePolicy = {
    targetBlocks: e.FEE_TARGET_BLOCKS ?? netDefaults.fees.targetBlocks,
    floorSatVb: e.FEE_FLOOR_SAT_VB ?? netDefaults.fees.floorSatVb,
    capSatVb: e.FEE_CAP_SAT_VB ?? netDefaults.fees.capSatVb,
    fallbackSatVb: e.FEE_FALLBACK_SAT_VB ?? netDefaults.fees.fallbackSatVb,
  };
  if (!(fees.floorSatVb <= fees.fallbackSatVb && fees.fallbackSatVb <= fees.capSatVb)) {
    throw new Error(
      `invalid configuration: fee rates must satisfy FEE_FLOOR_SAT_VB (${fees.floorSatVb}) <= FEE_FALLBACK_SAT_VB (${fees.fallbackSatVb}) <= FEE_CAP_SAT_VB (${fees.capSatVb})`,
    );
  }
  const minTermMs = e.MIN_TERM_MS ?? Math.ceil(e.SETTLE_INTERVAL_MS * 1.5);
  if (minTermMs <= e.SETTLE_INTERVAL_MS) {
    throw new Error(`invalid configuration: MIN_TERM_MS (${minTermMs}) must exceed SETTLE_INTERVAL_MS (${e.SETTLE_INTERVAL_MS})`);
  }
  let tags: Record<string, string> = {};
  if (e.SIGNER_KEY_TAGS) {
    const parsedTags = z.record(z.string(), z.string()).safeParse(JSON.parse(e.SIGNER_KEY_TAGS));
    if (!parsedTags.success) throw new Error('invalid configuration: SIGNER_KEY_TAGS must be a JSON object of strings');
    tags = parsedTags.data;
  }
  if (e.PUBLISH_BUDGET_MS >= e.PUBLISH_LEASE_MS) {
    throw new Error(`invalid configuration: PUBLISH_BUDGET_MS (${e.PUBLISH_BUDGET_MS}) must be less than PUBLISH_LEASE_MS (${e.PUBLISH_LEASE_MS})`);
  }
  if (e.STANDING_OFFER_TTL_MS > e.HUB_KEY_TTL_MS / 2) {
    throw new Error(`invalid configuration: STANDING_OFFER_TTL_MS (${e.STANDING_OFFER_TTL_MS}) must be at most half HUB_KEY_TTL_MS (${e.HUB_KEY_TTL_MS})`);
  }
  if (e.HUB_KEY_TTL_MS <= 2 * e.OFFER_TTL_MS) {
    throw new Error(`invalid configuration: HUB_KEY_TTL_MS (${e.HUB_KEY_TTL_MS}) must exceed twice OFFER_TTL_MS (${e.OFFER_TTL_MS})`);
  }
  return {
    tableName: e.TABLE_NAME,
    signer: e.SIGNER_KIND === 'kms' ? { kind: 'kms', keyPolicy: e.SIGNER_KEY_POLICY, tags } : { kind: 'local', file: e.SIGNER_KEY_FILE },
    credentialTtlMs: e.CREDENTIAL_TTL_MS,
    hubKeyTtlMs: e.HUB_KEY_TTL_MS,
    ledger:
      e.LEDGER_KIND === 'embedded'
        ? { kind: 'embedded', file: e.LEDGER_FILE, publisher: e.LEDGER_PUBLISHER }
        : {
            kind: 'multichain',
            url: e.MULTICHAIN_RPC_URL as string,
            chainName: e.MULTICHAIN_CHAIN_NAME,
            publisher: e.MULTICHAIN_PUBLISHER,
            user: e.MULTICHAIN_RPC_USER,
            password: e.MULTICHAIN_RPC_PASSWORD,
            secretArn: e.MULTICHAIN_RPC_SECRET_ARN,
            p2pEndpoint: e.MULTICHAIN_P2P_ENDPOINT,
          },
    bitcoin: {
      kind: e.BITCOIN_KIND,
      network: e.BITCOIN_NETWORK,
      fees,
      node: {
        url: e.BITCOIN_RPC_URL,
        user: e.BITCOIN_RPC_USER,
        password: e.BITCOIN_RPC_PASSWORD,
        secretArn: e.BITCOIN_RPC_SECRET_ARN,
      },
      walletUrl: e.BITCOIN_WALLET_RPC_URL ?? e.BITCOIN_RPC_URL,
      reader:
        e.BITCOIN_READER_SECRET_ARN || e.BITCOIN_READER_USER
          ? {
              url: e.BITCOIN_RPC_URL,
              user: e.BITCOIN_READER_USER,
              password: e.BITCOIN_READER_PASSWORD,
              secretArn: e.BITCOIN_READER_SECRET_ARN,
            }
          : undefined,
    },
    secretsMaxAgeSeconds: e.SECRETS_MAX_AGE_S,
    confirmations: e.CONFIRMATIONS ?? netDefaults.confirmations,
    iotDataEndpoint: e.IOT_DATA_ENDPOINT,
    topicRoot: e.TOPIC_ROOT,
    ecs: e.ECS_CLUSTER_ARN
      ? { clusterArn: e.ECS_CLUSTER_ARN, services: (e.ECS_SERVICES ?? '').split(',').filter(Boolean), endpoint: e.AWS_ENDPOINT_URL_ECS }
      : undefined,
    logJobs: e.LOG_JOBS === 'true',
    offerTtlMs: e.OFFER_TTL_MS,
    standingOffer: { ttlMs: e.STANDING_OFFER_TTL_MS, purchases: e.STANDING_OFFER_PURCHASES },
    settlementGraceMs: e.SETTLEMENT_GRACE_MS,
    settleIntervalMs: e.SETTLE_INTERVAL_MS,
    acceptedGraceMs: e.ACCEPTED_GRACE_MS ?? 2 * e.SETTLE_INTERVAL_MS,
    minTermMs,
    settleLeaseMs: e.SETTLE_LEASE_MS,
    publishLeaseMs: e.PUBLISH_LEASE_MS,
    publishBudgetMs: e.PUBLISH_BUDGET_MS,
    publishParallel: e.PUBLISH_PARALLEL,
    bumpAfterBlocks: e.BUMP_AFTER_BLOCKS,
    reputation: { ...DEFAULT_REPUTATION, lambda: e.REPUTATION_LAMBDA, unit: e.REPUTATION_UNIT },
    credit: {
      base: e.CREDIT_BASE,
      k: e.CREDIT_K,
      cap: e.CREDIT_CAP,
      minReputation: e.CREDIT_MIN_REPUTATION,
    },
  };
}
