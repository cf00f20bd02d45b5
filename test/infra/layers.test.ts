/**
 * Layers point down only (STYLE 11, README Architecture): every import of every
 * source file, static, type-only or dynamic, resolved to the top-level folder it
 * reaches, checked against what that layer may know about.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../cli/support.ts';

/** Project folders a layer must never import from (packages and node: builtins are checked apart). */
const FORBIDDEN: Record<string, readonly string[]> = {
  core: ['adapters', 'service', 'functions', 'local', 'devices', 'cli', 'lib', 'bin', 'bench', 'scripts', 'soak'],
  adapters: ['service', 'functions', 'local', 'devices', 'cli', 'lib', 'bin', 'bench', 'scripts', 'soak'],
  service: ['functions', 'local', 'devices', 'cli', 'lib', 'bin', 'bench', 'scripts', 'soak'],
  // device code never loads the embedded cloud or the back-end's wiring
  devices: ['adapters', 'functions', 'local', 'lib', 'bin', 'bench', 'scripts', 'soak'],
  functions: ['local', 'devices', 'cli', 'lib', 'bin', 'bench', 'scripts', 'soak'],
};

/** The pure core loads nothing but node:crypto. */
const CORE_PACKAGES = new Set(['node:crypto']);

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'web' ? [] : sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every import of every file of `layer`: the file, the specifier, and the top-level folder it reaches (undefined: a package). */
function importsOf(layer: string): { file: string; spec: string; reaches: string | undefined }[] {
  return sources(join(ROOT, layer)).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => {
      const spec = m[1] as string;
      const reaches = spec.startsWith('.') ? relative(ROOT, resolve(dirname(file), spec)).split('/')[0] : undefined;
      return { file: relative(ROOT, file), spec, reaches };
    }),
  );
}

describe('layers point down only', () => {
  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    it(`${layer}/ imports nothing from ${forbidden.join(', ')}`, () => {
      const found = importsOf(layer);
      assert.ok(found.length > 10, `read ${found.length} imports of ${layer}/`);
      const bad = found.filter((i) => i.reaches !== undefined && forbidden.includes(i.reaches));
      assert.deepEqual(bad.map((i) => `${i.file}: ${i.spec}`), []);
    });
  }

  it('core/ loads no package but node:crypto', () => {
    const packages = importsOf('core').filter((i) => i.reaches === undefined);
    assert.deepEqual([...new Set(packages.map((i) => i.spec))].filter((p) => !CORE_PACKAGES.has(p)), []);
  });
});
