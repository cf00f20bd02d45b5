/**
 * The Payments port over the `bitcoin-core` JSON-RPC client, for bitcoind
 * (ECS) and bcoin regtest (local). Node differences live in ./strategy.ts.
 *
 * Paying is split in two so a crash never pays twice: prepareSendMany builds,
 * funds and signs a transaction and returns its final txid and hex without
 * broadcasting (the caller records both on the ledger), then broadcast(hex)
 * sends it; sending the same hex again is a no-op that returns the same txid.
 */
import { btcToSats, satsToBtc } from './amount.ts';
import { withKeyLock } from './lock.ts';
import { parseTx, type ParsedTx } from './rawtx.ts';
import { RpcRejection, type RpcEndpoint, type RpcOptions } from './rpc.ts';
import { createStrategy, type NodeKind, type Strategy } from './strategy.ts';
import { MalformedError, ObligationError, UnavailableError } from '../../core/errors.ts';
import { checkAddress, type AddressFormat, type FeePolicy } from '../../core/network.ts';
import type { ChainTx, IncomingPayment, Payments, PreparedReplacement, PreparedTx } from '../ports.ts';

export type { RpcEndpoint } from './rpc.ts';
export type { NodeKind } from './strategy.ts';

/** The wallet cannot fund the payment now; it may succeed after more coins arrive or mature. */
export class InsufficientFundsError extends ObligationError {
  static readonly code = 'T03_INSUFFICIENT_FUNDS';
  constructor(message: string, details?: Record<string, unknown>) {
    super(InsufficientFundsError.code, 'temporary', message, details);
  }
}

/** An output below what nodes relay (dust, Core -4 "Transaction amount too small"): no retry will pay it. */
export class AmountTooSmallError extends ObligationError {
  static readonly code = 'F11_AMOUNT_TOO_SMALL';
  constructor(message: string, details?: Record<string, unknown>) {
    super(AmountTooSmallError.code, 'final', message, details);
  }
}

/** The node refused the signed transaction for good (e.g. its inputs were spent by another transaction). */
export class TxRejectedError extends ObligationError {
  static readonly code = 'F10_TX_REJECTED';
  constructor(message: string, details?: Record<string, unknown>) {
    super(TxRejectedError.code, 'final', message, details);
  }
}

export interface BitcoinPaymentsOptions {
  kind: NodeKind;
  /** Node RPC. For bitcoind the same endpoint as the wallet. */
  node: RpcEndpoint;
  /** Wallet RPC and wallet name: bitcoind /wallet/<name>; bcoin's wallet port and wallet id. */
  wallet: RpcEndpoint & { name: string };
  /** Confirmations at which a payment counts (default 1); receivedSince keeps reporting payments until past it. */
  minConfirmations?: number;
  /** Blocks behind the tip that receivedSince's cursor stays (default 6, at least minConfirmations + 1). */
  reportDepth?: number;
  rpc?: RpcOptions;
  /** bcoin only: how long to wait for background relay and wallet sync (ms). */
  settleTimeoutMs?: number;
  /** Payments refuse addresses of any other format before the node sees them (F17_WRONG_NETWORK). */
  addressFormat?: AddressFormat;
  /**
   * bitcoind: fee rate from estimatesmartfee within these bounds (core/network.ts NETWORK_DEFAULTS).
   * bitcoind and bcoin: no fee bump is asked above the cap (F18_FEE_CAP).
   */
  fees?: FeePolicy;
}

const TXID = /^[0-9a-fA-F]{64}$/;

// Bitcoin Core RPC error codes (src/rpc/protocol.h); bcoin uses the same numbers.
const RPC_TYPE_ERROR = -3;
const RPC_INVALID_ADDRESS_OR_KEY = -5;
const RPC_WALLET_INSUFFICIENT_FUNDS = -6;
const RPC_INVALID_PARAMETER = -8;
const RPC_DESERIALIZATION_ERROR = -22;
const RPC_VERIFY_ERROR = -25;
const RPC_VERIFY_REJECTED = -26;
const RPC_VERIFY_ALREADY_IN_CHAIN = -27;
const RPC_INVALID_PARAMS = -32602;
const MALFORMED_CODES = new Set([RPC_TYPE_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_DESERIALIZATION_ERROR, RPC_INVALID_PARAMS]);

