/**
 * FileChainStore (devices/scd.ts) saves atomically: write a temporary file,
 * flush, rename over. A reader never sees a torn state, concurrent saves
 * leave one whole state, and a failed save leaves no temporary behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileChainStore } from '../../devices/scd.ts';
import { GENESIS } from '../../core/types.ts';

const state = (seq: number) => ({ seq, id: String(seq).padStart(64, '0') });

describe('FileChainStore', () => {
  it('starts at genesis, then loads what it saved', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-chain-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const store = FileChainStore.forDevice(join(dir, 'nested'), 'dev-1');
    assert.deepEqual(await store.load(), { seq: 0, id: GENESIS });
    await store.save(state(3));
    assert.deepEqual(await store.load(), state(3));
  });

  it('50 saves at once, each read back whole while they run: one complete state, no temporary left', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-chain-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const store = FileChainStore.forDevice(dir, 'dev-2');
    await store.save(state(1));
    const reads: Promise<unknown>[] = [];
    const saves = Array.from({ length: 50 }, (_, i) => {
      reads.push(readFile(join(dir, 'dev-2.chain.json'), 'utf8').then((text) => JSON.parse(text) as unknown));
      return store.save(state(i + 2));
    });
    await Promise.all(saves);
    for (const r of await Promise.all(reads)) assert.equal((r as { id: string }).id.length, 64, 'never torn');
    const last = await store.load();
    assert.ok(last.seq >= 2 && last.seq <= 51);
    assert.deepEqual(last, state(last.seq));
    assert.deepEqual(await readdir(dir), ['dev-2.chain.json']);
  });

  it('a save that cannot replace the file fails and leaves no temporary behind', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'oc-chain-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'dev-3.chain.json', 'in-the-way'), { recursive: true }); // a non-empty directory where the file goes
    await assert.rejects(FileChainStore.forDevice(dir, 'dev-3').save(state(1)));
    assert.deepEqual(await readdir(dir), ['dev-3.chain.json']);
  });
});
