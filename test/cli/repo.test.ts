/**
 * Repository hygiene from issue 14: no tracked file is listed in .gitignore
 * (scripts/provision-fleet.sh was), and a suite skipped for a missing tool
 * (test/skippable.ts) is counted under `# skipped` in the runner's summary.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './support.ts';
import { skippable } from '../skippable.ts';

const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
const noGit = git.status === 0 && git.stdout.trim() === 'true' ? false : 'not a git work tree (or no git): nothing to check';

describe('repository', () => {
  const g = skippable(noGit);
  g.it('no tracked file is ignored by .gitignore', () => {
    const ignored = execFileSync('git', ['-C', ROOT, 'ls-files', '--cached', '--ignored', '--exclude-standard'], { encoding: 'utf8' }).trim();
    assert.equal(ignored, '', `tracked but ignored:\n${ignored}`);
    assert.match(execFileSync('git', ['-C', ROOT, 'ls-files', 'scripts/provision-fleet.sh'], { encoding: 'utf8' }), /provision-fleet\.sh/);
  });

  it('tests skipped for a missing tool are counted under # skipped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-skip-'));
    try {
      const file = join(dir, 'tool.test.ts');
      const skippableUrl = pathToFileURL(join(ROOT, 'test', 'skippable.ts')).href;
      await writeFile(
        file,
        `import { describe } from 'node:test';\nimport { skippable } from '${skippableUrl}';\n` +
          `const { it, before } = skippable('no such tool here');\n` +
          `describe('needs a tool', () => { before(() => { throw new Error('setup must not run'); }); it('a', () => {}); it('b', () => {}); });\n`,
      );
      // a runner inside a runner reports to its parent unless NODE_TEST_CONTEXT is dropped
      const { NODE_TEST_CONTEXT: _ctx, ...env } = process.env;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { cwd: ROOT, encoding: 'utf8', env: { ...env, NODE_OPTIONS: '' } });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^# tests 2$/m);
      assert.match(r.stdout, /^# skipped 2$/m);
      assert.match(r.stdout, /# SKIP no such tool here/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
