/**
 * Real Bitcoin Core and MultiChain nodes for the real-node suites, started on
 * loopback with random free ports and temporary data directories, as
 * docs/real-nodes.md describes them (facts seen on Bitcoin Core v31
 * and MultiChain 2.3.3).
 *
 * The binaries come from the folder in OC_NODES_BIN; the project holds none of
 * them. `missingNodes()` says why a suite must skip (unset, or a binary
 * absent). Every daemon runs in the foreground as our child (no -daemon), so
 * its pid is known from the start (both daemons delete their pid file on
 * exit); `stop()` ends it with SIGTERM and then SIGKILL, and every process
 * started here is also killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegtestNode } from '../../local/bitcoin.ts';

export const NODES_BIN = process.env.OC_NODES_BIN;

export const BITCOIN_BINARIES = ['bitcoind'] as const;
export const MULTICHAIN_BINARIES = ['multichaind', 'multichain-util'] as const;

/** Why a suite needing these binaries cannot run here, or false when it can. */
export function missingNodes(binaries: readonly string[]): string | false {
  if (!NODES_BIN) return `OC_NODES_BIN is not set (a folder holding ${binaries.join(', ')}; see docs/real-nodes.md)`;
  const absent = binaries.filter((b) => !existsSync(join(NODES_BIN, b)));
  return absent.length > 0 ? `no ${absent.join(', ')} in OC_NODES_BIN=${NODES_BIN}` : false;
}

const bin = (name: string) => join(NODES_BIN as string, name);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Poll `probe` until it returns a value other than undefined/false, or throw after `timeoutMs`. */
/** A regtest bitcoind alone on loopback (real-nodes.md): no peers, no seeds, no Tor; txindex for look-ups. */
export const REGTEST_LOOPBACK_FLAGS = [
  '-listen=0',
  '-listenonion=0',
  '-dnsseed=0',
  '-fixedseeds=0',
  '-discover=0',
  '-natpmp=0',
  '-fallbackfee=0.0002',
  '-txindex=1',
  '-printtoconsole=0',
] as const;

export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** Every child started here, killed (SIGKILL) if the test process exits with them still running. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A daemon in the foreground, our child: pid known from the start, stdout/stderr to a log file. */
class Daemon {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly binary: string,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(args: string[]): void {
    if (this.alive) throw new Error(`${this.binary} is already running (pid ${this.child?.pid})`);
    const fd = openSync(this.logFile, 'a');
    try {
      const child = spawn(this.binary, args, { stdio: ['ignore', fd, fd] });
      this.child = child;
      running.add(child);
      this.exited = new Promise((resolve) =>
        child.once('exit', () => {
          running.delete(child);
          resolve();
        }),
      );
    } finally {
      closeSync(fd);
    }
  }

  /** Exit code or signal, if it has exited. */
  get exit(): string | undefined {
    const c = this.child;
    if (!c || (c.exitCode === null && c.signalCode === null)) return undefined;
    return c.exitCode !== null ? `exit ${c.exitCode}` : `signal ${c.signalCode}`;
  }

  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    child.kill(signal);
    const gone = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!gone) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

export interface RpcEndpointInfo {
  host: string;
  port: number;
  username: string;
  password: string;
}

