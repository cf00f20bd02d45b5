/**
 * Evidence into the counters, once per obligation, the same way at every hub —
 * whether the outcome was decided here (watcher) or read from the ledger (follower).
 *
 *   defaulted → s += amount (faded), outstanding −= amount
 *   fulfilled → outstanding −= amount, and r += amount, paidVolume += amount only when the
 *               Sybil guard lets it count: weight 1 (not the same hub, key or operator) and
 *               the provider's standing vouches for the consumer's hub (core/reputation.ts);
 *               otherwise it is parked and released, with its own time, once the provider
 *               qualifies — so every hub ends with the same counters whatever order it
 *               learnt the events in.
 *
 * Every counter update is keyed by event (`fulfil:`, `default:`, `evidence:` + id): the
 * store writes a marker item for the key in the same transaction as the counters, so a
 * retry applies nothing twice; the obligation is marked counted last, and a crash
 * anywhere is completed by the next run. The outstanding amount is released from the
 * escrow shard the obligation drew from.
 */
import { evidenceDelta, vouches } from '../core/reputation.ts';
import type { ObligationItem, ParkedEvidence } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { limitFn } from './credit.ts';

/** Where an obligation's outstanding amount lives: the escrow shard it drew from (or its hash shard when learnt from the ledger). */
export function credit(deps: Deps, item: Pick<ObligationItem, 'id' | 'shard'>): { limit: ReturnType<typeof limitFn>; now: number; shard: number } {
  return { limit: limitFn(deps.config), now: deps.now(), shard: item.shard ?? deps.store.shardOf(item.id) };
}

export async function recordEvidence(deps: Deps, item: ObligationItem): Promise<void> {
  if (item.counted) return;
  const { store } = deps;
  const at = item.closedAt ?? deps.now();
  if (item.status === 'defaulted') {
    const d = evidenceDelta('defaulted', item.amount, at, 1, deps.config.reputation);
    await store.applyCounters(item.consumerDomain, `default:${item.id}`, { sScaled: d.sScaled, outstanding: -item.amount }, credit(deps, item));
  } else if (item.status === 'fulfilled') {
    await store.applyCounters(item.consumerDomain, `fulfil:${item.id}`, { outstanding: -item.amount }, credit(deps, item));
    if ((item.weight ?? 0) > 0) await standing(deps, item, at);
  } else {
    return;
  }
  await store.markCounted(item);
}

async function standing(deps: Deps, item: ObligationItem, at: number): Promise<void> {
  const { store, directory } = deps;
  const [consumer, provider] = await Promise.all([directory.get(item.consumerDomain), directory.get(item.providerDomain)]);
  if (!consumer || !provider) return;
  const consumerHub = consumer.body.publisher;
  const providerHub = provider.body.publisher;
  const parked: ParkedEvidence = {
    obligationId: item.id,
    consumerDomain: item.consumerDomain,
    consumerHub,
    providerDomain: item.providerDomain,
    amount: item.amount,
    at,
  };
  await store.park(parked);
  const hubs = await store.addPayerHub(item.providerDomain, consumerHub);
  // This payment may make the provider vouch for consumers of other hubs, and the
  // hubs it already had may vouch for this one: release whatever now qualifies.
  for (const hub of new Set([...hubs, consumerHub])) {
    if (vouches(hubs, hub, providerHub)) await release(deps, item.providerDomain, hub);
  }
}

async function release(deps: Deps, provider: string, consumerHub: string): Promise<void> {
  for (const e of await deps.store.listParked(provider, consumerHub)) {
    const d = evidenceDelta('fulfilled', e.amount, e.at, 1, deps.config.reputation);
    await deps.store.applyCounters(e.consumerDomain, `evidence:${e.obligationId}`, { rScaled: d.rScaled, paidVolume: e.amount }, {
      limit: limitFn(deps.config),
      now: deps.now(),
    });
    await deps.store.unpark(e);
  }
}