/** A server's refusal → one of our typed errors. */
export function mapRejection(err: RpcRejection): ObligationError {
  const details = { method: err.method, rpcCode: err.rpcCode };
  // Core's fundrawtransaction says "Insufficient funds" with -4 (older) or -6; bcoin: FundingError → -6.
  if (err.rpcCode === RPC_WALLET_INSUFFICIENT_FUNDS || /insufficient funds|not enough funds/i.test(err.message)) {
    return new InsufficientFundsError(err.message, details);
  }
  // Core -4 "Transaction amount too small" (fundrawtransaction/sendmany), -26 "dust": final, not transient.
  if (/amount too small|\bdust\b/i.test(err.message)) return new AmountTooSmallError(err.message, details);
  if (MALFORMED_CODES.has(err.rpcCode)) return new MalformedError(err.message, details);
  return new UnavailableError(err.message, details);
}

/** sendrawtransaction's "I already have it" answers (Core -27, or -26/-25 with these reasons). */
function alreadyKnown(err: RpcRejection): boolean {
  if (err.rpcCode === RPC_VERIFY_ALREADY_IN_CHAIN) return true;
  return /already in (the )?(mempool|block ?chain|utxo set)|txn-already-(known|in-mempool)/i.test(err.message);
}

/** getrawtransaction's verbose answer, as far as we read it. */
interface RawTxJson {
  confirmations?: number;
  blocktime?: number;
  vout?: { value: number | string; scriptPubKey?: { address?: string; addresses?: string[] } }[];
}

/**
 * What makes a replacement safe to broadcast, whatever the node built: it
 * spends every input of the original (so the two conflict and at most one
 * confirms: the obligations are never paid twice), and every output of the
 * original but one (the change, which pays the extra fee) is in it unchanged
 * (every recipient still gets exactly what it is owed).
 */
export function checkReplacement(original: ParsedTx, next: ParsedTx): void {
  if (next.txid === original.txid) throw new UnavailableError('the replacement is the original transaction', { txid: original.txid });
  const spent = new Set(next.inputs.map((i) => `${i.txid}:${i.vout}`));
  if (!original.inputs.every((i) => spent.has(`${i.txid}:${i.vout}`))) {
    throw new UnavailableError('the replacement does not spend every input of the original', { txid: original.txid, replacement: next.txid });
  }
  const left = [...next.outputs];
  let changed = 0;
  for (const out of original.outputs) {
    const at = left.findIndex((o) => o.script === out.script && o.value === out.value);
    if (at >= 0) left.splice(at, 1);
    else changed += 1;
  }
  if (changed > 1) {
    throw new UnavailableError('the replacement changes more than the change output', { txid: original.txid, replacement: next.txid });
  }
}

export class BitcoinPayments implements Payments {
  private readonly strategy: Strategy;
  private readonly depth: number;
  private readonly prepareKey: string;
  private closed = false;

  constructor(readonly options: BitcoinPaymentsOptions) {
    const minConfirmations = options.minConfirmations ?? 1;
    this.depth = Math.max(options.reportDepth ?? 6, minConfirmations + 1);
    this.strategy = createStrategy(options.kind, {
      node: options.node,
      wallet: options.wallet,
      ...(options.rpc === undefined ? {} : { rpc: options.rpc }),
      ...(options.settleTimeoutMs === undefined ? {} : { settleTimeoutMs: options.settleTimeoutMs }),
      ...(options.fees === undefined ? {} : { fees: options.fees }),
    });
    const w = options.wallet;
    this.prepareKey = `prepare:${w.host}:${w.port}:${w.name}`;
  }

  /** Create the wallet if missing and load it (bitcoind loadwallet/createwallet; bcoin PUT /wallet/:id). */
  async ensureWallet(): Promise<void> {
    return this.guard(() => this.strategy.ensureWallet());
  }

