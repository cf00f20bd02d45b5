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
import { NotFoundError, ObligationError, UnavailableError } from '../core/errors.ts';
import { createOutcome } from '../core/records.ts';
import type { Json, OutcomeBody } from '../core/types.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
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
  /** Pages of pending obligations this run read and published (a run drains the queue page by page within its budget). */
  pages: number;
  /** Set when the ledger was unavailable (or the lease was lost): the rest waits for the next run. */
  deferred: boolean;
  /** Set when another run holds the publication lease: this run did nothing. */
  busy?: boolean;
  /** Set when the run stopped at its time budget with obligations still pending (`backlog` then a lower bound). */
  budgetSpent?: boolean;
  /**
   * Obligations this run read as pending and left pending (ledger down, lease
   * lost, or budget spent: then a lower bound, at most a page). Absent when busy.
   */
  backlog?: number;
  /** Items the ledger refused for good (too large, malformed): parked with their error, the others went on. */
  parked: number;
  /**
   * Set when the ledger refuses this hub itself (wrong chain name, publisher not
   * in the node's wallet, no write permission): nothing publishes until an
   * operator fixes it; the items stay queued. Logged at error level by the job.
   */
  blocked?: { code: string; message: string };
}

export interface PublishOptions {
  /** Obligations read from the queue per page (default 200). */
  limit?: number;
  /**
   * Entries per publishBatch call (default 32). How many share one ledger
   * transaction is the adapter's choice: MultiChainLedger puts as many in one
   * publishmultifrom as the chain's `max-std-op-returns-count` allows (32 on a
   * default chain, so one transaction per call), and its `list` hands every
   * item of such a transaction to the followers.
   */
  batchSize?: number;
  /**
   * Batches in flight at once (default PUBLISH_PARALLEL, 4). Batches hold
   * disjoint obligations (an obligation's id key is in one batch only) and
   * every acceptance of a page is on the ledger before any outcome of that page
   * is published, so parallel batches change only the relative order of
   * unrelated obligations under a shared provider or consumer key, which no
   * reader relies on (readers work per id).
   */
  parallel?: number;
  /** Read no new page once this long has passed since the run began (default PUBLISH_BUDGET_MS, 40 s); the first page is always read. */
  budgetMs?: number;
}

/** The store item every publish run of this hub (this table) contends for. */
export const PUBLISH_LEASE = 'publish';

/** Run `task` over `chunks`, at most `parallel` at once; after a failure no new chunk starts, and the first failure is thrown. */
async function inParallel<T>(chunks: readonly T[], parallel: number, task: (chunk: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < chunks.length) {
      const chunk = chunks[next++] as T;
      try {
        await task(chunk);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, chunks.length) }, worker));
  if (failure) throw failure.error;
}

const chunked = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/**
 * Publish what is pending under the hub's lease, oldest first: page after page
 * of at most `limit` obligations while pages come back full (a backlog), until
 * none is left or the budget is spent; a short page ends the run, so a steady
 * trickle costs one page per scheduled run, as before.
 * Within a page, first every acceptance, then every outcome, in ledger batches
 * (Ledger.publishBatch), several batches at once. An obligation is handled at
 * most once per run: the pending index on DynamoDB is eventually consistent, so
 * a later page may still list one this run marked published; a page with
 * nothing new ends the run, and the next run takes what is left.
 */