/** A JSON-RPC error from a node, with its code. */
export class NodeRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Plain JSON-RPC to a node (to set things up and look behind the adapters). */
async function jsonRpc<T>(ep: RpcEndpointInfo, path: string, method: string, params: unknown[], extra: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`http://${ep.host}:${ep.port}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${ep.username}:${ep.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params, ...extra }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: { result?: T; error?: { code: number; message: string } | null } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  if (!body) throw new NodeRpcError(res.status, `${method}: HTTP ${res.status} ${text.slice(0, 200)}`, res.status);
  if (body.error) throw new NodeRpcError(body.error.code, `${method}: ${body.error.message} (${body.error.code})`, res.status);
  return body.result as T;
}

// ---------------------------------------------------------------- Bitcoin Core

export interface BitcoindOptions {
  /** Data directory (default: a fresh temporary one, removed by stop()). */
  datadir?: string;
  /** More bitcoin.conf lines (e.g. a second RPC user's rpcauth and rpcwhitelist). */
  conf?: string;
}

/** One regtest bitcoind: credentials in its bitcoin.conf (not on the command line), RPC on loopback only. */
export class Bitcoind {
  readonly endpoint: RpcEndpointInfo;
  private readonly daemon: Daemon;
  private minerAddress: string | undefined;

  private constructor(
    readonly datadir: string,
    private readonly ownDir: boolean,
    port: number,
  ) {
    this.endpoint = { host: '127.0.0.1', port, username: 'oc', password: `oc-${Math.random().toString(36).slice(2)}` };
    this.daemon = new Daemon(bin('bitcoind'), join(datadir, 'oc-harness.log'));
  }

  static async start(opts: BitcoindOptions = {}): Promise<Bitcoind> {
    const datadir = opts.datadir ?? (await mkdtemp(join(tmpdir(), 'oc-bitcoind-')));
    const node = new Bitcoind(datadir, opts.datadir === undefined, await freePort());
    await writeFile(join(datadir, 'bitcoin.conf'), `rpcuser=${node.endpoint.username}\nrpcpassword=${node.endpoint.password}\n${opts.conf ?? ''}`, { mode: 0o600 });
    await node.start();
    return node;
  }

  get pid(): number | undefined {
    return this.daemon.pid;
  }

  get url(): string {
    return `http://${this.endpoint.host}:${this.endpoint.port}`;
  }

  async start(): Promise<void> {
    this.daemon.start([
      '-regtest',
      '-server',
      `-datadir=${this.datadir}`,
      '-rpcbind=127.0.0.1',
      '-rpcallowip=127.0.0.1',
      `-rpcport=${this.endpoint.port}`,
      ...REGTEST_LOOPBACK_FLAGS,
    ]);
    await until(
      'bitcoind RPC',
      async () => {
        if (this.daemon.exit) throw new Error(`bitcoind ${this.daemon.exit}`);
        return (await this.rpc<{ chain: string }>('getblockchaininfo')).chain === 'regtest';
      },
      60_000,
    );
  }

  /** Node RPC (or a wallet's, at /wallet/<name>). */
  rpc<T = unknown>(method: string, params: unknown[] = [], wallet?: string): Promise<T> {
    return jsonRpc<T>(this.endpoint, wallet ? `/wallet/${encodeURIComponent(wallet)}` : '/', method, params);
  }

  /** An address of a wallet `oc-harness-miner`, created on first use: where blocks go unless told otherwise. */
  async miner(): Promise<string> {
    if (this.minerAddress) return this.minerAddress;
    const wallets = await this.rpc<string[]>('listwallets');
    if (!wallets.includes('oc-harness-miner')) {
      try {
        await this.rpc('createwallet', ['oc-harness-miner']);
      } catch (e) {
        // exists on disk, not loaded
        if (!(e instanceof NodeRpcError && e.code === -4)) throw e;
        await this.rpc('loadwallet', ['oc-harness-miner']);
      }
    }
    this.minerAddress = await this.rpc<string>('getnewaddress', [], 'oc-harness-miner');
    return this.minerAddress;
  }

  /** generatetoaddress, then wait until every wallet has processed the blocks. */
  async mine(blocks: number, address?: string): Promise<string[]> {
    const hashes = await this.rpc<string[]>('generatetoaddress', [blocks, address ?? (await this.miner())]);
    await this.rpc('syncwithvalidationinterfacequeue');
    return hashes;
  }

  /** generateblock <address> [] n times: blocks without any mempool transaction (a stuck payment stays stuck). */
  async mineEmpty(blocks: number, address?: string): Promise<string[]> {
    const to = address ?? (await this.miner());
    const hashes: string[] = [];
    for (let i = 0; i < blocks; i++) hashes.push((await this.rpc<{ hash: string }>('generateblock', [to, []])).hash);
    await this.rpc('syncwithvalidationinterfacequeue');
    return hashes;
  }

  /**
   * This node as the embedded cloud's shared Bitcoin network (kind 'bitcoind'):
   * hubs reach it through the bitcoind adapter, and their `fund` mines to it
   * with generatetoaddress. Its owner stops it (stop() here does nothing).
   */
  asRegtest(): RegtestNode {
    return {
      kind: 'bitcoind',
      nodeRpc: this.endpoint,
      walletRpc: this.endpoint,
      createWallet: async (id) => {
        await this.rpc('createwallet', [id, false, false, '', false, true, true]).catch((e: unknown) => {
          if (!(e instanceof NodeRpcError && (e.code === -4 || e.code === -35))) throw e;
        });
      },
      mine: (n, address) => this.mine(n, address),
      mineEmpty: (n, address) => this.mineEmpty(n, address),
      waitForWalletSync: async () => {
        await this.rpc('syncwithvalidationinterfacequeue');
      },
      setAvailable: async () => {
        throw new Error('a real bitcoind is stopped with stop(), not made unavailable');
      },
      stop: async () => {},
    };
  }

  /** Stop the node (SIGTERM: a clean shutdown) and remove its data directory if it made it. */
  async stop(): Promise<void> {
    await this.daemon.stop('SIGTERM', 30_000);
    if (this.ownDir) await rm(this.datadir, { recursive: true, force: true });
  }

  log(): string {
    try {
      return readFileSync(join(this.datadir, 'regtest', 'debug.log'), 'utf8');
    } catch {
      return this.daemon.log();
    }
  }
}

