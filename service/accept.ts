/**
 * SPB: accept an obligation locally and at once (DESIGN.md protocol step 3).
 * The decision itself is core/policy.ts; this file gathers its inputs and
 * makes the outcome durable, idempotently by obligation id:
 *
 *   1. an obligation already stored → the stored acceptance again (duplicate delivery);
 *   2. decide() on the current counters, chain head and offer;
 *   3. reserve credit: counters.outstanding += amount, guarded by the limit and
 *      keyed `accept:<id>` (optimistic concurrency, so two providers can't both
 *      take the last credit);
 *   4. claim the offer and advance the device chain (conditional writes); if another
 *      obligation won either, the reservation is released and the obligation refused;
 *   5. store the obligation (pending publication); the ledger publisher picks it up.
 *
 * A crash between any two steps is completed by a retry of the same message.
 */
import { checkPayTo } from './addresses.ts';
import {
  ExpiredError,
  ObligationError,
  OfferMismatchError,
  OverCreditError,
  ReplayError,
  TermTooShortError,
  UnknownDomainError,
} from '../core/errors.ts';
import { creditLimit } from '../core/credit.ts';
import { decide } from '../core/policy.ts';
import { parseObligation } from '../core/records.ts';
import { reputationOf } from '../core/reputation.ts';
import type { AcceptanceBody, Obligation, Signed } from '../core/types.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { hubKeyOf } from './keys.ts';
import { topics } from './topics.ts';

/** Longest payment term a provider accepts unless it says otherwise: 7 days. */
export const DEFAULT_MAX_TERM_MS = 7 * 86_400_000;

export type AcceptOutcome =
  | { accepted: true; obligation: Obligation; obligationId: string; acceptance: Signed<AcceptanceBody>; duplicate: boolean }
  | { accepted: false; obligationId: string | undefined; error: ObligationError };

/** Decide and record. Never throws an ObligationError: refusals are returned (retry-class errors are thrown). */
export async function acceptObligation(
  deps: Deps,
  raw: unknown,
  from?: { domain: string; thing: string },
): Promise<AcceptOutcome> {
  let ob: Obligation | undefined;
  try {
    ob = parseObligation(raw);
    if (from && (from.domain !== ob.body.consumerDomain || from.thing !== ob.body.consumerDevice)) {
      throw new OfferMismatchError(
        `obligation of ${ob.body.consumerDomain}/${ob.body.consumerDevice} sent by ${from.domain}/${from.thing}`,
      );
    }
    return await accept(deps, ob);
  } catch (e) {
    if (e instanceof ObligationError && e.errorClass !== 'retry') {
      return { accepted: false, obligationId: ob?.id, error: e };
    }
    throw e;
  }
}