  async newAddress(label?: string): Promise<string> {
    return this.guard(() => this.strategy.wallet<string>('getnewaddress', ...this.strategy.newAddressParams(label)));
  }

  /** Confirmed + unconfirmed balance, sats (bitcoind getbalances trusted + untrusted_pending; bcoin getbalance "*" 0). */
  async balance(): Promise<number> {
    const b = await this.balances();
    return b.trusted + b.pending;
  }

  /** Trusted (spendable now) and pending incoming balance, sats. */
  async balances(): Promise<{ trusted: number; pending: number }> {
    return this.guard(() => this.strategy.balances());
  }

  async prepareSendMany(outputs: Record<string, number>): Promise<PreparedTx> {
    const entries = Object.entries(outputs);
    if (entries.length === 0) throw new MalformedError('no outputs to pay');
    const amounts: Record<string, number> = {};
    for (const [address, sats] of entries) {
      if (this.options.addressFormat !== undefined) checkAddress(address, this.options.addressFormat);
      if (!Number.isSafeInteger(sats) || sats <= 0) throw new MalformedError(`bad amount for ${address}: ${sats}`);
      amounts[address] = satsToBtc(sats);
    }
    return this.guard(() =>
      // One prepare at a time per wallet in this process: on bcoin, funding and locking are two calls.
      withKeyLock(this.prepareKey, async () => {
        // validateaddress (a node RPC in both Core and bcoin): bcoin's wallet server asserts on bad strings.
        for (const address of Object.keys(amounts)) {
          const check = await this.strategy.node.call<{ isvalid: boolean }>('validateaddress', address);
          if (!check.isvalid) throw new MalformedError(`not a valid address on this chain: ${address}`);
        }
        const hex = await this.strategy.buildSigned(amounts);
        return { txid: parseTx(hex).txid, hex };
      }),
    );
  }

  async prepareReplacement(hex: string, opts: { atLeastSatVb?: number } = {}): Promise<PreparedReplacement> {
    const original = parseTx(hex);
    return this.guard(() =>
      withKeyLock(this.prepareKey, async () => {
        const replacement = await this.strategy.buildReplacement(original.txid, opts.atLeastSatVb);
        const next = parseTx(replacement.hex);
        checkReplacement(original, next);
        return { txid: next.txid, hex: replacement.hex, fee: replacement.fee, satVb: Math.round((replacement.fee / next.vsize) * 1000) / 1000 };
      }),
    );
  }

  async height(): Promise<number> {
    return this.guard(() => this.strategy.node.call<number>('getblockcount'));
  }

  async broadcast(hex: string): Promise<string> {
    const { txid } = parseTx(hex);
    return this.guard(async () => {
      let sent = txid;
      try {
        // The node's own answer is the authority on the txid; it must equal ours.
        const answer = await this.strategy.node.call<unknown>('sendrawtransaction', hex);
        if (typeof answer === 'string') sent = answer;
      } catch (err) {
        if (!(err instanceof RpcRejection)) throw err;
        if (!alreadyKnown(err)) {
          // Our own transaction, confirmed and then spent, looks like "missing inputs": the wallet knows better.
          const known = await this.getTransaction(txid);
          if (known !== null && known.confirmations > 0) return txid;
          if (err.rpcCode === RPC_VERIFY_ERROR || err.rpcCode === RPC_VERIFY_REJECTED) {
            throw new TxRejectedError(err.message, { txid, rpcCode: err.rpcCode });
          }
          throw err;
        }
      }
      await this.strategy.afterBroadcast(sent);
      return sent;
    });
  }

  /**
   * True when `hex` can never confirm: it is not confirmed itself, and one of
   * its inputs comes from a confirmed wallet transaction yet is no longer in
   * the chain's UTXO set (gettxout … include_mempool=false answers null), so
   * another transaction spent it in a block. A transaction merely refused by
   * policy (fee, mempool full) or still in a mempool is not conflicted.
   */
  async isConflicted(hex: string): Promise<boolean> {
    const tx = parseTx(hex);
    return this.guard(async () => {
      const own = await this.strategy.transaction(tx.txid);
      if (own !== null && own.confirmations > 0) return false;
      for (const input of tx.inputs) {
        const funding = await this.strategy.transaction(input.txid);
        if (funding === null || funding.confirmations < 1) continue;
        const utxo = await this.strategy.node.call<unknown>('gettxout', input.txid, input.vout, false);
        if (utxo === null || utxo === undefined) return true;
      }
      return false;
    });
  }

