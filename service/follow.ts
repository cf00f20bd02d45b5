/**
 * The ledger follower: how one hub learns what every other hub did, from the
 * shared chain alone (DESIGN.md "Federation"). Each run reads the `domains`,
 * `settlements` and `obligations` streams from persisted cursors (positions
 * in this hub's own node, never re-reading history), at most `maxItems` per
 * stream, and:
 *
 *   - keeps every valid domain record in the store, so acceptance finds keys
 *     without the ledger, and every valid revocation of a device key (signed by
 *     its domain, published by that domain's hub), so acceptance here refuses
 *     that key within one run, and every valid key rotation of a domain
 *     (signed by the key it replaces, published by the domain's hub), so
 *     acceptance here wants credentials of the new key within one run;
 *   - remembers which settlement record (and transaction) names which obligation;
 *   - stores every obligation other hubs accepted (verified: device signature,
 *     the consumer domain's credential, the provider's acceptance, published by
 *     the provider's hub) and adds its amount to its consumer's outstanding
 *     exposure — so credit here counts what was accepted elsewhere; obligations
 *     of consumer domains hosted here are then paid by this hub's settlement;
 *   - applies every verified outcome decided at another hub to the consumer's
 *     counters, with the same evidence the deciding hub applied, so every hub
 *     computes the same reputation. A *fulfilled* claim counts only once the
 *     consumer's own settlement record names the obligation and its transaction,
 *     looked up through this hub's node, pays `payTo` at least the amount with N
 *     confirmations; a *defaulted* claim counts when declared at or after `dueBy`
 *     and no such payment had confirmed by the time it was declared. Fulfilled
 *     claims not yet checkable wait as pending claims.
 *
 * Invalid records are counted and skipped; a dependency outage stops the run
 * where it is, with the cursor at the last record fully handled, so the next
 * run resumes there. Every step is idempotent (conditional writes and
 * event-keyed counter updates), so a crash mid-run repeats harmlessly.
 */
import { checkPayTo } from './addresses.ts';
import { InvalidRecordError, ObligationError, UnavailableError } from '../core/errors.ts';
import { evidenceWeight } from '../core/reputation.ts';
import type { AcceptedObligation, OutcomeBody, Signed } from '../core/types.ts';
import type { ChainTx, LedgerItem, StreamName } from '../adapters/ports.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { isKeyRotationItem, readDomainItem, readKeyRotationItem } from './directory.ts';
import { isOutcomeItem, isRevocationItem, readAccepted, readOutcome, readRevocation, readSettlement } from './ledger-records.ts';
import { closeObligation, credit, recordEvidence } from './evidence.ts';

export interface FollowSummary {
  domains: number;
  /** Device key revocations verified and kept (acceptance here refuses those keys from now on). */
  revocations: number;
  /** Domain key rotations verified and new here (acceptance here wants credentials of the new key from now on). */
  rotations: number;
  settlements: number;
  /** Obligations accepted at other hubs, learnt in this run. */
  obligations: number;
  /** Outcomes decided at other hubs and applied here. */
  outcomes: number;
  /** Outcome claims waiting for their payment to be checkable. */
  pendingClaims: number;
  /** Records that failed verification (forged, malformed, squatted, foreign-signed), skipped. */
  invalid: number;
  /** Why the run stopped early (a dependency unavailable). */
  deferred?: string;
}

/** The order matters within a run: keys before what they sign, payments before the claims about them. */
const ORDER: readonly StreamName[] = ['domains', 'settlements', 'obligations'];

/** Name the follower's transaction look-ups go under: a node-level call (getrawtransaction), so no such wallet is ever created. */
export const FOLLOWER_WALLET = 'oc-follower';

export const cursorName = (stream: StreamName) => `follow:${stream}`;

export async function followLedger(deps: Deps, opts: { maxItems?: number } = {}): Promise<FollowSummary> {
  const summary: FollowSummary = { domains: 0, revocations: 0, rotations: 0, settlements: 0, obligations: 0, outcomes: 0, pendingClaims: 0, invalid: 0 };
  const max = opts.maxItems ?? 500;
  const run: Run = { refs: new Set(), hosted: new Map() };
  try {
    for (const stream of ORDER) {
      const name = cursorName(stream);
      const start = Number((await deps.store.getCursor(name)) ?? '0');
      const items = await deps.ledger.list(stream, start, max);
      // The cursor is a position; several items (one transaction's) may share one, so it
      // passes a position only once all its items are handled (a crash handles them again).
      let cursor = start;
      try {
        for (const item of items) {
          cursor = Math.max(cursor, item.position);
          await handle(deps, stream, item, summary, run);
        }
        const last = items.at(-1);
        if (last) cursor = Math.max(cursor, last.position + 1);
      } finally {
        if (cursor > start) await deps.store.putCursor(name, String(cursor));
      }
    }
    await recheckClaims(deps, summary);
  } catch (e) {
    if (e instanceof UnavailableError) {
      summary.deferred = e.message;
      return summary;
    }
    throw e;
  }
  return summary;
}

