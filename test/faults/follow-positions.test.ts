/**
 * The follower's cursor is a ledger position, and several items can share one
 * (MultiChainLedger hands out every item of a multi-item transaction at that
 * transaction's position): the cursor passes a position only once all its
 * items are handled, so a run stopped inside a transaction reads the whole
 * transaction again (handling is idempotent), and a finished run resumes after
 * the last position, not after as many positions as it read items.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UnavailableError } from '../../core/errors.ts';
import type { PositionedItem, StreamName } from '../../adapters/ports.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { cursorName, followLedger } from '../../service/follow.ts';

/** Domain-stream items (not valid records: each is skipped and counted invalid) at these positions; reading a `failing` one throws UnavailableError. */
function domainsAt(positions: number[], failing: Set<number>): PositionedItem[] {
  return positions.map((position, i) => {
    const item = { stream: 'domains' as const, keys: [`k${i}`], txid: `tx${position}`, publisher: 'hub', confirmations: 1, time: 0, position, data: { n: i } };
    if (!failing.has(i)) return item;
    return Object.defineProperty(item, 'keys', {
      get() {
        throw new UnavailableError('node went away mid-transaction');
      },
    });
  });
}

function deps(items: () => PositionedItem[]) {
  const cursors = new Map<string, string>();
  const reads: [number, number][] = [];
  const d = {
    ledger: {
      list: async (stream: StreamName, start = 0, count = Infinity) => {
        if (stream !== 'domains') return [];
        reads.push([start, count]);
        return items().filter((i) => i.position >= start && i.position < start + count);
      },
    },
    store: {
      getCursor: async (name: string) => cursors.get(name),
      putCursor: async (name: string, value: string) => void cursors.set(name, value),
      listClaims: async () => [],
    },
    directory: { remember: async () => assert.fail('no item here is a valid domain record') },
  } as unknown as Deps;
  return { deps: d, cursor: () => cursors.get(cursorName('domains')), reads };
}

describe('follower cursor over positions shared by several items', () => {
  // positions: 0, then a transaction of three items at 1, then 2
  const POSITIONS = [0, 1, 1, 1, 2];

  it('a run stopped inside a transaction keeps the cursor at that transaction; the next run reads all of it and ends after the last position', async () => {
    let failing = new Set([2]); // the second item at position 1
    const f = deps(() => domainsAt(POSITIONS, failing));
    const first = await followLedger(f.deps);
    assert.match(first.deferred ?? '', /mid-transaction/);
    assert.equal(first.invalid, 2, 'position 0, and the first item at position 1');
    assert.equal(f.cursor(), '1', 'position 1 is not finished');
    failing = new Set();
    const second = await followLedger(f.deps);
    assert.equal(second.deferred, undefined);
    assert.equal(second.invalid, 4, 'the three items at position 1 (again) and the one at 2');
    assert.equal(f.cursor(), '3', 'after the last position read, not start + items');
    const third = await followLedger(f.deps);
    assert.equal(third.invalid, 0);
    assert.deepEqual(f.reads.at(-1), [3, 500]);
    assert.equal(f.cursor(), '3');
  });

  it('a finished run over a transaction ends at its position + 1', async () => {
    const f = deps(() => domainsAt([0, 0, 0], new Set()));
    assert.equal((await followLedger(f.deps)).invalid, 3);
    assert.equal(f.cursor(), '1');
  });
});
