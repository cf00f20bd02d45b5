/**
 * SPB payment watcher (DESIGN.md protocol step 6). For each hosted provider:
 * remember payments received to its address; match them to settlement
 * records on the ledger that name it; once a payment has N confirmations and
 * covers the output, fulfil the obligations it lists (each payment output is
 * consumed once, so no record can reuse another's payment). Obligations past
 * `dueBy` and unpaid become defaulted. Every step is idempotent by
 * obligation id, and evidence goes to the consumer's counters once.
 */
import { createHash } from 'node:crypto';
import { evidenceWeight } from '../core/reputation.ts';
import { closeObligation, fulfilTogether, recordEvidence } from './evidence.ts';
import { InvalidRecordError, UnavailableError } from '../core/errors.ts';
import type { LedgerItem } from '../adapters/ports.ts';
import type { HostedDomain, ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { ledgerKeys, readSettlement } from './ledger-records.ts';

export interface WatchSummary {
  domain: string;
  payments: number;
  fulfilled: number;
  defaulted: number;
  /** Settlement records naming this provider that failed verification (skipped). */
  invalid: number;
  deferred?: string;
}

async function fulfil(deps: Deps, item: ObligationItem, txid: string): Promise<boolean> {
  const [consumer, provider] = await Promise.all([
    deps.directory.get(item.consumerDomain),
    deps.directory.get(item.providerDomain),
  ]);
  const weight = evidenceWeight(consumer?.body, provider?.body);
  const next = await closeObligation(deps, item, ['accepted', 'settling'], 'fulfilled', { paidTxid: txid, closedAt: deps.now(), weight }, { pending: true });
  if (next) return true;
  // closed already: by this payment in a run that stopped before its evidence was complete, or otherwise
  const done = await deps.store.getObligation(item.id);
  if (done?.status === 'fulfilled' && done.paidTxid === txid) await recordEvidence(deps, done);
  return false;
}

/**
 * Fulfil what one settlement record pays for, if its payment is seen with
 * enough confirmations. Returns true when the record needs no more work.
 */
async function settleRecord(
  deps: Deps,
  provider: HostedDomain,
  item: LedgerItem,
  seen: Set<string>,
  summary: WatchSummary,
): Promise<boolean> {
  const { store } = deps;
  let rec;
  try {
    rec = (await readSettlement(deps.directory, item)).body;
  } catch (e) {
    if (!(e instanceof InvalidRecordError)) throw e;
    summary.invalid += 1; // forged, malformed or foreign-signed: skipped, never fatal
    return true;
  }
  // the same transaction's other phase; a fee bump's records (another txid of the same settlement) are read on their own
  const key = `${rec.settlementId}:${rec.txid}`;
  if (seen.has(key)) return true;
  seen.add(key);
  const out = rec.outputs.find((o) => o.providerDomain === provider.domain && o.payTo === provider.payTo);
  if (!out) return true;
  // one batch read, eventually consistent: every move below is a conditional write the current item decides
  const obligations: ObligationItem[] = (await store.getObligations(out.obligationIds)).filter(
    (ob) => ob.providerDomain === provider.domain && ob.consumerDomain === rec.consumerDomain && ob.payTo === out.payTo,
  );
  // The consumer (at whatever hub) has started to pay them: from now on the settlement
  // grace applies here too, so a payment confirming after dueBy is not met by a default.
  for (const [i, ob] of obligations.entries()) {
    if (ob.status === 'accepted') {
      const moved = await store.transition(ob.id, ['accepted'], 'settling', { settlementId: rec.settlementId }, { expect: { settlementId: null }, current: ob });
      if (moved) obligations[i] = moved;
    }
  }
  // Paid (or defaulted) through another record of the settlement, e.g. the fee bump that confirmed
  // instead of this record's transaction, which now never will: nothing left to wait for.
  if (obligations.length > 0 && obligations.every((o) => o.status === 'fulfilled' || o.status === 'defaulted')) return true;
  // A payment pays one claim only. Used by another: nothing here. Used by this very claim: a
  // run stopped after taking it, before every fulfilment was written; finish them (each is idempotent).
  const claim = paymentClaim(rec.settlementId, out.obligationIds);
  const used = await store.paymentClaim(provider.domain, rec.txid);
  if (used !== undefined && used !== claim) return true;
  const paid = await store.getPayment(provider.domain, rec.txid);
  if (!paid || paid.amount < out.amount) return false; // not seen (yet)
  const payments = await deps.walletReads(provider.wallet);
  const tx = await payments.getTransaction(rec.txid);
  if (!tx || tx.confirmations < deps.config.confirmations) return false;
  if (obligations.reduce((sum, o) => sum + o.amount, 0) > paid.amount) return true; // claims more than was paid: never honoured
  if (!(await store.consumePayment(provider.domain, rec.txid, rec.settlementId, claim))) return true;
  summary.fulfilled += await fulfilAll(deps, obligations, rec.txid);
  return true;
}

/**
 * Fulfil what one payment settled: those still open together (evidence.fulfilTogether:
 * one transaction per escrow shard they drew from), then any left one by one (closed
 * meanwhile, or read stale: fulfil() completes or skips each). How many were fulfilled here.
 */
async function fulfilAll(deps: Deps, obligations: readonly ObligationItem[], txid: string): Promise<number> {
  const first = obligations[0];
  if (!first) return 0;
  const [consumer, provider] = await Promise.all([deps.directory.get(first.consumerDomain), deps.directory.get(first.providerDomain)]);
  const weight = evidenceWeight(consumer?.body, provider?.body);
  const open = obligations.filter((ob) => ob.status === 'accepted' || ob.status === 'settling');
  const together = await fulfilTogether(deps, open, ['accepted', 'settling'], { paidTxid: txid, closedAt: deps.now(), weight });
  const done = new Set(together.map((ob) => ob.id));
  let fulfilled = together.length;
  for (const ob of obligations) if (!done.has(ob.id) && (await fulfil(deps, ob, txid))) fulfilled += 1;
  return fulfilled;
}

/**
 * What a settlement output claims of a payment: its settlement and the obligations it
 * pays for (sorted, hashed). The intent and broadcast records of one transaction make the
 * same claim; a record of the same settlement naming other obligations makes another.
 */
export function paymentClaim(settlementId: string, obligationIds: readonly string[]): string {
  return `${settlementId}:${createHash('sha256').update([...obligationIds].sort().join(',')).digest('hex').slice(0, 32)}`;
}

/** Settlement records read from the ledger per run and page. */
const RECORD_PAGE = 200;

/**
 * Where the watcher is in the provider's `settlements` key: `next` is the
 * first position (the node's arrival order, which never moves) not read yet;
 * `waiting` the positions read whose payment was not seen or confirmed yet.
 * An old cursor, a bare low-water mark, reads as `{next: mark, waiting: []}`.
 */
interface RecordCursor {
  next: number;
  waiting: number[];
}

function parseCursor(value: string | undefined): RecordCursor {
  if (value === undefined) return { next: 0, waiting: [] };
  if (/^\d+$/.test(value)) return { next: Number(value), waiting: [] };
  const c = JSON.parse(value) as Partial<RecordCursor>;
  return { next: Number(c.next ?? 0), waiting: Array.isArray(c.waiting) ? c.waiting.map(Number) : [] };
}

/**
 * Settlement records naming this provider: only the records still waiting for
 * their payment and the new ones since the last run, never the done history.
 * The cursor moves only after the records it passes were handled, so a crash
 * reads them again (every step is idempotent).
 */
async function readSettlementRecords(deps: Deps, provider: HostedDomain, summary: WatchSummary): Promise<void> {
  const { store, ledger } = deps;
  const name = `settlements:${provider.domain}`;
  const key = ledgerKeys.provider(provider.domain);
  const stored = await store.getCursor(name);
  const cursor = parseCursor(stored);
  const seen = new Set<string>();
  const waiting: number[] = [];
  const wait = (at: number) => void (waiting.at(-1) === at || waiting.push(at));
  for (const at of cursor.waiting) {
    // every record at that position (one transaction may carry several)
    for (const record of await ledger.listByKeyFrom('settlements', key, at, 1)) {
      if (!(await settleRecord(deps, provider, record, seen, summary))) wait(at);
    }
  }
  let next = cursor.next;
  for (;;) {
    const page = await ledger.listByKeyFrom('settlements', key, next, RECORD_PAGE);
    for (const record of page) {
      if (!(await settleRecord(deps, provider, record, seen, summary))) wait(record.position);
    }
    const last = page.at(-1);
    if (last === undefined) break;
    const read = next + RECORD_PAGE;
    next = last.position + 1;
    if (next < read) break; // the page ended before RECORD_PAGE positions: nothing more yet
  }
  const value = JSON.stringify({ next, waiting } satisfies RecordCursor);
  if (value !== stored) await store.putCursor(name, value);
}

export async function watchProvider(deps: Deps, provider: HostedDomain): Promise<WatchSummary> {
  const summary: WatchSummary = { domain: provider.domain, payments: 0, fulfilled: 0, defaulted: 0, invalid: 0 };
  const { store } = deps;
  try {
    if (provider.payTo) {
      const payments = await deps.walletReads(provider.wallet);
      const cursorName = `recv:${provider.domain}`;
      const got = await payments.receivedSince(await store.getCursor(cursorName));
      const byTx = new Map<string, number>();
      for (const p of got.payments) {
        if (p.address !== provider.payTo) continue;
        byTx.set(p.txid, (byTx.get(p.txid) ?? 0) + p.amount);
      }
      for (const [txid, amount] of byTx) await store.putPayment(provider.domain, txid, amount);
      summary.payments = byTx.size;
      await store.putCursor(cursorName, got.cursor);

      await readSettlementRecords(deps, provider, summary);
    }
    summary.defaulted = await markDefaults(deps, provider);
  } catch (e) {
    if (e instanceof UnavailableError) {
      summary.deferred = e.message;
      return summary;
    }
    throw e;
  }
  return summary;
}

/**
 * Unpaid obligations past dueBy + grace become defaulted: ACCEPTED_GRACE_MS
 * while the consumer has not started to pay ('accepted'), SETTLEMENT_GRACE_MS
 * once a settlement holds it ('settling': broadcast, maybe unconfirmed). The
 * write is conditional on the very status and settlement that lateness was
 * decided on, so an obligation that a settlement took (or released) since the
 * read is left for the next run, judged with its own grace.
 */
async function markDefaults(deps: Deps, provider: HostedDomain): Promise<number> {
  const now = deps.now();
  let n = 0;
  for (const ob of await deps.store.listOpenByProvider(provider.domain)) {
    const grace = ob.status === 'settling' ? deps.config.settlementGraceMs : deps.config.acceptedGraceMs;
    const late = (ob.status === 'accepted' || ob.status === 'settling') && ob.dueBy + grace < now;
    if (late) {
      const next = await closeObligation(deps, ob, [ob.status], 'defaulted', { closedAt: now }, { pending: true, expect: { settlementId: ob.settlementId ?? null } });
      if (next) n += 1;
    } else if (ob.status === 'defaulted' || ob.status === 'fulfilled') {
      // completes evidence a crash may have left unapplied (no-op once counted)
      if (!ob.counted) await recordEvidence(deps, ob);
    }
  }
  return n;
}

export async function watchAll(deps: Deps): Promise<WatchSummary[]> {
  const out: WatchSummary[] = [];
  for (const d of await deps.store.listHostedDomains()) {
    if (d.role === 'consumer') continue;
    out.push(await watchProvider(deps, d));
  }
  return out;
}
