/**
 * The publish job and the ledger's final refusals (adapters/ledger: Ledger.publishBatch):
 * - an item the ledger refuses for good (too large: LedgerRefusedError) is
 *   parked with its error, the items behind it are published in the same run,
 *   later runs no longer try it, and GET /health lists it;
 * - a ledger that refuses the hub itself (wrong chain name, publisher not in
 *   the wallet: LedgerMisconfiguredError) blocks the run with the reason, and
 *   every item stays queued, published once the configuration is fixed;
 * - an unavailable ledger defers, as before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { publishPending } from '../../service/publish.ts';
import type { BatchPublishResult, Ledger, PublishEntry, StreamName } from '../../adapters/ports.ts';
import { LedgerMisconfiguredError, LedgerRefusedError, UnavailableError } from '../../core/errors.ts';
import { acceptMany, enrol, registerDomain, type TestDevice } from '../integration/support.ts';

/** The cloud's ledger, with publishBatch answered by `batch` (which may call the real one). */
function ledgerWith(real: Ledger, batch: (stream: StreamName, entries: readonly PublishEntry[]) => Promise<BatchPublishResult[]>): Ledger {
  return Object.assign(Object.create(real) as Ledger, { publishBatch: batch });
}

describe('publish job: final refusals from the ledger', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 }, env: { CREDIT_BASE: '10000000' } });
    await registerDomain(cloud, 'rc', 'consumer');
    await registerDomain(cloud, 'rp', 'provider', { threshold: 0.3 });
    dev = await enrol(cloud, 'rc', 'rc-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  const accept = (n: number) => acceptMany(cloud, dev, 'rp', 'rp-spd', n);
  const onLedger = async (id: string) => (await cloud.deps.ledger.listByKey('obligations', id)).length;

  it('an item refused for good is parked with its error; the items behind it are published in the same run', async () => {
    const ids = await accept(4);
    const culprit = ids[1] as string;
    const real = cloud.deps.ledger;
    const ledger = ledgerWith(real, async (stream, entries) => {
      const out: BatchPublishResult[] = [];
      for (const e of entries) {
        if (e.id === culprit) out.push({ error: new LedgerRefusedError('MultiChain publishfrom: Transaction too large', { rpcCode: -8 }) });
        else out.push(await real.publish(stream, e.id, e.keys, e.data));
      }
      return out;
    });
    const run = await publishPending({ ...cloud.deps, ledger }, { batchSize: 2, parallel: 1 });
    assert.deepEqual({ published: run.published, parked: run.parked, deferred: run.deferred, blocked: run.blocked }, { published: 3, parked: 1, deferred: false, blocked: undefined });
    for (const id of ids) assert.equal(await onLedger(id), id === culprit ? 0 : 1, id);
    // parked: out of the queue, with its error, listed by the health route
    assert.deepEqual((await cloud.deps.store.listPendingPublication(50)).map((i) => i.id).filter((id) => ids.includes(id)), []);
    const parked = await cloud.deps.store.listParkedPublication();
    assert.deepEqual(parked.map((p) => [p.id, p.publishError?.code, p.publishError?.field]), [[culprit, 'F15_LEDGER_REFUSED', 'ledgerTxid']]);
    const health = await cloud.call<{ publication: { parked: { id: string; code: string; message: string }[] } }>('GET', '/health');
    assert.deepEqual(health.body.publication.parked.map((p) => [p.id, p.code]), [[culprit, 'F15_LEDGER_REFUSED']]);
    assert.match(health.body.publication.parked[0]?.message ?? '', /too large/);
    // a later run does not try it again
    let tried = 0;
    const counting = ledgerWith(real, async (stream, entries) => {
      tried += entries.length;
      return real.publishBatch(stream, entries);
    });
    assert.equal((await publishPending({ ...cloud.deps, ledger: counting })).published, 0);
    assert.equal(tried, 0);
  });

  it('a ledger that refuses the hub blocks the run with the reason; nothing is parked, and all publish once fixed', async () => {
    const ids = await accept(3);
    const parkedBefore = (await cloud.deps.store.listParkedPublication()).length;
    const misconfigured = ledgerWith(cloud.deps.ledger, async () => {
      throw new LedgerMisconfiguredError('MultiChain publishmultifrom: Wrong chain name', { rpcCode: -32600 });
    });
    const run = await publishPending({ ...cloud.deps, ledger: misconfigured });
    assert.deepEqual(run.blocked, { code: 'F16_LEDGER_MISCONFIGURED', message: 'MultiChain publishmultifrom: Wrong chain name' });
    assert.equal(run.parked, 0);
    assert.equal(run.deferred, false, 'not a silent retry');
    assert.equal((await cloud.deps.store.listParkedPublication()).length, parkedBefore);
    const queued = (await cloud.deps.store.listPendingPublication(50)).map((i) => i.id);
    for (const id of ids) assert.ok(queued.includes(id), `${id} still queued`);
    // unavailable: deferred, as before
    const down = ledgerWith(cloud.deps.ledger, async () => {
      throw new UnavailableError('MultiChain publishmultifrom failed after 5 attempts');
    });
    assert.equal((await publishPending({ ...cloud.deps, ledger: down })).deferred, true);
    // fixed
    const fixed = await publishPending(cloud.deps);
    assert.equal(fixed.published, 3);
    for (const id of ids) assert.equal(await onLedger(id), 1);
  });

  it('batches run in parallel under the lease and publish every acceptance before any outcome', async () => {
    const ids = await accept(7);
    for (const id of ids.slice(0, 3)) assert.ok(await cloud.deps.store.transition(id, ['accepted'], 'defaulted', { closedAt: Date.now() }, { pending: true }));
    const real = cloud.deps.ledger;
    const calls: { kinds: string[]; at: number }[] = [];
    let inFlight = 0;
    let most = 0;
    // the first batch waits (up to 2 s) for a second one to start: on a loaded
    // machine a short fixed delay could end before the next run's fence read does
    let second: () => void = () => {};
    const secondStarted = new Promise<void>((r) => (second = r));
    const ledger = ledgerWith(real, async (stream, entries) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      if (inFlight > 1) second();
      calls.push({ kinds: entries.map((e) => (e.id.startsWith('outcome:') ? 'outcome' : 'accepted')), at: calls.length });
      await (calls.length === 1 ? Promise.race([secondStarted, new Promise((r) => setTimeout(r, 2_000))]) : new Promise((r) => setTimeout(r, 5)));
      try {
        return await real.publishBatch(stream, entries);
      } finally {
        inFlight -= 1;
      }
    });
    const run = await publishPending({ ...cloud.deps, ledger }, { batchSize: 2, parallel: 3 });
    assert.deepEqual({ published: run.published, outcomes: run.outcomes }, { published: 7, outcomes: 3 });
    assert.ok(most > 1 && most <= 3, `batches in flight at once: ${most}`);
    const firstOutcome = calls.findIndex((c) => c.kinds.includes('outcome'));
    assert.ok(calls.slice(0, firstOutcome).every((c) => c.kinds.every((k) => k === 'accepted')));
    assert.ok(calls.slice(firstOutcome).every((c) => c.kinds.every((k) => k === 'outcome')), JSON.stringify(calls));
    for (const id of ids) assert.equal(await onLedger(id), 1);
  });
});