/** What one run remembers: settlement refs written, and which provider domains are hosted here. */
interface Run {
  refs: Set<string>;
  hosted: Map<string, Promise<boolean>>;
}

/**
 * Is `domain` hosted here? Then its obligations were accepted here, and their outcomes
 * are decided here by the watcher, never claimed from the ledger.
 */
function hostedHere(deps: Deps, run: Run, domain: string): Promise<boolean> {
  let hosted = run.hosted.get(domain);
  if (!hosted) {
    hosted = deps.store.getHostedDomain(domain).then((d) => d !== undefined);
    run.hosted.set(domain, hosted);
  }
  return hosted;
}

async function handle(deps: Deps, stream: StreamName, item: LedgerItem, summary: FollowSummary, run: Run): Promise<void> {
  try {
    if (stream === 'domains' && isRevocationItem(item)) {
      await deps.store.putRevocation(await readRevocation(deps.directory, item));
      summary.revocations += 1;
    } else if (stream === 'domains' && isKeyRotationItem(item)) {
      if (await deps.directory.rotate(readKeyRotationItem(item), item.publisher)) summary.rotations += 1;
    } else if (stream === 'domains') {
      await deps.directory.remember(readDomainItem(item));
      summary.domains += 1;
    } else if (stream === 'settlements') {
      const r = (await readSettlement(deps.directory, item)).body;
      // Refs are what a claimed outcome is checked against (checkClaim), so only obligations
      // whose provider is elsewhere need one. A transaction's intent and broadcast records name
      // the same refs: a run writes each once.
      for (const out of r.outputs) {
        if (await hostedHere(deps, run, out.providerDomain)) continue;
        for (const obligationId of out.obligationIds) {
          const key = `${obligationId}:${r.txid}`;
          if (run.refs.has(key)) continue;
          await deps.store.putSettlementRef({ obligationId, settlementId: r.settlementId, consumerDomain: r.consumerDomain, txid: r.txid, payTo: out.payTo });
          run.refs.add(key);
        }
      }
      summary.settlements += 1;
    } else if (isOutcomeItem(item)) {
      const outcome = await readOutcome(deps.directory, item);
      // ours (its provider is hosted here): decided here by the watcher, nothing to read or apply
      if (await hostedHere(deps, run, outcome.body.providerDomain)) return;
      if (await applyOutcome(deps, outcome, summary)) summary.outcomes += 1;
    } else {
      const accepted = await readAccepted(deps.directory, item);
      // ours: accepted here, its exposure reserved at acceptance (only its provider's hub can sign the acceptance)
      if (await hostedHere(deps, run, accepted.obligation.body.providerDomain)) return;
      if (await learnObligation(deps, accepted, item.txid)) summary.obligations += 1;
    }
  } catch (e) {
    // Anything wrong with the record itself is the record's problem: count it and go on.
    if (e instanceof InvalidRecordError) summary.invalid += 1;
    else if (e instanceof ObligationError && e.errorClass === 'final') summary.invalid += 1;
    else throw e;
  }
}

/** An obligation another hub accepted: store it once, count its exposure once, follow the device's chain. */
async function learnObligation(deps: Deps, accepted: AcceptedObligation, txid: string): Promise<boolean> {
  const { store } = deps;
  const ob = accepted.obligation;
  const b = ob.body;
  // another network's payTo can never be paid here: a final error, so the record is skipped and counted invalid
  checkPayTo(deps, b.payTo);
  let item = await store.getObligation(ob.id);
  let learnt = false;
  if (!item) {
    const fresh: ObligationItem = {
      id: ob.id,
      status: 'accepted',
      accepted,
      consumerDomain: b.consumerDomain,
      consumerDevice: b.consumerDevice,
      providerDomain: b.providerDomain,
      amount: b.amount,
      payTo: b.payTo,
      acceptedAt: accepted.acceptance.body.acceptedAt,
      dueBy: b.dueBy,
      ledgerTxid: txid,
      origin: 'ledger',
      // when this hub learnt it: learntAt − acceptedAt is how long its exposure was unseen here
      learntAt: deps.now(),
    };
    learnt = await store.putObligation(fresh);
    item = learnt ? fresh : await store.getObligation(ob.id);
  }
  // Ours (accepted here): its exposure was reserved at acceptance.
  if (!item || item.origin !== 'ledger') return false;
  if (!item.exposed) {
    await store.applyCounters(b.consumerDomain, `accept:${ob.id}`, { outstanding: b.amount }, credit(deps, item));
    await store.markExposed(ob.id);
  }
  await store.followChain(b.consumerDomain, b.consumerDevice, b.seq, ob.id);
  return learnt;
}

/**
 * Apply an outcome decided at another hub, if its claim checks out. Returns true
 * when applied now; false when it was already applied, is ours, or waits.
 */
