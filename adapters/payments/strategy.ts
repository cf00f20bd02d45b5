/**
 * What differs between bitcoind and bcoin behind the same JSON-RPC, kept in one
 * small object per node kind so BitcoinPayments has a single code path.
 *
 * bitcoind (Bitcoin Core RPC docs): wallet calls go to /wallet/<name>;
 * fundrawtransaction's `lockUnspents` option locks the chosen inputs in the
 * same call; signrawtransactionwithwallet signs; listsinceblock lists receives
 * per output, mempool included, and returns `lastblock` = the
 * target_confirmations-th block from the tip.
 *
 * bcoin 1.0.2 (node_modules/bcoin/lib/wallet/rpc.js, node/rpc.js): the wallet
 * RPC is a separate server whose current wallet is one global set by
 * `selectwallet`, so every wallet call is a [selectwallet, call] batch under a
 * process-wide lock; createrawtransaction cannot serialise a zero-input
 * transaction and there is no signrawtransactionwithwallet, so the wallet
 * server's REST create path (POST /wallet/:id/create, funded and signed, not
 * broadcast) builds it and lockunspent locks its inputs; there is no
 * createwallet RPC either (REST PUT /wallet/:id);
 * sendrawtransaction relays in the background and swallows errors, so
 * acceptance is checked afterwards; gettransaction has no `confirmations`;
 * listsinceblock skips unconfirmed transactions and aggregates outputs, so
 * receives come from listtransactions + gettransaction details;
 * getnewaddress takes an account (not a label) and must be given ''.
 */
import { btcToSats } from './amount.ts';
import { withKeyLock } from './lock.ts';
import { parseTx } from './rawtx.ts';
import { restCall, type RestAnswer } from './rest.ts';
import { RpcCaller, RpcRejection, type RpcCall, type RpcEndpoint, type RpcOptions } from './rpc.ts';
import { FeeCapError, UnavailableError } from '../../core/errors.ts';
import { ceilRate, chooseBumpRate, chooseFeeRate, type FeePolicy } from '../../core/network.ts';
import type { IncomingPayment } from '../ports.ts';

export type NodeKind = 'bitcoind' | 'bcoin';

/** gettransaction's answer, as far as we read it. */
export interface WalletTx {
  txid: string;
  confirmations?: number;
  blockhash?: string | null;
  hex: string;
  details: { address?: string | null; category: string; amount: number | string; vout: number }[];
}

/** listtransactions' entries as bcoin fills them (its `confirmations` there is always 0). */
interface HistoryEntry {
  txid: string;
  category: string;
  blockheight: number;
}

export interface Received {
  payments: IncomingPayment[];
  cursor: string;
}

export interface Strategy {
  readonly kind: NodeKind;
  /** The node RPC (chain, mempool, raw transactions). */
  readonly node: RpcCaller;
  /** Call a method on this adapter's wallet. */
  wallet<T>(method: string, ...params: unknown[]): Promise<T>;
  /** getnewaddress parameters for a label. */
  newAddressParams(label: string | undefined): unknown[];
  /** Create the wallet if it does not exist, load it if it is not loaded. */
  ensureWallet(): Promise<void>;
  /**
   * Build, fund and sign (never broadcast) a transaction paying `amounts`
   * (address → BTC number), and lock its inputs so the next build cannot
   * choose them. Returns the signed hex.
   */
  buildSigned(amounts: Record<string, number>): Promise<string>;
  /**
   * Build and sign (never broadcast) a replacement of the unconfirmed wallet
   * transaction `txid` at a higher fee: it spends every input of the original
   * (so at most one of the two can ever confirm) and pays the same recipients
   * the same amounts; only the wallet's change (and inputs it adds) differ.
   */
  /** Signed, not broadcast: the replacement and its fee (sats), at the wallet's fee rate or at least `atLeastSatVb`. */
  buildReplacement(txid: string, atLeastSatVb?: number): Promise<{ hex: string; fee: number }>;
  /** After sendrawtransaction: make sure the node took the transaction. */
  afterBroadcast(txid: string): Promise<void>;
  /** After generatetoaddress: make sure the wallet has seen the new blocks. */
  afterMine(hashes: string[]): Promise<void>;
  /** Spendable-now (trusted) and pending incoming balance, sats (bitcoind getbalances; bcoin: confirmed / unconfirmed part of getbalance). */
  balances(): Promise<{ trusted: number; pending: number }>;
  /** A wallet transaction's confirmations, or null when the wallet does not know it. */
  transaction(txid: string): Promise<{ confirmations: number } | null>;
  /** Receives to this wallet's own addresses since `cursor`, cursor lagging `depth` blocks behind the tip. */
  receivedSince(cursor: string | undefined, depth: number): Promise<Received>;
}

