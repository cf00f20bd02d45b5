/**
 * What an obligation costs the store after its acceptance (issue 11, "whole life"), as
 * requests the jobs make, counted by an SDK middleware on the embedded cloud:
 * - its item is written four times: the acceptance published, the settlement taking it,
 *   its close, its outcome published. The close is one TransactWriteItems with the
 *   credit release (and any evidence): no marker item, no separate "counted" write; the
 *   obligations one payment settled that drew from one escrow shard close together, with
 *   one update of that shard;
 * - the jobs never read it strongly consistent, and the follower never reads the hub's
 *   own obligations and outcomes (decided here) at all.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { acceptMany, enrol, registerDomain } from './support.ts';

interface Sent {
  op: string;
  input: Record<string, unknown>;
}

/** More obligations than escrow shards: some share a shard, so a payment closes some of them together. */
const N = 12;

describe('the store requests of an obligation\'s life after acceptance', () => {
  let cloud: LocalCloud;
  let ids: string[];
  /** The escrow shard each obligation drew from (its close releases it there). */
  const shards = new Map<string, number>();
  const sent: Sent[] = [];
  let recording = false;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0, rebalance: 0 } });
    await registerDomain(cloud, 'lc', 'consumer');
    await registerDomain(cloud, 'lp', 'provider');
    await cloud.fund('lc');
    const dev = await enrol(cloud, 'lc', 'lc-d1');
    ids = await acceptMany(cloud, dev, 'lp', 'lp-spd-1', N);
    for (const id of ids) shards.set(id, (await cloud.deps.store.getObligation(id))?.shard ?? -1);
    cloud.deps.store.doc.middlewareStack.add(
      (next, context) => async (args) => {
        if (recording) sent.push({ op: String((context as { commandName?: string }).commandName ?? '').replace(/Command$/, ''), input: structuredClone(args.input) as Record<string, unknown> });
        return next(args);
      },
      { step: 'initialize', name: 'lifeCostRecorder' },
    );
    recording = true;
    for (let round = 0; (await cloud.deps.store.getCounters('lc')).outstanding > 0; round++) {
      assert.ok(round < 10, 'the obligations closed within 10 rounds of the jobs');
      for (const job of ['publish', 'settle', 'mine', 'watch', 'follow'] as const) await cloud.runJob(job);
    }
    await cloud.runJob('publish');
    await cloud.runJob('follow');
    recording = false;
  });
  after(async () => {
    await cloud?.stop();
  });

  /** The keys of obligation items a request writes or reads, with what it is. */
  const obligationKeys = (s: Sent): { pk: string; how: string }[] => {
    const out: { pk: string; how: string }[] = [];
    const key = (k: unknown) => String((k as { pk?: unknown } | undefined)?.pk ?? '');
    if (s.op === 'UpdateItem' || s.op === 'GetItem' || s.op === 'PutItem') out.push({ pk: key(s.input.Key ?? s.input.Item), how: s.op });
    if (s.op === 'TransactWriteItems') {
      const actions = s.input.TransactItems as Record<string, { Key?: unknown; Item?: unknown }>[];
      for (const a of actions) for (const [verb, x] of Object.entries(a)) out.push({ pk: key(x.Key ?? x.Item), how: `Transact${verb}` });
    }
    if (s.op === 'BatchGetItem') {
      for (const r of Object.values(s.input.RequestItems as Record<string, { Keys: unknown[]; ConsistentRead?: boolean }>)) {
        for (const k of r.Keys) out.push({ pk: key(k), how: r.ConsistentRead ? 'BatchGet strong' : 'BatchGet' });
      }
    }
    return out.filter((k) => k.pk.startsWith('OB#'));
  };

  it('closes every obligation, and each item is written four times: published, settling, closed with its counters, outcome published', async () => {
    for (const id of ids) {
      const item = await cloud.deps.store.getObligation(id);
      assert.deepEqual([item?.status, item?.counted, item?.outcomeTxid !== undefined], ['fulfilled', true, true]);
      const writes = sent.flatMap((s) => obligationKeys(s).filter((k) => k.pk === `OB#${id}` && !k.how.startsWith('Get') && !k.how.startsWith('Batch')));
      assert.deepEqual(writes.map((w) => w.how), ['UpdateItem', 'UpdateItem', 'TransactUpdate', 'UpdateItem'], id);
    }
  });

  it('the close writes no marker item: the obligations one payment settled close in one transaction per escrow shard, each with its shard', async () => {
    const closes = sent.filter((s) => s.op === 'TransactWriteItems' && obligationKeys(s).length > 0);
    const closed = new Map<string, string>(); // id → the transaction's group: its payment and shard
    for (const id of ids) closed.set(id, `${(await cloud.deps.store.getObligation(id))?.paidTxid}:${shards.get(id)}`);
    const groups = new Set(closed.values());
    assert.equal(closes.length, groups.size, `one close per payment and shard: ${[...groups].join(' ')}`);
    assert.ok(groups.size < N, `obligations that share a shard and a payment close together (${groups.size} closes for ${N})`);
    const seen: string[] = [];
    for (const c of closes) {
      const actions = (c.input.TransactItems as Record<string, { Key?: { pk?: string }; Item?: { pk?: string } }>[]).map((a) => String(Object.values(a)[0]?.Key?.pk ?? Object.values(a)[0]?.Item?.pk));
      const obs = actions.filter((pk) => pk.startsWith('OB#')).map((pk) => pk.slice(3));
      const rest = actions.filter((pk) => !pk.startsWith('OB#'));
      // one update of the shard they all drew from, besides their own moves
      assert.deepEqual(rest, [`CREDIT#lc#${shards.get(obs[0] ?? '')}`]);
      assert.equal(new Set(obs.map((id) => closed.get(id))).size, 1, 'one payment, one shard');
      seen.push(...obs);
    }
    assert.deepEqual(seen.sort(), [...ids].sort(), 'each obligation closed once');
    assert.equal(sent.filter((s) => JSON.stringify(s.input).includes('"EVT#')).length, 0);
  });

  it('the jobs read obligation items only in eventually consistent batches, and the follower not at all', () => {
    const reads = sent.flatMap((s) => obligationKeys(s)).filter((k) => k.how === 'GetItem' || k.how.startsWith('Batch'));
    assert.ok(reads.length > 0);
    assert.deepEqual([...new Set(reads.map((r) => r.how))], ['BatchGet']);
  });
});