// ---------------------------------------------------------------- MultiChain

/** One multichaind of a chain (our child process, in the foreground). */
export class MultiChainNode {
  readonly endpoint: RpcEndpointInfo;
  private readonly daemon: Daemon;
  /** The node's own first address (getaddresses), known once it has started. */
  address = '';

  constructor(
    readonly chain: string,
    readonly index: number,
    readonly datadir: string,
    readonly rpcPort: number,
    readonly networkPort: number,
    password: string,
  ) {
    this.endpoint = { host: '127.0.0.1', port: rpcPort, username: 'oc', password };
    this.daemon = new Daemon(bin('multichaind'), join(datadir, 'oc-harness.log'));
  }

  get pid(): number | undefined {
    return this.daemon.pid;
  }

  get alive(): boolean {
    return this.daemon.alive;
  }

  get url(): string {
    return `http://${this.endpoint.host}:${this.endpoint.port}/`;
  }

  /** A hub's environment for this node as its ledger (LEDGER_KIND=multichain): how a deployment is configured. */
  get ledgerEnv(): Record<string, string> {
    return {
      LEDGER_KIND: 'multichain',
      MULTICHAIN_RPC_URL: this.url,
      MULTICHAIN_RPC_USER: this.endpoint.username,
      MULTICHAIN_RPC_PASSWORD: this.endpoint.password,
      MULTICHAIN_CHAIN_NAME: this.chain,
    };
  }

  /** The peer address other nodes use for this one. */
  get peer(): string {
    return `127.0.0.1:${this.networkPort}`;
  }

  /** The options of every real start (credentials on the command line: test nodes only, on loopback). */
  args(extra: string[] = []): string[] {
    return [
      `-datadir=${this.datadir}`,
      `-rpcuser=${this.endpoint.username}`,
      `-rpcpassword=${this.endpoint.password}`,
      `-rpcport=${this.rpcPort}`,
      `-port=${this.networkPort}`,
      '-rpcbind=127.0.0.1',
      '-rpcallowip=127.0.0.1',
      '-bind=127.0.0.1',
      '-externalip=127.0.0.1',
      '-discover=0',
      '-upnp=0',
      ...extra,
    ];
  }

  /** Start and wait for its RPC (getinfo) and its address. */
  async start(extra: string[] = []): Promise<void> {
    this.daemon.start([this.chain, ...this.args(extra)]);
    await until(
      `multichaind ${this.index} RPC`,
      async () => {
        if (this.daemon.exit) throw new Error(`multichaind ${this.index} ${this.daemon.exit}: ${this.daemon.log().slice(-500)}`);
        return (await this.rpc<{ chainname: string }>('getinfo')).chainname === this.chain;
      },
      60_000,
    );
    const addresses = await this.rpc<string[]>('getaddresses');
    this.address = addresses[0] ?? '';
  }

  rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    return jsonRpc<T>(this.endpoint, '/', method, params, { chain_name: this.chain });
  }

  /** Stop it: SIGTERM (clean) or SIGKILL (a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.daemon.stop(signal, 20_000);
  }

  log(): string {
    return this.daemon.log();
  }
}

export interface MultiChainOptions {
  /** Nodes in the chain (node 1 creates it; 2..N join). */
  nodes: number;
  /** Write-restricted streams each joiner is granted `<stream>.write` on (they may not exist yet on the chain). */
  streams: readonly string[];
  /**
   * Called once node 1 runs, before any node joins (e.g. the adapter's
   * ensureStreams, which creates the streams): joiners then find them.
   */
  onFirstNode?: (node: MultiChainNode) => Promise<void>;
  chainName?: string;
}

/**
 * A MultiChain chain of N nodes on loopback (shared/notes/real-nodes.md,
 * "Joining"): node 1 creates it (2 s blocks); node k runs `multichaind
 * C@127.0.0.1:P1` once (it fetches the parameters, prints its address and
 * exits 1), node 1 grants that address connect,send,receive and `<stream>.write`
 * per stream (one permission kind per call), and node k starts for real
 * without -addnode; lasting peers are added afterwards by `addnode … add`.
 */
export class MultiChain {
  private constructor(
    readonly name: string,
    readonly root: string,
    readonly nodes: MultiChainNode[],
    private readonly streams: readonly string[],
  ) {}

