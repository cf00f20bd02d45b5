/**
 * `npm start` (local/start.ts) with its ledger on a real MultiChain node:
 * `--multichain http://user:password@host:port/chain`, and the same through
 * the environment (LEDGER_KIND=multichain, MULTICHAIN_RPC_URL, …), which the
 * embedded cloud used to overwrite with its embedded ledger. The scenario must
 * end with every check ticking (exit 0, `ok` in --json), and its items must be
 * on the real node's streams, published from the node's own address.
 *
 * Skipped, saying why, without OC_NODES_BIN.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skippable } from '../skippable.ts';
import { MULTICHAIN_BINARIES, MultiChain, missingNodes } from './harness.ts';

const { it, before, after } = skippable(missingNodes(MULTICHAIN_BINARIES));
const START = fileURLToPath(new URL('../../local/start.ts', import.meta.url));

/** Run npm start's program; its exit code and output. */
function npmStart(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', START, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')));
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('npm start on a real MultiChain node', () => {
  let chain: MultiChain;
  let dir: string;
  before(async () => {
    // no streams yet: the hub's ensureStreams creates them on the node it runs on (the chain's creator)
    chain = await MultiChain.start({ nodes: 1, streams: [] });
    dir = await mkdtemp(join(tmpdir(), 'oc-start-mc-'));
  });
  after(async () => {
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const itemsOnNode = async () => {
    const node = chain.node(0);
    const streams = await node.rpc<{ name: string; items: number }[]>('liststreams');
    return streams.find((s) => s.name === 'obligations')?.items ?? 0;
  };
  const scenario = ['--consumers', '2', '--devices', '2', '--providers', '1', '--rounds', '4', '--defaulters', '0.5'];

  it('--multichain URL: every check ticks, and the obligations are on the real node from its own address', async () => {
    const node = chain.node(0);
    const url = `http://${node.endpoint.username}:${node.endpoint.password}@127.0.0.1:${node.rpcPort}/${chain.name}`;
    const json = join(dir, 'flag.json');
    const run = await npmStart([...scenario, '--multichain', url, '--json', json]);
    assert.equal(run.code, 0, run.output.slice(-3000));
    assert.match(run.output, new RegExp(`ledger +MultiChain node http://127\\.0\\.0\\.1:${node.rpcPort}/ chain ${chain.name}`));
    assert.equal((JSON.parse(await readFile(json, 'utf8')) as { ok: boolean }).ok, true);
    const items = await itemsOnNode();
    assert.ok(items > 0, 'obligations on the real node');
    const listed = await node.rpc<{ publishers: string[] }[]>('liststreamitems', ['obligations', false, 1000]);
    assert.ok(listed.every((i) => i.publishers[0] === node.address));
  });

  it('LEDGER_KIND=multichain with MULTICHAIN_RPC_URL… in the environment does the same (no longer overwritten)', async () => {
    // a chain of its own: npm start's fleet has fixed domain names, already on the first chain with other keys
    await chain.stop();
    chain = await MultiChain.start({ nodes: 1, streams: [] });
    const node = chain.node(0);
    const before = await itemsOnNode();
    const json = join(dir, 'env.json');
    const run = await npmStart([...scenario, '--seed', '11', '--json', json], {
      LEDGER_KIND: 'multichain',
      MULTICHAIN_RPC_URL: `http://127.0.0.1:${node.rpcPort}/`,
      MULTICHAIN_CHAIN_NAME: chain.name,
      MULTICHAIN_RPC_USER: node.endpoint.username,
      MULTICHAIN_RPC_PASSWORD: node.endpoint.password,
    });
    assert.equal(run.code, 0, run.output.slice(-3000));
    assert.equal((JSON.parse(await readFile(json, 'utf8')) as { ok: boolean }).ok, true);
    assert.ok((await itemsOnNode()) > before, 'this run\'s obligations reached the real node');
  });
});