async function accept(deps: Deps, ob: Obligation): Promise<AcceptOutcome> {
  const { store } = deps;
  const b = ob.body;
  const stored = await store.getObligation(ob.id);
  if (stored) return { accepted: true, obligation: ob, obligationId: ob.id, acceptance: stored.accepted.acceptance, duplicate: true };

  checkPayTo(deps, b.payTo);
  const provider = await store.getHostedDomain(b.providerDomain);
  if (!provider || provider.role === 'consumer') {
    throw new UnknownDomainError(`provider domain ${b.providerDomain} is not hosted here`, { domain: b.providerDomain });
  }
  const maxTerm = provider.maxTermMs ?? DEFAULT_MAX_TERM_MS;
  if (b.dueBy - b.issuedAt > maxTerm) {
    throw new ExpiredError(`payment term of ${b.dueBy - b.issuedAt} ms exceeds ${provider.domain}'s ${maxTerm} ms`, {
      term: b.dueBy - b.issuedAt,
      maxTerm,
    });
  }
  // shorter than the settlement interval (plus slack), an honest consumer would be late by construction
  const minTerm = provider.minTermMs ?? deps.config.minTermMs;
  if (b.dueBy - b.issuedAt < minTerm) {
    throw new TermTooShortError(`payment term of ${b.dueBy - b.issuedAt} ms is shorter than ${provider.domain}'s ${minTerm} ms`, {
      term: b.dueBy - b.issuedAt,
      minTerm,
    });
  }
  const now = deps.now();
  const [consumerRecord, offerItem, head, counters, revocation, hubKey] = await Promise.all([
    deps.directory.get(b.consumerDomain),
    store.getOffer(b.offerId),
    store.getChainHead(b.consumerDomain, b.consumerDevice),
    store.getCounters(b.consumerDomain),
    // revocations are in the store (this hub's own, and those the follower verified): no ledger read here
    store.getRevocation(b.consumerDomain, b.consumerDevice, b.credential.body.deviceKey),
    // the acceptance is signed in process with a hub key the domain key certified (no KMS call per obligation)
    hubKeyOf(deps, provider),
  ]);
  if (offerItem?.usedBy !== undefined && offerItem.usedBy !== ob.id) {
    throw new ReplayError(`offer ${b.offerId} was already used by another obligation`, { offerId: b.offerId });
  }
  // A retry after a crash that advanced the chain but did not store: the head is this very obligation.
  const chainHead = head && head.id === ob.id ? (b.seq > 1 ? { seq: b.seq - 1, id: b.prev } : undefined) : head;
  // Likewise its own earlier reservation is not someone else's exposure.
  const ownReservation = counters.recent.includes(`accept:${ob.id}`) ? b.amount : 0;
  const reputation = reputationOf(counters, now, deps.config.reputation);
  const limit = creditLimit(reputation, counters.paidVolume, deps.config.credit);
  const decision = decide(ob, {
    now,
    consumerDomainKey: consumerRecord?.body.key,
    offer: offerItem?.offer.body,
    providerDomain: provider.domain,
    providerKey: hubKey.privateKey,
    providerCertificate: hubKey.certificate,
    revoked: revocation !== undefined,
    threshold: provider.threshold,
    reputation,
    creditLimit: limit,
    outstanding: counters.outstanding - ownReservation,
    chainHead,
    seen: false,
  });
  if (!decision.accept) throw decision.error;

  await store.applyCounters(b.consumerDomain, `accept:${ob.id}`, { outstanding: b.amount }, (cur) => {
    const lim = creditLimit(reputationOf(cur, now, deps.config.reputation), cur.paidVolume, deps.config.credit);
    if (cur.outstanding + b.amount > lim) {
      throw new OverCreditError(`${b.consumerDomain} would exceed its credit limit`, {
        outstanding: cur.outstanding,
        amount: b.amount,
        limit: lim,
      });
    }
  }, counters);
  const release = () => store.applyCounters(b.consumerDomain, `release:${ob.id}`, { outstanding: -b.amount });
  if (!(await store.claimOffer(b.offerId, ob.id))) {
    await release();
    throw new ReplayError(`offer ${b.offerId} was already used by another obligation`, { offerId: b.offerId });
  }
  if (!(await store.advanceChain(b.consumerDomain, b.consumerDevice, b.seq, ob.id, b.prev))) {
    await release();
    throw new ReplayError(`sequence ${b.seq} of ${b.consumerDomain}/${b.consumerDevice} is already taken`, {
      seq: b.seq,
    });
  }
  const item: ObligationItem = {
    id: ob.id,
    status: 'accepted',
    accepted: { obligation: ob, acceptance: decision.acceptance },
    consumerDomain: b.consumerDomain,
    consumerDevice: b.consumerDevice,
    providerDomain: b.providerDomain,
    amount: b.amount,
    payTo: b.payTo,
    acceptedAt: decision.acceptance.body.acceptedAt,
    dueBy: b.dueBy,
  };
  if (!(await store.putObligation(item))) {
    const again = await store.getObligation(ob.id);
    if (again) return { accepted: true, obligation: ob, obligationId: ob.id, acceptance: again.accepted.acceptance, duplicate: true };
  }
  return { accepted: true, obligation: ob, obligationId: ob.id, acceptance: decision.acceptance, duplicate: false };
}

/**
 * Tell the consumer device the answer and, on a first acceptance, grant the
 * service on the provider device (both at once). The answer goes to `replyTo`
 * (over MQTT: the sender the broker vouched for), else to the consumer the
 * obligation names, if it is readable enough to name one.
 */
export async function notifyOutcome(
  deps: Deps,
  raw: unknown,
  outcome: AcceptOutcome,
  requestId?: string,
  replyTo?: { domain: string; thing: string },
): Promise<void> {
  const named = outcome.accepted ? outcome.obligation.body : consumerNamedIn(raw);
  const to = replyTo ?? (named ? { domain: named.consumerDomain, thing: named.consumerDevice } : undefined);
  const sends: Promise<void>[] = [];
  if (to) {
    const reply = outcome.accepted
      ? { requestId, obligationId: outcome.obligationId, accepted: true, acceptance: outcome.acceptance }
      : { requestId, obligationId: outcome.obligationId ?? null, accepted: false, error: outcome.error.toJSON() };
    sends.push(deps.notifier.publish(topics.toDevice(to.domain, to.thing, 'reply'), reply as never));
  }
  if (outcome.accepted && !outcome.duplicate) {
    const b = outcome.obligation.body;
    sends.push(
      deps.notifier.publish(topics.toDevice(b.providerDomain, b.providerDevice, 'grant'), {
        obligationId: outcome.obligationId,
        consumer: `${b.consumerDomain}/${b.consumerDevice}`,
        service: b.service,
        amount: b.amount,
      }),
    );
  }
  await Promise.all(sends);
}

function consumerNamedIn(raw: unknown): { consumerDomain: string; consumerDevice: string } | undefined {
  const body = (raw as { body?: { consumerDomain?: unknown; consumerDevice?: unknown } } | null)?.body;
  return body && typeof body.consumerDomain === 'string' && typeof body.consumerDevice === 'string'
    ? { consumerDomain: body.consumerDomain, consumerDevice: body.consumerDevice }
    : undefined;
}