  static async start(opts: MultiChainOptions): Promise<MultiChain> {
    const name = opts.chainName ?? `oc${Math.random().toString(36).slice(2, 8)}`;
    const root = await mkdtemp(join(tmpdir(), 'oc-multichain-'));
    const chain = new MultiChain(name, root, [], opts.streams);
    try {
      const first = await chain.newNode(1);
      const created = spawnSync(
        bin('multichain-util'),
        ['create', name, `-datadir=${first.datadir}`, `-default-rpc-port=${first.rpcPort}`, `-default-network-port=${first.networkPort}`, '-target-block-time=2'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      if (created.status !== 0) throw new Error(`multichain-util create failed (${created.status}): ${created.stdout}${created.stderr}`);
      await first.start();
      // A fresh chain answers before its wallet holds a confirmed output: `create` would fail with -704.
      await until('a confirmed output on node 1', async () => (await first.rpc<unknown[]>('listunspent', [1])).length > 0, 60_000, 200);
      await opts.onFirstNode?.(first);
      await chain.mined(first); // e.g. the streams' creation: joiners subscribe to confirmed streams
      for (let k = 2; k <= opts.nodes; k++) await chain.join(k);
      await chain.connectAll();
      await chain.waitSynced();
      return chain;
    } catch (e) {
      await chain.stop();
      throw e;
    }
  }

  node(i: number): MultiChainNode {
    const n = this.nodes[i];
    if (!n) throw new RangeError(`no MultiChain node ${i} (0..${this.nodes.length - 1})`);
    return n;
  }

  private async newNode(index: number): Promise<MultiChainNode> {
    const dir = join(this.root, `node${index}`);
    const node = new MultiChainNode(this.name, index, dir, await freePort(), await freePort(), `pw-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir, { recursive: true });
    this.nodes.push(node);
    return node;
  }

  /** Join node `index`: fetch the parameters (exit 1 with its address), grant, start without -addnode. */
  private async join(index: number): Promise<MultiChainNode> {
    const seed = this.node(0);
    const node = await this.newNode(index);
    const fetched = spawnSync(bin('multichaind'), [`${this.name}@${seed.peer}`, ...node.args()], { encoding: 'utf8', timeout: 120_000 });
    const out = `${fetched.stdout ?? ''}${fetched.stderr ?? ''}`;
    const address = /grant\s+(\S+)\s+connect/.exec(out)?.[1];
    if (!address) throw new Error(`node ${index} printed no address to grant (status ${fetched.status}): ${out.slice(-800)}`);
    await seed.rpc('grant', [address, 'connect,send,receive']);
    for (const s of this.streams) await seed.rpc('grant', [address, `${s}.write`]);
    await this.mined(seed); // the grants confirmed before the joiner connects
    await node.start();
    if (node.address !== address) throw new Error(`node ${index} runs as ${node.address}, granted ${address}`);
    return node;
  }

  /** Until `node`'s mempool is empty: what it has sent so far is in a block (2 s blocks). */
  async mined(node: MultiChainNode, timeoutMs = 30_000): Promise<void> {
    await until(`node ${node.index}'s mempool mined`, async () => (await node.rpc<{ size: number }>('getmempoolinfo')).size === 0, timeoutMs, 200);
  }

  /** Lasting peers between every pair (`addnode host:port add`). */
  private async connectAll(): Promise<void> {
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b || !a.alive) continue;
        await a.rpc('addnode', [b.peer, 'add']).catch((e: unknown) => {
          // -23: already added
          if (!(e instanceof NodeRpcError && e.code === -23)) throw e;
        });
      }
    }
  }

  /** Until every running node has the same block count as the others and lists every stream. */
  async waitSynced(timeoutMs = 60_000): Promise<void> {
    await until(
      'MultiChain nodes in sync',
      async () => {
        const up = this.nodes.filter((n) => n.alive);
        const heights = await Promise.all(up.map((n) => n.rpc<number>('getblockcount')));
        if (new Set(heights).size !== 1) return false;
        for (const n of up) {
          const listed = await n.rpc<{ name: string }[]>('liststreams');
          if (!this.streams.every((s) => listed.some((l) => l.name === s))) return false;
        }
        return true;
      },
      timeoutMs,
      200,
    );
  }

  /** Stop node `i` (0-based): SIGTERM, or SIGKILL for a crash. */
  async stopNode(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.node(i).stop(signal);
  }

  /** Start node `i` again, peered (-addnode is safe after the first real start) with every other node. */
  async restartNode(i: number): Promise<void> {
    const node = this.node(i);
    await node.start(this.nodes.filter((n) => n !== node).map((n) => `-addnode=${n.peer}`));
  }

  /** Stop every node and remove the data directories. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => undefined)));
    await rm(this.root, { recursive: true, force: true });
  }
}
