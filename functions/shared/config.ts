/**
 * Configuration, read once from the environment at cold start and validated.
 * CDK sets these on every Lambda; local/cloud.ts sets them for the embedded
 * cloud. Nothing else in the code reads process.env.
 */
import { z } from 'zod';
import { DEFAULT_CREDIT, type CreditParams } from '../../core/credit.ts';
import { DEFAULT_REPUTATION, type ReputationParams } from '../../core/reputation.ts';

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
  BITCOIN_KIND: z.enum(['bitcoind', 'bcoin']).default('bitcoind'),
  BITCOIN_RPC_URL: z.string().url(),
  BITCOIN_WALLET_RPC_URL: z.string().url().optional(),
  BITCOIN_RPC_SECRET_ARN: z.string().optional(),
  BITCOIN_RPC_USER: z.string().optional(),
  BITCOIN_RPC_PASSWORD: z.string().optional(),
  CONFIRMATIONS: z.coerce.number().int().min(0).default(1),
  IOT_DATA_ENDPOINT: z.string().optional(),
  ECS_CLUSTER_ARN: z.string().optional(),
  ECS_SERVICES: z.string().optional(),
  /** The SDK's own endpoint override, read here too for callers that build clients without process.env. */
  AWS_ENDPOINT_URL_ECS: z.string().url().optional(),
  /** Log a summary line after every scheduled run ('false' for the embedded cloud, which runs them often). */
  LOG_JOBS: z.enum(['true', 'false']).default('true'),
  OFFER_TTL_MS: num(60_000),
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
  REPUTATION_LAMBDA: num(DEFAULT_REPUTATION.lambda),
  REPUTATION_UNIT: num(DEFAULT_REPUTATION.unit),
  CREDIT_BASE: num(DEFAULT_CREDIT.base),
  CREDIT_K: num(DEFAULT_CREDIT.k),
  CREDIT_CAP: num(DEFAULT_CREDIT.cap),
  CREDIT_MIN_REPUTATION: num(DEFAULT_CREDIT.minReputation),
});

export interface RpcTarget {
  url: string;
  user?: string | undefined;
  password?: string | undefined;
  /** Secrets Manager secret holding `{ "user", "password" }` (AWS). */
  secretArn?: string | undefined;
}

export interface Config {
  tableName: string;
  ledger:
    | { kind: 'embedded'; file?: string | undefined; publisher: string }
    | ({ kind: 'multichain'; chainName: string; publisher?: string | undefined } & RpcTarget);
  bitcoin: { kind: 'bitcoind' | 'bcoin'; node: RpcTarget; walletUrl: string };
  confirmations: number;
  iotDataEndpoint?: string | undefined;
  ecs?: { clusterArn: string; services: string[]; endpoint?: string | undefined } | undefined;
  logJobs: boolean;
  offerTtlMs: number;
  settlementGraceMs: number;
  /** See SETTLE_INTERVAL_MS, ACCEPTED_GRACE_MS, MIN_TERM_MS, SETTLE_LEASE_MS. */
  settleIntervalMs: number;
  acceptedGraceMs: number;
  minTermMs: number;
  settleLeaseMs: number;
  /** See PUBLISH_LEASE_MS. */
  publishLeaseMs: number;
  /** See BUMP_AFTER_BLOCKS. */
  bumpAfterBlocks: number;
  reputation: ReputationParams;
  credit: CreditParams;
}

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
  const minTermMs = e.MIN_TERM_MS ?? Math.ceil(e.SETTLE_INTERVAL_MS * 1.5);
  if (minTermMs <= e.SETTLE_INTERVAL_MS) {
    throw new Error(`invalid configuration: MIN_TERM_MS (${minTermMs}) must exceed SETTLE_INTERVAL_MS (${e.SETTLE_INTERVAL_MS})`);
  }
  return {
    tableName: e.TABLE_NAME,
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
          },
    bitcoin: {
      kind: e.BITCOIN_KIND,
      node: {
        url: e.BITCOIN_RPC_URL,
        user: e.BITCOIN_RPC_USER,
        password: e.BITCOIN_RPC_PASSWORD,
        secretArn: e.BITCOIN_RPC_SECRET_ARN,
      },
      walletUrl: e.BITCOIN_WALLET_RPC_URL ?? e.BITCOIN_RPC_URL,
    },
    confirmations: e.CONFIRMATIONS,
    iotDataEndpoint: e.IOT_DATA_ENDPOINT,
    ecs: e.ECS_CLUSTER_ARN
      ? { clusterArn: e.ECS_CLUSTER_ARN, services: (e.ECS_SERVICES ?? '').split(',').filter(Boolean), endpoint: e.AWS_ENDPOINT_URL_ECS }
      : undefined,
    logJobs: e.LOG_JOBS === 'true',
    offerTtlMs: e.OFFER_TTL_MS,
    settlementGraceMs: e.SETTLEMENT_GRACE_MS,
    settleIntervalMs: e.SETTLE_INTERVAL_MS,
    acceptedGraceMs: e.ACCEPTED_GRACE_MS ?? 2 * e.SETTLE_INTERVAL_MS,
    minTermMs,
    settleLeaseMs: e.SETTLE_LEASE_MS,
    publishLeaseMs: e.PUBLISH_LEASE_MS,
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
