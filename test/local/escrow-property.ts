/**
 * The credit bound under concurrency, as a fast-check property over the store's
 * escrow (adapters/store/dynamo.ts), run on the embedded stand-in
 * (test/local/escrow.test.ts) and on DynamoDB Local (test/dynamodb-local/store.test.ts).
 *
 * One consumer domain; many acceptances in parallel, each doing what
 * service/accept.ts does (read one random shard with the batch read, rebalance
 * when it is short, commit the transaction, rebalance and retry on a 'credit'
 * refusal), while closes of accepted obligations (DynamoStore.closeObligation, as
 * the watcher and the follower run it: fulfilments release their credit, defaults
 * release it and lower the limit, each in the transaction that closes it, and a
 * second close of the same obligation applies nothing), defaults learnt as bare
 * evidence events (applyCounters),
 * stand-alone rebalances and the scheduled rebalancer (DynamoStore.topUp, told
 * every grant lapses soon so that it rebalances on every pass) run at the same
 * time, and a watcher takes serialisable
 * snapshots (TransactGetItems). Every snapshot must satisfy:
 *   - every shard's free credit ≥ 0;
 *   - outstanding + Σ free ≤ limit, or Σ free = 0 (a default may drop the limit
 *     below what is already outstanding; then nothing more can be drawn);
 * and at the end outstanding = Σ accepted − Σ released, exactly.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import fc from 'fast-check';
import { ConflictError } from '../../core/errors.ts';
import type { CreditLimitFn, DynamoStore, ObligationItem } from '../../adapters/store/dynamo.ts';
import type { AcceptedObligation, Offer, Signed } from '../../core/types.ts';

const uid = () => randomBytes(6).toString('hex');

export interface EscrowRun {
  /** Credit limit before any default. */
  base: number;
  amounts: number[];
  /** Indexes (into amounts) of accepted obligations to close while the run goes on: fulfilled when even, defaulted (lowering the limit) when odd. */
  releases: number[];
  /** How many defaults (each lowers the limit by `defaultCut`) run concurrently. */
  defaults: number;
  defaultCut: number;
  rebalancers: number;
  /** How many scheduled-rebalancer loops (DynamoStore.topUp, as service/rebalance.ts runs it) run concurrently. */
  topUps: number;
}

export const escrowRunArb: fc.Arbitrary<EscrowRun> = fc.record({
  base: fc.integer({ min: 0, max: 40_000 }),
  amounts: fc.array(fc.integer({ min: 1, max: 6_000 }), { minLength: 8, maxLength: 40 }),
  releases: fc.array(fc.nat(39), { maxLength: 10 }),
  defaults: fc.integer({ min: 0, max: 3 }),
  defaultCut: fc.integer({ min: 0, max: 8_000 }),
  rebalancers: fc.integer({ min: 0, max: 3 }),
  topUps: fc.integer({ min: 0, max: 2 }),
});

/** limit = base − cut · sScaled (a default adds 1 to sScaled), never below 0. */
const limitOf = (base: number, cut: number): CreditLimitFn => (c) => Math.max(0, base - cut * c.sScaled);

