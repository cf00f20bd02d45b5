/**
 * Periodic jobs do O(new) work, not O(history): settle recovery reads only
 * unfinished settlements (a sparse index) and publishes nothing for finished
 * ones; the payment watcher resumes at its cursor in the provider's
 * `settlements` key and reads only new records (and those still waiting for
 * their payment). Counted with wrappers around the ledger and the store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { settleDomain } from '../../service/settle.ts';
import { watchAll } from '../../service/watch.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';

interface Counts {
  calls: Record<string, number>;
  /** Items (array elements) returned, per method. */
  items: Record<string, number>;
}

/** A proxy counting every method call of `target` and the length of every array it returns. */
function counting<T extends object>(target: T): { proxy: T; counts: Counts; reset: () => void } {
  const counts: Counts = { calls: {}, items: {} };
  const proxy = new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      return async (...args: unknown[]) => {
        counts.calls[prop] = (counts.calls[prop] ?? 0) + 1;
        const out = (await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args)) as unknown;
        if (Array.isArray(out)) counts.items[prop] = (counts.items[prop] ?? 0) + out.length;
        return out;
      };
    },
  });
  const reset = () => {
    counts.calls = {};
    counts.items = {};
  };
  return { proxy, counts, reset };
}

describe('cursors instead of history scans', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 }, env: { CREDIT_BASE: '10000000' } });
    await registerDomain(cloud, 'kc', 'consumer');
    await registerDomain(cloud, 'kp', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'kq', 'provider', { threshold: 0.3 });
    await cloud.fund('kc', 2);
    dev = await enrol(cloud, 'kc', 'kc-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  /** Buy `n` from each provider, publish, settle, confirm, watch: all fulfilled. */
  async function round(n: number, deps: Deps = cloud.deps): Promise<void> {
    for (let i = 0; i < n; i++) {
      for (const p of ['kp', 'kq']) assert.equal((await buy(cloud, dev, p, `${p}-spd`)).res.status, 201);
    }
    await cloud.runJob('publish');
    const s = await settleDomain(deps, 'kc');
    assert.equal(s.deferred, undefined, JSON.stringify(s));
    await cloud.regtest.mine(1);
    await watchAll(deps);
    const open = (await cloud.deps.store.listByConsumer('kc')).filter((o) => o.status !== 'fulfilled');
    assert.deepEqual(open, []);
  }

  it('after a history of settlements, a settle run with nothing to do reads no settlement and writes nothing on the ledger', async () => {
    for (let r = 0; r < 4; r++) await round(2);
    assert.equal((await cloud.deps.store.listSettlements('kc')).length, 4, 'a history: one settlement per round');

    const ledger = counting(cloud.deps.ledger);
    const store = counting(cloud.deps.store);
    const deps: Deps = { ...cloud.deps, ledger: ledger.proxy, store: store.proxy };
    const idle = await settleDomain(deps, 'kc');
    assert.deepEqual(idle.settlements, []);
    assert.equal(idle.recovered, 0);
    assert.equal(ledger.counts.calls['publish'] ?? 0, 0, 'no record re-published');
    assert.equal(store.counts.calls['listOpenSettlements'], 1);
    assert.equal(store.counts.items['listOpenSettlements'] ?? 0, 0, 'no finished settlement read');
    assert.equal(store.counts.calls['listSettlements'] ?? 0, 0, 'the history is never listed');

    // one new round: exactly one settlement's two records (intent, broadcast) go on the ledger
    ledger.reset();
    store.reset();
    await round(1, deps);
    assert.equal(ledger.counts.calls['publish'], 2, 'the intent and broadcast records of the one new settlement');
    assert.equal(store.counts.items['listOpenSettlements'] ?? 0, 0);
  });

  it('the watcher reads only the settlement records that are new since its last run', async () => {
    const ledger = counting(cloud.deps.ledger);
    const deps: Deps = { ...cloud.deps, ledger: ledger.proxy };
    await watchAll(deps);
    assert.equal(ledger.counts.items['listByKeyFrom'] ?? 0, 0, 'nothing new: no record read');
    assert.equal(ledger.counts.calls['listByKey'] ?? 0, 0, 'the whole key is never listed');

    // a new settlement names both providers: each watcher reads its two new records (intent, broadcast), once
    ledger.reset();
    for (const p of ['kp', 'kq']) assert.equal((await buy(cloud, dev, p, `${p}-spd`)).res.status, 201);
    await cloud.runJob('publish');
    await settleDomain(cloud.deps, 'kc');
    await watchAll(deps); // payment not confirmed yet: both records wait
    assert.equal(ledger.counts.items['listByKeyFrom'], 4);
    ledger.reset();
    await cloud.regtest.mine(1);
    await watchAll(deps); // re-checks only the waiting record of each (its other phase was seen with it); both fulfilled
    assert.equal(ledger.counts.items['listByKeyFrom'], 2, JSON.stringify(ledger.counts));
    assert.deepEqual((await cloud.deps.store.listByConsumer('kc')).filter((o) => o.status !== 'fulfilled'), []);
    ledger.reset();
    await watchAll(deps);
    assert.equal(ledger.counts.items['listByKeyFrom'] ?? 0, 0, 'done records are not read again');
  });
});
