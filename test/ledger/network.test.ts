/**
 * The embedded ledger network: several nodes of one chain, as the hubs of a
 * federation see MultiChain. A controllable clock drives propagation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddedLedgerNetwork } from '../../adapters/ledger/embedded.ts';
import { UnavailableError } from '../../core/errors.ts';
import { ledgerContract } from './contract.ts';

const ID = (n: number) => n.toString(16).padStart(64, '0');

/** A network of `n` nodes (`hub-1` …) with a clock the test moves. */
async function network(t: { after: (fn: () => Promise<void>) => void }, n: number, delayMs = 100) {
  let now = 1_000_000;
  const net = new EmbeddedLedgerNetwork({ delayMs, now: () => now });
  t.after(() => net.close());
  const nodes = Array.from({ length: n }, (_, i) => net.node(`hub-${i + 1}`));
  for (const node of nodes) await node.ensureStreams();
  return {
    net,
    nodes,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const data = async (node: { list: (s: 'obligations') => Promise<{ data: unknown }[]> }) => (await node.list('obligations')).map((i) => i.data);

ledgerContract('EmbeddedLedgerNetwork node (delay 0)', async () => {
  const net = new EmbeddedLedgerNetwork();
  return { ledger: net.node('hub-1'), cleanup: () => net.close() };
});

describe('EmbeddedLedgerNetwork', () => {
  it('a node sees its own items at once and the others\u2019 after the propagation delay', async (t) => {
    const { nodes, advance } = await network(t, 2, 100);
    const [a, b] = nodes as [NonNullable<(typeof nodes)[0]>, NonNullable<(typeof nodes)[0]>];
    await a.publish('obligations', ID(1), ['p'], { n: 1 });
    assert.deepEqual(await data(a), [{ n: 1 }]);
    assert.deepEqual(await data(b), [], 'not yet at b');
    assert.deepEqual(await b.listByKey('obligations', 'p'), []);
    advance(99);
    assert.deepEqual(await data(b), []);
    advance(1);
    assert.deepEqual(await data(b), [{ n: 1 }]);
    const [item] = await b.listByKey('obligations', 'p');
    assert.equal(item?.publisher, 'hub-1', 'published with the node’s own address');
  });

  it('positions are stable per node: its own items first, others appended in arrival order', async (t) => {
    const { nodes, advance } = await network(t, 2, 100);
    const [a, b] = nodes as [NonNullable<(typeof nodes)[0]>, NonNullable<(typeof nodes)[0]>];
    await a.publish('obligations', ID(1), [], 'a1');
    advance(10);
    await b.publish('obligations', ID(2), [], 'b1');
    advance(10);
    await a.publish('obligations', ID(3), [], 'a2');
    const seenByA: unknown[] = await data(a);
    const seenByB: unknown[] = await data(b);
    assert.deepEqual(seenByA, ['a1', 'a2']);
    assert.deepEqual(seenByB, ['b1']);
    advance(200);
    assert.deepEqual(await data(a), ['a1', 'a2', 'b1'], 'b1 arrives after a’s own a2');
    assert.deepEqual(await data(b), ['b1', 'a1', 'a2']);
    // a cursor kept as a position stays valid: what was at 0..n-1 never moves
    assert.deepEqual((await a.list('obligations', 2)).map((i) => i.data), ['b1']);
    await b.publish('obligations', ID(4), [], 'b2');
    advance(200);
    assert.deepEqual(await data(a), ['a1', 'a2', 'b1', 'b2']);
    assert.deepEqual(await data(b), ['b1', 'a1', 'a2', 'b2']);
  });

  it('a stopped node neither serves nor receives; on restart it catches up, in order', async (t) => {
    const { nodes, advance } = await network(t, 2, 50);
    const [a, b] = nodes as [NonNullable<(typeof nodes)[0]>, NonNullable<(typeof nodes)[0]>];
    await a.publish('obligations', ID(1), [], 1);
    advance(100);
    assert.deepEqual(await data(b), [1]);
    b.setAvailable(false);
    for (let i = 2; i <= 5; i += 1) {
      await a.publish('obligations', ID(i), [], i);
      advance(20);
    }
    await assert.rejects(b.list('obligations'), UnavailableError);
    await assert.rejects(b.publish('obligations', ID(9), [], 9), UnavailableError);
    assert.equal((await b.health()).ok, false);
    advance(100);
    b.setAvailable(true);
    assert.deepEqual(await data(b), [1, 2, 3, 4, 5]);
    assert.equal((await b.health()).ok, true);
    assert.deepEqual(await data(a), [1, 2, 3, 4, 5], 'nothing from b while it was down');
  });

  it('two nodes publishing the same key: both items exist everywhere, by key in chain order (readers dedupe)', async (t) => {
    const { nodes, advance } = await network(t, 2, 100);
    const [a, b] = nodes as [NonNullable<(typeof nodes)[0]>, NonNullable<(typeof nodes)[0]>];
    const ra = await a.publish('domains', 'domain:x', ['x'], { by: 'a' });
    const rb = await b.publish('domains', 'domain:x', ['x'], { by: 'b' });
    assert.equal(ra.duplicate, false);
    assert.equal(rb.duplicate, false);
    advance(100);
    assert.deepEqual((await a.listByKey('domains', 'domain:x')).map((i) => i.publisher), ['hub-1', 'hub-2']);
    assert.deepEqual((await b.listByKey('domains', 'domain:x')).map((i) => i.publisher), ['hub-1', 'hub-2'], 'same first item at both');
    assert.deepEqual((await b.list('domains')).map((i) => i.publisher), ['hub-2', 'hub-1'], 'list: b’s arrival order');
  });

  it('a squatter’s item under our id (even with our data) does not hide ours; ours again is a duplicate', async (t) => {
    const { nodes, advance } = await network(t, 2, 10);
    const [a, b] = nodes as [NonNullable<(typeof nodes)[0]>, NonNullable<(typeof nodes)[0]>];
    const ours = { obligation: 'x', amount: 5 };
    await b.publish('obligations', ID(7), ['p'], ours); // squatter first, on another node
    advance(50);
    const mine = await a.publish('obligations', ID(7), ['p'], ours);
    assert.equal(mine.duplicate, false, 'written although an item with our id (and data) exists');
    const again = await a.publish('obligations', ID(7), ['p'], { amount: 5, obligation: 'x' });
    assert.deepEqual(again, { txid: mine.txid, duplicate: true });
    assert.deepEqual((await a.listByKey('obligations', ID(7))).map((i) => i.publisher), ['hub-2', 'hub-1']);
    assert.deepEqual((await b.listByKey('obligations', ID(7))).map((i) => i.publisher), ['hub-2'], 'ours not yet at b');
  });

  it('a node created later receives the chain from the start', async (t) => {
    const { net, nodes, advance } = await network(t, 1, 100);
    await nodes[0]!.publish('settlements', 's1', [], 1);
    advance(100);
    const late = net.node('hub-9');
    await late.ensureStreams();
    assert.deepEqual((await late.list('settlements')).map((i) => i.data), [1]);
    assert.equal(net.size(), 4, 'ensureStreams on a node that has the streams writes nothing');
  });

  it('with a real clock, items arrive after the delay', async (t) => {
    const net = new EmbeddedLedgerNetwork({ delayMs: 60 });
    t.after(() => net.close());
    const [a, b] = [net.node('hub-1'), net.node('hub-2')];
    await a.ensureStreams();
    await a.publish('obligations', ID(1), [], 1);
    assert.deepEqual(await data(b), []);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(await data(b), [1]);
  });
});