export interface StrategyOptions {
  node: RpcEndpoint;
  wallet: RpcEndpoint & { name: string };
  rpc?: RpcOptions;
  /** How long to wait for bcoin's background relay and wallet sync (ms, default 3000). */
  settleTimeoutMs?: number;
  /**
   * The fee rate of every payment (the node's estimatesmartfee within bounds, the fallback without an
   * estimate), on both kinds; absent: the wallet's own choice. An outbid above its cap is not built.
   */
  fees?: FeePolicy;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `probe` every 20 ms until it returns true or `timeoutMs` passes. */
async function until(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

// Bitcoin Core RPC error codes (src/rpc/protocol.h); bcoin uses the same numbers.
const RPC_INVALID_ADDRESS_OR_KEY = -5;
const RPC_WALLET_INSUFFICIENT_FUNDS = -6;
const RPC_WALLET_NOT_FOUND = -18;
const RPC_WALLET_ALREADY_LOADED = -35;
/** JSON-RPC's internal error: bcoin's answer when one of its own assertions fails. */
const RPC_INTERNAL_ERROR = -32603;
/** Reads of bcoin's wallet history when it answers a torn read (RPC_INTERNAL_ERROR), and the pause between. */
const HISTORY_READS = 3;
const HISTORY_RETRY_MS = 20;

/** Bitcoin Core's answer when a wallet does not exist or is not loaded (e.g. after a node restart). */
const walletNotLoaded = (err: RpcRejection): boolean =>
  err.rpcCode === RPC_WALLET_NOT_FOUND || /not loaded|does not exist|not found/i.test(err.message);

const isRejection = (err: unknown): err is RpcRejection => err instanceof RpcRejection;

/** A receive entry (category 'receive') → IncomingPayment, or null for anything else. */
function toPayment(
  txid: string,
  entry: { address?: string | null; category: string; amount: number | string },
  confirmations: number,
): IncomingPayment | null {
  if (entry.category !== 'receive' || typeof entry.address !== 'string') return null;
  return { txid, address: entry.address, amount: btcToSats(entry.amount), confirmations: Math.max(0, confirmations) };
}

/** An outbid the fee policy's cap does not allow is never built (F18_FEE_CAP): its settlement is stuck, saying so. */
function refuseOverCap(fees: FeePolicy | undefined, txid: string, atLeastSatVb: number | undefined): void {
  const cap = fees?.capSatVb;
  if (atLeastSatVb !== undefined && cap !== undefined && atLeastSatVb > cap) {
    throw new FeeCapError(`a replacement would need ${atLeastSatVb} sat/vB, over the fee cap of ${cap} sat/vB`, { txid, satVb: atLeastSatVb, capSatVb: cap });
  }
}

/**
 * The rate (sat/vB) of a replacement of `txid`: `atLeastSatVb` when one is asked (an outbid);
 * without a fee policy, none (the wallet picks); else a first bump's (chooseBumpRate: the higher
 * of the policy's rate now and what `txid` pays raised a step, held to the cap), from what `paid`
 * reads of `txid` and the node. Over the cap: FeeCapError (F18_FEE_CAP), and nothing is built.
 */
async function replacementRate(
  fees: FeePolicy | undefined,
  txid: string,
  atLeastSatVb: number | undefined,
  policy: (fees: FeePolicy) => Promise<number>,
  paid: () => Promise<{ satVb: number; incrementalSatVb: number }>,
): Promise<number | undefined> {
  if (atLeastSatVb !== undefined || fees === undefined) {
    refuseOverCap(fees, txid, atLeastSatVb);
    return atLeastSatVb;
  }
  const [now, was] = await Promise.all([policy(fees), paid()]);
  const chosen = chooseBumpRate(now, was, fees);
  if ('least' in chosen) {
    throw new FeeCapError(`a replacement would need at least ${chosen.least} sat/vB, over the fee cap of ${fees.capSatVb} sat/vB`, { txid, satVb: chosen.least, capSatVb: fees.capSatVb });
  }
  return chosen.rate;
}

/**
 * The policy's rate for a payment (sat/vB): the node's estimatesmartfee for the policy's target,
 * its `field` read as BTC/kvB (bitcoind `feerate`; bcoin `fee`, −1 without an estimate), clamped
 * to the policy; the fallback when the node has no estimate (no such field, a value that is not a
 * positive rate, or an error answer, as on regtest). An unreachable node fails the payment: no guess.
 */
async function policyRate(node: RpcCaller, policy: FeePolicy, field: 'feerate' | 'fee'): Promise<number> {
  let feerate: unknown;
  try {
    feerate = (await node.call<Record<string, unknown> | null>('estimatesmartfee', policy.targetBlocks))?.[field];
  } catch (err) {
    if (!isRejection(err)) throw err;
  }
  return chooseFeeRate(typeof feerate === 'number' ? { feerate } : undefined, policy).satVb;
}

export function bitcoindStrategy(opts: StrategyOptions): Strategy {
  const node = new RpcCaller(opts.node, opts.rpc);
  const walletRpc = new RpcCaller(opts.wallet, { ...opts.rpc, wallet: opts.wallet.name });
  const name = opts.wallet.name;
  /**
   * loadwallet "name" load_on_startup=true: also marks a wallet created
   * without the flag to be loaded at the node's next start. Already loaded is fine.
   */
  const load = async (): Promise<void> => {
    try {
      await node.call('loadwallet', name, true);
    } catch (err) {
      if (isRejection(err) && (err.rpcCode === RPC_WALLET_ALREADY_LOADED || /already loaded/i.test(err.message))) return;
      throw err;
    }
  };
  /** A wallet call; when the node answers -18 (restarted, wallet not loaded), load the wallet and try once more. */
  const wallet = async <T>(method: string, ...params: unknown[]): Promise<T> => {
    try {
      return await walletRpc.call<T>(method, ...params);
    } catch (err) {
      if (!isRejection(err) || err.rpcCode !== RPC_WALLET_NOT_FOUND) throw err;
      await load();
      return walletRpc.call<T>(method, ...params);
    }
  };
  /**
   * fundrawtransaction's `fee_rate` (sat/vB) from estimatesmartfee conf_target
   * (feerate in BTC/kvB, or `errors` when the node has too little data, as on
   * regtest), clamped to the policy; no option when there is no policy.
   */
  const feeRate = async (): Promise<{ fee_rate?: number }> =>
    opts.fees === undefined ? {} : { fee_rate: await policyRate(node, opts.fees, 'feerate') };
  return {
    kind: 'bitcoind',
    node,
    wallet,
    newAddressParams: (label) => [label ?? ''],
    async ensureWallet() {
      try {
        await load();
      } catch (err) {
        if (!isRejection(err) || !walletNotLoaded(err)) throw err;
        // createwallet wallet_name disable_private_keys blank passphrase avoid_reuse descriptors load_on_startup:
        // without load_on_startup the wallet is not loaded after a node restart.
        await node.call('createwallet', name, false, false, '', false, true, true);
      }
    },
    async buildSigned(amounts) {
      // createrawtransaction [] {"address":amount,...}; fundrawtransaction picks inputs and adds change,
      // and `lockUnspents: true` locks them in the same call ("Lock selected unspent outputs").
      const unsigned = await node.call<string>('createrawtransaction', [], amounts);
      const funded = await wallet<{ hex: string }>('fundrawtransaction', unsigned, { lockUnspents: true, ...(await feeRate()) });
      try {
        const signed = await wallet<{ hex: string; complete: boolean }>('signrawtransactionwithwallet', funded.hex);
        if (!signed.complete) throw new UnavailableError('wallet could not sign every input', { kind: 'bitcoind' });
        return signed.hex;
      } catch (err) {
        // lockunspent unlock=true [{"txid","vout"}]: give the inputs back.
        await wallet('lockunspent', true, parseTx(funded.hex).inputs).catch(() => undefined);
        throw err;
      }
    },
    async buildReplacement(txid, atLeastSatVb) {
      // psbtbumpfee "txid" (Core v31 RPC docs): "All inputs in the original transaction will be included
      // in the replacement transaction"; the extra fee comes from the change (or added inputs), the new
      // fee rate is at least the original's plus incrementalfee, and nothing is signed or broadcast.
      // Core ≥ 28 replaces any mempool transaction (full RBF is the default, the option was removed in 29).
      // Its `fee_rate` option (sat/vB) replaces the wallet's own pick (its estimate for -txconfirmtarget,
      // or the original's rate plus 5 sat/vB, never capped): a first bump pays the policy's rate, an
      // outbid what it asks, never above the policy's cap.
      const rate = await replacementRate(
        opts.fees,
        txid,
        atLeastSatVb,
        (fees) => policyRate(node, fees, 'feerate'),
        async () => {
          // gettransaction: `fee` is negative for a send (BTC); getnetworkinfo `incrementalfee` BTC/kvB
          const [tx, net] = await Promise.all([
            wallet<{ fee?: unknown; hex?: unknown }>('gettransaction', txid),
            node.call<{ incrementalfee?: unknown }>('getnetworkinfo'),
          ]);
          if ((typeof tx.fee !== 'number' && typeof tx.fee !== 'string') || typeof tx.hex !== 'string' || typeof net.incrementalfee !== 'number') {
            throw new UnavailableError('bitcoind gave no fee for the transaction to replace', { txid });
          }
          return { satVb: Math.abs(btcToSats(tx.fee)) / parseTx(tx.hex).vsize, incrementalSatVb: net.incrementalfee * 1e5 };
        },
      );
      // the rate is on 3 decimals already (chooseBumpRate, raisedRate, or the cap): never rounded over it
      const options = rate === undefined ? {} : { fee_rate: ceilRate(rate) };
      const bumped = await wallet<{ psbt: string; fee: number | string }>('psbtbumpfee', txid, options);
      const signed = await wallet<{ psbt: string; complete: boolean; hex?: string }>('walletprocesspsbt', bumped.psbt, true);
      if (!signed.complete) throw new UnavailableError('wallet could not sign the replacement', { kind: 'bitcoind', txid });
      const hex = signed.hex ?? (await node.call<{ hex: string }>('finalizepsbt', signed.psbt)).hex;
      // inputs the replacement added must not be chosen by the next build (those of the original are spent already)
      for (const input of parseTx(hex).inputs) await wallet('lockunspent', false, [input]).catch(() => undefined);
      return { hex, fee: btcToSats(bumped.fee) };
    },
    async balances() {
      // getbalance "*" 0 leaves out untrusted pending receives (someone else's unconfirmed payment to us);
      // getbalances has them under mine.untrusted_pending.
      const b = await wallet<{ mine: { trusted: number | string; untrusted_pending?: number | string } }>('getbalances');
      return { trusted: btcToSats(b.mine.trusted), pending: btcToSats(b.mine.untrusted_pending ?? 0) };
    },
    afterBroadcast: async () => {},
    afterMine: async () => {},
    async transaction(txid) {
      try {
        const tx = await wallet<WalletTx>('gettransaction', txid);
        return { confirmations: Math.max(0, tx.confirmations ?? 0) };
      } catch (err) {
        // -5 "Invalid or non-wallet transaction id"
        if (isRejection(err) && err.rpcCode === RPC_INVALID_ADDRESS_OR_KEY) return null;
        throw err;
      }
    },
    async receivedSince(cursor, depth) {
      type Since = {
        transactions: { txid: string; address?: string; category: string; amount: number | string; confirmations: number }[];
        lastblock: string;
      };
      // listsinceblock "blockhash" target_confirmations include_watchonly include_removed
      const list = (from: string) => wallet<Since>('listsinceblock', from, depth, false, false);
      let since: Since;
      try {
        since = await list(cursor ?? '');
      } catch (err) {
        // -5 "Block not found": a cursor from another chain (or a pruned/reset node). Start over from
        // the beginning: the caller dedupes by txid, so reporting old payments again is harmless.
        if (!isRejection(err) || err.rpcCode !== RPC_INVALID_ADDRESS_OR_KEY || !cursor) throw err;
        since = await list('');
      }
      const payments = since.transactions
        .map((t) => toPayment(t.txid, t, t.confirmations))
        .filter((p): p is IncomingPayment => p !== null);
      return { payments, cursor: since.lastblock };
    },
  };
}

export function bcoinStrategy(opts: StrategyOptions): Strategy {
  const node = new RpcCaller(opts.node, opts.rpc);
  const walletRpc = new RpcCaller(opts.wallet, opts.rpc);
  const lockKey = `bcoin-wallet-rpc:${opts.wallet.host}:${opts.wallet.port}`;
  const settleMs = opts.settleTimeoutMs ?? 3000;
  const rest = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<RestAnswer> => {
    const answer = await restCall(opts.wallet, method, path, body, opts.rpc?.timeoutMs);
    if (answer.status === 404 && method === 'GET') return answer;
    if (answer.status >= 500 && /FundingError|not enough funds/i.test(answer.errorType + ' ' + answer.errorMessage)) {
      throw new RpcRejection(path, RPC_WALLET_INSUFFICIENT_FUNDS, answer.errorMessage);
    }
    if (answer.status >= 400 && /address|base58|bech32|checksum|output/i.test(answer.errorMessage)) {
      throw new RpcRejection(path, RPC_INVALID_ADDRESS_OR_KEY, answer.errorMessage);
    }
    // the stand-in's bump (local/bitcoin.ts) when even 1 sat/vB more is over its maxRate: the fee cap
    if (answer.status === 409 && answer.errorType === 'FeeCapError') throw new FeeCapError(answer.errorMessage, { path });
    if (answer.status >= 400) throw new UnavailableError(`bcoin wallet ${method} ${path}: ${answer.status} ${answer.errorMessage}`);
    return answer;
  };
  const select: RpcCall = { method: 'selectwallet', params: [opts.wallet.name] };

  /** Several wallet calls in one request, with this wallet selected; results in order. */
  const walletMany = (calls: RpcCall[]): Promise<unknown[]> =>
    withKeyLock(lockKey, async () => (await walletRpc.batchAll([select, ...calls])).slice(1));
  const wallet = async <T>(method: string, ...params: unknown[]): Promise<T> =>
    (await walletMany([{ method, params }]))[0] as T;

  /** The wallet's whole history (listtransactions), read again when bcoin answers a torn read. */
  const history = async (): Promise<HistoryEntry[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await wallet<HistoryEntry[]>('listtransactions', '', 1_000_000, 0);
      } catch (err) {
        // bcoin reads the history, then each entry's spent coins, without the wallet's lock: a
        // replacement reaching the wallet in between removes the original, and bcoin's own
        // assertion fails (-32603 "null == true", wallet/rpc.js). A moment later it reads whole.
        const torn = isRejection(err) && err.rpcCode === RPC_INTERNAL_ERROR && err.method === 'listtransactions';
        if (!torn || attempt >= HISTORY_READS) throw err;
        await sleep(HISTORY_RETRY_MS);
      }
    }
  };
  /**
   * The wallet's history entry for `txid`. listtransactions rather than
   * gettransaction: bcoin's gettransaction fails on any transaction with a
   * send part (it reads a `details.fee` field that does not exist).
   */
  const historyEntry = async (txid: string): Promise<HistoryEntry | undefined> => (await history()).find((e) => e.txid === txid);

