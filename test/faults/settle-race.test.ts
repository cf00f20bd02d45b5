/**
 * Overlapping runs under load: every round, one paying consumer domain's
 * obligations (already past dueBy, within the grace) meet many settle runs
 * and many watcher runs at once, from several callers. However they
 * interleave, nothing is paid twice and a paying domain is never defaulted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { settleAll, settleDomain } from '../../service/settle.ts';
import { watchAll } from '../../service/watch.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { receivedBy } from './support.ts';

const ROUNDS = 20;
const DUE_IN_MS = 60_000;
/** The watchers' clock: every obligation already past dueBy, within the grace (ACCEPTED_GRACE_MS below). */
const LATE_BY_MS = DUE_IN_MS + 1_000;

describe('settle and watch racing', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;
  let late: Deps;

  before(async () => {
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, mine: 0 },
      env: { CREDIT_BASE: '10000000', ACCEPTED_GRACE_MS: '120000' },
    });
    await registerDomain(cloud, 'rc', 'consumer');
    await registerDomain(cloud, 'rp', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'rq', 'provider', { threshold: 0.3 });
    await cloud.fund('rc', 10); // many coins: concurrent runs, were they allowed to, could each fund a payment
    dev = await enrol(cloud, 'rc', 'rc-dev');
    late = { ...cloud.deps, now: () => Date.now() + LATE_BY_MS };
  });
  after(async () => {
    await cloud?.stop();
  });

  it(`${ROUNDS} rounds of 5 settle runs (two callers) and 3 watcher runs at once: zero double payments, zero defaults`, async () => {
    let owed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of ['rp', 'rq', 'rp']) {
        const { ob, res } = await buy(cloud, dev, p, `${p}-spd`, { dueInMs: DUE_IN_MS });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        owed += ob.body.amount;
        // the last one is published while the runs below are under way: they see different pending sets
        if (p === 'rq') await cloud.runJob('publish');
      }
      const runs = await Promise.all([
        settleDomain(cloud.deps, 'rc'),
        settleAll(cloud.deps),
        cloud.runJob('publish').then(() => []),
        settleDomain(cloud.deps, 'rc'),
        watchAll(late),
        settleAll(cloud.deps),
        watchAll(late),
        settleDomain(cloud.deps, 'rc'),
        watchAll(late),
      ]);
      const failures = runs.flat().filter((r) => 'deferred' in r && r.deferred !== undefined && !/another run is settling/.test(r.deferred));
      assert.deepEqual(failures, [], `round ${round}`);
      await cloud.regtest.mine(1);
      await Promise.all([watchAll(late), watchAll(late)]);
    }
    await settleDomain(cloud.deps, 'rc');
    await cloud.regtest.mine(1);
    await watchAll(late);

    const obligations = await cloud.deps.store.listByConsumer('rc');
    assert.equal(obligations.length, ROUNDS * 3);
    const byStatus = (s: string) => obligations.filter((o) => o.status === s).length;
    assert.equal(byStatus('defaulted'), 0, 'a paying domain is never defaulted');
    assert.equal(byStatus('fulfilled'), ROUNDS * 3);

    // paid exactly what was owed: no obligation in two transactions, no transaction counted twice
    const received = [...(await receivedBy(cloud, 'rp')), ...(await receivedBy(cloud, 'rq'))];
    assert.equal(received.reduce((s, p) => s + p.amount, 0), owed, 'total paid = total owed');
    const settlements = (await cloud.deps.store.listSettlements('rc')).filter((s) => s.phase !== 'failed');
    const ids = settlements.flatMap((s) => s.outputs.flatMap((o) => o.obligationIds));
    assert.equal(new Set(ids).size, ids.length, 'each obligation in one settlement');
    assert.equal(ids.length, ROUNDS * 3);
  });
});