export async function publishPending(deps: Deps, options: PublishOptions | number = {}): Promise<PublishSummary> {
  const opts = typeof options === 'number' ? { limit: options } : options;
  const limit = Math.max(1, opts.limit ?? 200);
  const batchSize = Math.max(1, opts.batchSize ?? 32);
  const parallel = Math.max(1, opts.parallel ?? deps.config.publishParallel);
  const budgetMs = opts.budgetMs ?? deps.config.publishBudgetMs;
  const summary: PublishSummary = { published: 0, outcomes: 0, duplicates: 0, pages: 0, deferred: false, parked: 0 };
  const owner = randomUUID();
  const ttl = deps.config.publishLeaseMs;
  const began = deps.now();
  let token: number | undefined;
  try {
    token = await deps.store.acquireLease(PUBLISH_LEASE, owner, ttl, began);
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
    const park = (item: ObligationItem, field: 'ledgerTxid' | 'outcomeTxid', error: ObligationError) => {
      summary.parked += 1;
      return deps.store.parkPublication(item.id, { field, code: error.code, message: error.message, at: deps.now() });
    };
    const keysOf = (item: ObligationItem) => [ledgerKeys.provider(item.providerDomain), ledgerKeys.consumer(item.consumerDomain)];
    summary.backlog = 0;
    // one pending obligation left the queue (published, or parked for an operator)
    const done = () => void (summary.backlog = (summary.backlog ?? 0) - 1);
    const seen = new Set<string>();
    // Read under the lease: what an earlier holder published has left the pending set. A page
    // shorter than `limit` was the whole queue when read: what arrives after it waits for the next run.
    let full = false;
    const nextPage = async () => {
      const listed = await deps.store.listPendingPublication(limit);
      full = listed.length >= limit;
      return listed.filter((item) => !seen.has(item.id));
    };

    const publishPage = async (pending: ObligationItem[]) => {
      summary.pages += 1;
      summary.backlog = (summary.backlog ?? 0) + pending.length;
      for (const item of pending) seen.add(item.id);

      // 1. acceptances
      const accepting = pending.filter((item) => item.ledgerTxid === undefined);
      const accepted = new Set<string>();
      await inParallel(chunked(accepting, batchSize), parallel, async (chunk) => {
        await fence();
        const results = await deps.ledger.publishBatch(
          'obligations',
          chunk.map((item) => ({ id: ledgerKeys.obligation(item.id), keys: keysOf(item), data: item.accepted as unknown as Json })),
        );
        if (results.length < chunk.length) throw new UnavailableError('ledger batch answered short', { expected: chunk.length, got: results.length });
        // marked one after another: a batch's marks all at once slowed acceptances on the embedded
        // cloud by a third (the same process); batches in flight already mark side by side
        for (const [i, item] of chunk.entries()) {
          const r = results[i]!;
          if ('error' in r) {
            await park(item, 'ledgerTxid', r.error);
            done();
            continue;
          }
          const outcome = outcomeOf(item);
          await deps.store.markPublished(item.id, 'ledgerTxid', r.txid, outcome === undefined ? item.status : undefined);
          accepted.add(item.id);
          if (outcome === undefined || item.outcomeTxid !== undefined) done();
          summary.published += 1;
          if (r.duplicate) summary.duplicates += 1;
        }
      });

      // 2. outcomes, of obligations whose acceptance is on the ledger, signed by the provider domain that decided them
      const deciding: { item: ObligationItem; signed: Json }[] = [];
      for (const item of pending) {
        const outcome = outcomeOf(item);
        if (!outcome || item.outcomeTxid !== undefined) continue;
        if (item.ledgerTxid === undefined && !accepted.has(item.id)) continue;
        const provider = await deps.store.getHostedDomain(item.providerDomain);
        if (!provider) {
          // nobody here can sign it: this item only, for an operator to look at
          await park(item, 'outcomeTxid', new NotFoundError(`provider domain ${item.providerDomain} is not hosted here`));
          done();
          continue;
        }
        deciding.push({ item, signed: (await createOutcome(outcome, domainSigner(deps, provider))) as unknown as Json });
      }
      await inParallel(chunked(deciding, batchSize), parallel, async (chunk) => {
        await fence();
        const results = await deps.ledger.publishBatch(
          'obligations',
          chunk.map(({ item, signed }) => ({ id: ledgerKeys.outcome(item.id), keys: keysOf(item), data: signed })),
        );
        if (results.length < chunk.length) throw new UnavailableError('ledger batch answered short', { expected: chunk.length, got: results.length });
        for (const [i, { item }] of chunk.entries()) {
          const r = results[i]!;
          if ('error' in r) {
            await park(item, 'outcomeTxid', r.error);
            done();
            continue;
          }
          await deps.store.markPublished(item.id, 'outcomeTxid', r.txid, item.status);
          summary.outcomes += 1;
          if (r.duplicate) summary.duplicates += 1;
          done();
        }
      });
    };

    for (let page = await nextPage(); page.length > 0; page = full ? await nextPage() : []) {
      await publishPage(page);
      if (full && deps.now() - began >= budgetMs) {
        // what is still waiting, counted from one more page: a lower bound
        const left = await nextPage();
        if (left.length > 0) {
          summary.budgetSpent = true;
          summary.backlog = (summary.backlog ?? 0) + left.length;
        }
        break;
      }
    }
  } catch (e) {
    if (e instanceof UnavailableError) {
      summary.deferred = true;
      return summary;
    }
    // A final refusal of the whole batch is about this hub, not an item (Ledger.publishBatch):
    // the items stay queued and the run says why, instead of failing silently or parking everything.
    if (e instanceof ObligationError && e.errorClass === 'final') {
      summary.blocked = { code: e.code, message: e.message };
      return summary;
    }
    throw e;
  } finally {
    if (token !== undefined) await deps.store.releaseLease(PUBLISH_LEASE, owner, token).catch(() => undefined);
  }
  return summary;
}
