/**
 * Ledger publication (asynchronous, after acceptance): every accepted
 * obligation goes on the `obligations` stream, keyed by its id and by
 * `p:<provider>` and `c:<consumer>`; every outcome (fulfilled / defaulted)
 * follows as its own item keyed `outcome:<id>`. Idempotent by id on both
 * sides (ledger publish and store mark), so re-running after a crash or with
 * the ledger down and back publishes each exactly once.
 */
import { NotFoundError, UnavailableError } from '../core/errors.ts';
import { createOutcome } from '../core/records.ts';
import type { Json, OutcomeBody } from '../core/types.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { ledgerKeys } from './ledger-records.ts';

export { ledgerKeys };

export function outcomeOf(item: ObligationItem): OutcomeBody | undefined {
  if (item.status !== 'fulfilled' && item.status !== 'defaulted') return undefined;
  return {
    version: 1,
    kind: 'outcome',
    obligationId: item.id,
    outcome: item.status,
    consumerDomain: item.consumerDomain,
    providerDomain: item.providerDomain,
    amount: item.amount,
    at: item.closedAt ?? item.dueBy,
    txid: item.paidTxid ?? null,
  };
}

export interface PublishSummary {
  published: number;
  outcomes: number;
  duplicates: number;
  /** Set when the ledger was unavailable: the rest waits for the next run. */
  deferred: boolean;
}

/** Publish what is pending, oldest first, at most `limit` obligations per run. */
export async function publishPending(deps: Deps, limit = 200): Promise<PublishSummary> {
  const summary: PublishSummary = { published: 0, outcomes: 0, duplicates: 0, deferred: false };
  const pending = await deps.store.listPendingPublication(limit);
  try {
    for (const item of pending) {
      const keys = [ledgerKeys.provider(item.providerDomain), ledgerKeys.consumer(item.consumerDomain)];
      const outcome = outcomeOf(item);
      if (item.ledgerTxid === undefined) {
        const r = await deps.ledger.publish('obligations', ledgerKeys.obligation(item.id), keys, item.accepted as unknown as Json);
        await deps.store.markPublished(item.id, 'ledgerTxid', r.txid, outcome === undefined ? item.status : undefined);
        summary.published += 1;
        if (r.duplicate) summary.duplicates += 1;
      }
      if (outcome && item.outcomeTxid === undefined) {
        // signed by the provider domain that decided it: nobody else can claim it
        const provider = await deps.store.getHostedDomain(item.providerDomain);
        if (!provider) throw new NotFoundError(`provider domain ${item.providerDomain} is not hosted here`);
        const signed = createOutcome(outcome, provider.privateKey);
        const r = await deps.ledger.publish('obligations', ledgerKeys.outcome(item.id), keys, signed as unknown as Json);
        await deps.store.markPublished(item.id, 'outcomeTxid', r.txid, item.status);
        summary.outcomes += 1;
        if (r.duplicate) summary.duplicates += 1;
      }
    }
  } catch (e) {
    if (e instanceof UnavailableError) {
      summary.deferred = true;
      return summary;
    }
    throw e;
  }
  return summary;
}
