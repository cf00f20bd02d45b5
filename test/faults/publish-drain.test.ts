/**
 * One publish run drains the queue page by page (issue 11: publication was
 * capped at one page of 200 obligations per scheduled run, 200 a minute):
 * - a backlog larger than a page is published in one run, each item once;
 * - a spent budget stops reading pages; the run says so and counts what is left;
 * - a pending index that still lists obligations this run already published
 *   (DynamoDB's GSIs are eventually consistent) neither makes the run publish
 *   them again nor keeps it reading forever;
 * - the budget must fit in the lease (configuration refused otherwise).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { publishPending } from '../../service/publish.ts';
import { loadConfig } from '../../functions/shared/config.ts';
import type { DynamoStore, ObligationItem } from '../../adapters/store/dynamo.ts';
import { acceptMany, enrol, registerDomain, type TestDevice } from '../integration/support.ts';

describe('publish job: draining the queue', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 }, env: { CREDIT_BASE: '10000000' } });
    await registerDomain(cloud, 'dc', 'consumer');
    await registerDomain(cloud, 'dp', 'provider', { threshold: 0.3 });
    dev = await enrol(cloud, 'dc', 'dc-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  const accept = (n: number) => acceptMany(cloud, dev, 'dp', 'dp-spd', n);
  const onLedger = async (id: string) => (await cloud.deps.ledger.listByKey('obligations', id)).length;
  const pending = async () => (await cloud.deps.store.listPendingPublication(1_000)).length;

  it('publishes a backlog larger than a page in one run, each obligation once; a short page ends it', async () => {
    const ids = await accept(23);
    let reads = 0;
    const store = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      listPendingPublication: (limit?: number) => {
        reads += 1;
        return cloud.deps.store.listPendingPublication(limit);
      },
    });
    const run = await publishPending({ ...cloud.deps, store }, { limit: 5, batchSize: 2, parallel: 3 });
    assert.equal(run.published, 23, JSON.stringify(run));
    assert.equal(run.pages, 5);
    // 5 + 5 + 5 + 5 + 3: the short fifth page was all that was waiting, so no sixth read
    // (a steady trickle of acceptances costs one page per scheduled run, not a run that never ends)
    assert.equal(reads, 5);
    assert.equal(run.backlog, 0);
    assert.equal(run.duplicates, 0);
    assert.equal(run.budgetSpent, undefined);
    for (const id of ids) assert.equal(await onLedger(id), 1, id);
    assert.equal(await pending(), 0);
  });

  it('stops reading pages once its budget is spent, and says how much is left', async () => {
    const ids = await accept(12);
    const first = await publishPending(cloud.deps, { limit: 5, budgetMs: 0 });
    assert.equal(first.pages, 1, JSON.stringify(first));
    assert.equal(first.published, 5);
    assert.equal(first.budgetSpent, true);
    assert.equal(first.backlog, 5, 'one more page read: a lower bound of what is left');
    const second = await publishPending(cloud.deps, { limit: 5 });
    assert.equal(second.published, 7, JSON.stringify(second));
    assert.equal(second.budgetSpent, undefined);
    for (const id of ids) assert.equal(await onLedger(id), 1, id);
  });

  it('an index still listing what the run published does not make it publish twice, nor read forever', async () => {
    const ids = await accept(12);
    // the first two of the first page stay listed (as read then: unpublished) on every later read
    let stale: ObligationItem[] | undefined;
    let reads = 0;
    const store = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      listPendingPublication: async (limit?: number) => {
        reads += 1;
        const fresh = await cloud.deps.store.listPendingPublication(limit);
        if (!stale) {
          stale = fresh.slice(0, 2);
          return fresh;
        }
        const ahead = stale.filter((s) => !fresh.some((f) => f.id === s.id));
        return [...ahead, ...fresh].slice(0, limit);
      },
    });
    const run = await publishPending({ ...cloud.deps, store }, { limit: 5 });
    assert.equal(run.published, 12, JSON.stringify(run));
    assert.equal(run.duplicates, 0, 'nothing this run published was sent again');
    assert.ok(reads <= 6, `${reads} reads of the pending index`);
    for (const id of ids) assert.equal(await onLedger(id), 1, id);

    // an index that lists only what this run already published: the run ends there
    await accept(3);
    let frozen: ObligationItem[] | undefined;
    const stuck = Object.assign(Object.create(cloud.deps.store) as DynamoStore, {
      listPendingPublication: async (limit?: number) => (frozen ??= await cloud.deps.store.listPendingPublication(limit)),
    });
    const ended = await publishPending({ ...cloud.deps, store: stuck }, { limit: 5 });
    assert.equal(ended.published, 3, JSON.stringify(ended));
    assert.equal(ended.pages, 1);
    assert.equal(ended.duplicates, 0);
  });

  it('refuses a budget that does not fit in the publication lease', () => {
    const base = { TABLE_NAME: 't', BITCOIN_RPC_URL: 'http://127.0.0.1:1', LEDGER_KIND: 'embedded' };
    assert.throws(() => loadConfig({ ...base, PUBLISH_BUDGET_MS: '120000', PUBLISH_LEASE_MS: '120000' }), /PUBLISH_BUDGET_MS \(120000\) must be less than PUBLISH_LEASE_MS/);
    assert.equal(loadConfig(base).publishBudgetMs, 40_000);
    assert.equal(loadConfig(base).publishParallel, 4);
  });
});
