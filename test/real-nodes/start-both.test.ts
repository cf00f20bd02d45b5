/**
 * `npm start -- --bitcoind URL --multichain URL` in one run: the embedded
 * cloud on a real regtest bitcoind (wallets, faucet, miner) and a real
 * MultiChain node (the ledger) at once, by configuration alone. The default
 * scenario must end with every check ticking (exit 0, `ok` in --json), its
 * obligations and settlement records on the node's streams from the node's
 * own address, and every settlement confirmed on bitcoind.
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
import { BITCOIN_BINARIES, Bitcoind, MULTICHAIN_BINARIES, MultiChain, missingNodes } from './harness.ts';

const { it, before, after } = skippable(missingNodes([...BITCOIN_BINARIES, ...MULTICHAIN_BINARIES]));
const START = fileURLToPath(new URL('../../local/start.ts', import.meta.url));

interface Tx {
  txid: string;
  category: string;
  confirmations: number;
}

describe('npm start --bitcoind URL --multichain URL on real nodes, in one run', () => {
  let bitcoind: Bitcoind;
  let chain: MultiChain;
  let dir: string;
  before(async () => {
    bitcoind = await Bitcoind.start();
    chain = await MultiChain.start({ nodes: 1, streams: [] });
    dir = await mkdtemp(join(tmpdir(), 'oc-start-both-'));
  });
  after(async () => {
    await chain?.stop();
    await bitcoind?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the default scenario ends with every check ticking; records on the MultiChain node, payments confirmed on bitcoind', async () => {
    const node = chain.node(0);
    const b = bitcoind.endpoint;
    const json = join(dir, 'summary.json');
    const args = [
      '--bitcoind',
      `http://${b.username}:${b.password}@${b.host}:${b.port}`,
      '--multichain',
      `http://${node.endpoint.username}:${node.endpoint.password}@127.0.0.1:${node.rpcPort}/${chain.name}`,
      '--json',
      json,
    ];
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', START, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.once('close', (code) => resolve({ code, output }));
    });
    assert.equal(run.code, 0, run.output.slice(-3000));
    assert.match(run.output, /embedded cloud \(dynalite, aedes, bitcoind regtest at 127\.0\.0\.1:\d+, MultiChain ledger/);
    assert.match(run.output, new RegExp(`ledger +MultiChain node http://127\\.0\\.0\\.1:${node.rpcPort}/ chain ${chain.name}`));
    const checks = run.output.split('\n').filter((l) => /^\s+[✔✘]/.test(l));
    assert.ok(checks.length >= 4, run.output.slice(-2000));
    assert.deepEqual(checks.filter((l) => l.includes('✘')), []);

    const summary = JSON.parse(await readFile(json, 'utf8')) as {
      ok: boolean;
      open: number;
      domains: { domain: string; pays: boolean; fulfilled: number; settlements: number; settledSats: number; owedFulfilledSats: number }[];
    };
    assert.equal(summary.ok, true);
    assert.equal(summary.open, 0);
    const payers = summary.domains.filter((d) => d.pays);
    assert.ok(payers.length > 0 && payers.every((d) => d.fulfilled > 0 && d.settledSats === d.owedFulfilledSats), JSON.stringify(summary.domains));

    // the ledger is the real MultiChain node, written from its own address
    const streams = await node.rpc<{ name: string; items: number }[]>('liststreams');
    for (const s of ['domains', 'obligations', 'settlements']) assert.ok((streams.find((x) => x.name === s)?.items ?? 0) > 0, `items in ${s}`);
    const listed = await node.rpc<{ publishers: string[] }[]>('liststreamitems', ['settlements', false, 1000]);
    assert.ok(listed.length > 0 && listed.every((i) => i.publishers[0] === node.address));

    // the payments are on the real bitcoind, confirmed
    for (const d of payers) {
      const sends = (await bitcoind.rpc<Tx[]>('listtransactions', ['*', 1000], `oc-${d.domain}`)).filter((t) => t.category === 'send');
      assert.equal(new Set(sends.map((t) => t.txid)).size, d.settlements, `${d.domain}: one transaction per settlement`);
      for (const t of sends) assert.ok(t.confirmations >= 1, `${d.domain} ${t.txid} confirmed`);
    }
  });
});
