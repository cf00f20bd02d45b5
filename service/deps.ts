/**
 * What the services depend on, as types the service layer owns (layers point down
 * only): the configuration, read from the environment by functions/shared/config.ts,
 * and the wired dependencies, built once per process by functions/shared/deps.ts
 * (buildDeps) and handed to every use case. Types only: nothing here runs.
 */
import type { CreditParams } from '../core/credit.ts';
import type { BitcoinNetwork, FeePolicy } from '../core/network.ts';
import type { ReputationParams } from '../core/reputation.ts';
import type { Ledger, Notifier, Payments, Signer, WalletReads } from '../adapters/ports.ts';
import type { DynamoStore } from '../adapters/store/dynamo.ts';
import type { DomainDirectory } from './directory.ts';

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
    | ({ kind: 'multichain'; chainName: string; publisher?: string | undefined; p2pEndpoint?: string | undefined } & RpcTarget);
  bitcoin: { kind: 'bitcoind' | 'bcoin'; network: BitcoinNetwork; node: RpcTarget; walletUrl: string; fees: FeePolicy; reader?: RpcTarget | undefined };
  secretsMaxAgeSeconds: number;
  confirmations: number;
  iotDataEndpoint?: string | undefined;
  /** Where devices' topics live (service/topics.ts: topicsUnder). */
  topicRoot: string;
  ecs?: { clusterArn: string; services: string[]; endpoint?: string | undefined } | undefined;
  logJobs: boolean;
  offerTtlMs: number;
  /** See STANDING_OFFER_TTL_MS and STANDING_OFFER_PURCHASES. */
  standingOffer: { ttlMs: number; purchases: number };
  settlementGraceMs: number;
  /** See SETTLE_INTERVAL_MS, ACCEPTED_GRACE_MS, MIN_TERM_MS, SETTLE_LEASE_MS. */
  settleIntervalMs: number;
  acceptedGraceMs: number;
  minTermMs: number;
  settleLeaseMs: number;
  /** See PUBLISH_LEASE_MS, PUBLISH_BUDGET_MS, PUBLISH_PARALLEL. */
  publishLeaseMs: number;
  publishBudgetMs: number;
  publishParallel: number;
  /** See BUMP_AFTER_BLOCKS. */
  bumpAfterBlocks: number;
  signer: { kind: 'kms'; keyPolicy?: string | undefined; tags: Record<string, string> } | { kind: 'local'; file?: string | undefined };
  credentialTtlMs: number;
  hubKeyTtlMs: number;
  reputation: ReputationParams;
  credit: CreditParams;
}

export interface Deps {
  config: Config;
  store: DynamoStore;
  ledger: Ledger;
  /** The Bitcoin wallet of one hosted domain (created on first use), with the credential that can spend. */
  payments(wallet: string): Promise<Payments>;
  /**
   * Reads of one wallet (balances, its transactions, receives) and transaction lookups,
   * with the read-only RPC user when one is configured (BITCOIN_READER_*): what watch,
   * follow and query use. The wallet is never created here (an unloaded one is loaded).
   */
  walletReads(wallet: string): Promise<WalletReads>;
  notifier: Notifier;
  /** Domain keys (KMS on AWS, a local signer in the embedded cloud): the only holder of their private halves. */
  signer: Signer;
  /**
   * bitcoind's node health (getblockchaininfo) with the read-only RPC user
   * when one is configured (BITCOIN_READER_*): what a reader function uses
   * instead of payments(), whose credential can spend.
   */
  bitcoinHealth(): Promise<{ ok: boolean; detail: string }>;
  directory: DomainDirectory;
  now: () => number;
  /**
   * Settings for AWS SDK clients a handler builds itself (e.g. ECS for
   * /health): empty on Lambda (the SDK reads the environment), explicit region
   * and credentials in the embedded cloud, which leaves process.env alone.
   */
  aws: AwsClientSettings;
}

export interface AwsClientSettings {
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}
