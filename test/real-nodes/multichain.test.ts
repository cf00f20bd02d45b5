/**
 * MultiChainLedger (adapters/ledger/multichain.ts) against a real MultiChain
 * 2.3.3 chain of two nodes on loopback (harness.ts; the facts relied on are in
 * shared/notes/real-nodes.md). The scripted fake (test/ledger/multichain.test.ts)
 * can only imitate what is checked here: stream creation and subscription,
 * publishfrom from the node's own address, positions that never move, the
 * duplicate rule across two nodes' addresses, concurrent publishes of one id,
 * items above 16 KB, and the errors a real node answers with.
 *
 * Skipped, saying why, without OC_NODES_BIN or without the MultiChain binaries.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { MultiChainLedger, type MultiChainLedgerOptions } from '../../adapters/ledger/multichain.ts';
import { STREAMS, type LedgerItem, type PositionedItem, type StreamName } from '../../adapters/ports.ts';
import { ForbiddenError, LedgerMisconfiguredError, LedgerRefusedError, MalformedError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';
import { skippable } from '../skippable.ts';
import { MULTICHAIN_BINARIES, MultiChain, type MultiChainNode, missingNodes, until } from './harness.ts';

const { it, before, after } = skippable(missingNodes(MULTICHAIN_BINARIES));

const id = (n: number | string) => `${n}`.padStart(64, 'c');

describe('MultiChainLedger on a real MultiChain chain (2 nodes, 2 s blocks)', () => {
  let chain: MultiChain;
  let n1: MultiChainNode;
  let n2: MultiChainNode;
  let l1: MultiChainLedger;
  let l2: MultiChainLedger;
  const ledgerOf = (node: MultiChainNode, extra: Partial<MultiChainLedgerOptions> = {}) =>
    new MultiChainLedger({ url: node.url, user: node.endpoint.username, password: node.endpoint.password, chainName: node.chain, ...extra });
  /** Until `ledger` lists `count` items under `key` (an item reached that node). */
  const reached = (ledger: MultiChainLedger, stream: StreamName, key: string, count = 1) =>
    until(`${count} item(s) under ${key}`, async () => {
      const items = await ledger.listByKey(stream, key);
      return items.length >= count ? items : undefined;
    });

  before(async () => {
    chain = await MultiChain.start({
      nodes: 2,
      streams: STREAMS,
      // the adapter creates the streams (write-restricted) on node 1; joiners are granted <stream>.write
      onFirstNode: async (node) => {
        const first = ledgerOf(node);
        await first.ensureStreams();
      },
    });
    n1 = chain.node(0);
    n2 = chain.node(1);
    l1 = ledgerOf(n1);
    l2 = ledgerOf(n2);
  });
  after(async () => {
    await chain?.stop();
  });

  it('a joined node is not subscribed until ensureStreams: reads are NotFound (-703), then it subscribes without creating', async () => {
    await assert.rejects(l2.listByKey('obligations', id('nosub')), (e: unknown) => e instanceof NotFoundError && (e.details as { rpcCode?: number })?.rpcCode === -703);
    await l2.ensureStreams();
    await l2.ensureStreams(); // idempotent
    const streams = await n2.rpc<{ name: string; subscribed: boolean }[]>('liststreams');
    for (const s of STREAMS) assert.equal(streams.find((x) => x.name === s)?.subscribed, true, s);
    // the creator was subscribed by the adapter too (a stream's creator is not subscribed automatically)
    await l1.ensureStreams();
    const own = await n1.rpc<{ name: string; subscribed: boolean; restrict?: { write?: boolean } }[]>('liststreams', ['*', true]);
    for (const s of STREAMS) {
      const found = own.find((x) => x.name === s);
      assert.equal(found?.subscribed, true, s);
    }
  });

  it('publishes with publishfrom from identity() = the node\'s first address, and reads it back by every key on both nodes', async () => {
    const addr1 = await l1.identity();
    assert.equal(addr1, n1.address);
    assert.equal(await l2.identity(), n2.address);
    const data: Json = { amount: 1500, nested: { list: [1, 'two', null, true] }, text: 'héllo ✓' };
    const res = await l1.publish('obligations', id(1), ['sp.example', 'sc.example'], data);
    assert.equal(res.duplicate, false);
    assert.match(res.txid, /^[0-9a-f]{64}$/);
    for (const ledger of [l1, l2]) {
      for (const key of [id(1), 'sp.example', 'sc.example']) {
        const [item, ...more] = await reached(ledger, 'obligations', key);
        assert.equal(more.length, 0);
        assert.equal(item?.txid, res.txid);
        assert.deepEqual(item?.keys, [id(1), 'sp.example', 'sc.example']);
        assert.deepEqual(item?.data, data);
        assert.equal(item?.publisher, addr1);
      }
    }
  });

  it('list() positions never move: a prefix read before blocks and later publishes is the same prefix afterwards', async () => {
    const stream: StreamName = 'settlements';
    // interleave publishes from both nodes, unconfirmed when first read
    for (let i = 0; i < 6; i++) await (i % 2 === 0 ? l1 : l2).publish(stream, id(`pos${i}`), [], { i });
    await reached(l1, stream, id('pos5'));
    const early = (await l1.list(stream)).map((x) => x.txid);
    assert.equal(early.length, 6);
    const unconfirmed = (await l1.list(stream)).filter((x) => x.confirmations === 0).length;
    // blocks arrive (2 s), more items arrive from both nodes
    await until('every item confirmed on node 1', async () => (await l1.list(stream)).every((x) => x.confirmations > 0), 30_000, 250);
    for (let i = 6; i < 10; i++) await (i % 2 === 0 ? l2 : l1).publish(stream, id(`pos${i}`), [], { i });
    await until('all 10 items on node 1', async () => ((await l1.list(stream)).length >= 10 ? true : undefined), 30_000, 250);
    const later = (await l1.list(stream)).map((x) => x.txid);
    assert.equal(later.length, 10);
    assert.deepEqual(later.slice(0, 6), early, `positions are stable (local-ordering=true; ${unconfirmed} of 6 unconfirmed at the first read)`);
    // paging by position reads the same items
    const paged = [...(await l1.list(stream, 0, 4)), ...(await l1.list(stream, 4, 4)), ...(await l1.list(stream, 8))].map((x) => x.txid);
    assert.deepEqual(paged, later);
    // confirmed items carry their block's time; nothing is in the future
    for (const item of await l1.list(stream)) assert.ok(item.time <= Date.now() + 5_000);
  });

  it('listByKey returns every item under a key, oldest first, the same order on both nodes once confirmed', async () => {
    const key = 'provider:listbykey';
    const txids: string[] = [];
    for (let i = 0; i < 3; i++) txids.push((await l1.publish('obligations', id(`lbk${i}`), [key], { i })).txid);
    const items = await reached(l2, 'obligations', key, 3);
    assert.deepEqual(
      items.map((x) => x.data),
      [{ i: 0 }, { i: 1 }, { i: 2 }],
    );
    await until('confirmed on both', async () => (await Promise.all([l1, l2].map((l) => l.listByKey('obligations', key)))).flat().every((x) => x.confirmations > 0), 30_000, 250);
    const [a, b] = await Promise.all([l1, l2].map(async (l) => (await l.listByKey('obligations', key)).map((x) => x.txid)));
    assert.deepEqual(a, b);
    assert.deepEqual(new Set(a), new Set(txids));
    assert.deepEqual(await l1.listByKey('obligations', 'provider:nobody'), []);
  });

  it('re-publishing our own equal item is a duplicate (canonical JSON), and writes nothing', async () => {
    const first = await l1.publish('obligations', id('dup'), ['k:dup'], { b: 2, a: 1 });
    const again = await l1.publish('obligations', id('dup'), ['k:dup'], { a: 1, b: 2 });
    assert.deepEqual(again, { txid: first.txid, duplicate: true });
    assert.equal((await l1.listByKey('obligations', id('dup'))).length, 1);
    // other data under the same id is written (readers dedupe by id; first valid wins)
    const other = await l1.publish('obligations', id('dup'), ['k:dup'], { a: 1, b: 3 });
    assert.equal(other.duplicate, false);
    assert.equal((await l1.listByKey('obligations', id('dup'))).length, 2);
  });

  it('an item under our id from ANOTHER node\'s address does not stop ours', async () => {
    const data: Json = { squat: false, n: 7 };
    const theirs = await l2.publish('obligations', id('squat'), [], data);
    const [seen] = await reached(l1, 'obligations', id('squat'));
    assert.equal(seen?.publisher, n2.address);
    const ours = await l1.publish('obligations', id('squat'), [], data);
    assert.equal(ours.duplicate, false, 'equal data from another publisher is not ours');
    assert.notEqual(ours.txid, theirs.txid);
    const items = await reached(l2, 'obligations', id('squat'), 2);
    assert.deepEqual(items.map((x) => x.publisher).sort(), [n1.address, n2.address].sort());
    // and now ours is a duplicate
    assert.deepEqual(await l1.publish('obligations', id('squat'), [], data), { txid: ours.txid, duplicate: true });
  });

  it('two concurrent publishes of one id: check-then-publish is not atomic, so readers dedupe by id (first valid wins, the same on every node)', async (t) => {
    const data: Json = { race: true };
    // two back-ends (adapters) on the same node, same address
    const twin = ledgerOf(n1);
    const sameNode = await Promise.all([l1.publish('obligations', id('race1'), [], data), twin.publish('obligations', id('race1'), [], data)]);
    const onOne = (await l1.listByKey('obligations', id('race1'))).length;
    // two hubs' nodes at once
    const twoNodes = await Promise.all([l1.publish('obligations', id('race2'), [], data), l2.publish('obligations', id('race2'), [], data)]);
    await reached(l1, 'obligations', id('race2'), 2);
    await reached(l2, 'obligations', id('race2'), 2);
    t.diagnostic(
      `same id published twice at once: same node → ${onOne} item(s) (duplicate flags ${sameNode.map((r) => r.duplicate).join('/')}); two nodes → 2 items (one per publisher, by design)`,
    );
    assert.ok(onOne >= 1 && onOne <= 2, `${onOne}`);
    assert.equal(sameNode.filter((r) => r.duplicate).length, 2 - onOne, 'a duplicate answer names the item that did land');
    assert.notEqual(twoNodes[0].txid, twoNodes[1].txid);
    // what readers rely on: every copy is equal, and once confirmed both nodes agree on which is first
    for (const key of [id('race1'), id('race2')]) {
      await until(`${key} confirmed on both nodes`, async () => (await Promise.all([l1, l2].map((l) => l.listByKey('obligations', key)))).flat().every((x) => x.confirmations > 0), 30_000, 250);
      const [a, b] = await Promise.all([l1, l2].map((l) => l.listByKey('obligations', key)));
      assert.ok(a && b);
      for (const x of [...a, ...b]) assert.deepEqual(x.data, data);
      assert.equal(a[0]?.txid, b[0]?.txid, 'the first item under the id is the same on both nodes');
      const distinctIds = new Set(a.map((x: LedgerItem) => x.keys[0]));
      assert.equal(distinctIds.size, 1, 'one id however many copies');
    }
  });

  it('items above 16 KB come back as a pointer and are fetched with gettxoutdata: read whole on both nodes', async () => {
    const big = { blob: 'x'.repeat(40_000), n: 1 };
    const edge = { blob: 'y'.repeat(16_370) }; // JSON text near 16,384 bytes
    const rBig = await l1.publish('settlements', id('big'), ['k:big'], big);
    const rEdge = await l2.publish('settlements', id('edge'), ['k:big'], edge);
    // the node itself answers with a pointer for the big one
    const raw = await n1.rpc<{ data: unknown }[]>('liststreamkeyitems', ['settlements', id('big')]);
    assert.ok(typeof raw[0]?.data === 'object' && raw[0]?.data !== null && 'vout' in (raw[0].data as object), JSON.stringify(raw[0]?.data).slice(0, 200));
    for (const ledger of [l1, l2]) {
      const items = await reached(ledger, 'settlements', 'k:big', 2);
      assert.deepEqual(items.find((x) => x.txid === rBig.txid)?.data, big);
      assert.deepEqual(items.find((x) => x.txid === rEdge.txid)?.data, edge);
      assert.ok((await ledger.list('settlements')).some((x) => x.txid === rBig.txid && (x.data as { n?: number }).n === 1));
    }
  });

  it('maps the errors a real node answers with', async () => {
    // a key of 256 bytes is accepted by the node; 257 is refused before any RPC (the node says -8 "Item key is too long")
    const k256 = 'k'.repeat(256);
    assert.equal((await l1.publish('domains', k256, [], { edge: 256 })).duplicate, false);
    assert.equal((await l1.listByKey('domains', k256)).length, 1);
    await assert.rejects(l1.publish('domains', 'k'.repeat(257), [], {}), MalformedError);
    // a stream that does not exist
    await assert.rejects(l1.publish('nope' as StreamName, id('x'), [], {}), (e: unknown) => e instanceof NotFoundError || e instanceof UnavailableError);
    // wrong password: HTTP 401 with an empty body
    const wrongPassword = new MultiChainLedger({ url: n1.url, user: 'oc', password: 'wrong', chainName: chain.name, retries: 0 });
    await assert.rejects(wrongPassword.listByKey('domains', 'x'), ForbiddenError);
    assert.equal((await wrongPassword.health()).ok, false);
    // wrong chain name: HTTP 400, -32600 "Wrong chain name"; not retried
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls += 1;
      return fetch(input, init);
    };
    const wrongChain = new MultiChainLedger({ url: n1.url, user: 'oc', password: n1.endpoint.password, chainName: 'not-this-chain', fetch: counting });
    await assert.rejects(wrongChain.listByKey('domains', 'x'), (e: unknown) => e instanceof LedgerMisconfiguredError && /chain name/i.test((e as Error).message));
    assert.equal(calls, 1, 'a refusal is not retried');
    assert.match((await wrongChain.health()).detail, /^F16_LEDGER_MISCONFIGURED: .*chain name/i);
    // a publisher address that is not in this node's wallet: -709 on a real 2.3.3 node (not -5), final, not retried
    calls = 0;
    const foreign = new MultiChainLedger({ url: n2.url, user: 'oc', password: n2.endpoint.password, chainName: chain.name, publisher: n1.address, fetch: counting });
    await assert.rejects(foreign.publish('obligations', id('foreign'), [], {}), (e: unknown) => {
      assert.ok(e instanceof LedgerMisconfiguredError, String(e));
      assert.equal((e.details as { rpcCode?: number })?.rpcCode, -709, JSON.stringify(e.details));
      return true;
    });
    assert.equal(calls, 2, 'one check, one publish, no retry');
    await assert.rejects(foreign.publishBatch('obligations', [{ id: id('foreign2'), keys: [], data: {} }]), LedgerMisconfiguredError);
    const h = await foreign.health();
    assert.equal(h.ok, false);
    assert.match(h.detail, /^F16_LEDGER_MISCONFIGURED: publisher \S+ is not an address of this node's wallet/);
    // an item too large for a transaction: -8 "Transaction too large", refused for good (LedgerRefusedError), not retried
    calls = 0;
    const counted = ledgerOf(n1, { fetch: counting });
    await assert.rejects(counted.publish('settlements', id('huge'), [], { blob: 'z'.repeat(5_000_000) }), (e: unknown) => {
      assert.ok(e instanceof LedgerRefusedError, String(e));
      assert.ok([-8, -26].includes((e.details as { rpcCode?: number })?.rpcCode ?? 0), JSON.stringify(e.details));
      return true;
    });
    assert.equal(calls, 3, 'the node\'s address (getaddresses), one check, one publish: no retry');
    // list start above 2^31-1: the node would wrap it; refused before any RPC
    calls = 0;
    await assert.rejects(counted.list('settlements', 2 ** 31), MalformedError);
    await assert.rejects(counted.listByKeyFrom('settlements', 'k:big', 2 ** 32 + 1), MalformedError);
    assert.equal(calls, 0);
    assert.deepEqual(await counted.list('settlements', 2 ** 31 - 1), []);
    // an address of this node with send but no <stream>.write: -704 → ForbiddenError
    const bare = await n2.rpc<string>('getnewaddress');
    await n1.rpc('grant', [bare, 'send']);
    await until('the grant reached node 2', async () => {
      const perms = await n2.rpc<{ type: string }[]>('listpermissions', ['send', bare]);
      return perms.length > 0;
    });
    const unprivileged = ledgerOf(n2, { publisher: bare });
    await assert.rejects(unprivileged.publish('obligations', id('noperm'), [], {}), (e: unknown) => e instanceof ForbiddenError && (e.details as { rpcCode?: number })?.rpcCode === -704);
  });

  it('many publishes in flight at once all land (an overloaded node\'s HTTP 503 is retried)', async () => {
    const many = 120;
    const results = await Promise.all(Array.from({ length: many }, (_, i) => l1.publish('domains', id(`load${i}`), ['k:load'], { i })));
    assert.equal(new Set(results.map((r) => r.txid)).size, many);
    assert.equal((await l1.listByKey('domains', 'k:load')).length, many);
  });

  it('publishBatch by default: one publishmultifrom transaction per 32 items (the chain\'s max-std-op-returns-count); the other node\'s list() and a follower\'s cursor read all 40; a too-large item is refused alone, the rest land', async (t) => {
    await l2.ensureStreams(); // idempotent: the test also runs alone
    const batcher = ledgerOf(n1);
    assert.equal(await batcher.itemsPerTransaction(), 32, 'max-std-op-returns-count of a default 2.3.3 chain, from getblockchainparams');
    const entries = Array.from({ length: 40 }, (_, i) => ({ id: id(`batch${i}`), keys: ['k:batch', `k:batch${i % 2}`], data: { i, pad: 'p'.repeat(1_500) } as Json }));
    const results = await batcher.publishBatch('obligations', entries);
    assert.ok(results.every((r) => !('error' in r) && !r.duplicate), JSON.stringify(results.filter((r) => 'error' in r)));
    const batchTxids = new Set(results.map((r) => ('error' in r ? '' : r.txid)));
    assert.equal(batchTxids.size, 2, '32 + 8 items: two transactions');
    const items = await reached(l2, 'obligations', 'k:batch', 40);
    assert.deepEqual(new Set(items.map((x) => (x.data as { i: number }).i)), new Set(entries.map((_, i) => i)));
    for (const x of items) assert.equal(x.publisher, n1.address);
    const ofBatch = (read: readonly PositionedItem[]) => read.filter((x) => batchTxids.has(x.txid)).map((x) => (x.data as { i: number }).i);
    const all40 = entries.map((_, i) => i);
    // what the node itself lists (local ordering: a transaction once by stream), recorded
    const raw = async (node: MultiChainNode, method: string, params: Json[]) => (await node.rpc<{ txid: string }[]>(method, params)).filter((x) => batchTxids.has(x.txid)).length;
    const seen = {
      streamLocal: await raw(n2, 'liststreamitems', ['obligations', false, 100_000, 0, true]),
      streamChain: await raw(n2, 'liststreamitems', ['obligations', false, 100_000, 0, false]),
      keyLocal: await raw(n2, 'liststreamkeyitems', ['obligations', 'k:batch', false, 100_000, 0, true]),
      keyLocal1: await raw(n2, 'liststreamkeyitems', ['obligations', 'k:batch1', false, 100_000, 0, true]),
    };
    t.diagnostic(`node 2 lists the 40 batched items: ${JSON.stringify(seen)} (local ordering by stream, chain order, local ordering by key k:batch and k:batch1)`);
    // on the SECOND node: list() (every follower's read) hands out all 40, once each, in output order within a transaction
    const listed = ofBatch(await l2.list('obligations'));
    assert.deepEqual(listed, all40);
    // a follower's cursor: a few positions per read, resumed at the last item's position + 1
    for (const count of [1, 3, 7]) {
      const got: PositionedItem[] = [];
      for (let cursor = 0; ; ) {
        const page = await l2.list('obligations', cursor, count);
        const last = page.at(-1);
        if (!last) break;
        got.push(...page);
        cursor = last.position + 1;
      }
      assert.deepEqual(ofBatch(got), all40, `follower reading ${count} position(s) at a time`);
    }
    // a watcher's read by key (local ordering by key), whole and by cursor
    assert.deepEqual(ofBatch(await l2.listByKeyFrom('obligations', 'k:batch', 0)), all40);
    assert.deepEqual(ofBatch(await l2.listByKeyFrom('obligations', 'k:batch1', 0)), all40.filter((i) => i % 2 === 1));
    const byKey: PositionedItem[] = [];
    for (let cursor = 0; ; ) {
      const page = await l2.listByKeyFrom('obligations', 'k:batch', cursor, 5);
      const last = page.at(-1);
      if (!last) break;
      byKey.push(...page);
      cursor = last.position + 1;
    }
    assert.deepEqual(ofBatch(byKey), all40);
    // again: every entry is a duplicate, nothing written
    const again = await batcher.publishBatch('obligations', entries);
    assert.ok(again.every((r) => !('error' in r) && r.duplicate));
    assert.equal((await batcher.listByKey('obligations', 'k:batch')).length, 40);
    // a 5 MB item in a batch: the transaction is refused, split, and only that item fails
    const mixed = await batcher.publishBatch('obligations', [
      { id: id('mixed1'), keys: ['k:mixed'], data: { n: 1 } },
      { id: id('mixed2'), keys: ['k:mixed'], data: { blob: 'z'.repeat(5_000_000) } },
      { id: id('mixed3'), keys: ['k:mixed'], data: { n: 3 } },
    ]);
    assert.deepEqual(
      mixed.map((r) => ('error' in r ? r.error.code : 'published')),
      ['published', 'F15_LEDGER_REFUSED', 'published'],
    );
    assert.deepEqual((await reached(l2, 'obligations', 'k:mixed', 2)).map((x) => x.data), [{ n: 1 }, { n: 3 }]);
  });

  it('reports health from getinfo', async () => {
    const h = await l1.health();
    assert.equal(h.ok, true);
    assert.match(h.detail, new RegExp(`chain ${chain.name}`));
  });
});
