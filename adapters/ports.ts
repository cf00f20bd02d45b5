/**
 * Ports: the small interfaces the handlers depend on. Adapters implement them
 * for AWS (MultiChain on ECS, bitcoind on ECS, DynamoDB) and for the embedded
 * cloud (embedded ledger, bcoin regtest in memory, dynalite).
 */
import type { Json, KeyAlg, PublicKeyRef } from '../core/types.ts';
import type { ObligationError } from '../core/errors.ts';

export type StreamName = 'domains' | 'obligations' | 'settlements';
export const STREAMS: readonly StreamName[] = ['domains', 'obligations', 'settlements'];

export interface LedgerItem {
  stream: StreamName;
  keys: string[];
  data: Json;
  /** Transaction id (MultiChain txid, or the embedded entry hash). */
  txid: string;
  /** Publishing address. */
  publisher: string;
  /** Confirmations (embedded ledger: always >= 1). */
  confirmations: number;
  /** Block time or append time, epoch ms. */
  time: number;
}

/**
 * An item read by position (Ledger.list, Ledger.listByKeyFrom). `position` is
 * the reading position it was listed at: positions never move, so a reader
 * keeps the first position it has not finished as its cursor. Several items
 * may share one position: a MultiChain node lists a transaction that carries
 * several items of a stream once, at one position, and the adapter hands out
 * all of them there. A reader resumes at `position + 1` after the last item
 * it finished, or at `position` of the first one it did not.
 */
export interface PositionedItem extends LedgerItem {
  position: number;
}

export interface PublishResult {
  txid: string;
  /** True when an item with the same idempotency id already was on the stream: nothing was written. */
  duplicate: boolean;
}

/** One item of a batch publish: the arguments of `publish`. */
export interface PublishEntry {
  id: string;
  keys: string[];
  data: Json;
}

/** What became of one entry of a batch: published (or a duplicate), or refused for good with a final typed error. */
export type BatchPublishResult = PublishResult | { error: ObligationError };

/**
 * The chain this hub's ledger node is on, as that node reports it: what
 * another organisation needs to join (chain name, protocol, P2P port, the
 * chain's parameters and hashes) and what the chain's admin grants (this
 * hub's publishing address, with the permissions it holds now).
 */
export interface ChainInfo {
  /** 'multichain': a real node; 'embedded': the in-process stand-in (nothing to join). */
  kind: 'multichain' | 'embedded';
  chainName: string;
  /** The address this hub publishes from (identity()). */
  address: string;
  /** That address's permissions on the chain as the node sees them now (connect, send, receive, <stream>.write, …), sorted. */
  permissions: string[];
  node: {
    version: string;
    protocolVersion: number;
    blocks: number;
    connections: number;
    /** `chain@host:port` as the node advertises itself (on AWS a private address: use the P2P endpoint to join). */
    nodeAddress?: string;
  };
  /** The chain's parameters (MultiChain getblockchainparams: chain-protocol, protocol-version, default-network-port, anyone-can-*, genesis-hash, chain-params-hash, …). */
  params: Record<string, string | number | boolean>;
}

/** One permission granted or revoked by setMembership, and its transaction. */
export interface MembershipChange {
  permission: string;
  txid: string;
}

/** The permission kinds of a hub's membership, in grant order (one kind per MultiChain `grant` call). */
export const MEMBERSHIP_PERMISSIONS: readonly string[] = ['connect,send,receive', ...STREAMS.map((s) => `${s}.write`)];

export interface Ledger {
  /** Create (if missing) and subscribe to every stream. Idempotent. */
  ensureStreams(): Promise<void>;
  /**
   * Publish `data` under `keys`. `id` is the idempotency id: it is added as the
   * first key, and if an item with that key already is on the stream nothing is
   * written and `duplicate` is true. Readers also dedupe by id (first wins), so a
   * race between two publishers is harmless.
   */
  publish(stream: StreamName, id: string, keys: string[], data: Json): Promise<PublishResult>;
  /**
   * Publish several entries (MultiChain: as few transactions as possible, with
   * publishmultifrom). Results in entry order, each exactly what `publish` would
   * give for it, one after another: an entry whose id and content already are on
   * the stream (or earlier in this batch) is a duplicate; an entry refused for
   * good (malformed, too large) gets its final typed error and does not stop the
   * others. A failure of the whole batch (node unavailable, misconfigured,
   * forbidden) throws, as `publish` does; entries that landed before it are
   * duplicates when sent again.
   */
  publishBatch(stream: StreamName, entries: readonly PublishEntry[]): Promise<BatchPublishResult[]>;
  /** Items with this key, oldest first (chain order: every node agrees which is first). */
  listByKey(stream: StreamName, key: string): Promise<LedgerItem[]>;
  /**
   * Items with this key in this node's arrival order, from position `start`
   * (0-based), the items of at most `count` positions: positions never move
   * (MultiChain's local-ordering), so a reader can keep a cursor per key and
   * read only what is new (PositionedItem).
   */
  listByKeyFrom(stream: StreamName, key: string, start: number, count?: number): Promise<PositionedItem[]>;
  /** All items in this node's arrival order, from position `start` (0-based), the items of at most `count` positions (PositionedItem). */
  list(stream: StreamName, start?: number, count?: number): Promise<PositionedItem[]>;
  /**
   * The address this ledger node publishes from: the hub's identity on the chain.
   * Domain records name it, and readers check every record's real publisher against it.
   */
  identity(): Promise<string>;
  /** The chain and this node's place on it (the admin route GET /chain). */
  chainInfo(): Promise<ChainInfo>;
  /**
   * On the chain's admin node: grant `address` (another hub's node) membership
   * (`connect,send,receive`, then `<stream>.write` on every stream), or revoke
   * it (the stream writes first: once connect is gone the hub's node would not
   * even learn it may no longer write). One transaction per permission kind,
   * in that order (the admin route POST /chain/members).
   */
  setMembership(address: string, action: 'grant' | 'revoke'): Promise<MembershipChange[]>;
  health(): Promise<{ ok: boolean; detail: string }>;
  close(): Promise<void>;
}

