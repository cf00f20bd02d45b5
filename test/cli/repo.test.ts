/**
 * Repository hygiene from issue 14: no tracked file is listed in .gitignore
 * (scripts/provision-fleet.sh was), and a suite skipped for a missing tool
 * (test/skippable.ts) is counted under `# skipped` in the runner's summary.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './support.ts';
import { skippable } from '../skippable.ts';

const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
const noGit = git.status === 0 && git.stdout.trim() === 'true' ? false : 'not a git work tree (or no git): nothing to check';

/**
 * Where the code blocks of `markdown` look wrong: a fence that opens a block right after a
 * line of text, or closes one right before a line of text, or a block never closed. A block
 * left open swallows the prose after it and pairs with the next block's opening fence, so the
 * fences still balance: this catches that (the README's run outputs lost their closing fences once).
 */
export function fenceProblems(markdown: string): string[] {
  const lines = markdown.split('\n');
  const problems: string[] = [];
  let open = -1;
  lines.forEach((line, i) => {
    if (!/^\s{0,3}```/.test(line)) return;
    if (open < 0) {
      if (i > 0 && lines[i - 1]?.trim() !== '') problems.push(`line ${i + 1}: a block opens right after text`);
      open = i;
    } else {
      if (i + 1 < lines.length && lines[i + 1]?.trim() !== '') problems.push(`line ${i + 1}: a block closes right before text (its own closing fence missing?)`);
      open = -1;
    }
  });
  if (open >= 0) problems.push(`line ${open + 1}: a block never closed`);
  return problems;
}

describe('repository', () => {
  const g = skippable(noGit);

  it('every code block of the README and docs/ is closed (an open one swallows the prose after it)', async () => {
    const files = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    for (const f of files) assert.deepEqual(fenceProblems(await readFile(join(ROOT, f), 'utf8')), [], f);
    // the README as it was: two run outputs without their closing fences
    const broken = 'ended with:\n\n```\nsummary\n  ✔ ok\n\nprose\nended with:\n\n```\nsummary 2\n  ✔ ok\n\nmore prose\n\n```sh\nnpm ci\n```\n';
    assert.deepEqual(fenceProblems(broken), ['line 10: a block closes right before text (its own closing fence missing?)']);
    assert.deepEqual(fenceProblems('text\n```\nx\n```\n'), ['line 2: a block opens right after text']);
    assert.deepEqual(fenceProblems('a\n\n```\nx\n```\n\nb\n\n```\ny'), ['line 9: a block never closed']);
  });

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
