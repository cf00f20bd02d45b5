/**
 * Ledger publication (asynchronous, after acceptance): every accepted
 * obligation goes on the `obligations` stream, keyed by its id and by
 * `p:<provider>` and `c:<consumer>`; every outcome (fulfilled / defaulted)
 * follows as its own item keyed `outcome:<id>`. Idempotent by id on both
 * sides (ledger publish and store mark), so re-running after a crash or with
 * the ledger down and back publishes each exactly once.
 *
 * Runs may overlap (no reserved concurrency): a run takes the hub's
 * publication lease (a store item with an expiry and a fencing token, like
 * settlement's) before it reads the pending set, checks it is still the
 * holder right before every ledger write, and gives it up at the end. A run
 * that finds the lease held does nothing. The ledger adapter's own "already
 * published?" check is not atomic on a real MultiChain node (check, then
 * publish), so without the lease two runs could both write an item; readers
 * still dedupe by id (first wins), but the ledger carries each once.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError, UnavailableError } from '../core/errors.ts';
import { createOutcome } from '../core/records.ts';
import type { Json, OutcomeBody } from '../core/types.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { ledgerKeys } from './ledger-records.ts';
import { domainSigner } from './keys.ts';

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
  /** Set when the ledger was unavailable (or the lease was lost): the rest waits for the next run. */
  deferred: boolean;
  /** Set when another run holds the publication lease: this run did nothing. */
  busy?: boolean;
  /**
   * Obligations this run read as pending and left pending (ledger down, lease
   * lost, or more than `limit` waiting: then a lower bound). Absent when busy.
   */
  backlog?: number;
}

/** The store item every publish run of this hub (this table) contends for. */
export const PUBLISH_LEASE = 'publish';

/** Publish what is pending, oldest first, at most `limit` obligations per run. */
export async function publishPending(deps: Deps, limit = 200): Promise<PublishSummary> {
  const summary: PublishSummary = { published: 0, outcomes: 0, duplicates: 0, deferred: false };
  const owner = randomUUID();
  const ttl = deps.config.publishLeaseMs;
  let token: number | undefined;
  try {
    token = await deps.store.acquireLease(PUBLISH_LEASE, owner, ttl, deps.now());
    if (token === undefined) {
      summary.busy = true;
      return summary;
    }
    const held = token;
    // Fencing: a run whose lease expired and was taken by another must not write.
    const fence = async () => {
      if (!(await deps.store.checkLease(PUBLISH_LEASE, owner, held, ttl, deps.now()))) {
        throw new UnavailableError('lost the publication lease', { token: held });
      }
    };
    // read under the lease: what an earlier holder published has left the pending set
    const pending = await deps.store.listPendingPublication(limit);
    summary.backlog = pending.length;
    for (const item of pending) {
      const keys = [ledgerKeys.provider(item.providerDomain), ledgerKeys.consumer(item.consumerDomain)];
      const outcome = outcomeOf(item);
      if (item.ledgerTxid === undefined) {
        await fence();
        const r = await deps.ledger.publish('obligations', ledgerKeys.obligation(item.id), keys, item.accepted as unknown as Json);
        await deps.store.markPublished(item.id, 'ledgerTxid', r.txid, outcome === undefined ? item.status : undefined);
        summary.published += 1;
        if (r.duplicate) summary.duplicates += 1;
      }
      if (outcome && item.outcomeTxid === undefined) {
        // signed by the provider domain that decided it: nobody else can claim it
        const provider = await deps.store.getHostedDomain(item.providerDomain);
        if (!provider) throw new NotFoundError(`provider domain ${item.providerDomain} is not hosted here`);
        const signed = await createOutcome(outcome, domainSigner(deps, provider));
        await fence();
        const r = await deps.ledger.publish('obligations', ledgerKeys.outcome(item.id), keys, signed as unknown as Json);
        await deps.store.markPublished(item.id, 'outcomeTxid', r.txid, item.status);
        summary.outcomes += 1;
        if (r.duplicate) summary.duplicates += 1;
      }
      summary.backlog -= 1;
    }
  } catch (e) {
    if (e instanceof UnavailableError) {
      summary.deferred = true;
      return summary;
    }
    throw e;
  } finally {
    if (token !== undefined) await deps.store.releaseLease(PUBLISH_LEASE, owner, token).catch(() => undefined);
  }
  return summary;
}
