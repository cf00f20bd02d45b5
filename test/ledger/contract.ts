/**
 * The Ledger contract: behaviour every Ledger adapter must show. Run it from an
 * adapter's test file with a factory that returns a fresh, empty ledger.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Ledger, PublishEntry, StreamName } from '../../adapters/ports.ts';
import { STREAMS } from '../../adapters/ports.ts';
import { MalformedError, NotFoundError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';

export interface LedgerFixture {
  ledger: Ledger;
  /** Release servers, files, etc. Called after each test. */
  cleanup?: () => Promise<void>;
}

export function ledgerContract(name: string, makeLedger: () => Promise<LedgerFixture>): void {
  /** A fresh ledger for one test, cleaned up by the test context. */
  async function fresh(t: { after: (fn: () => Promise<void>) => void }, ensure = true): Promise<Ledger> {
    const { ledger, cleanup } = await makeLedger();
    t.after(async () => {
      await ledger.close();
      await cleanup?.();
    });
    if (ensure) await ledger.ensureStreams();
    return ledger;
  }

  const id = (n: number) => n.toString(16).padStart(64, 'a');

  describe(`Ledger contract: ${name}`, () => {
    it('ensureStreams creates every stream and is idempotent', async (t) => {
      const ledger = await fresh(t);
      await ledger.ensureStreams();
      for (const stream of STREAMS) assert.deepEqual(await ledger.list(stream), []);
    });

    it('publishing before the stream exists throws NotFoundError', async (t) => {
      const ledger = await fresh(t, false);
      await assert.rejects(ledger.publish('obligations', id(1), [], { a: 1 }), NotFoundError);
      await assert.rejects(ledger.listByKey('obligations', id(1)), NotFoundError);
    });

    it('publishes an item under id first, then its keys, and reads it back by each key', async (t) => {
      const ledger = await fresh(t);
      const data: Json = { amount: 1500, nested: { list: [1, 'two', null, true] }, text: 'héllo ✓' };
      const res = await ledger.publish('obligations', id(1), ['sp.example', 'sc.example'], data);
      assert.equal(res.duplicate, false);
      assert.match(res.txid, /^[0-9a-f]{64}$/);
      for (const key of [id(1), 'sp.example', 'sc.example']) {
        const items = await ledger.listByKey('obligations', key);
        assert.equal(items.length, 1, `by key ${key}`);
        const item = items[0]!;
        assert.equal(item.txid, res.txid);
        assert.equal(item.stream, 'obligations');
        assert.deepEqual(item.keys, [id(1), 'sp.example', 'sc.example']);
        assert.deepEqual(item.data, data);
        assert.ok(item.publisher.length > 0);
        assert.ok(item.confirmations >= 0);
        assert.ok(item.time > 0);
      }
      assert.deepEqual(await ledger.listByKey('obligations', 'nobody'), []);
      assert.deepEqual(await ledger.list('domains'), [], 'other streams are untouched');
    });

    it('re-publishing our own item (same id, canonically equal data) is a duplicate and writes nothing', async (t) => {
      const ledger = await fresh(t);
      const first = await ledger.publish('obligations', id(2), ['sp.example'], { v: 1, w: { b: 2, a: 1 } });
      const again = await ledger.publish('obligations', id(2), ['other'], { w: { a: 1, b: 2 }, v: 1 });
      assert.deepEqual(again, { txid: first.txid, duplicate: true });
      const all = await ledger.list('obligations');
      assert.equal(all.length, 1);
      assert.deepEqual(await ledger.listByKey('obligations', 'other'), []);
    });

    it('the same id with other data is written anyway (readers dedupe; an item under our id must not hide ours)', async (t) => {
      const ledger = await fresh(t);
      const first = await ledger.publish('obligations', id(5), ['sp.example'], { v: 1 });
      const other = await ledger.publish('obligations', id(5), ['sp.example'], { v: 2 });
      assert.equal(other.duplicate, false);
      assert.notEqual(other.txid, first.txid);
      assert.deepEqual((await ledger.listByKey('obligations', id(5))).map((i) => i.data), [{ v: 1 }, { v: 2 }]);
      assert.equal((await ledger.publish('obligations', id(5), [], { v: 2 })).duplicate, true, 'either of ours is ours');
    });

    it('the same id on another stream is a different item', async (t) => {
      const ledger = await fresh(t);
      const a = await ledger.publish('obligations', id(3), [], 1);
      const b = await ledger.publish('settlements', id(3), [], 2);
      assert.equal(b.duplicate, false);
      assert.notEqual(a.txid, b.txid);
    });

    it('listByKey returns items oldest first', async (t) => {
      const ledger = await fresh(t);
      const txids: string[] = [];
      for (let i = 0; i < 5; i += 1) txids.push((await ledger.publish('obligations', id(10 + i), ['sp.example'], i)).txid);
      await ledger.publish('obligations', id(99), ['someone-else'], 'x');
      const items = await ledger.listByKey('obligations', 'sp.example');
      assert.deepEqual(items.map((i) => i.txid), txids);
      assert.deepEqual(items.map((i) => i.data), [0, 1, 2, 3, 4]);
    });

    it('listByKeyFrom pages one key from a position, and a cursor at the end reads nothing', async (t) => {
      const ledger = await fresh(t);
      for (let i = 0; i < 7; i += 1) {
        await ledger.publish('settlements', id(40 + i), ['sp.cursor'], i);
        await ledger.publish('settlements', id(60 + i), ['other.key'], -i);
      }
      const data = async (start: number, count?: number) => (await ledger.listByKeyFrom('settlements', 'sp.cursor', start, count)).map((i) => i.data);
      assert.deepEqual(await data(0), [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await data(2, 3), [2, 3, 4]);
      assert.deepEqual(await data(7), []);
      assert.deepEqual(await data(100, 5), []);
      assert.deepEqual((await ledger.listByKeyFrom('settlements', 'sp.cursor', 2, 3)).map((i) => i.position), [2, 3, 4], 'one item per position here');
      await assert.rejects(ledger.listByKeyFrom('settlements', 'sp.cursor', -1));
    });

    it('list pages with start and count', async (t) => {
      const ledger = await fresh(t);
      for (let i = 0; i < 7; i += 1) await ledger.publish('settlements', id(20 + i), [], i);
      const data = async (start?: number, count?: number) => (await ledger.list('settlements', start, count)).map((i) => i.data);
      assert.deepEqual(await data(), [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await data(2), [2, 3, 4, 5, 6]);
      assert.deepEqual(await data(2, 3), [2, 3, 4]);
      assert.deepEqual(await data(6, 10), [6]);
      assert.deepEqual(await data(7, 3), []);
      assert.deepEqual(await data(0, 0), []);
      assert.deepEqual((await ledger.list('settlements', 2, 3)).map((i) => i.position), [2, 3, 4], 'one item per position here');
    });

    it('rejects malformed input with MalformedError', async (t) => {
      const ledger = await fresh(t);
      await assert.rejects(ledger.publish('obligations', '', [], 1), MalformedError);
      await assert.rejects(ledger.publish('obligations', id(4), [''], 1), MalformedError);
      await assert.rejects(ledger.publish('obligations', id(4), ['k'.repeat(257)], 1), MalformedError);
      await assert.rejects(ledger.publish('obligations', id(4), [], { n: Number.NaN } as unknown as Json), MalformedError);
      await assert.rejects(ledger.list('obligations', -1), MalformedError);
      await assert.rejects(ledger.list('obligations', 0, 1.5), MalformedError);
      assert.deepEqual(await ledger.list('obligations'), [], 'nothing was written');
    });

    it('refuses a list start above 2^31-1 (MultiChain reads it as a 32-bit integer and wraps), accepts 2^31-1', async (t) => {
      const ledger = await fresh(t);
      await ledger.publish('settlements', id(40), ['k:wrap'], 1);
      for (const start of [2 ** 31, 2 ** 32, 2 ** 32 + 1]) {
        await assert.rejects(ledger.list('settlements', start), (e: unknown) => e instanceof MalformedError && /2\^31-1/.test(e.message), `list from ${start}`);
        await assert.rejects(ledger.listByKeyFrom('settlements', 'k:wrap', start), MalformedError, `listByKeyFrom ${start}`);
      }
      assert.deepEqual(await ledger.list('settlements', 2 ** 31 - 1), []);
      assert.deepEqual(await ledger.listByKeyFrom('settlements', 'k:wrap', 2 ** 31 - 1), []);
    });

    it('publishBatch gives, entry by entry, what publish one after another gives', async (t) => {
      const ledger = await fresh(t);
      const before = await ledger.publish('obligations', id(50), ['k:batch'], { n: 0 });
      const entries: PublishEntry[] = [
        { id: id(50), keys: ['k:batch'], data: { n: 0 } }, // already ours: duplicate
        { id: id(51), keys: ['k:batch'], data: { n: 1, m: [1, 2] } },
        { id: '', keys: [], data: 1 }, // malformed: this entry only
        { id: id(52), keys: ['k:batch', 'k:other'], data: { n: 2 } },
        { id: id(51), keys: ['k:batch'], data: { m: [1, 2], n: 1 } }, // equal to an earlier entry (canonically): duplicate
        { id: id(53), keys: [''], data: 3 }, // malformed key
        { id: id(50), keys: ['k:batch'], data: { n: 'other' } }, // same id, other data: written
      ];
      const results = await ledger.publishBatch('obligations', entries);
      assert.equal(results.length, entries.length);
      const shape = results.map((r) => ('error' in r ? r.error.code : r.duplicate ? 'duplicate' : 'published'));
      assert.deepEqual(shape, ['duplicate', 'published', 'F00_MALFORMED', 'published', 'duplicate', 'F00_MALFORMED', 'published']);
      const ok = results.map((r) => ('error' in r ? undefined : r.txid));
      assert.equal(ok[0], before.txid);
      assert.equal(ok[4], ok[1], 'the duplicate names the entry that landed');
      const listed = await ledger.listByKey('obligations', 'k:batch');
      assert.deepEqual(
        listed.map((i) => i.data),
        [{ n: 0 }, { n: 1, m: [1, 2] }, { n: 2 }, { n: 'other' }],
      );
      assert.deepEqual((await ledger.listByKey('obligations', 'k:other')).map((i) => i.keys), [[id(52), 'k:batch', 'k:other']]);
      for (const [i, txid] of ok.entries()) if (txid) assert.ok(listed.some((x) => x.txid === txid), `entry ${i}'s txid is listed`);
      // publishing the same batch again writes nothing
      const again = await ledger.publishBatch('obligations', entries.filter((e) => e.id !== '' && !e.keys.includes('')));
      assert.ok(again.every((r) => !('error' in r) && r.duplicate), JSON.stringify(again));
      assert.equal((await ledger.listByKey('obligations', 'k:batch')).length, 4);
      assert.deepEqual(await ledger.publishBatch('obligations', []), []);
    });

    it('a stream name outside the three is not found', async (t) => {
      const ledger = await fresh(t);
      await assert.rejects(ledger.list('nope' as StreamName), NotFoundError);
    });

    it('reports health', async (t) => {
      const ledger = await fresh(t);
      const h = await ledger.health();
      assert.equal(h.ok, true);
      assert.ok(h.detail.length > 0);
    });
  });
}
