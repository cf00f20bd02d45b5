import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError } from '../../core/errors.ts';
import { startScheduler } from '../../local/scheduler.ts';
import { waitFor } from './support.ts';

/** A promise the test opens when it wants. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

test('a job runs on its interval', async (t) => {
  let runs = 0;
  const s = startScheduler([{ name: 'watch', everyMs: 5, run: async () => void runs++ }]);
  t.after(() => s.stop());
  await waitFor(() => (runs >= 3 ? runs : undefined));
  assert.ok(s.stats.watch && s.stats.watch.runs >= 3);
});

test('a job never overlaps with itself: ticks during a run are skipped', async (t) => {
  let active = 0;
  let maxActive = 0;
  const g = gate();
  const s = startScheduler([
    {
      name: 'settle',
      everyMs: 5,
      run: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await g.wait;
        active--;
      },
    },
  ]);
  t.after(() => s.stop());
  await waitFor(() => ((s.stats.settle?.skipped ?? 0) >= 3 ? true : undefined));
  const joined = s.runNow('settle'); // joins the run under way instead of starting another
  assert.equal(active, 1);
  g.open();
  await joined;
  assert.equal(maxActive, 1);
});

test('runNow awaits one run; a failure is recorded, not thrown', async (t) => {
  let calls = 0;
  const logged: string[] = [];
  const s = startScheduler(
    [{ name: 'expire', everyMs: 60_000, run: async () => { calls++; throw new Error('ledger down'); } }],
    { log: (msg) => logged.push(msg) },
  );
  t.after(() => s.stop());
  await s.runNow('expire');
  assert.equal(calls, 1);
  assert.equal(s.stats.expire?.runs, 1);
  assert.equal(s.stats.expire?.failures, 1);
  assert.equal(s.stats.expire?.lastError, 'ledger down');
  assert.deepEqual(logged, ['scheduled job expire failed']);
  await assert.rejects(s.runNow('nope'), NotFoundError);
});

test('stop waits for the run under way and ends the schedule', async () => {
  const g = gate();
  let finished = false;
  let runs = 0;
  const s = startScheduler([
    {
      name: 'publish',
      everyMs: 5,
      run: async () => {
        runs++;
        await g.wait;
        finished = true;
      },
    },
  ]);
  void s.runNow('publish');
  let stopped = false;
  const stopping = s.stop().then(() => (stopped = true));
  await sleep(10);
  assert.equal(stopped, false, 'stop must wait for the run under way');
  g.open();
  await stopping;
  assert.equal(finished, true);
  const after = runs;
  await sleep(30); // several intervals: no timer may fire any more
  assert.equal(runs, after);
});
