/**
 * local/threads.ts, the link to a stand-in in a worker thread of its own
 * (the embedded DynamoDB and regtest node use it), on a small echo worker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import { startThread } from '../../local/threads.ts';

const entry = new URL('../fixtures/thread-echo.ts', import.meta.url);
const ended = (why: string) => new UnavailableError(`the echo thread ${why}`);

describe('a stand-in in a worker thread', () => {
  it('is ready with what it announced, answers calls in any order, and types a failure as it was', async () => {
    const thread = await startThread<string>(entry, undefined, ended);
    try {
      assert.equal(thread.ready, 'echo-ready');
      assert.deepEqual(await Promise.all(['a', 'b', 'c'].map((b) => thread.call(b))), ['a', 'b', 'c']);
      await assert.rejects(thread.call('fail'), (e: Error) => !(e instanceof UnavailableError) && e.message === 'refused: fail');
      await assert.rejects(thread.call('unavailable'), (e: Error) => e instanceof UnavailableError && e.message === 'down');
    } finally {
      await thread.stop();
    }
  });

  it('stopped when asked: no report of a loss, and a later call fails with the error it was given', async () => {
    const losses: Error[] = [];
    const thread = await startThread<string>(entry, undefined, ended, (e) => losses.push(e));
    await thread.stop();
    await assert.rejects(thread.call('x'), (e: Error) => e instanceof UnavailableError && /is stopped/.test(e.message));
    assert.deepEqual(losses, []);
  });

  it('crashing on its own: reported once, and every call then fails instead of waiting forever', async () => {
    const losses: Error[] = [];
    const thread = await startThread<string>(entry, undefined, ended, (e) => losses.push(e));
    try {
      void thread.call('crash').catch(() => undefined);
      for (let i = 0; i < 200 && losses.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(losses.length, 1);
      assert.match(losses[0]!.message, /the echo thread failed: boom/);
      await assert.rejects(thread.call('after'), UnavailableError);
    } finally {
      await thread.stop();
    }
    assert.equal(losses.length, 1, 'stopping it afterwards reports nothing more');
  });
});
