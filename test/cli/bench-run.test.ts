/** `npm run bench`: a suite that fails is reported and the others' rows are kept (bench/run.ts runBench). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench } from '../../bench/run.ts';
import type { BenchSuite } from '../../bench/types.ts';

describe('npm run bench', () => {
  it('runs the suites after one that fails, prints and keeps their rows, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-bench-'));
    try {
      const resultsFile = join(dir, 'results.json');
      // rows of an earlier run: the failing suite's stay, the others' are replaced
      await writeFile(resultsFile, JSON.stringify({ rows: [{ suite: 'b', name: 'old b row', value: 1, unit: 'x' }, { suite: 'c', name: 'old c row', value: 1, unit: 'x' }] }));
      const suites: BenchSuite[] = [
        { name: 'a', run: async () => [{ name: 'a row', value: 1, unit: 'x' }] },
        { name: 'b', run: async () => { throw new Error('timed out waiting for multichaind\nsecond line'); } },
        { name: 'c', run: async () => [{ name: 'c row', value: 2, unit: 'x' }] },
      ];
      const out: string[] = [];
      const progress: string[] = [];
      const code = await runBench(suites, undefined, { resultsFile, out: (l) => out.push(l), progress: (t) => progress.push(t) });
      assert.equal(code, 1);
      const text = out.join('\n');
      assert.match(text, /a row/);
      assert.match(text, /c row/);
      assert.match(text, /1 suite\(s\) failed \(their rows are missing above\): b: timed out waiting for multichaind$/m);
      assert.ok(!text.includes('second line'), 'one line per failure');
      assert.match(progress.join(''), /running b… FAILED after [\d.]+ s: timed out/);
      const saved = JSON.parse(await readFile(resultsFile, 'utf8')) as { rows: { suite: string; name: string }[] };
      assert.deepEqual(saved.rows.map((r) => `${r.suite}/${r.name}`).sort(), ['a/a row', 'b/old b row', 'c/c row']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 0 when every suite ran', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-bench-'));
    try {
      const code = await runBench([{ name: 'a', run: async () => [{ name: 'a row', value: 1, unit: 'x', target: '≤ 0', ok: false }] }], undefined, {
        resultsFile: join(dir, 'results.json'),
        out: () => {},
        progress: () => {},
      });
      assert.equal(code, 0, 'a missed target is reported, not an error');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
