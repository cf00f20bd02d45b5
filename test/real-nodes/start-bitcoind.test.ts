/**
 * `npm start -- --bitcoind URL` against a real regtest bitcoind (Bitcoin Core
 * from OC_NODES_BIN, started by the harness): the embedded cloud pays through
 * the real node by configuration alone. Its faucet and miner use the node
 * (generatetoaddress to bcrt1 addresses; the in-process bcoin would answer
 * "Non-base58 character"). The default scenario must end with every check
 * ticking, and every settlement confirmed on the real node, paying the
 * providers exactly what the fulfilled obligations owed. Run twice with
 * --data (the node's wallets keep the first run's payments), the second run's
 * --json summary counts its own. A bad URL or wrong credentials are a one-line
 * user error (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Bitcoind, missingNodes } from './harness.ts';

const skip = missingNodes(['bitcoind']);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `npm start` with `args`, as a user runs it: its exit code and everything it printed. */
function start(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out })));
}

/** The smallest scenario: one consumer domain that pays, one device, one provider, two rounds. */
const SMALLEST = ['--consumers', '1', '--devices', '1', '--providers', '1', '--rounds', '2', '--defaulters', '0'];

interface Tx {
  txid: string;
  category: string;
  amount: number;
  confirmations: number;
}

describe('npm start --bitcoind on a real regtest bitcoind', { skip, timeout: 600_000 }, () => {
  let node: Bitcoind;
  let dir: string;
  before(async () => {
    node = await Bitcoind.start();
    dir = await mkdtemp(join(tmpdir(), 'oc-start-btc-'));
  });
  after(async () => {
    await node?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const url = () => `http://${node.endpoint.username}:${node.endpoint.password}@${node.endpoint.host}:${node.endpoint.port}`;

  it('refuses a bad URL and wrong credentials in one line, exit 2', () => {
    const run = (arg: string) => spawnSync(process.execPath, ['--import', 'tsx', 'local/start.ts', '--bitcoind', arg], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const bad = run('not a url');
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /^npm start: --bitcoind must be a URL/);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    const wrong = run(`http://${node.endpoint.username}:wrong@${node.endpoint.host}:${node.endpoint.port}`);
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, /refused the credentials \(HTTP 401\)/);
  });

  it('the default scenario ends with every check ticking and every payment confirmed on the node', async () => {
    const json = join(dir, 'summary.json');
    const { code, out } = await start(['--bitcoind', url(), '--json', json]);
    assert.equal(code, 0, out.slice(-3000));
    assert.match(out, /bitcoind regtest at 127\.0\.0\.1:/);
    const checks = out.split('\n').filter((l) => /^\s+[✔✘]/.test(l));
    assert.ok(checks.length >= 4, out.slice(-2000));
    assert.deepEqual(checks.filter((l) => l.includes('✘')), []);

    const summary = JSON.parse(await readFile(json, 'utf8')) as {
      ok: boolean;
      open: number;
      owedFulfilledSats: number;
      domains: { domain: string; pays: boolean; fulfilled: number; settlements: number; settledSats: number; owedFulfilledSats: number }[];
    };
    assert.equal(summary.ok, true);
    assert.equal(summary.open, 0);
    const payers = summary.domains.filter((d) => d.pays);
    assert.ok(payers.length > 0 && payers.every((d) => d.fulfilled > 0 && d.settledSats === d.owedFulfilledSats));

    // behind the cloud: the node itself holds the settlements, confirmed, in the hubs' wallets
    const wallets = await node.rpc<string[]>('listwallets');
    for (const d of payers) {
      assert.ok(wallets.includes(`oc-${d.domain}`), `wallet oc-${d.domain} on the node`);
      const sends = (await node.rpc<Tx[]>('listtransactions', ['*', 1000], `oc-${d.domain}`)).filter((t) => t.category === 'send');
      const txids = new Set(sends.map((t) => t.txid));
      assert.equal(txids.size, d.settlements, `${d.domain}: one transaction per settlement`);
      for (const t of sends) assert.ok(t.confirmations >= 1, `${d.domain} ${t.txid} confirmed`);
    }
    let received = 0;
    for (const w of wallets.filter((n) => /^oc-p\d+$/.test(n))) {
      for (const t of await node.rpc<Tx[]>('listtransactions', ['*', 1000], w)) {
        if (t.category === 'receive' && t.confirmations >= 1) received += Math.round(t.amount * 1e8);
      }
    }
    assert.equal(received, summary.owedFulfilledSats, 'the providers received on the node exactly what the fulfilled obligations owed');
  });

  it('run twice with --data on the same node, each --json summary counts its own run', async () => {
    const data = await mkdtemp(join(dir, 'data-'));
    const run = async (name: string) => {
      const json = join(dir, name);
      const { code, out } = await start(['--bitcoind', url(), '--data', data, '--json', json, ...SMALLEST]);
      assert.equal(code, 0, out.slice(-3000));
      return JSON.parse(await readFile(json, 'utf8')) as {
        ok: boolean;
        providersReceivedSats: number;
        owedFulfilledSats: number;
        domains: { domain: string; accepted: number; fulfilled: number; settledSats: number; owedFulfilledSats: number }[];
      };
    };
    for (const summary of [await run('first.json'), await run('second.json')]) {
      assert.equal(summary.ok, true);
      const c1 = summary.domains.find((d) => d.domain === 'c1')!;
      assert.equal(c1.accepted, 2, JSON.stringify(summary));
      assert.equal(c1.fulfilled, 2, JSON.stringify(summary));
      assert.equal(c1.settledSats, c1.owedFulfilledSats, JSON.stringify(summary));
      assert.equal(summary.providersReceivedSats, summary.owedFulfilledSats, JSON.stringify(summary));
    }
  });
});
