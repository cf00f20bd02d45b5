import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLedger, LedgerCorruptError, entryHash, type LedgerEntry } from '../../adapters/ledger/embedded.ts';
import { NotFoundError, UnavailableError, MalformedError } from '../../core/errors.ts';
import { GENESIS } from '../../core/types.ts';
import { ledgerContract } from './contract.ts';

ledgerContract('EmbeddedLedger (memory)', async () => ({ ledger: await EmbeddedLedger.open({ publisher: 'node-a' }) }));

ledgerContract('EmbeddedLedger (file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-contract-'));
  return {
    ledger: await EmbeddedLedger.open({ file: join(dir, 'ledger.jsonl'), publisher: 'node-a' }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const ID = (n: number) => n.toString(16).padStart(64, '0');

/** A temp dir removed after the test. */
async function tempFile(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'ledger.jsonl');
}

/** A ledger file with streams and three obligations. */
async function seeded(file: string, clock = () => 1_700_000_000_000): Promise<EmbeddedLedger> {
  const ledger = await EmbeddedLedger.open({ file, publisher: 'spb-addr', now: clock });
  await ledger.ensureStreams();
  for (let i = 1; i <= 3; i += 1) await ledger.publish('obligations', ID(i), ['sp.example', `c${i}`], { n: i });
  return ledger;
}

describe('EmbeddedLedger', () => {
  it('links every entry to the previous one by hash, starting at GENESIS', async (t) => {
    const ledger = await seeded(await tempFile(t));
    t.after(() => ledger.close());
    const entries = ledger.entries();
    assert.equal(entries.length, 6, '3 stream creations + 3 items');
    assert.equal(ledger.size(), 6);
    assert.equal(entries[0]!.prev, GENESIS);
    entries.forEach((e, i) => {
      assert.equal(e.seq, i);
      if (i > 0) assert.equal(e.prev, entries[i - 1]!.hash);
      const { hash, ...rest } = e;
      assert.equal(hash, entryHash(rest));
    });
    const [item] = await ledger.listByKey('obligations', ID(2));
    assert.equal(item!.txid, entries[4]!.hash, 'txid is the entry hash');
    ledger.verify();
  });

  it('keeps everything across close and reopen: same items, hashes and indexes', async (t) => {
    const file = await tempFile(t);
    const first = await seeded(file);
    const before = await first.list('obligations');
    await first.close();
    await assert.rejects(first.list('obligations'), UnavailableError, 'a closed ledger refuses calls');

    const reopened = await EmbeddedLedger.open({ file, publisher: 'spb-addr' });
    t.after(() => reopened.close());
    assert.deepEqual(await reopened.list('obligations'), before);
    assert.deepEqual((await reopened.listByKey('obligations', 'c2')).map((i) => i.data), [{ n: 2 }]);
    assert.equal((await reopened.publish('obligations', ID(1), [], { n: 1 })).duplicate, true, 'ids survive restart');
    const added = await reopened.publish('obligations', ID(4), [], { n: 4 });
    assert.equal(added.duplicate, false);
    assert.equal(reopened.entries().at(-1)!.prev, before.at(-1)!.txid, 'the chain continues');
    reopened.verify();
  });

  it('detects a tampered line and names it', async (t) => {
    const file = await tempFile(t);
    await (await seeded(file)).close();
    const lines = (await readFile(file, 'utf8')).split('\n');
    const entry = JSON.parse(lines[4]!) as LedgerEntry;
    entry.data = { n: 2000 }; // change the amount, keep the old hash
    lines[4] = JSON.stringify(entry);
    await writeFile(file, lines.join('\n'));
    await assert.rejects(EmbeddedLedger.open({ file, publisher: 'x' }), (err: unknown) => {
      assert.ok(err instanceof LedgerCorruptError);
      assert.ok(err instanceof MalformedError);
      assert.match(err.message, /line 5: hash does not match/);
      assert.equal(err.details?.line, 5);
      return true;
    });
  });

  it('detects a rewritten entry whose hash was recomputed, by the broken link after it', async (t) => {
    const file = await tempFile(t);
    await (await seeded(file)).close();
    const lines = (await readFile(file, 'utf8')).split('\n');
    const entry = JSON.parse(lines[3]!) as LedgerEntry;
    const { hash: _old, ...rest } = entry;
    const forged = { ...rest, data: { n: 0 } };
    lines[3] = JSON.stringify({ ...forged, hash: entryHash(forged) });
    await writeFile(file, lines.join('\n'));
    await assert.rejects(EmbeddedLedger.open({ file, publisher: 'x' }), /line 5: prev does not link/);
  });

  it('rejects a corrupted line that is not JSON, even in the middle', async (t) => {
    const file = await tempFile(t);
    await (await seeded(file)).close();
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[2] = lines[2]!.slice(0, 20);
    await writeFile(file, lines.join('\n'));
    await assert.rejects(EmbeddedLedger.open({ file, publisher: 'x' }), /line 3: not valid JSON/);
  });

  it('drops a torn last line from a crash, warns, and truncates the file', async (t) => {
    const file = await tempFile(t);
    await (await seeded(file)).close();
    const good = await readFile(file, 'utf8');
    await appendFile(file, '{"seq":6,"stream":"obligations","keys":["abc'); // no newline: torn append
    const warnings: string[] = [];
    const ledger = await EmbeddedLedger.open({ file, publisher: 'x', warn: (m) => warnings.push(m) });
    t.after(() => ledger.close());
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /torn last line/);
    assert.equal(ledger.size(), 6);
    assert.equal(await readFile(file, 'utf8'), good, 'file cut back to the last good entry');
    await ledger.publish('obligations', ID(7), [], 7);
    const again = await EmbeddedLedger.open({ file, publisher: 'x' });
    t.after(() => again.close());
    assert.equal(again.size(), 7, 'later appends land on a clean line');
  });

  it('keeps a complete last line that only lacks its newline', async (t) => {
    const file = await tempFile(t);
    await (await seeded(file)).close();
    await writeFile(file, (await readFile(file, 'utf8')).replace(/\n$/, ''));
    const ledger = await EmbeddedLedger.open({ file, publisher: 'x', warn: () => assert.fail('no warning expected') });
    assert.equal(ledger.size(), 6);
    await ledger.publish('obligations', ID(8), [], 8);
    await ledger.close();
    const again = await EmbeddedLedger.open({ file, publisher: 'x' });
    t.after(() => again.close());
    assert.equal(again.size(), 7);
  });

  it('verify() catches in-memory tampering through a leaked reference', async (t) => {
    const ledger = await seeded(await tempFile(t));
    t.after(() => ledger.close());
    const [item] = await ledger.listByKey('obligations', ID(1));
    (item!.data as { n: number }).n = 1000; // callers get copies
    ledger.verify();
    assert.deepEqual((await ledger.listByKey('obligations', ID(1)))[0]!.data, { n: 1 });
  });

  it('an item published with a stream that was never created fails to open', async (t) => {
    const file = await tempFile(t);
    const draft = { seq: 0, stream: 'obligations', keys: [ID(1)], data: 1, publisher: 'p', time: 1, prev: GENESIS };
    await writeFile(file, `${JSON.stringify({ ...draft, hash: entryHash(draft) })}\n`);
    await assert.rejects(EmbeddedLedger.open({ file, publisher: 'x' }), /line 1: stream "obligations" was never created/);
  });

  it('concurrent publishes of the same id write exactly one entry', async (t) => {
    const file = await tempFile(t);
    const ledger = await EmbeddedLedger.open({ file, publisher: 'p' });
    t.after(() => ledger.close());
    await ledger.ensureStreams();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ledger.publish('obligations', ID(42), [`k${i}`], { same: 'content' })),
    );
    assert.equal(results.filter((r) => !r.duplicate).length, 1);
    assert.equal(new Set(results.map((r) => r.txid)).size, 1);
    assert.equal((await ledger.list('obligations')).length, 1);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 4, '3 creations + 1 item on disk');
  });

  it('concurrent publishes of different ids all land, in a valid chain', async (t) => {
    const file = await tempFile(t);
    const ledger = await EmbeddedLedger.open({ file, publisher: 'p' });
    await ledger.ensureStreams();
    await Promise.all(Array.from({ length: 30 }, (_, i) => ledger.publish('obligations', ID(100 + i), [], i)));
    await ledger.close();
    const again = await EmbeddedLedger.open({ file, publisher: 'p' });
    t.after(() => again.close());
    assert.equal((await again.list('obligations')).length, 30);
    again.verify();
  });

  it('while down, every call throws UnavailableError and nothing is written', async (t) => {
    const ledger = await EmbeddedLedger.open({ publisher: 'p' });
    t.after(() => ledger.close());
    await ledger.ensureStreams();
    ledger.setAvailable(false);
    await assert.rejects(ledger.publish('obligations', ID(1), [], 1), UnavailableError);
    await assert.rejects(ledger.listByKey('obligations', ID(1)), UnavailableError);
    await assert.rejects(ledger.list('obligations'), UnavailableError);
    await assert.rejects(ledger.ensureStreams(), UnavailableError);
    assert.equal((await ledger.health()).ok, false);
    ledger.setAvailable(true);
    assert.deepEqual(await ledger.list('obligations'), []);
    assert.equal((await ledger.publish('obligations', ID(1), [], 1)).duplicate, false);
    assert.equal((await ledger.health()).ok, true);
  });

  it('withPublisher gives a view on the same log with its own publisher', async (t) => {
    const ledger = await EmbeddedLedger.open({ publisher: 'spb-addr' });
    t.after(() => ledger.close());
    await ledger.ensureStreams();
    const scb = ledger.withPublisher('scb-addr');
    await ledger.publish('domains', 'dom-sp', ['sp.example'], { d: 'sp' });
    await scb.publish('domains', 'dom-sc', ['sc.example'], { d: 'sc' });
    const items = await ledger.list('domains');
    assert.deepEqual(items.map((i) => i.publisher), ['spb-addr', 'scb-addr']);
    assert.equal((await ledger.publish('domains', 'dom-sp', [], { d: 'sp' })).duplicate, true, 'our own item again');
    const squat = await scb.publish('domains', 'dom-sp', [], { d: 'sp' });
    assert.equal(squat.duplicate, false, "the same id and data from another publisher is not ours: written");
    assert.deepEqual((await ledger.listByKey('domains', 'dom-sp')).map((i) => i.publisher), ['spb-addr', 'scb-addr']);
    await scb.close();
    assert.equal((await ledger.list('domains')).length, 3, "closing a view leaves the log open");
  });

  it('uses the injected clock for item time', async (t) => {
    let now = 1_000;
    const ledger = await EmbeddedLedger.open({ publisher: 'p', now: () => now });
    t.after(() => ledger.close());
    await ledger.ensureStreams();
    now = 5_000;
    await ledger.publish('settlements', 's1', [], null);
    assert.equal((await ledger.list('settlements'))[0]!.time, 5_000);
  });

  it('refuses the reserved creation stream as a data stream', async (t) => {
    const ledger = await EmbeddedLedger.open({ publisher: 'p' });
    t.after(() => ledger.close());
    await ledger.ensureStreams();
    await assert.rejects(ledger.list('$create' as 'domains'), NotFoundError);
  });
});