async function applyOutcome(deps: Deps, outcome: Signed<OutcomeBody>, summary: FollowSummary, claimed = false): Promise<boolean> {
  const o = outcome.body;
  const item = await deps.store.getObligation(o.obligationId);
  if (!item) throw new InvalidRecordError(`outcome of an obligation not on the ledger: ${o.obligationId}`);
  if (o.providerDomain !== item.providerDomain || o.consumerDomain !== item.consumerDomain || o.amount !== item.amount) {
    throw new InvalidRecordError(`outcome of ${o.obligationId} does not match its obligation`);
  }
  if (item.origin !== 'ledger') return false;
  if (item.status === 'fulfilled' || item.status === 'defaulted') {
    // a run that stopped between the outcome and its evidence: complete it (once: recordEvidence is keyed)
    if (item.status === o.outcome && !item.counted) await recordEvidence(deps, item);
    return false;
  }
  const verdict = await checkClaim(deps, item, o);
  if (verdict === 'wait') {
    if (!claimed) await deps.store.putClaim({ obligationId: o.obligationId, outcome, firstSeen: deps.now() });
    summary.pendingClaims += 1;
    return false;
  }
  if (verdict === 'refuted') throw new InvalidRecordError(`outcome ${o.outcome} of ${o.obligationId} is refuted by its payment`);
  const [consumer, provider] = await Promise.all([deps.directory.get(o.consumerDomain), deps.directory.get(o.providerDomain)]);
  // The same closedAt and weight the deciding hub used, so the evidence is identical everywhere.
  const weight = o.outcome === 'fulfilled' ? evidenceWeight(consumer?.body, provider?.body) : 1;
  const extra = {
    closedAt: o.at,
    // when this hub learnt it: followedAt − closedAt is the outcome's propagation lag
    followedAt: deps.now(),
    weight,
    ...(o.txid ? { paidTxid: o.txid } : {}),
  };
  if (await closeObligation(deps, item, ['accepted', 'settling'], o.outcome, extra)) return true;
  // closed meanwhile: complete its evidence if a run stopped midway (once: recordEvidence is keyed)
  const done = await deps.store.getObligation(o.obligationId);
  if (done && done.status === o.outcome) await recordEvidence(deps, done);
  return false;
}

/**
 * Is the claim backed by the Bitcoin chain, as this hub's own node sees it?
 * fulfilled: the consumer's settlement record names this obligation and the claimed
 * transaction, which pays payTo at least the amount with N confirmations.
 * defaulted: declared at or after dueBy, and no payment of it had confirmed by then.
 */
async function checkClaim(deps: Deps, item: ObligationItem, o: OutcomeBody): Promise<'valid' | 'refuted' | 'wait'> {
  const refs = (await deps.store.listSettlementRefs(item.id)).filter(
    (r) => r.consumerDomain === item.consumerDomain && r.payTo === item.payTo,
  );
  const graceEnd = item.dueBy + deps.config.settlementGraceMs;
  if (o.outcome === 'fulfilled') {
    const ref = refs.find((r) => r.txid === o.txid);
    if (!ref) return deps.now() > graceEnd ? 'refuted' : 'wait';
    const tx = await lookup(deps, ref.txid);
    if (tx && tx.confirmations >= deps.config.confirmations && paid(tx, item.payTo) >= item.amount) return 'valid';
    return deps.now() > graceEnd ? 'refuted' : 'wait';
  }
  // A default is the provider's word at time o.at; it stands unless the obligation was not
  // yet due then, or a payment of it had already confirmed by then (the provider should
  // have seen it). A payment confirming later does not undo it — at any hub.
  if (o.at < item.dueBy) return 'refuted';
  for (const ref of refs) {
    const tx = await lookup(deps, ref.txid);
    if (!tx || paid(tx, item.payTo) < item.amount) continue;
    if (tx.confirmations >= deps.config.confirmations && tx.blockTime !== undefined && tx.blockTime <= o.at) return 'refuted';
  }
  return 'valid';
}

const paid = (tx: ChainTx, payTo: string): number =>
  tx.outputs.filter((out) => out.address === payTo).reduce((sum, out) => sum + out.amount, 0);

async function lookup(deps: Deps, txid: string): Promise<ChainTx | null> {
  return (await deps.walletReads(FOLLOWER_WALLET)).lookupTransaction(txid);
}

/** Claims that waited: apply the ones now checkable, drop the refuted, keep the rest. */
async function recheckClaims(deps: Deps, summary: FollowSummary): Promise<void> {
  for (const claim of await deps.store.listClaims()) {
    try {
      const before = summary.pendingClaims;
      if (await applyOutcome(deps, claim.outcome, summary, true)) summary.outcomes += 1;
      if (summary.pendingClaims === before) await deps.store.deleteClaim(claim.obligationId);
    } catch (e) {
      if (!(e instanceof InvalidRecordError)) throw e;
      summary.invalid += 1;
      await deps.store.deleteClaim(claim.obligationId);
    }
  }
}
