/**
 * bcoin 1.0.2 regtest, in memory, in this process: the local stand-in for the
 * bitcoind that runs on ECS. It serves the node JSON-RPC and the wallet
 * JSON-RPC on two loopback ports (bcoin keeps them apart), so the Payments
 * adapter talks to it over HTTP exactly as it talks to bitcoind.
 * Quirks are in /work/shared/notes/feasibility.md row 4b.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { MessagePort } from 'node:worker_threads';
import { serveInThread, startThread } from './threads.ts';
import { UnavailableError } from '../core/errors.ts';

import type { BitcoinPaymentsOptions, NodeKind, RpcEndpoint } from '../adapters/payments/bitcoin.ts';

export interface RegtestNode {
  /** The node behind the RPC (default bcoin, this file's node; a real regtest bitcoind is 'bitcoind'). */
  kind?: NodeKind;
  nodeRpc: RpcEndpoint;
  walletRpc: RpcEndpoint;
  /** Create a wallet with this id (idempotent). */
  createWallet(id: string): Promise<void>;
  /** Mine `n` blocks to `address` (default: a fresh address of the primary wallet), then wait for the wallet to sync. */
  mine(n: number, address?: string): Promise<string[]>;
  /**
   * Mine `n` blocks that include no mempool transaction (Core: `generateblock
   * <address> []`): what a busy network does to a low-fee transaction.
   */
  mineEmpty(n: number, address?: string): Promise<string[]>;
  /** Resolve once the wallet database has processed every block of the chain. */
  waitForWalletSync(): Promise<void>;
  /** Take both RPC servers down (false) or bring them back (true): simulates bitcoind being unreachable. */
  setAvailable(up: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRegtestOptions {
  /** Wallets to create at start-up (e.g. ['scb', 'spb']). */
  walletIds?: string[];
  /**
   * Derive each wallet's master key from this secret and the wallet's id
   * (instead of at random), so a wallet re-created in a later process owns the
   * same addresses: what lets `npm start -- --data DIR` run again (bcoin's
   * chain is in memory, but a provider's payment address kept in the table
   * still belongs to its wallet).
   */
  walletSeed?: Buffer;
}

// bcoin ships no type declarations: these are the few members we use.
interface BcoinHttpServer {
  open(): Promise<void>;
  close(): Promise<void>;
  address(): { port: number };
  /** bweb's listen settings: open() listens on config.port */
  config: { port: number };
}
interface BcoinWalletHttp extends BcoinHttpServer {
  post(path: string, handler: (req: BcoinRequest, res: BcoinResponse) => Promise<void>): void;
}
interface BcoinRequest {
  body: Record<string, unknown>;
  wallet: BcoinWallet;
}
interface BcoinResponse {
  json(status: number, body?: unknown): void;
}
interface BcoinScript {
  getAddress(): unknown;
}
interface BcoinOutput {
  value: number;
  script: BcoinScript;
  getAddress(): unknown;
  isDust(rate?: number): boolean;
}
interface BcoinInput {
  prevout: { hash: string; index: number };
  script: unknown;
  witness: unknown;
}
interface BcoinTx {
  inputs: BcoinInput[];
  outputs: BcoinOutput[];
  hash(enc: 'hex'): string;
  txid(): string;
  getFee(view: unknown): number;
  getVirtualSize(): number;
}
interface BcoinMtx extends BcoinTx {
  view: unknown;
  toRaw(): Buffer;
}
interface BcoinWallet {
  getTX(hash: string): Promise<{ tx: BcoinTx; height: number } | null>;
  getSpentView(tx: BcoinTx): Promise<unknown>;
  hasAddress(address: unknown): Promise<boolean>;
  sign(mtx: BcoinMtx): Promise<number>;
}
interface BcoinMempoolEntry {
  tx: BcoinTx;
  fee: number;
  size: number;
  descFee: number;
}
interface BcoinMempool {
  getSpent(hash: string, index: number): BcoinMempoolEntry | undefined;
  getCoinView(tx: BcoinTx): Promise<unknown>;
  hasEntry?(hash: string): boolean;
  exists(hash: string): boolean;
  evictEntry(entry: BcoinMempoolEntry): void;
  insertTX(tx: BcoinTx, id?: number): Promise<unknown>;
  options: { minRelay: number };
}
interface BcoinWalletDB {
  state: { height: number };
  /** Held by addBlock while it records a block's transactions (after it moved the tip). */
  txLock: { lock(): Promise<() => void> };
  get(id: string | number): Promise<unknown>;
  getWalletsByTX(tx: BcoinTx): Promise<Set<number> | null>;
  create(options: { id: string; master?: unknown; mnemonic?: unknown }): Promise<unknown>;
  primary: { receiveAddress(): Promise<{ toString(network: unknown): string }> };
}
interface BcoinFullNode {
  network: unknown;
  mempool: BcoinMempool;
  chain: { height: number };
  http: BcoinHttpServer;
  pool: { invMap: Map<unknown, { resolve(): void }> };
  rpc: { mineBlocks(n: number, address: unknown): Promise<string[]> };
  miner: { mempool: unknown };
  plugins: Record<string, { wdb: BcoinWalletDB; http: BcoinWalletHttp } | undefined>;
  use(plugin: unknown): void;
  on(event: 'error', listener: (err: Error) => void): void;
  open(): Promise<void>;
  close(): Promise<void>;
}
interface Bcoin {
  set(network: string): void;
  FullNode: new (options: Record<string, unknown>) => BcoinFullNode;
  Address: { fromString(address: string, network: unknown): unknown };
  MTX: { fromTX(tx: BcoinTx): BcoinMtx };
  HDPrivateKey: { fromSeed(seed: Buffer): unknown };
  Script: new () => unknown;
  Witness: new () => unknown;
  util: { revHex(hex: string): string };
  wallet: { plugin: unknown };
}

const require = createRequire(import.meta.url);

function loadBcoin(): Bcoin {
  const bcoin = require('bcoin') as Bcoin;
  // Without this the wallet hands out mainnet addresses (feasibility row 4b).
  bcoin.set('regtest');
  return bcoin;
}

/** Options for a BitcoinPayments adapter on wallet `walletId` of this node. */
export function bcoinPaymentsOptions(
  node: Pick<RegtestNode, 'nodeRpc' | 'walletRpc'>,
  walletId: string,
  extra: Partial<BitcoinPaymentsOptions> = {},
): BitcoinPaymentsOptions {
  return { kind: 'bcoin', node: node.nodeRpc, wallet: { ...node.walletRpc, name: walletId }, ...extra };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * bcoin 1.0.2's mempool refuses every transaction that spends an output a
 * mempool transaction already spends ("bad-txns-inputs-spent"): no
 * replacement at all (its `replaceByFee` option only admits transactions that
 * signal BIP125). Bitcoin Core replaces any mempool transaction since v28
 * (full RBF the default; the option removed in v29), so the stand-in does too,
 * by Core's main rules (BIP125 rules 3, 4 and 6): the replacement pays more
 * than everything it evicts (conflicts and their descendants) plus the
 * minimum relay fee for its own size, at a higher fee rate than each conflict.
 * The conflicts are evicted, the replacement inserted; if it then fails any
 * other check, the evicted transactions are put back.
 */
function fullRbf(mempool: BcoinMempool, onReplaced: (evicted: BcoinTx[]) => Promise<void>): void {
  const insert = mempool.insertTX.bind(mempool);
  mempool.insertTX = async (tx, id) => {
    const conflicts = new Map<string, BcoinMempoolEntry>();
    for (const { prevout } of tx.inputs) {
      const entry = mempool.getSpent(prevout.hash, prevout.index);
      if (entry) conflicts.set(entry.tx.hash('hex'), entry);
    }
    if (conflicts.size === 0 || mempool.exists(tx.hash('hex'))) return insert(tx, id);
    const fee = tx.getFee(await mempool.getCoinView(tx));
    const size = tx.getVirtualSize();
    const evicted = [...conflicts.values()].reduce((sum, e) => sum + e.descFee, 0);
    const minRelay = Math.ceil((size * mempool.options.minRelay) / 1000); // minRelay is sat/kvB
    const better = [...conflicts.values()].every((e) => fee * e.size > e.fee * size);
    if (fee < 0 || fee < evicted + minRelay || !better) return insert(tx, id); // refused as a double spend, as before
    for (const e of conflicts.values()) mempool.evictEntry(e);
    let missing: unknown;
    try {
      missing = await insert(tx, id);
    } catch (err) {
      for (const e of conflicts.values()) await insert(e.tx).catch(() => undefined);
      throw err;
    }
    await onReplaced([...conflicts.values()].map((e) => e.tx));
    return missing;
  };
}

/** Rounds of signing a replacement at the fee its last signed size needs (sizeReplacementFee). */
const BUMP_SIGNING_ROUNDS = 5;

/** The replacement's change would be spent or dust at that fee. */
class ChangeTooSmall extends Error {}

/**
 * The fee (sats) of a replacement of a transaction that paid `fee`: at least 1 sat/vB
 * more (what fullRbf asks), with `rate` at least that rate, without it the original fee
 * again; with `maxRate`, never more than that rate. All three are per vbyte of the
 * SIGNED replacement, whose size is known only once signed (a DER signature's length
 * varies): `sign(total)` signs it at that fee and answers its vsize, and it is signed
 * again at the fee that size needs until the two agree. When they do not within
 * BUMP_SIGNING_ROUNDS (the rate and the cap leave one fee per size, and two sizes take
 * turns), the highest fee that met every bound at its own size stands, the cap before the
 * rate: signed last. `over`: even 1 sat/vB more is over the cap; `unsettled`: no fee met
 * the bounds. `vsize`: the original's, the first guess.
 */
export async function sizeReplacementFee(
  o: { fee: number; rate?: number; maxRate?: number; vsize: number },
  sign: (total: number) => Promise<number>,
): Promise<{ total: number } | { over: true } | { unsettled: true }> {
  const ceiling = (vsize: number) => (o.maxRate === undefined ? Infinity : Math.floor(o.maxRate * vsize));
  /** The least a replacement of signed size `vsize` may pay: 1 sat/vB more, and the rate. */
  const floor = (vsize: number) => (o.rate === undefined ? o.fee + vsize : Math.max(o.fee + vsize, Math.ceil(o.rate * vsize)));
  const feeFor = (vsize: number): number | undefined => {
    const total = Math.min(o.rate === undefined ? o.fee + Math.max(o.fee, vsize) : floor(vsize), ceiling(vsize));
    return total - o.fee < vsize ? undefined : total;
  };
  /** `total` signed at `vsize` is within every bound: 1 sat/vB more, the cap, and the rate unless the cap binds at that size. */
  const meets = (total: number, vsize: number) => {
    const top = ceiling(vsize);
    return total - o.fee >= vsize && total <= top && (total >= floor(vsize) || floor(vsize) >= top);
  };
  let total = feeFor(o.vsize);
  if (total === undefined) return { over: true };
  let best: { total: number; vsize: number } | undefined;
  for (let round = 0; round < BUMP_SIGNING_ROUNDS && total !== undefined; round++) {
    const vsize = await sign(total);
    const want = feeFor(vsize);
    if (want === total) return { total };
    if (meets(total, vsize) && total > (best?.total ?? 0)) best = { total, vsize };
    total = want;
  }
  if (!best) return total === undefined ? { over: true } : { unsettled: true };
  // signed again at that fee: the same signature (deterministic nonces), the same size
  return (await sign(best.total)) === best.vsize ? { total: best.total } : { unsettled: true };
}

/**
 * POST /wallet/:id/bump {txid} on the wallet server: what Core's psbtbumpfee
 * (+ walletprocesspsbt) does, for bcoin, which has no fee bumping and whose
 * wallet will not sign inputs it counts as spent. The replacement spends the
 * same inputs (their coins from the wallet's spent view) and pays the same
 * outputs, except the change (the output to this wallet) which pays the extra
 * fee, sized by sizeReplacementFee for the signed replacement (`rate`, `maxRate`:
 * sat/vB). 409 when 1 sat/vB more is over `maxRate` or the change cannot pay it;
 * 503 when no fee meets the bounds at its own signed size. Signed, not broadcast;
 * answers its hex and fee (sats).
 */
function addBumpRoute(bcoin: Bcoin, http: BcoinWalletHttp): void {
  http.post('/wallet/:id/bump', async (req, res) => {
    const txid = req.body['txid'];
    if (typeof txid !== 'string' || !/^[0-9a-f]{64}$/.test(txid)) return res.json(400, { error: { message: 'txid required' } });
    const rate: unknown = req.body['rate'];
    if (rate !== undefined && (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0)) return res.json(400, { error: { message: 'rate: sat/vB, a number ≥ 0' } });
    const maxRate: unknown = req.body['maxRate'];
    if (maxRate !== undefined && (typeof maxRate !== 'number' || !Number.isFinite(maxRate) || maxRate <= 0)) return res.json(400, { error: { message: 'maxRate: sat/vB, a number > 0' } });
    const wallet = req.wallet;
    const wtx = await wallet.getTX(bcoin.util.revHex(txid));
    if (!wtx) return res.json(404, { error: { message: `no wallet transaction ${txid}` } });
    if (wtx.height !== -1) return res.json(409, { error: { message: `transaction ${txid} is confirmed` } });
    const view = await wallet.getSpentView(wtx.tx);
    const fee = wtx.tx.getFee(view);
    const mtx = bcoin.MTX.fromTX(wtx.tx);
    mtx.view = view;
    let change: BcoinOutput | undefined;
    for (const out of mtx.outputs) {
      const address = out.getAddress();
      if (address && (await wallet.hasAddress(address))) change = out;
    }
    if (!change) return res.json(409, { error: { message: `transaction ${txid} has no change output to pay a higher fee from` } });
    const paysChange = change;
    const changeBefore = change.value;
    const signAt = async (total: number): Promise<number> => {
      paysChange.value = changeBefore - (total - fee);
      if (paysChange.value <= 0 || paysChange.isDust()) throw new ChangeTooSmall();
      for (const input of mtx.inputs) {
        input.script = new bcoin.Script();
        input.witness = new bcoin.Witness();
      }
      await wallet.sign(mtx);
      return mtx.getVirtualSize();
    };
    let sized: Awaited<ReturnType<typeof sizeReplacementFee>>;
    try {
      sized = await sizeReplacementFee({ fee, vsize: wtx.tx.getVirtualSize(), ...(rate === undefined ? {} : { rate }), ...(maxRate === undefined ? {} : { maxRate }) }, signAt);
    } catch (e) {
      if (e instanceof ChangeTooSmall) return res.json(409, { error: { message: `the change of ${txid} cannot pay a higher fee` } });
      throw e;
    }
    // typed as bcoin types its errors (`error.type`): the adapter maps it to F18_FEE_CAP
    if ('over' in sized) return res.json(409, { error: { type: 'FeeCapError', message: `a replacement of ${txid} paying 1 sat/vB more is over ${String(maxRate)} sat/vB` } });
    if ('unsettled' in sized) return res.json(503, { error: { message: `could not size a replacement of ${txid}: its signed size kept changing` } });
    res.json(200, { hex: mtx.toRaw().toString('hex'), fee: sized.total });
  });
}

/**
 * How long the wallet may make no progress following the chain before it counts as stuck: 15 s,
 * since on a loaded machine (a CI run of two suites at once, with several hubs in one process)
 * a pause of several seconds is no fault.
 */
const WALLET_STUCK_MS = 15_000;

/** Start bcoin regtest in memory with the wallet plugin and both RPC servers on free loopback ports. */
export async function startRegtest(opts: StartRegtestOptions = {}): Promise<RegtestNode> {
  const bcoin = loadBcoin();
  const apiKey = randomBytes(24).toString('hex');
  const node = new bcoin.FullNode({
    network: 'regtest',
    memory: true,
    workers: false,
    logLevel: 'none',
    listen: false,
    indexTX: true,
    httpHost: '127.0.0.1',
    httpPort: 0, // bound below; a port picked beforehand could be taken by any connection meanwhile
    apiKey,
    // Options prefixed `wallet` are handed to the wallet plugin (bcfg filter).
    walletHttpHost: '127.0.0.1',
    walletHttpPort: 0,
  });
  node.use(bcoin.wallet.plugin);
  // bcoin reports relay and verification failures as 'error' events; without a
  // listener they would crash the process. The adapter checks outcomes itself.
  node.on('error', () => {});
  await node.open();

  const walletPlugin = node.plugins['walletdb'];
  if (walletPlugin === undefined) throw new UnavailableError('bcoin wallet plugin did not load');
  const wdb = walletPlugin.wdb;
  // A replaced transaction leaves every wallet it paid, as Core's wallet marks it conflicted: bcoin
  // drops it only from the payer's (whose coins it spent), so a payee would count it forever.
  const seed = opts.walletSeed;
  if (seed !== undefined) {
    const create = wdb.create.bind(wdb);
    wdb.create = (options) =>
      create(
        options.master != null || options.mnemonic != null // the REST PUT passes null for both
          ? options
          : { ...options, master: bcoin.HDPrivateKey.fromSeed(createHash('sha256').update(seed).update(options.id).digest()) },
      );
  }
  fullRbf(node.mempool, async (evicted) => {
    for (const tx of evicted) {
      for (const wid of (await wdb.getWalletsByTX(tx)) ?? []) {
        const wallet = (await wdb.get(wid)) as (BcoinWallet & { abandon(hash: string): Promise<unknown> }) | null;
        if (!wallet) continue;
        // the payer (whose coins it spent) drops it itself when the replacement reaches its wallet
        // (txdb removeConflicts); removing it here too would race that removal
        const spent = (await wallet.getSpentView(tx)) as { map: Map<unknown, unknown> };
        if (spent.map.size > 0) continue;
        await wallet.abandon(tx.hash('hex')).catch(() => undefined);
      }
    }
  });
  addBumpRoute(bcoin, walletPlugin.http);
  // Both servers listen on the port the OS gave them; a restart (setAvailable) reopens the same one.
  const [nodePort, walletPort] = [node.http, walletPlugin.http].map((server) => {
    const port = server.address().port;
    server.config.port = port;
    return port;
  }) as [number, number];

  const endpoint = (port: number): RpcEndpoint => ({
    host: '127.0.0.1',
    port,
    username: 'bitcoinrpc',
    password: apiKey,
  });

  const waitForWalletSync = async (): Promise<void> => {
    // The wallet follows the chain asynchronously (20-80 ms after a block; far
    // longer for 100 blocks on a loaded machine with several hubs in one
    // process): it is stuck only when it makes no progress for WALLET_STUCK_MS.
    let height = wdb.state.height;
    let since = Date.now();
    while (wdb.state.height !== node.chain.height && Date.now() - since < WALLET_STUCK_MS) {
      await sleep(10);
      if (wdb.state.height !== height) {
        height = wdb.state.height;
        since = Date.now();
      }
    }
    if (wdb.state.height !== node.chain.height) {
      throw new UnavailableError(`wallet stuck at ${wdb.state.height}, chain at ${node.chain.height}`);
    }
    // bcoin's WalletDB.addBlock moves the tip before it records the block's
    // transactions, both under txLock: taking the lock once waits for the
    // block's transactions too, so a payment is confirmed when mine() returns.
    const unlock = await wdb.txLock.lock();
    unlock();
  };

  const createWallet = async (id: string): Promise<void> => {
    if ((await wdb.get(id)) === null) await wdb.create({ id });
  };

  for (const id of opts.walletIds ?? []) await createWallet(id);

  let up = true;
  let stopped = false;
  return {
    kind: 'bcoin',
    nodeRpc: endpoint(nodePort),
    walletRpc: endpoint(walletPort),
    createWallet,
    waitForWalletSync,
    async mine(n, address) {
      const to = address ?? (await wdb.primary.receiveAddress()).toString(node.network);
      const hashes = await node.rpc.mineBlocks(n, bcoin.Address.fromString(to, node.network));
      await waitForWalletSync();
      return hashes;
    },
    async mineEmpty(n, address) {
      const to = address ?? (await wdb.primary.receiveAddress()).toString(node.network);
      // bcoin's miner fills a block template from its mempool only when it has one (miner.js getSnapshot)
      const mempool = node.miner.mempool;
      node.miner.mempool = null;
      try {
        return await node.rpc.mineBlocks(n, bcoin.Address.fromString(to, node.network));
      } finally {
        node.miner.mempool = mempool;
        await waitForWalletSync();
      }
    },
    async setAvailable(want) {
      if (want === up || stopped) return;
      if (want) {
        await node.http.open();
        await walletPlugin.http.open();
      } else {
        await node.http.close();
        await walletPlugin.http.close();
      }
      up = want;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!up) {
        // close() would close the already closed HTTP servers again.
        await node.http.open();
        await walletPlugin.http.open();
      }
      // Every accepted transaction starts a 60 s inventory-broadcast timer that
      // close() leaves running when the pool never connected (bcoin pool.js
      // BroadcastItem); finish them or the process cannot exit.
      for (const item of [...node.pool.invMap.values()]) item.resolve();
      await node.close();
    },
  };
}

/** The RegtestNode calls a worker thread answers (startRegtestInThread). */
type RegtestCall = 'createWallet' | 'mine' | 'mineEmpty' | 'waitForWalletSync' | 'setAvailable';

/** Answer the hub's calls on `node` over `port` (the body of local/bitcoin-thread.ts). */
export function serveRegtest(node: RegtestNode, port: MessagePort): void {
  serveInThread(
    port,
    { nodeRpc: node.nodeRpc, walletRpc: node.walletRpc },
    ({ call, args }: { call: RegtestCall; args: unknown[] }) => (node[call] as (...a: unknown[]) => Promise<unknown>).apply(node, args),
    () => node.stop(),
  );
}

/**
 * The same bcoin regtest node in a worker thread of its own
 * (local/bitcoin-thread.ts, through local/threads.ts), so that its block and
 * wallet work (mining, validation, the wallets following the chain) runs on
 * another core than the hub's. The RPC servers it serves on loopback are what
 * the hub's Payments adapter uses, as before; the node's other calls cross as
 * messages. A call in flight when the thread ends fails with UnavailableError;
 * `lost` hears of a thread that ended unasked.
 */
export async function startRegtestInThread(opts: StartRegtestOptions = {}, lost?: (e: Error) => void): Promise<RegtestNode> {
  const thread = await startThread<{ nodeRpc: RpcEndpoint; walletRpc: RpcEndpoint }>(
    new URL('./bitcoin-thread.ts', import.meta.url),
    opts,
    (why) => new UnavailableError(`the regtest thread ${why}`),
    lost,
  );
  const call = <T>(name: RegtestCall, ...args: unknown[]): Promise<T> => thread.call({ call: name, args }) as Promise<T>;
  return {
    kind: 'bcoin',
    ...thread.ready,
    createWallet: (id) => call('createWallet', id),
    mine: (n, address) => call('mine', n, address),
    mineEmpty: (n, address) => call('mineEmpty', n, address),
    waitForWalletSync: () => call('waitForWalletSync'),
    setAvailable: (up) => call('setAvailable', up),
    stop: () => thread.stop(),
  };
}
