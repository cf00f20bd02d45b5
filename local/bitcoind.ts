/**
 * A real regtest bitcoind as the embedded cloud's Bitcoin network
 * (`npm start -- --bitcoind URL`, or BITCOIND_RPC_URL): the handlers reach it
 * through the same bitcoind adapter as on ECS, and the cloud's faucet
 * (`fund`) and miner (the `mine` job) use the node itself
 * (generatetoaddress), never the in-process bcoin, whose addresses are not
 * Core's (its Address parser refuses `bcrt1…`: "Non-base58 character").
 *
 * URL: http://USER:PASSWORD@HOST:PORT (the node's rpcauth/rpcuser
 * credentials). Only regtest can be mined; any other chain is refused here.
 */
import { MalformedError, UnavailableError } from '../core/errors.ts';
import type { RegtestNode } from './bitcoin.ts';

/** Wallet the cloud mines to when no address is given (created on first use). */
export const LOCAL_MINER_WALLET = 'oc-local-miner';

interface RpcAnswer<T> {
  result?: T;
  error?: { code: number; message: string } | null;
}

export async function connectBitcoind(url: string): Promise<RegtestNode> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MalformedError(`--bitcoind must be a URL like http://user:password@127.0.0.1:18443 (got ${url})`);
  }
  if (u.protocol !== 'http:' || !u.port || !u.username) {
    throw new MalformedError(`--bitcoind must be http://user:password@host:port (got ${u.protocol}//${u.host})`);
  }
  const endpoint = {
    host: u.hostname,
    port: Number(u.port),
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
  const auth = `Basic ${Buffer.from(`${endpoint.username}:${endpoint.password}`).toString('base64')}`;
  const rpc = async <T>(method: string, params: unknown[] = [], wallet?: string): Promise<T> => {
    const path = wallet ? `/wallet/${encodeURIComponent(wallet)}` : '/';
    let res: Response;
    try {
      res = await fetch(`http://${endpoint.host}:${endpoint.port}${path}`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (e) {
      throw new UnavailableError(`bitcoind at ${endpoint.host}:${endpoint.port} unreachable: ${(e as Error).message}`);
    }
    if (res.status === 401) throw new MalformedError(`bitcoind at ${endpoint.host}:${endpoint.port} refused the credentials (HTTP 401)`);
    const body = (await res.json().catch(() => ({}))) as RpcAnswer<T>;
    if (body.error) throw new RpcError(body.error.code, `${method}: ${body.error.message}`);
    return body.result as T;
  };

  const info = await rpc<{ chain: string; blocks: number }>('getblockchaininfo');
  if (info.chain !== 'regtest') {
    throw new MalformedError(`--bitcoind: the node runs ${info.chain}; npm start mines and funds, so it needs a regtest node`);
  }

  const ensureWallet = async (id: string): Promise<void> => {
    const loaded = await rpc<string[]>('listwallets');
    if (loaded.includes(id)) return;
    try {
      await rpc('loadwallet', [id, true]);
    } catch (e) {
      // -18: no such wallet on disk → create it (descriptors, load_on_startup)
      if (!(e instanceof RpcError) || e.code !== -18) throw e;
      await rpc('createwallet', [id, false, false, '', false, true, true]);
    }
  };
  let minerAddress: string | undefined;
  const miner = async (): Promise<string> => {
    if (minerAddress) return minerAddress;
    await ensureWallet(LOCAL_MINER_WALLET);
    minerAddress = await rpc<string>('getnewaddress', ['mining', 'bech32'], LOCAL_MINER_WALLET);
    return minerAddress;
  };

  return {
    kind: 'bitcoind',
    nodeRpc: endpoint,
    walletRpc: endpoint,
    createWallet: ensureWallet,
    async mine(n, address) {
      const hashes = await rpc<string[]>('generatetoaddress', [n, address ?? (await miner())]);
      // every wallet has processed the new blocks when this returns
      await rpc('syncwithvalidationinterfacequeue');
      return hashes;
    },
    async mineEmpty(n, address) {
      // generateblock <address> []: blocks without any mempool transaction (a stuck payment stays stuck)
      const to = address ?? (await miner());
      const hashes: string[] = [];
      for (let i = 0; i < n; i++) hashes.push((await rpc<{ hash: string }>('generateblock', [to, []])).hash);
      await rpc('syncwithvalidationinterfacequeue');
      return hashes;
    },
    async waitForWalletSync() {
      await rpc('syncwithvalidationinterfacequeue');
    },
    async setAvailable() {
      throw new UnavailableError('a real bitcoind cannot be made unavailable from here');
    },
    // the node is the caller's: it keeps running
    async stop() {},
  };
}

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
