/**
 * `npm start -- --data DIR` can be run again and again: the devices keep their
 * keys and chains in DIR (no F04_REPLAY against the table that remembers
 * them), providers' payment addresses stay in their (re-created) wallets, and
 * each run's summary counts its own obligations, with totals over every run
 * shown apart, and so does its --json summary (its obligations, the settlements
 * naming them, what the providers received since it began). Runs the real entry
 * point twice, as a user would, on the smallest scenario.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ARGS = ['--consumers', '1', '--devices', '1', '--providers', '1', '--rounds', '2', '--defaulters', '0'];

function start(dir: string, json: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts', '--data', dir, '--json', json, ...ARGS], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** The summary row of consumer domain c1: accepted, refused, fulfilled, defaulted. */
function row(out: string): number[] {
  const line = out.split('\n').find((l) => /^c1 +yes /.test(l));
  assert.ok(line, out);
  const cells = line.trim().split(/\s+/);
  return [cells[6], cells[7], cells[8], cells[9]].map(Number);
}

describe('npm start -- --data DIR, run twice', () => {
  let dir: string;
  let jsonDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-rerun-'));
    jsonDir = await mkdtemp(join(tmpdir(), 'oc-rerun-json-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (jsonDir) await rm(jsonDir, { recursive: true, force: true });
  });
  type Summary = {
    ok: boolean;
    domains: { domain: string; accepted: number; fulfilled: number; settlements: number; owedFulfilledSats: number; settledSats: number }[];
    providersReceivedSats: number;
    owedFulfilledSats: number;
  };
  const summary = async (name: string) => JSON.parse(await readFile(join(jsonDir, name), 'utf8')) as Summary;

  it('the second run accepts everything again, and its summary counts its own obligations', async () => {
    const first = await start(dir, join(jsonDir, 'first.json'));
    assert.equal(first.code, 0, first.out);
    assert.deepEqual(row(first.out), [2, 0, 2, 0], 'accepted, refused, fulfilled, defaulted');
    assert.doesNotMatch(first.out, /over every run/);
    assert.deepEqual((await readdir(join(dir, 'devices'))).filter((f) => f.startsWith('c1-scd-1')).sort(), ['c1-scd-1.chain.json', 'c1-scd-1.key.json']);

    const second = await start(dir, join(jsonDir, 'second.json'));
    assert.equal(second.code, 0, second.out);
    assert.doesNotMatch(second.out, /F04_REPLAY/);
    assert.deepEqual(row(second.out), [2, 0, 2, 0], 'this run only');
    assert.match(second.out, /c1 +obligations 4, fulfilled 4, defaulted 0/, 'totals over both runs, apart');
    assert.match(second.out, /✔ every accepted obligation ended fulfilled or defaulted \(2\/2, 0 open\)/);

    // --json: each run's own figures, the second's no larger than the first's
    const [a, b] = [await summary('first.json'), await summary('second.json')];
    for (const run of [a, b]) {
      assert.ok(run.ok);
      const c1 = run.domains.find((d) => d.domain === 'c1')!;
      assert.equal(c1.accepted, 2, JSON.stringify(run));
      assert.equal(c1.fulfilled, 2, JSON.stringify(run));
      assert.ok(c1.settlements >= 1, JSON.stringify(run));
      assert.ok(c1.owedFulfilledSats > 0 && c1.settledSats === c1.owedFulfilledSats, JSON.stringify(run));
      assert.equal(run.providersReceivedSats, run.owedFulfilledSats, JSON.stringify(run));
    }
  });
});
