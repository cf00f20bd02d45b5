/**
 * The scheduled escrow rebalancer (issue 11): keeps every escrow shard of the
 * consumer domains that are drawing credit here topped up and its grant fresh,
 * so an acceptance almost never has to rebalance inline (which costs it two
 * more sequential round trips and a TransactWriteItems over every shard). The
 * bound stays exact: the job runs the same rebalance as an acceptance would
 * (adapters/store/dynamo.ts: serialised by the counters' version, conditional
 * take-backs, the limit the smallest over the grant).
 */
import { ConflictError } from '../core/errors.ts';
import type { Deps } from './deps.ts';
import { limitFn } from './credit.ts';

export interface RebalanceSummary {
  refreshed: string[];
  fresh: number;
  idle: number;
  /** Domains whose top-up failed this run (e.g. too contended); the next run tries again. */
  failed: string[];
}

/** Refresh grants that lapse within this many ms: more than one run of the job (1 min on AWS). */
export const REFRESH_BEFORE_MS = 150_000;
/** A domain that drew nothing since its last grant and wanted no credit for this long is left to lapse. */
export const IDLE_MS = 15 * 60_000;

export async function rebalanceAll(
  deps: Pick<Deps, 'store' | 'now' | 'config'>,
  opts: { refreshBeforeMs?: number; idleMs?: number } = {},
): Promise<RebalanceSummary> {
  const limit = limitFn(deps.config);
  const summary: RebalanceSummary = { refreshed: [], fresh: 0, idle: 0, failed: [] };
  for (const entry of await deps.store.listCreditDomains()) {
    try {
      const r = await deps.store.topUp(entry.domain, entry, {
        limit,
        now: deps.now(),
        refreshBeforeMs: opts.refreshBeforeMs ?? REFRESH_BEFORE_MS,
        idleMs: opts.idleMs ?? IDLE_MS,
      });
      if (r === 'refreshed') summary.refreshed.push(entry.domain);
      else if (r === 'fresh') summary.fresh += 1;
      else summary.idle += 1;
    } catch (e) {
      // one contended domain must not starve the others; a store outage fails the run
      if (e instanceof ConflictError) summary.failed.push(entry.domain);
      else throw e;
    }
  }
  return summary;
}