  /** Unlock a prepared transaction's inputs (lockunspent true [...]); inputs already unlocked or spent are fine. */
  async abandon(hex: string): Promise<void> {
    const { inputs } = parseTx(hex);
    await this.guard(async () => {
      // one at a time: Core refuses the whole list when one of them is not locked
      for (const input of inputs) {
        try {
          await this.strategy.wallet('lockunspent', true, [input]);
        } catch (err) {
          // Core: -8 "expected locked output" / "expected unspent output"
          if (!(err instanceof RpcRejection)) throw err;
        }
      }
    });
  }

  async getTransaction(txid: string): Promise<{ txid: string; confirmations: number } | null> {
    if (!TXID.test(txid)) throw new MalformedError(`not a txid: ${txid}`);
    return this.guard(async () => {
      const found = await this.strategy.transaction(txid);
      return found === null ? null : { txid, confirmations: found.confirmations };
    });
  }

  async lookupTransaction(txid: string): Promise<ChainTx | null> {
    if (!TXID.test(txid)) throw new MalformedError(`not a txid: ${txid}`);
    return this.guard(async () => {
      let tx: RawTxJson;
      try {
        tx = await this.strategy.node.call<RawTxJson>('getrawtransaction', txid, true);
      } catch (err) {
        // Core -5: no such transaction in the mempool or the (indexed) chain; bcoin: -1 "Transaction not found."
        if (err instanceof RpcRejection && (err.rpcCode === RPC_INVALID_ADDRESS_OR_KEY || /transaction not found/i.test(err.message))) return null;
        throw err;
      }
      return {
        txid,
        confirmations: tx.confirmations ?? 0,
        ...(tx.blocktime ? { blockTime: tx.blocktime * 1000 } : {}),
        // Core ≥ 22 names one `address`; older Core and bcoin list `addresses`
        outputs: (tx.vout ?? []).map((o) => ({
          address: o.scriptPubKey?.address ?? o.scriptPubKey?.addresses?.[0],
          amount: btcToSats(o.value),
        })),
      };
    });
  }

  /**
   * Receives to this wallet's own addresses (one entry per output, coinbase
   * excluded, 0-conf included) since `cursor`, a block hash. The returned
   * cursor lags the tip, so payments keep being reported with growing
   * confirmations for a few blocks: dedupe by txid + address.
   */
  async receivedSince(cursor?: string): Promise<{ payments: IncomingPayment[]; cursor: string }> {
    if (cursor !== undefined && cursor !== '' && !TXID.test(cursor)) throw new MalformedError(`not a block hash: ${cursor}`);
    return this.guard(() => this.strategy.receivedSince(cursor, this.depth));
  }

  /** Regtest only: mine `blocks` blocks to `address` (default: a fresh address of this wallet). */
  async mine(blocks: number, address?: string): Promise<string[]> {
    if (!Number.isSafeInteger(blocks) || blocks < 1) throw new MalformedError(`bad block count: ${blocks}`);
    return this.guard(async () => {
      const to = address ?? (await this.newAddress());
      const hashes = await this.strategy.node.call<string[]>('generatetoaddress', blocks, to);
      await this.strategy.afterMine(hashes);
      return hashes;
    });
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    try {
      const info = await this.guard(() =>
        this.strategy.node.call<{ chain: string; blocks: number }>('getblockchaininfo'),
      );
      return { ok: true, detail: `${this.strategy.kind} ${info.chain} at height ${info.blocks}` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  /** The client holds no open connection of its own; after close every call fails. */
  async close(): Promise<void> {
    this.closed = true;
  }

  /** Runs one operation and maps the server's refusals to typed errors. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new UnavailableError('payments adapter is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RpcRejection) throw mapRejection(err);
      throw err;
    }
  }
}