  return {
    kind: 'bcoin',
    node,
    wallet,
    // bcoin's getbalance "*" 0 already counts every unconfirmed receive (and immature coinbase); "*" 1 the confirmed part.
    async balances() {
      const all = btcToSats(await wallet<number | string>('getbalance', '*', 0));
      const confirmed = btcToSats(await wallet<number | string>('getbalance', '*', 1));
      return { trusted: confirmed, pending: Math.max(0, all - confirmed) };
    },
    // bcoin's argument is an account name and only '' (the default account) exists.
    newAddressParams: () => [''],
    async ensureWallet() {
      // No createwallet RPC in bcoin: PUT /wallet/:id on the wallet server (idempotent here).
      const found = await rest('GET', `/wallet/${encodeURIComponent(opts.wallet.name)}`);
      if (found.status === 404) await rest('PUT', `/wallet/${encodeURIComponent(opts.wallet.name)}`, {});
    },
    async buildSigned(amounts) {
      // bcoin cannot serialise the zero-input transaction createrawtransaction makes ("Cannot serialize
      // zero-input tx"), so use the wallet server's create path: POST /wallet/:id/create funds (skipping
      // locked coins) and signs without broadcasting. Values are in satoshis there.
      // `rate` is sat/kvB there (bcoin's wallet http.js reads it as a u64): the policy's rate, rounded
      // up; its estimatesmartfee answers {fee (BTC/kB), blocks}, fee −1 without an estimate (node/rpc.js).
      const outputs = Object.entries(amounts).map(([address, btc]) => ({ address, value: btcToSats(btc) }));
      const rate =
        opts.fees === undefined
          ? {}
          : { rate: Math.ceil((await policyRate(node, opts.fees, 'fee')) * 1000) };
      const tx = await rest('POST', `/wallet/${encodeURIComponent(opts.wallet.name)}/create`, { outputs, sign: true, ...rate });
      const hex = (tx.body as { hex?: unknown }).hex;
      if (typeof hex !== 'string') throw new UnavailableError('bcoin create returned no transaction');
      await wallet('lockunspent', false, parseTx(hex).inputs);
      return hex;
    },
    async buildReplacement(txid, atLeastSatVb) {
      // bcoin 1.0.2 has no bumpfee, and its wallet refuses to sign inputs it already counts as spent; the
      // embedded node (local/bitcoin.ts) adds POST /wallet/:id/bump: same inputs and payees, a higher fee
      // taken from the change, signed, not broadcast. Its mempool accepts the replacement (full RBF, as Core).
      // Its rate as on bitcoind: a first bump at the policy's rate, an outbid at what it asks, capped.
      const rate = await replacementRate(
        opts.fees,
        txid,
        atLeastSatVb,
        (fees) => policyRate(node, fees, 'fee'),
        async () => {
          // GET /wallet/:id/tx/:hash: the wallet's details (fee in sats, virtualSize; 404 with no body
          // for a transaction it does not know); the stand-in's replacement rule asks the node's relay
          // fee more (relayfee BTC/kvB; bcoin's incrementalfee is 0)
          const [details, net] = await Promise.all([
            rest('GET', `/wallet/${encodeURIComponent(opts.wallet.name)}/tx/${txid}`),
            node.call<{ relayfee?: unknown }>('getnetworkinfo'),
          ]);
          const { fee, virtualSize } = (details.status === 200 && details.body !== null && typeof details.body === 'object' ? details.body : {}) as {
            fee?: unknown;
            virtualSize?: unknown;
          };
          if (typeof fee !== 'number' || typeof virtualSize !== 'number' || virtualSize <= 0 || typeof net.relayfee !== 'number') {
            throw new UnavailableError('bcoin wallet has no fee for the transaction to replace', { txid });
          }
          return { satVb: fee / virtualSize, incrementalSatVb: net.relayfee * 1e5 };
        },
      );
      // maxRate: what it may pay at most whatever the signatures' sizes (the cap)
      const bounds = { ...(rate === undefined ? {} : { rate }), ...(opts.fees === undefined ? {} : { maxRate: opts.fees.capSatVb }) };
      const tx = await rest('POST', `/wallet/${encodeURIComponent(opts.wallet.name)}/bump`, { txid, ...bounds });
      const { hex, fee } = tx.body as { hex?: unknown; fee?: unknown };
      if (typeof hex !== 'string' || typeof fee !== 'number') throw new UnavailableError('bcoin bump returned no transaction', { txid });
      return { hex, fee };
    },
    async afterBroadcast(txid) {
      // getrawtransaction finds mempool and (indexTX) chain transactions.
      const accepted = await until(async () => {
        try {
          await node.call('getrawtransaction', txid);
          return true;
        } catch (err) {
          if (isRejection(err)) return false;
          throw err;
        }
      }, settleMs);
      if (!accepted) throw new UnavailableError('bcoin did not accept the transaction into its mempool', { txid });
      // Let our wallet index it too, so getTransaction right after broadcast sees it. Best effort:
      // the node took it, so whatever the wallet refuses just now (a torn read, even a wallet not
      // loaded) only ends the wait; the next call to the wallet reports a lasting fault.
      const listed = async (): Promise<boolean> => {
        try {
          return (await historyEntry(txid)) !== undefined;
        } catch (err) {
          if (isRejection(err)) return false;
          throw err;
        }
      };
      await until(listed, Math.min(settleMs, 500));
    },
    async afterMine(hashes) {
      const last = hashes[hashes.length - 1];
      if (last === undefined) return;
      const block = await node.call<{ tx: string[] }>('getblock', last, true, false);
      const coinbase = block.tx[0];
      if (coinbase === undefined) return;
      // The wallet processes blocks in order: once it has this coinbase in a block it has them all.
      // Only observable when the coinbase paid this wallet; otherwise wait a bounded time.
      await until(async () => ((await historyEntry(coinbase))?.blockheight ?? -1) >= 0, settleMs);
    },
    async transaction(txid) {
      const entry = await historyEntry(txid);
      if (entry === undefined) return null;
      if (entry.blockheight < 0) return { confirmations: 0 };
      const tip = await node.call<number>('getblockcount');
      return { confirmations: Math.max(0, tip - entry.blockheight + 1) };
    },
    async receivedSince(cursor, depth) {
      const tip = await node.call<number>('getblockcount');
      let since = -1;
      if (cursor !== undefined && cursor !== '') {
        try {
          since = (await node.call<{ height: number }>('getblockheader', cursor, true)).height;
        } catch (err) {
          if (!isRejection(err)) throw err; // unknown block (e.g. a fresh regtest chain): start over
        }
      }
      const heights = new Map<string, number>();
      for (const entry of await history()) {
        // 'receive': none of the inputs is ours, the only case where someone else pays us
        // (and the only one bcoin's gettransaction can show).
        if (entry.category !== 'receive') continue;
        if (entry.blockheight === -1 || entry.blockheight > since) heights.set(entry.txid, entry.blockheight);
      }
      const txids = [...heights.keys()];
      const txs = (await walletMany(txids.map((txid) => ({ method: 'gettransaction', params: [txid] })))) as WalletTx[];
      const payments: IncomingPayment[] = [];
      for (const tx of txs) {
        if (parseTx(tx.hex).isCoinbase) continue;
        const height = heights.get(tx.txid) ?? -1;
        const confirmations = height >= 0 ? tip - height + 1 : 0;
        for (const entry of tx.details) {
          const payment = toPayment(tx.txid, entry, confirmations);
          if (payment !== null) payments.push(payment);
        }
      }
      const next = await node.call<string>('getblockhash', Math.max(0, tip - depth + 1));
      return { payments, cursor: next };
    },
  };
}

export function createStrategy(kind: NodeKind, opts: StrategyOptions): Strategy {
  return kind === 'bitcoind' ? bitcoindStrategy(opts) : bcoinStrategy(opts);
}
