/**
 * The embedded cloud loads the X-Ray SDK (through Powertools' Tracer) in manual
 * mode: tracing is off outside Lambda, and automatic mode would install a
 * cls-hooked namespace — an async_hooks hook with a destroy callback that every
 * promise of the process pays for (local/powertools-env.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('loading the embedded cloud creates no X-Ray context namespace (no async destroy hook)', async () => {
  await import('../../local/cloud.ts');
  const namespaces = (process as { namespaces?: Record<string, unknown> }).namespaces ?? {};
  assert.deepEqual(Object.keys(namespaces), [], 'the X-Ray SDK runs in manual mode');
});
