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
 * An obligation is closed and its outcome applied in ONE store transaction
 * (closeObligation): the status move, the release of its outstanding amount from the
 * escrow shard it drew from, a default's evidence, and a fulfilment's evidence when it
 * counts at once (the provider already vouches for the consumer's hub). The move's own
 * condition makes it happen once. Only a fulfilment that must wait for its provider's
 * standing takes further steps (parked, released later under an `evidence:` event key
 * whose marker item is written with the counters), and is marked counted last, so a
 * crash anywhere is completed by the next run.
 */
import { evidenceDelta, vouches } from '../core/reputation.ts';
import type { ObligationStatus, ReputationCounters } from '../core/types.ts';
import type { ObligationItem, ParkedEvidence } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { limitFn } from './credit.ts';

/** Where an obligation's outstanding amount lives: the escrow shard it drew from (or its hash shard when learnt from the ledger). */
export function credit(deps: Deps, item: Pick<ObligationItem, 'id' | 'shard'>): { limit: ReturnType<typeof limitFn>; now: number; shard: number } {
  return { limit: limitFn(deps.config), now: deps.now(), shard: item.shard ?? deps.store.shardOf(item.id) };
}

/**
 * Close `item` (in one of `from`) as fulfilled or defaulted with its evidence
 * (above). Returns the closed item, or undefined when it was not in `from`
 * (or not in the settlement `opts.expect` names): nothing was written.
 */
export async function closeObligation(
  deps: Deps,
  item: ObligationItem,
  from: ObligationStatus[],
  to: 'fulfilled' | 'defaulted',
  extra: Partial<ObligationItem> & { closedAt: number },
  opts: { pending?: boolean; expect?: { settlementId: string | null } } = {},
): Promise<ObligationItem | undefined> {
  const delta: Partial<ReputationCounters> = { outstanding: -item.amount };
  let counted = true;
  if (to === 'defaulted') {
    delta.sScaled = evidenceDelta('defaulted', item.amount, extra.closedAt, 1, deps.config.reputation).sScaled;
  } else if ((extra.weight ?? 0) > 0) {
    if (await vouchedAlready(deps, item)) {
      delta.rScaled = evidenceDelta('fulfilled', item.amount, extra.closedAt, 1, deps.config.reputation).rScaled;
      delta.paidVolume = item.amount;
    } else {
      counted = false; // parked after the close (recordEvidence)
    }
  }
  const closed = await deps.store.closeObligation(item, from, to, extra, delta, { ...credit(deps, item), counted, ...opts });
  if (closed && !counted) await recordEvidence(deps, closed);
  return closed;
}

/**
 * Fulfil the obligations one payment settled (one consumer domain, one provider domain, all
 * in `from`), with their evidence as closeObligation would: those that drew from the same
 * escrow shard close in one transaction with one shard update for all of them (a
 * transaction bills 2 units per item: the shard is paid for once per group, not once per
 * obligation). Returns the ones closed here; a group in which any was not in `from` any more
 * (closed meanwhile, or a stale read) is left whole to the caller, to close one by one.
 */
export async function fulfilTogether(
  deps: Deps,
  items: readonly ObligationItem[],
  from: ObligationStatus[],
  extra: Partial<ObligationItem> & { closedAt: number },
): Promise<ObligationItem[]> {
  const first = items[0];
  if (!first) return [];
  if (items.some((i) => i.consumerDomain !== first.consumerDomain || i.providerDomain !== first.providerDomain)) {
    throw new RangeError('fulfilTogether: one consumer and one provider domain');
  }
  const counts = (extra.weight ?? 0) > 0;
  const counted = !counts || (await vouchedAlready(deps, first));
  const groups = new Map<number, ObligationItem[]>();
  for (const item of items) {
    const shard = credit(deps, item).shard;
    const group = groups.get(shard) ?? [];
    if (group.length === 0) groups.set(shard, group);
    group.push(item);
  }
  const closed: ObligationItem[] = [];
  for (const [shard, group] of groups) {
    for (let i = 0; i < group.length; i += deps.store.closeBatch) {
      const batch = group.slice(i, i + deps.store.closeBatch);
      const delta: Partial<ReputationCounters> = { outstanding: -batch.reduce((t, o) => t + o.amount, 0) };
      if (counts && counted) {
        delta.rScaled = batch.reduce((t, o) => t + evidenceDelta('fulfilled', o.amount, extra.closedAt, 1, deps.config.reputation).rScaled, 0);
        delta.paidVolume = batch.reduce((t, o) => t + o.amount, 0);
      }
      const done = await deps.store.closeObligationsTogether(batch, from, 'fulfilled', extra, delta, {
        limit: limitFn(deps.config),
        now: deps.now(),
        shard,
        counted,
        pending: true,
      });
      if (!done) continue;
      closed.push(...done);
      // a fulfilment waiting for its provider's standing: parked after the close, as closeObligation does
      if (!counted) for (const item of done) await recordEvidence(deps, item);
    }
  }
  return closed;
}

/**
 * Does the provider already vouch for the consumer's hub, having been paid from
 * it before? Then a fulfilment's evidence counts at once: parking and releasing
 * it would apply the same change (payer hubs only grow, so vouching never stops).
 */
async function vouchedAlready(deps: Deps, item: ObligationItem): Promise<boolean> {
  const [consumer, provider] = await Promise.all([deps.directory.get(item.consumerDomain), deps.directory.get(item.providerDomain)]);
  if (!consumer || !provider) return false;
  const hubs = await deps.store.getPayerHubs(item.providerDomain);
  return hubs.includes(consumer.body.publisher) && vouches(hubs, consumer.body.publisher, provider.body.publisher);
}

/**
 * Complete the evidence of a closed obligation not yet counted: a crash after
 * its close, or a fulfilment waiting for its provider's standing. An item
 * closed by a plain status move (before closeObligation) gets its counters
 * change here, keyed by event (`fulfil:`, `default:` + id) so a retry applies
 * nothing twice.
 */
export async function recordEvidence(deps: Deps, item: ObligationItem): Promise<void> {
  if (item.counted) return;
  if (item.status !== 'defaulted' && item.status !== 'fulfilled') return;
  const { store } = deps;
  const at = item.closedAt ?? deps.now();
  if (!item.released) {
    if (item.status === 'defaulted') {
      const d = evidenceDelta('defaulted', item.amount, at, 1, deps.config.reputation);
      await store.applyCounters(item.consumerDomain, `default:${item.id}`, { sScaled: d.sScaled, outstanding: -item.amount }, credit(deps, item));
    } else {
      await store.applyCounters(item.consumerDomain, `fulfil:${item.id}`, { outstanding: -item.amount }, credit(deps, item));
    }
  }
  if (item.status === 'fulfilled' && (item.weight ?? 0) > 0) await standing(deps, item, at);
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