export interface IncomingPayment {
  txid: string;
  address: string;
  amount: number; // sats
  confirmations: number;
}

/** A transaction as the node sees it: its outputs and how deep it is. */
export interface ChainTx {
  txid: string;
  confirmations: number;
  /** Block time, epoch ms; undefined while unconfirmed. */
  blockTime?: number;
  outputs: { address: string | undefined; amount: number }[];
}

export interface PreparedTx {
  txid: string;
  /** Signed raw transaction, hex: broadcasting it again is harmless. */
  hex: string;
}

/** A fee bump, with what it pays: its fee (sats) and fee rate (sats per virtual byte). */
export interface PreparedReplacement extends PreparedTx {
  fee: number;
  satVb: number;
}

export interface Payments {
  newAddress(label?: string): Promise<string>;
  /** Confirmed + unconfirmed (trusted and untrusted pending) balance, sats. */
  balance(): Promise<number>;
  /** The same split: trusted (spendable now) and pending incoming, sats. */
  balances(): Promise<{ trusted: number; pending: number }>;
  /** Build, fund and sign (but do not broadcast) one transaction paying every output. */
  prepareSendMany(outputs: Record<string, number>): Promise<PreparedTx>;
  /** Broadcast a prepared transaction; idempotent (already-known is success). Returns txid. */
  broadcast(hex: string): Promise<string>;
  /**
   * True only when this (signed, unconfirmed) transaction can never confirm:
   * one of its inputs is spent in the chain by another transaction, or its
   * funding transaction is itself conflicted. False while it may still
   * confirm (in a mempool, or merely refused by this node's policy).
   */
  isConflicted(hex: string): Promise<boolean>;
  /**
   * A fee bump (replace-by-fee) of this wallet's broadcast, unconfirmed
   * transaction `hex`: signed, not broadcast. It spends every input of the
   * original, so at most one of the two can ever confirm (never a second
   * payment), and pays every recipient of the original the same amount; only
   * the change (and any input the wallet adds) differ. Its fee rate is the
   * wallet's choice, or at least `atLeastSatVb` when given (a replacement the
   * node refused is replaced by one paying more).
   */
  prepareReplacement(hex: string, opts?: { atLeastSatVb?: number }): Promise<PreparedReplacement>;
  /** The node's chain height (number of blocks after genesis). */
  height(): Promise<number>;
  /** Give a prepared, never broadcast transaction's inputs back to the wallet (unlock them). */
  abandon(hex: string): Promise<void>;
  /** null when the wallet does not know the transaction. */
  getTransaction(txid: string): Promise<{ txid: string; confirmations: number } | null>;
  /**
   * Any transaction the node knows (mempool, or the chain with txindex), not only this
   * wallet's: how a hub checks another domain's payment claim through its own node.
   * null when the node does not know it.
   */
  lookupTransaction(txid: string): Promise<ChainTx | null>;
  /** Payments received by this wallet's addresses (listsinceblock / listreceived). */
  receivedSince(cursor?: string): Promise<{ payments: IncomingPayment[]; cursor: string }>;
  /** Regtest only: mine `blocks` blocks to `address` (or a fresh one). */
  mine(blocks: number, address?: string): Promise<string[]>;
  health(): Promise<{ ok: boolean; detail: string }>;
  close(): Promise<void>;
}

/**
 * What a function that only watches holds of a wallet: balances, its transactions, what it
 * received, and transaction lookups; nothing that creates keys or addresses, signs or spends.
 * On AWS it is reached with bitcoind's read-only RPC user (containers/bitcoind/reader.sh).
 */
export type WalletReads = Pick<Payments, 'balances' | 'getTransaction' | 'lookupTransaction' | 'receivedSince'>;

/** Pushes a message to a device topic (AWS: IoT data plane Publish; local: the embedded broker). */
export interface Notifier {
  publish(topic: string, payload: Json, qos?: 0 | 1): Promise<void>;
}

/** A domain's signing key as the Signer holds it: its id there and its public half. */
export interface SignerKey {
  /** KMS key id (or ARN); locally `local:<domain>:<random>`. */
  keyId: string;
  publicKey: PublicKeyRef;
}

/**
 * Domain keys whose private half never leaves the signer: one asymmetric
 * SIGN_VERIFY key per hosted domain in AWS KMS, a key file (or memory) in the
 * embedded cloud. The store keeps only the key id and the public key.
 */
export interface Signer {
  /** The algorithm a new domain key gets unless one is asked for. */
  readonly defaultAlg: KeyAlg;
  /** Create a new key for `domain` (tagged with it). */
  createKey(domain: string, alg: KeyAlg): Promise<SignerKey>;
  /**
   * Sign the UTF-8 bytes of `text` with the key: base64url, in the form
   * core/keys.ts verifyBytes checks with the key's public half (Ed25519: the
   * 64-byte signature of the message itself; P-256: r||s over SHA-256).
   */
  sign(key: SignerKey, text: string): Promise<string>;
  /**
   * The key signs nothing more, once its domain rotated away from it (its signatures stay
   * verifiable: the ledger holds its public half). KMS: its deletion scheduled after
   * RETIRED_KEY_WINDOW_DAYS, cancellable until then (CancelKeyDeletion); locally its private
   * half is dropped. Retiring a retired key does nothing.
   */
  retireKey(key: SignerKey): Promise<void>;
}
