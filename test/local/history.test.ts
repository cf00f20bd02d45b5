/** The run's history for the live page (local/history.ts): kept from the start, thinned and never cut. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RunHistory, thin } from '../../local/history.ts';

describe('run history', () => {
  it('thin halves a series until it fits, keeping the first and the last point', () => {
    const points = Array.from({ length: 1_001 }, (_, i) => i);
    const out = thin(points, 300);
    assert.ok(out.length <= 300 && out.length > 150, `${out.length}`);
    assert.equal(out[0], 0);
    assert.equal(out[out.length - 1], 1_000);
    assert.deepEqual(out, [...out].sort((a, b) => a - b), 'still in order');
    assert.deepEqual(thin([1, 2, 3], 5), [1, 2, 3], 'a short series is kept as is');
  });

  it('keeps the start of a long run (bounded), and answers only what is new after `since`', () => {
    const h = new RunHistory(1_000, 100, 0);
    for (let t = 1; t <= 1_000; t++) h.record(t, [{ domain: 'c1', reputation: t <= 10 ? 0.5 : 0.2 }]);
    const all = h.seriesSince().c1 ?? [];
    assert.ok(all.length <= 100, `bounded: ${all.length}`);
    assert.deepEqual(all[0], [1, 0.5], 'the first sample of the run is still there');
    assert.deepEqual(all[all.length - 1], [1_000, 0.2]);
    const recent = h.seriesSince(990).c1 ?? [];
    assert.ok(recent.every(([t]) => t > 990) && recent.length > 0);
    assert.deepEqual(h.seriesSince(1_000), { c1: [] });
  });
});
