/**
 * Evidence of an obligation closed by a plain status move, as versions before
 * closeObligation closed them (status first, counters after): the watcher's
 * completion (recordEvidence) applies its counters change once, keyed by event,
 * and marks it counted; an obligation closed by closeObligation is not applied again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { closeObligation, recordEvidence } from '../../service/evidence.ts';
import { acceptMany, enrol, registerDomain } from './support.ts';

describe('evidence of closed obligations', () => {
  let cloud: LocalCloud;
  let ids: string[];

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0, rebalance: 0 } });
    await registerDomain(cloud, 'ec', 'consumer');
    await registerDomain(cloud, 'ep', 'provider');
    const dev = await enrol(cloud, 'ec', 'ec-d1');
    ids = await acceptMany(cloud, dev, 'ep', 'ep-spd-1', 2);
  });
  after(async () => {
    await cloud?.stop();
  });

  it('an obligation closed by a plain status move gets its counters change once, then is counted', async () => {
    const { store } = cloud.deps;
    const [id] = ids as [string];
    const before = await store.getCounters('ec');
    const closed = await store.transition(id, ['accepted'], 'defaulted', { closedAt: Date.now() });
    assert.ok(closed);
    assert.equal(closed.released, undefined);
    assert.equal((await store.getCounters('ec')).outstanding, before.outstanding, 'a plain move changes no counter');
    await Promise.all([recordEvidence(cloud.deps, closed), recordEvidence(cloud.deps, closed)]);
    await recordEvidence(cloud.deps, closed);
    const after = await store.getCounters('ec');
    assert.equal(after.outstanding, before.outstanding - closed.amount, 'released once');
    assert.ok(after.sScaled > before.sScaled, 'the default counts');
    assert.equal((await store.getObligation(id))?.counted, true);
    const once = after.sScaled;
    await recordEvidence(cloud.deps, { ...closed, counted: false });
    assert.equal((await store.getCounters('ec')).sScaled, once, 'its event marker stops a second application');
  });

  it('an obligation closed by closeObligation is released in its close, and recordEvidence applies nothing more', async () => {
    const { store } = cloud.deps;
    const id = ids[1] as string;
    const item = await store.getObligation(id);
    assert.ok(item);
    const before = await store.getCounters('ec');
    const closed = await closeObligation(cloud.deps, item, ['accepted'], 'defaulted', { closedAt: Date.now() });
    assert.ok(closed);
    assert.deepEqual([closed.counted, closed.released], [true, undefined]);
    const after = await store.getCounters('ec');
    assert.equal(after.outstanding, before.outstanding - item.amount);
    // as the jobs read it back: counted (its closed index partition says so), so nothing more is applied
    const stored = await store.getObligation(id);
    assert.equal(stored?.counted, true);
    await recordEvidence(cloud.deps, stored!);
    assert.deepEqual(await store.getCounters('ec'), after);
    assert.equal(await closeObligation(cloud.deps, item, ['accepted'], 'defaulted', { closedAt: Date.now() }), undefined, 'closed once');
  });
});
