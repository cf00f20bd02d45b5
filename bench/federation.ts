/**
 * Federation figures (issue "Federation"): three hubs in one process, each with its own
 * table and ledger node (items reach the other nodes after LEDGER_DELAY_MS), sharing one
 * regtest; every job on its schedule. Consumers at each hub buy from providers at the two
 * other hubs over their HTTP APIs; one consumer never pays. Measured from the hubs' own
 * stores once everything has ended everywhere:
 * - cross-hub obligations accepted, fulfilled, defaulted; defaults of paying domains;
 * - the largest difference of a domain's reputation between hubs (read at one instant);
 * - outcome propagation lag: decided at the provider's hub → applied by another hub's
 *   follower (followedAt − closedAt), p50/p99;
 * - exposure visibility lag: accepted at one hub → in the consumer's outstanding at
 *   another (learntAt − acceptedAt), p50/p99, and the largest amount a hub did not yet
 *   see, sampled every 100 ms during the run — the cross-hub part of the credit bound;
 * - invalid records skipped: 4 forged records (3 from a rogue node, 1 from a provider's hub
 *   node with a stranger's signature), counted at every hub's follower.
 */
import { generateKeyPair } from '../core/keys.ts';
import { createOutcome } from '../core/records.ts';
import { reputationOf } from '../core/reputation.ts';
import type { Json } from '../core/types.ts';
import { startFederation } from '../local/federation.ts';
import { percentile } from '../local/stats.ts';
import { ledgerKeys } from '../service/ledger-records.ts';
import { buy, enrol, registerDomain, sleep, type TestDevice } from '../test/integration/support.ts';
import type { BenchRow } from './types.ts';

const LEDGER_DELAY_MS = 150;
const SCHEDULE = { publish: 250, watch: 500, settle: 1_000, follow: 500, mine: 500 };
const PURCHASES = 6;
const CONDITIONS = `3 hubs, ledger delay ${LEDGER_DELAY_MS} ms, jobs publish/follow/watch/settle every ${SCHEDULE.publish}/${SCHEDULE.follow}/${SCHEDULE.watch}/${SCHEDULE.settle} ms`;

