/**
 * A payer's newest fulfilled evidence sits on the escrow shard its obligation drew from until a
 * rebalance folds it into the counters item, which is what an acceptance reads. An acceptance
 * that would refuse for reputation on the counters item alone judges again on the counters with
 * every shard's evidence (service/accept.ts), so a payer who has just paid its way back above a
 * provider's threshold is not refused until the next rebalance. No job runs here: nothing folds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { evidenceDelta, reputationOf } from '../../core/reputation.ts';
import { credit } from '../../service/evidence.ts';
import { limitFn } from '../../service/credit.ts';
import { generateKeyPair } from '../../core/keys.ts';
import { acceptMany, buy, enrol, registerDomain, type TestDevice } from './support.ts';

const THRESHOLD = 0.45; // a newcomer (0.5) passes it

describe('an acceptance judges reputation on evidence not yet folded into the counters item', () => {
  let cloud: LocalCloud;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0, rebalance: 0 } });
    await registerDomain(cloud, 'fp', 'provider', { threshold: THRESHOLD });
  });
  after(async () => {
    await cloud?.stop();
  });

  /** A consumer domain with one accepted obligation and a default of 30 000 sats on its counters item (reputation 1/5). */
  async function defaulter(domain: string): Promise<{ dev: TestDevice; id: string }> {
    await registerDomain(cloud, domain, 'consumer');
    const dev = await enrol(cloud, domain, `${domain}-d1`);
    const [id] = (await acceptMany(cloud, dev, 'fp', 'fp-spd-1', 1)) as [string];
    const now = Date.now();
    const { sScaled } = evidenceDelta('defaulted', 30_000, now, 1, cloud.deps.config.reputation);
    const { applied } = await cloud.deps.store.applyCounters(domain, `test:default:${domain}`, { sScaled }, { limit: limitFn(cloud.deps.config), now });
    assert.ok(applied);
    return { dev, id };
  }

  /** The reputation an acceptance reads in its batched read: the counters item alone. */
  async function onCountersItem(domain: string): Promise<number> {
    const read = await cloud.deps.store.readForAcceptance({
      obligationId: 'none',
      offerId: 'none',
      consumerDomain: domain,
      consumerDevice: `${domain}-d1`,
      shard: 0,
      deviceKey: generateKeyPair().publicKey,
    });
    return reputationOf(read.counters, Date.now(), cloud.deps.config.reputation);
  }

  /** `sats` of fulfilled evidence for obligation `id`, closed into the escrow shard it drew from (not folded). */
  async function paid(domain: string, id: string, sats: number): Promise<void> {
    const { store } = cloud.deps;
    const item = await store.getObligation(id);
    assert.ok(item);
    const now = Date.now();
    const { rScaled } = evidenceDelta('fulfilled', sats, now, 1, cloud.deps.config.reputation);
    const closed = await store.closeObligation(item, ['accepted'], 'fulfilled', { closedAt: now, weight: 1 }, { outstanding: -item.amount, rScaled, paidVolume: sats }, {
      ...credit(cloud.deps, item),
      counted: true,
    });
    assert.ok(closed);
    assert.ok((await onCountersItem(domain)) < 0.21, 'the counters item alone still has the default only (nothing folded)');
  }

  it('accepts a payer whose fulfilled evidence, still on its escrow shard, lifts it over the threshold', async () => {
    const { dev, id } = await defaulter('fa');
    await paid('fa', id, 200_000);
    const whole = reputationOf(await cloud.deps.store.getCounters('fa'), Date.now(), cloud.deps.config.reputation);
    assert.ok(whole > THRESHOLD, `with the shards' evidence: ${whole}`);

    const { res } = await buy(cloud, dev, 'fp', 'fp-spd-1');
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });

  it("still refuses a payer whom every shard's evidence leaves under the threshold, with that reputation", async () => {
    const { dev, id } = await defaulter('fb');
    await paid('fb', id, 10_000); // r = 1, s = 3: (1 + 1) / (1 + 3 + 2)
    const { res } = await buy(cloud, dev, 'fp', 'fp-spd-1');
    assert.equal(res.status, 403, JSON.stringify(res.body));
    const error = res.body.error as { code: string; details?: { reputation?: number } } | undefined;
    assert.equal(error?.code, 'T01_REPUTATION_TOO_LOW');
    assert.ok(Math.abs((error?.details?.reputation ?? 0) - 2 / 6) < 0.01, JSON.stringify(error));
  });

  it('refuses a payer with nothing on its shards on the counters item alone', async () => {
    const { dev } = await defaulter('fc');
    const { res } = await buy(cloud, dev, 'fp', 'fp-spd-1');
    assert.equal(res.status, 403, JSON.stringify(res.body));
    const error = res.body.error as { code: string; details?: { reputation?: number } } | undefined;
    assert.equal(error?.code, 'T01_REPUTATION_TOO_LOW');
    assert.ok(Math.abs((error?.details?.reputation ?? 0) - 1 / 5) < 0.01, JSON.stringify(error));
  });
});
