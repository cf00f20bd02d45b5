/**
 * containers/bitcoind/entrypoint.sh with the real bitcoind (Bitcoin Core from
 * OC_NODES_BIN), once per network setting, offline: PEERS=none (connect=0,
 * listen=0, no seeds), so nothing is synced. For each network: the config is
 * written with `rpcauth` (no password in it), the node starts on that chain,
 * the RPC accepts the user/password the adapters use (the node checks the
 * salted HMAC) and refuses a wrong one, the wallet is created (and on a second
 * start loaded, not created again), its addresses are that network's (the
 * same rule core/network.ts applies to payTo addresses), and SIGTERM stops the
 * node cleanly. Regtest only: 101 blocks on first start and a miner that
 * confirms what waits in the mempool. signet runs pruned (PRUNE=550, no
 * txindex). Bad settings are refused before bitcoind starts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { addressFormat, BITCOIN_NETWORKS, checkAddress, WrongNetworkError, type BitcoinNetwork } from '../../core/network.ts';
import { freePort, missingNodes, NODES_BIN, until } from './harness.ts';

const skip = missingNodes(['bitcoind', 'bitcoin-cli']);
const ENTRYPOINT = fileURLToPath(new URL('../../containers/bitcoind/entrypoint.sh', import.meta.url));
const USER = 'oc-bitcoind';
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}`;
const CHAIN: Record<BitcoinNetwork, string> = { regtest: 'regtest', signet: 'signet', testnet4: 'testnet4', mainnet: 'main' };

interface Started {
  child: ChildProcess;
  exited: Promise<number | null>;
  dir: string;
  rpcPort: number;
  logFile: string;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
});

function env(network: string, dir: string, rpcPort: number, p2pPort: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    RPC_USER: USER,
    RPC_PASSWORD: PASSWORD,
    NETWORK: network,
    DATA_DIR: dir,
    RPC_PORT: String(rpcPort),
    P2P_PORT: String(p2pPort),
    RPC_BIND: '127.0.0.1',
    PEERS: 'none',
    BITCOIN_BIN_DIR: NODES_BIN,
    ...extra,
  };
}

async function start(network: string, dir: string, extra: Record<string, string> = {}): Promise<Started> {
  const [rpcPort, p2pPort] = [await freePort(), await freePort()];
  const logFile = join(dir, `entrypoint-${Date.now()}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn('sh', [ENTRYPOINT], { env: env(network, dir, rpcPort, p2pPort, extra), stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { running.delete(child); resolve(code); }));
  const s = { child, exited, dir, rpcPort, logFile };
  await until(`entrypoint on ${network} ready`, async () => {
    if (child.exitCode !== null) throw new Error(`entrypoint exited ${child.exitCode}: ${log(s).slice(-2000)}`);
    return /wallets oc ready/.test(log(s)) && (network !== 'regtest' || /regtest initialised|\.oc-initialised/.test(log(s)) || initialised(s));
  }, 120_000, 200);
  return s;
}

const log = (s: Started) => readFileSync(s.logFile, 'utf8');
const initialised = (s: Started) => {
  try {
    readFileSync(join(s.dir, '.oc-initialised'));
    return true;
  } catch {
    return false;
  }
};

async function rpc<T>(s: Started, method: string, params: unknown[] = [], opts: { wallet?: string; password?: string } = {}): Promise<{ status: number; result?: T; error?: { code: number; message: string } }> {
  const res = await fetch(`http://127.0.0.1:${s.rpcPort}${opts.wallet ? `/wallet/${opts.wallet}` : '/'}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${USER}:${opts.password ?? PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params }),
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as { result?: T; error?: { code: number; message: string } | null }) : {};
  return { status: res.status, ...(body.result !== undefined ? { result: body.result } : {}), ...(body.error ? { error: body.error } : {}) };
}

async function call<T>(s: Started, method: string, params: unknown[] = [], wallet?: string): Promise<T> {
  const r = await rpc<T>(s, method, params, wallet ? { wallet } : {});
  if (r.error || r.status !== 200) throw new Error(`${method}: ${r.status} ${JSON.stringify(r.error)}`);
  return r.result as T;
}

async function stop(s: Started): Promise<void> {
  s.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([s.exited.then(() => true), new Promise((r) => (timer = setTimeout(() => r(false), 60_000)))]);
  clearTimeout(timer);
  if (!gone) {
    s.child.kill('SIGKILL');
    await s.exited;
  }
  assert.ok(gone, 'the entrypoint ends after SIGTERM');
  // bitcoind logs this once it has flushed and closed everything ("Shutdown: done" before v30)
  assert.match(log(s), /Shutdown:? done/);
}

describe('bitcoind entrypoint on the real node, per network (offline)', { skip, concurrency: true }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'oc-btc-ep-'));
    dirs.push(d);
    return d;
  };

  for (const network of BITCOIN_NETWORKS) {
    it(`${network}: rpcauth config, chain, RPC credentials, wallet, addresses of the network, clean stop`, async () => {
      const dir = await tempDir();
      const pruned = network === 'signet';
      const s = await start(network, dir, { MINE_INTERVAL: '1', ...(pruned ? { PRUNE: '550' } : {}) });
      try {
        const conf = await readFile(join(dir, 'bitcoin.conf'), 'utf8');
        assert.match(conf, new RegExp(`^chain=${CHAIN[network]}$`, 'm'));
        assert.match(conf, new RegExp(`^\\[${CHAIN[network]}\\]$`, 'm'));
        assert.match(conf, new RegExp(`^rpcauth=${USER}:[0-9a-f]{32}\\$[0-9a-f]{64}$`, 'm'));
        assert.doesNotMatch(conf, /rpcpassword|rpcuser/);
        assert.ok(!conf.includes(PASSWORD), 'the password is not in bitcoin.conf');
        assert.match(conf, pruned ? /^prune=550$/m : /^txindex=1$/m);

        const info = await call<{ chain: string; blocks: number; pruned: boolean }>(s, 'getblockchaininfo');
        assert.equal(info.chain, CHAIN[network]);
        assert.equal(info.pruned, pruned);
        assert.equal((await rpc(s, 'getblockchaininfo', [], { password: `${PASSWORD}x` })).status, 401);
        assert.equal((await call<{ connections: number }>(s, 'getnetworkinfo')).connections, 0);
        assert.ok((await call<string[]>(s, 'listwallets')).includes('oc'));

        // the node's addresses are this network's, and only this network's
        const own = addressFormat(network);
        for (const type of ['bech32', 'bech32m', 'legacy']) {
          const address = await call<string>(s, 'getnewaddress', ['', type], 'oc');
          assert.equal(checkAddress(address, own), address);
          for (const other of BITCOIN_NETWORKS) {
            if (addressFormat(other).hrp === own.hrp) continue;
            if (type === 'legacy' && network !== 'mainnet' && other !== 'mainnet') continue; // test networks share base58 prefixes
            assert.throws(() => checkAddress(address, addressFormat(other)), WrongNetworkError, `${type} ${address} on ${other}`);
          }
        }

        if (network === 'regtest') {
          assert.equal(info.blocks, 101);
          // the miner confirms what waits in the mempool
          const to = await call<string>(s, 'getnewaddress', [], 'oc');
          const txid = await call<string>(s, 'sendtoaddress', [to, 1], 'oc');
          await until('the regtest miner to confirm the payment', async () => (await call<{ confirmations: number }>(s, 'gettransaction', [txid], 'oc')).confirmations >= 1, 30_000, 250);
        } else {
          // no miner, nothing mined: the chain is at its genesis block (offline, no sync)
          assert.equal(info.blocks, 0);
          assert.doesNotMatch(log(s), /initialised/);
          if (pruned) assert.equal(Object.keys(await call<Record<string, unknown>>(s, 'getindexinfo')).includes('txindex'), false);
        }
      } finally {
        await stop(s);
      }

      // a second start on the same data: the wallet is loaded (not created again), regtest is not mined again
      const again = await start(network, dir, { MINE_INTERVAL: '0', ...(pruned ? { PRUNE: '550' } : {}) });
      try {
        assert.ok((await call<string[]>(again, 'listwallets')).includes('oc'));
        assert.doesNotMatch(log(again), /initialised:/);
        const blocks = (await call<{ blocks: number }>(again, 'getblockchaininfo')).blocks;
        assert.equal(blocks, network === 'regtest' ? 102 : 0);
      } finally {
        await stop(again);
      }
    });
  }

  it('refuses an unknown network, a pruned regtest and a prune target below 550 MiB, before starting bitcoind', async () => {
    const dir = await tempDir();
    for (const [network, extra, message] of [
      ['testnet3', {}, /NETWORK must be regtest, signet, testnet4 or mainnet/],
      ['regtest', { PRUNE: '550' }, /PRUNE is not allowed on regtest/],
      ['mainnet', { PRUNE: '100' }, /at least 550/],
      ['mainnet', { PRUNE: 'lots' }, /PRUNE must be a number/],
    ] as const) {
      const r = spawnSync('sh', [ENTRYPOINT], { env: env(network, dir, 1, 2, extra), encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `${network} ${JSON.stringify(extra)}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
