/**
 * The container entrypoints (containers/multichain/entrypoint.sh, grant.sh,
 * containers/bitcoind/entrypoint.sh) run as ECS would run them (environment
 * only), with the real binaries from OC_NODES_BIN, a temporary data directory
 * and free loopback ports. Shared by the real-node suites that drive them
 * (entrypoints.test.ts, two-orgs.test.ts).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODES_BIN, freePort, until } from './harness.ts';

const script = (path: string) => fileURLToPath(new URL(`../../containers/${path}`, import.meta.url));
export const MULTICHAIN_ENTRYPOINT = script('multichain/entrypoint.sh');
export const GRANT = script('multichain/grant.sh');
export const BITCOIND_ENTRYPOINT = script('bitcoind/entrypoint.sh');

/** One entrypoint run: `sh <script>` with this environment, its output collected. */
export class Entrypoint {
  private readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(path: string, env: Record<string, string>) {
    // its own process group, so teardown can end the node and the log tail with it if the script is stuck
    this.child = spawn('sh', [path], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const collect = (b: Buffer) => {
      this.output += b.toString('utf8');
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    // 'close': exited and its output read to the end
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Until the output shows `pattern` (fails early if the entrypoint exits). */
  async waitFor(pattern: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
    return until(
      `${pattern}`,
      async () => {
        const m = pattern.exec(this.output);
        if (m) return m;
        if (!this.running) throw new Error(`entrypoint exited: ${this.output.slice(-1500)}`);
        return undefined;
      },
      timeoutMs,
      200,
    );
  }

  /** SIGTERM (as ECS stops a task) and the exit it makes. */
  async terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.child.kill('SIGTERM');
    return this.exited;
  }

  /** Teardown: SIGTERM, then SIGKILL to the whole group (script, node, log tail) after `graceMs`. */
  async kill(graceMs = 20_000): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      try {
        if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL'); // anything left in the group
    } catch {
      /* gone */
    }
  }
}

/** One organisation's MultiChain container: its data dir, ports, RPC password and the entrypoint's environment. */
export interface MultichainContainer {
  dir: string;
  rpcPort: number;
  p2pPort: number;
  password: string;
  env: Record<string, string>;
}

/** The environment of a MultiChain container of chain `chain` with its data in `root/name` (created). */
export async function multichainContainer(root: string, name: string, chain: string, extra: Record<string, string> = {}): Promise<MultichainContainer> {
  const dir = join(root, name);
  await mkdir(dir);
  const rpcPort = await freePort();
  const p2pPort = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  return {
    dir,
    rpcPort,
    p2pPort,
    password,
    env: {
      NODES_BIN: NODES_BIN as string,
      CHAIN_NAME: chain,
      RPC_USER: 'oc',
      RPC_PASSWORD: password,
      DATA_DIR: dir,
      RPC_PORT: String(rpcPort),
      P2P_PORT: String(p2pPort),
      RPC_BIND: '127.0.0.1',
      P2P_BIND: '127.0.0.1',
      EXTERNAL_IP: '127.0.0.1',
      ...extra,
    },
  };
}

/** `grant.sh <args>` run as the chain's admin would, inside container `admin`. */
export function runGrant(admin: MultichainContainer, ...args: string[]): SpawnSyncReturns<string> {
  return spawnSync('sh', [GRANT, ...args], { env: { PATH: process.env.PATH ?? '', ...admin.env }, encoding: 'utf8', timeout: 60_000 });
}

/** Plain JSON-RPC to a container's MultiChain node. */
export async function containerRpc(n: MultichainContainer, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${n.rpcPort}/`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`oc:${n.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ method, params, id: 1, chain_name: n.env.CHAIN_NAME }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { result: unknown; error: { message: string } | null };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/**
 * The bitcoind container's environment (regtest) with its data in `dir`. No
 * P2P listener (other suites' nodes share this machine): settings.json is
 * read after bitcoin.conf, which the entrypoint writes itself.
 */
export async function bitcoindContainer(dir: string, extra: Record<string, string> = {}): Promise<{ rpcPort: number; user: string; password: string; env: Record<string, string> }> {
  await mkdir(join(dir, 'regtest'), { recursive: true });
  await writeFile(join(dir, 'regtest', 'settings.json'), JSON.stringify({ listen: false, listenonion: false }));
  const rpcPort = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  return {
    rpcPort,
    user: 'oc',
    password,
    env: {
      PATH: `${NODES_BIN as string}:${process.env.PATH ?? ''}`,
      RPC_USER: 'oc',
      RPC_PASSWORD: password,
      DATA_DIR: dir,
      RPC_PORT: String(rpcPort),
      MINE_INTERVAL: '0',
      ...extra,
    },
  };
}

/** The stream writes grant.sh grants (besides connect,send,receive). */
export const GRANTED_WRITES = ['domains.write', 'obligations.write', 'settlements.write'] as const;

/**
 * Until node `n` itself lists `address`'s write permission on every stream:
 * the joiner's entrypoint reports "ready" once its node runs (connect is
 * granted first), and the stream-write grants may reach its node a block later.
 */
export async function grantedOn(n: MultichainContainer, address: string, timeoutMs = 60_000): Promise<void> {
  for (const kind of GRANTED_WRITES) {
    await until(`${kind} of ${address} on ${n.dir}`, async () => ((await containerRpc(n, 'listpermissions', [kind, address])) as unknown[]).length === 1, timeoutMs, 250);
  }
}