export async function runEscrow(store: DynamoStore, run: EscrowRun, now = Date.now()): Promise<void> {
  const domain = `c-${uid()}`;
  const limit = limitOf(run.base, run.defaultCut);
  const accepted: (ObligationItem & { shard: number })[] = [];
  let closedAsDefaults = 0;
  const released = new Set<string>();
  let stop = false;
  const violations: string[] = [];

  const watch = (async () => {
    while (!stop) {
      const s = await store.creditSnapshot(domain);
      const free = s.shards.reduce((t, x) => t + x.free, 0);
      const L = limit(s.counters, now);
      if (s.shards.some((x) => x.free < 0)) violations.push(`negative free ${JSON.stringify(s.shards)}`);
      if (!(s.counters.outstanding + free <= L || free === 0)) violations.push(`outstanding ${s.counters.outstanding} + free ${free} > limit ${L}`);
      await new Promise((r) => setImmediate(r));
    }
  })();

  const accept = async (amount: number): Promise<void> => {
    const id = uid();
    const offerId = uid();
    const device = `d-${uid()}`;
    const offer: Signed<Offer> = {
      body: { version: 1, offerId, providerDomain: 'p', providerDevice: 'p-1', service: 's', price: amount, payTo: 'R', consumer: `${domain}/${device}`, expiresAt: now + 60_000 },
      sig: 'x',
      by: 'p',
    };
    await store.putOffer(offer);
    let shard = randomInt(store.creditShards);
    const read = await store.readForAcceptance({ obligationId: id, offerId, consumerDomain: domain, consumerDevice: device, shard });
    let free = read.shard.until >= now ? read.shard.free : 0;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (free < amount) {
        const r = await store.rebalance(domain, { limit, now, prefer: shard, need: amount });
        if ((r.free[shard] ?? 0) < amount) {
          const best = r.free.reduce((bi, f, i, all) => (f > (all[bi] ?? 0) ? i : bi), shard);
          if ((r.free[best] ?? 0) < amount) return; // over credit: refused
          shard = best;
        }
      }
      const item: ObligationItem & { shard: number } = {
        id,
        status: 'accepted',
        accepted: { obligation: { id }, acceptance: {} } as unknown as AcceptedObligation,
        consumerDomain: domain,
        consumerDevice: device,
        providerDomain: 'p',
        amount,
        payTo: 'R',
        acceptedAt: now,
        dueBy: now + 60_000,
        shard,
      };
      const out = await store.commitAcceptance(item, { seq: 1, prev: 'genesis' }, offerId, now);
      if (out === 'accepted') {
        accepted.push(item);
        return;
      }
      assert.equal(out, 'credit', `only credit can refuse here, got ${out}`);
      free = 0;
    }
  };

  const release = async (i: number): Promise<void> => {
    // wait until that acceptance exists (it may be refused: then nothing to release)
    for (let tries = 0; tries < 50 && !accepted[i % Math.max(1, accepted.length)]; tries++) await new Promise((r) => setTimeout(r, 2));
    const a = accepted[i % Math.max(1, accepted.length)];
    if (!a || released.has(a.id)) return;
    released.add(a.id);
    const opts = { limit, now, shard: a.shard, counted: true };
    const close = () =>
      i % 2 === 0
        ? store.closeObligation(a, ['accepted', 'settling'], 'fulfilled', { closedAt: now }, { outstanding: -a.amount }, opts)
        : store.closeObligation(a, ['accepted', 'settling'], 'defaulted', { closedAt: now }, { outstanding: -a.amount, sScaled: 1 }, opts);
    // the watcher and the follower close it at the same time: once
    const [first, second] = await Promise.all([close(), close()]);
    assert.equal([first, second].filter((x) => x !== undefined).length, 1, 'closed once');
    if (i % 2 === 1) closedAsDefaults += 1;
    // a retried close changes nothing (the obligation is closed)
    assert.equal(await close(), undefined);
  };

  // the scheduled rebalancer: passes over this domain until the acceptances are done
  let done = false;
  const topUp = async (): Promise<void> => {
    for (let pass = 0; pass < 200 && !done; pass++) {
      const entry = (await store.listCreditDomains()).find((e) => e.domain === domain);
      // on contention the job gives up for this run (ConflictError) and tries again on the next, as rebalanceAll does
      if (entry) await store.topUp(domain, entry, { limit, now, refreshBeforeMs: Number.MAX_SAFE_INTEGER, idleMs: Number.MAX_SAFE_INTEGER }).catch((e: unknown) => {
        if (!(e instanceof ConflictError)) throw e;
      });
      await new Promise((r) => setTimeout(r, randomInt(10, 40)));
    }
  };

  const defaults = Array.from({ length: run.defaults }, (_, i) => store.applyCounters(domain, `default:${i}`, { sScaled: 1 }, { limit, now }));

  try {
    await store.rebalance(domain, { limit, now });
    const toppingUp = Array.from({ length: run.topUps }, topUp);
    await Promise.all([
      ...run.amounts.map(accept),
      ...run.releases.map(release),
      ...defaults,
      ...Array.from({ length: run.rebalancers }, () => store.rebalance(domain, { limit, now })),
    ]);
    done = true;
    await Promise.all(toppingUp);
  } finally {
    stop = true;
    await watch;
  }
  assert.deepEqual(violations, []);
  const end = await store.creditSnapshot(domain);
  const expected = accepted.reduce((t, a) => t + a.amount, 0) - accepted.filter((a) => released.has(a.id)).reduce((t, a) => t + a.amount, 0);
  assert.equal(end.counters.outstanding, expected, 'outstanding = accepted − released, exactly');
  assert.ok(end.counters.outstanding <= Math.max(limit(end.counters, now), run.base), 'never more outstanding than the limit');
  assert.equal(end.counters.sScaled, run.defaults + closedAsDefaults);
}
