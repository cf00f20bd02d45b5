/**
 * Overlapping publish runs (no reserved concurrency on the publish function):
 * many `publishPending` runs at once, round after round, against the real
 * MultiChain adapter on a stateful fake node whose "already published?" read
 * answers after a random delay, so the adapter's check-then-publish really
 * interleaves between runs, as it can on a real multichaind. With the
 * publication lease each obligation and each outcome is on the ledger exactly
 * once (counted per id key on the node); with a store that grants the lease
 * to everyone (the lease broken), the same runs write items twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import { publishPending, type PublishSummary } from '../../service/publish.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import type { DynamoStore } from '../../adapters/store/dynamo.ts';
import { acceptMany, enrol, registerDomain, sleep, type TestDevice } from '../integration/support.ts';
import { FakeMultiChain } from '../ledger/fake-multichain.ts';
import { CHAIN, RPC_PASSWORD, RPC_USER, startRpcServer, type RpcServer } from '../ledger/rpc-server.ts';

const ROUNDS = 4;
const PER_ROUND = 8;
const RUNS = 10;

interface RacyNode {
  fake: FakeMultiChain;
  server: RpcServer;
  ledger: MultiChainLedger;
}

/**
 * A fake multichaind whose answers to key counts and reads by key are read at
 * once and delivered 1–6 ms later: the gap between the adapter's check and its
 * write, in which another run's write can land unseen.
 */
async function racyNode(): Promise<RacyNode> {
  const fake = new FakeMultiChain();
  const server = await startRpcServer(async (req) => {
    const answer = fake.handle(req);
    if (req.method === 'liststreamkeys' || req.method === 'liststreamkeyitems') await sleep(1 + Math.random() * 5);
    return answer;
  });
  const ledger = new MultiChainLedger({
    url: server.url,
    user: RPC_USER,
    password: RPC_PASSWORD,
    chainName: CHAIN,
    backoffBaseMs: 1,
    sleep: async () => {},
  });
  await ledger.ensureStreams();
  return { fake, server, ledger };
}

/** How many items the node holds under each id key (an item's first key is its id). */
function countsById(fake: FakeMultiChain): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of fake.streams.get('obligations')?.items ?? []) {
    const id = item.keys[0] ?? '';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** A store that grants every run the lease and never reports it lost: the lease broken. */
function leaselessStore(store: DynamoStore): DynamoStore {
  let token = 0;
  return Object.assign(Object.create(store) as DynamoStore, {
    acquireLease: async () => ++token,
    checkLease: async () => true,
    releaseLease: async () => undefined,
  });
}

describe('publish runs racing', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
      env: { CREDIT_BASE: '10000000' },
    });
    await registerDomain(cloud, 'uc', 'consumer');
    await registerDomain(cloud, 'up', 'provider', { threshold: 0.3 });
    dev = await enrol(cloud, 'uc', 'uc-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  const accept = (n: number) => acceptMany(cloud, dev, 'up', 'up-spd', n);

  /** Decide an outcome for each (defaulted), which puts it back in the publication queue. */
  async function decide(ids: string[]): Promise<void> {
    for (const id of ids) {
      const moved = await cloud.deps.store.transition(id, ['accepted'], 'defaulted', { closedAt: Date.now() }, { pending: true });
      assert.ok(moved, id);
    }
  }

  /** `RUNS` runs at once, again until nothing is pending; every run's summary. */
  async function drain(deps: Deps): Promise<PublishSummary[]> {
    const all: PublishSummary[] = [];
    for (let wave = 0; wave < 50; wave++) {
      all.push(...(await Promise.all(Array.from({ length: RUNS }, () => publishPending(deps)))));
      if ((await cloud.deps.store.listPendingPublication(1)).length === 0) return all;
    }
    throw new Error('the publication queue never drained');
  }

  it(`${ROUNDS} rounds of ${RUNS} runs at once: every obligation and every outcome on the ledger exactly once`, async () => {
    const node = await racyNode();
    try {
      const deps: Deps = { ...cloud.deps, ledger: node.ledger };
      let previous: string[] = [];
      const everyId: string[] = [];
      const everyOutcome: string[] = [];
      let busy = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const ids = await accept(PER_ROUND);
        await decide(previous); // outcomes of the last round race with this round's acceptances
        everyId.push(...ids);
        everyOutcome.push(...previous);
        const runs = await drain(deps);
        assert.ok(runs.every((r) => !r.deferred), JSON.stringify(runs));
        busy += runs.filter((r) => r.busy).length;
        previous = ids;
      }
      await decide(previous);
      everyOutcome.push(...previous);
      await drain(deps);

      const counts = countsById(node.fake);
      for (const id of everyId) assert.equal(counts.get(id), 1, `obligation ${id}`);
      for (const id of everyOutcome) assert.equal(counts.get(`outcome:${id}`), 1, `outcome ${id}`);
      assert.equal([...counts.values()].reduce((s, n) => s + n, 0), everyId.length + everyOutcome.length, 'nothing else on the stream');
      assert.ok(busy > 0, 'runs really overlapped (some found the lease held)');
      const stored = await Promise.all(everyId.map((id) => cloud.deps.store.getObligation(id)));
      assert.ok(stored.every((o) => o?.ledgerTxid !== undefined && o.outcomeTxid !== undefined));
    } finally {
      await node.server.close();
    }
  });

  it('the control: with the lease broken, the same runs put items on the ledger twice', async () => {
    const node = await racyNode();
    try {
      const deps: Deps = { ...cloud.deps, ledger: node.ledger, store: leaselessStore(cloud.deps.store) };
      const ids = await accept(PER_ROUND);
      await drain(deps);
      const counts = countsById(node.fake);
      const twice = ids.filter((id) => (counts.get(id) ?? 0) > 1);
      assert.ok(twice.length > 0, `expected duplicates without the lease: ${JSON.stringify(ids.map((id) => counts.get(id)))}`);
    } finally {
      await node.server.close();
    }
  });

  it('a run whose lease was taken over stops before its next ledger write (fencing)', async () => {
    const node = await racyNode();
    try {
      await accept(3);
      let writes = 0;
      const store = cloud.deps.store;
      // the lease expires under the run after its first write: another owner takes it
      const ledger = Object.assign(Object.create(node.ledger) as MultiChainLedger, {
        publishBatch: async (...args: Parameters<MultiChainLedger['publishBatch']>) => {
          const r = await node.ledger.publishBatch(...args);
          if (++writes === 1) await store.acquireLease('publish', 'someone-else', 60_000, Date.now() + 10 * 60_000);
          return r;
        },
      });
      // one item per batch, one batch at a time: the fence is checked before each batch
      const run = await publishPending({ ...cloud.deps, ledger }, { batchSize: 1, parallel: 1 });
      assert.equal(writes, 1);
      assert.equal(run.deferred, true, JSON.stringify(run));
      assert.equal(run.published, 1);
      // the other owner holds it: a new run does nothing until it expires
      assert.equal((await publishPending({ ...cloud.deps, ledger: node.ledger })).busy, true);
      const later = { ...cloud.deps, ledger: node.ledger, now: () => Date.now() + 20 * 60_000 };
      await publishPending(later);
      assert.equal((await cloud.deps.store.listPendingPublication(10)).length, 0);
    } finally {
      await node.server.close();
    }
  });
});
