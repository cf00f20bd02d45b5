/**
 * bcoin 1.0.2 regtest, in memory, in this process: the local stand-in for the
 * bitcoind that runs on ECS. It serves the node JSON-RPC and the wallet
 * JSON-RPC on two loopback ports (bcoin keeps them apart), so the Payments
 * adapter talks to it over HTTP exactly as it talks to bitcoind.
 * Quirks are in /work/shared/notes/feasibility.md row 4b.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
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
  /** Resolve once the wallet database has processed every block of the chain. */
  waitForWalletSync(): Promise<void>;
  /** Take both RPC servers down (false) or bring them back (true): simulates bitcoind being unreachable. */
  setAvailable(up: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRegtestOptions {
  /** Wallets to create at start-up (e.g. ['scb', 'spb']). */
  walletIds?: string[];
}

// bcoin ships no type declarations: these are the few members we use.
interface BcoinHttpServer {
  open(): Promise<void>;
  close(): Promise<void>;
}
interface BcoinWalletDB {
  state: { height: number };
  /** Held by addBlock while it records a block's transactions (after it moved the tip). */
  txLock: { lock(): Promise<() => void> };
  get(id: string): Promise<unknown>;
  create(options: { id: string }): Promise<unknown>;
  primary: { receiveAddress(): Promise<{ toString(network: unknown): string }> };
}
interface BcoinFullNode {
  network: unknown;
  chain: { height: number };
  http: BcoinHttpServer;
  pool: { invMap: Map<unknown, { resolve(): void }> };
  rpc: { mineBlocks(n: number, address: unknown): Promise<string[]> };
  plugins: Record<string, { wdb: BcoinWalletDB; http: BcoinHttpServer } | undefined>;
  use(plugin: unknown): void;
  on(event: 'error', listener: (err: Error) => void): void;
  open(): Promise<void>;
  close(): Promise<void>;
}
interface Bcoin {
  set(network: string): void;
  FullNode: new (options: Record<string, unknown>) => BcoinFullNode;
  Address: { fromString(address: string, network: unknown): unknown };
  wallet: { plugin: unknown };
}

const require = createRequire(import.meta.url);

function loadBcoin(): Bcoin {
  const bcoin = require('bcoin') as Bcoin;
  // Without this the wallet hands out mainnet addresses (feasibility row 4b).
  bcoin.set('regtest');
  return bcoin;
}

/** A port that was free a moment ago: bind port 0 on loopback, read it, release it. */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new UnavailableError('no free port from the OS'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
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

/** Start bcoin regtest in memory with the wallet plugin and both RPC servers on free loopback ports. */
export async function startRegtest(opts: StartRegtestOptions = {}): Promise<RegtestNode> {
  const bcoin = loadBcoin();
  const [nodePort, walletPort] = [await freePort(), await freePort()];
  const apiKey = randomBytes(24).toString('hex');
  const node = new bcoin.FullNode({
    network: 'regtest',
    memory: true,
    workers: false,
    logLevel: 'none',
    listen: false,
    indexTX: true,
    httpHost: '127.0.0.1',
    httpPort: nodePort,
    apiKey,
    // Options prefixed `wallet` are handed to the wallet plugin (bcfg filter).
    walletHttpHost: '127.0.0.1',
    walletHttpPort: walletPort,
  });
  node.use(bcoin.wallet.plugin);
  // bcoin reports relay and verification failures as 'error' events; without a
  // listener they would crash the process. The adapter checks outcomes itself.
  node.on('error', () => {});
  await node.open();

  const walletPlugin = node.plugins['walletdb'];
  if (walletPlugin === undefined) throw new UnavailableError('bcoin wallet plugin did not load');
  const wdb = walletPlugin.wdb;

  const endpoint = (port: number): RpcEndpoint => ({
    host: '127.0.0.1',
    port,
    username: 'bitcoinrpc',
    password: apiKey,
  });

  const waitForWalletSync = async (): Promise<void> => {
    // The wallet follows the chain asynchronously (20-80 ms after a block; far
    // longer for 100 blocks on a loaded machine with several hubs in one
    // process): it is stuck only when it makes no progress for 5 s.
    let height = wdb.state.height;
    let since = Date.now();
    while (wdb.state.height !== node.chain.height && Date.now() - since < 5_000) {
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