export async function benchFederation(): Promise<BenchRow[]> {
  const fed = await startFederation({ hubs: 3, ledgerDelayMs: LEDGER_DELAY_MS, schedule: SCHEDULE, env: { SETTLEMENT_GRACE_MS: '60000' } });
  try {
    const hubs = fed.hubs;
    const at = (i: number) => hubs[i % 3]!;
    // consumer c<i> and provider p<i> at hub i; cx at hub 0 never pays
    for (let i = 0; i < 3; i++) {
      await registerDomain(at(i), `p${i}`, 'provider', { threshold: 0.3 });
      await registerDomain(at(i), `c${i}`, 'consumer');
      await at(i).fund(`c${i}`);
    }
    await registerDomain(at(0), 'cx', 'consumer', { autoSettle: false });
    const devices: { dev: TestDevice; hub: number }[] = [];
    for (let i = 0; i < 3; i++) devices.push({ dev: await enrol(at(i), `c${i}`, `c${i}-d`), hub: i });
    const defaulter = await enrol(at(0), 'cx', 'cx-d');
    await sleep(LEDGER_DELAY_MS * 4);

    const consumers = ['c0', 'c1', 'c2', 'cx'];
    let maxUnseen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const d of consumers) {
          // true exposure: obligations accepted at each hub and not ended there
          let total = 0;
          for (const h of hubs) {
            for (const o of await h.deps.store.listByConsumer(d)) {
              if (o.origin === undefined && (o.status === 'accepted' || o.status === 'settling')) total += o.amount;
            }
          }
          for (const h of hubs) maxUnseen = Math.max(maxUnseen, total - (await h.deps.store.getCounters(d)).outstanding);
        }
        await sleep(100);
      }
    })();

    let accepted = 0;
    for (let round = 0; round < PURCHASES; round++) {
      await Promise.all([
        ...devices.map(async ({ dev, hub }) => {
          const p = (hub + 1 + (round % 2)) % 3; // the two other hubs in turn
          const { res } = await buy(at(p), dev, `p${p}`, `p${p}-spd`, { dueInMs: 20_000 });
          if (res.status === 201) accepted += 1;
        }),
        round < 3
          ? buy(at(1 + (round % 2)), defaulter, `p${1 + (round % 2)}`, `p${1 + (round % 2)}-spd`, { dueInMs: 2_000 }).then(({ res }) => {
              if (res.status === 201) accepted += 1;
            })
          : Promise.resolve(),
      ]);
      await sleep(300);
    }

    // until every obligation has ended at every hub
    const deadline = Date.now() + 90_000;
    for (;;) {
      let open = 0;
      for (const h of hubs) for (const d of consumers) open += (await h.deps.store.listByConsumer(d)).filter((o) => o.status === 'accepted' || o.status === 'settling').length;
      if (open === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
    await sleep(SCHEDULE.publish + LEDGER_DELAY_MS + 2 * SCHEDULE.follow);
    sampling = false;
    await sampler;

    // forged records from a node nobody granted a domain to
    const rogue = fed.network.node('rogue-hub');
    const stranger = generateKeyPair();
    const some = (await at(1).deps.store.listByConsumer('c0'))[0];
    const invalidBefore = hubs.map((h) => h.followTotals['invalid'] ?? 0);
    if (some) {
      const forged = createOutcome(
        { version: 1, kind: 'outcome', obligationId: some.id, outcome: 'defaulted', consumerDomain: 'c0', providerDomain: some.providerDomain, amount: some.amount, at: Date.now(), txid: null },
        stranger.privateKey,
      );
      await rogue.publish('obligations', ledgerKeys.outcome(some.id), [ledgerKeys.consumer('c0')], forged as unknown as Json);
      // the same from the provider's own hub node: right publisher, wrong signature
      await fed.ledgers[1]?.publish('obligations', ledgerKeys.outcome(some.id), [ledgerKeys.consumer('c0')], forged as unknown as Json);
    }
    await rogue.publish('settlements', 'settlement:junk:intent', [ledgerKeys.provider('p1')], { body: { outputs: [null] }, sig: 'AA', by: 'c0' });
    await rogue.publish('domains', 'domain:evil', [], { body: { domain: 'evil' }, sig: 'AA', by: 'evil' });
    await sleep(LEDGER_DELAY_MS + 3 * SCHEDULE.follow);
    const invalidSkipped = Math.min(...hubs.map((h, i) => (h.followTotals['invalid'] ?? 0) - (invalidBefore[i] ?? 0)));

    // figures from the stores
    const now = Date.now();
    let maxDiff = 0;
    for (const d of consumers) {
      const reps = await Promise.all(hubs.map(async (h) => reputationOf(await h.deps.store.getCounters(d), now, h.deps.config.reputation)));
      maxDiff = Math.max(maxDiff, Math.max(...reps) - Math.min(...reps));
    }
    const outcomeLags: number[] = [];
    const exposureLags: number[] = [];
    let fulfilled = 0;
    let defaulted = 0;
    let payersDefaulted = 0;
    for (const [i, h] of hubs.entries()) {
      for (const d of consumers) {
        for (const o of await h.deps.store.listByConsumer(d)) {
          if (o.origin === 'ledger') {
            if (o.followedAt !== undefined && o.closedAt !== undefined) outcomeLags.push(o.followedAt - o.closedAt);
            if (o.learntAt !== undefined) exposureLags.push(o.learntAt - o.acceptedAt);
          } else if (d.startsWith('c') && o.providerDomain === `p${i}`) {
            if (o.status === 'fulfilled') fulfilled += 1;
            if (o.status === 'defaulted') {
              defaulted += 1;
              if (d !== 'cx') payersDefaulted += 1;
            }
          }
        }
      }
    }
    const p = (xs: number[], q: number) => Math.round(percentile(xs, q));
    return [
      { name: `cross-hub obligations accepted (${CONDITIONS})`, value: accepted, unit: 'obligations' },
      { name: 'cross-hub obligations fulfilled at the provider hub', value: fulfilled, unit: 'obligations' },
      { name: 'cross-hub obligations defaulted (the domain that never pays)', value: defaulted, unit: 'obligations' },
      { name: 'defaults of paying domains', value: payersDefaulted, unit: 'obligations', target: '0', ok: payersDefaulted === 0 },
      { name: 'max reputation difference between hubs, after the run', value: Number(maxDiff.toExponential(2)), unit: 'abs', target: '≤ 1e-9', ok: maxDiff <= 1e-9 },
      { name: 'outcome propagation lag p50 (decided at provider hub → applied at another)', value: p(outcomeLags, 50), unit: 'ms' },
      { name: 'outcome propagation lag p99', value: p(outcomeLags, 99), unit: 'ms' },
      { name: 'exposure visibility lag p50 (accepted at one hub → outstanding at another)', value: p(exposureLags, 50), unit: 'ms' },
      { name: 'exposure visibility lag p99', value: p(exposureLags, 99), unit: 'ms' },
      { name: 'max exposure a hub did not see yet (sampled every 100 ms)', value: maxUnseen, unit: 'sats' },
      { name: 'forged ledger records skipped by every hub\'s follower (4 published)', value: invalidSkipped, unit: 'records', target: '4', ok: invalidSkipped === 4 },
    ];
  } finally {
    await fed.stop();
  }
}
