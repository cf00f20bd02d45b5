/**
 * SPB: accept an obligation locally and at once (DESIGN.md protocol step 3).
 * The decision itself is core/policy.ts; this file gathers its inputs and
 * makes the outcome durable, idempotently by obligation id, in two sequential
 * store round trips (DynamoDB's cost and scale, issue 11):
 *
 *   1. one batched read: the obligation (stored already → the stored acceptance
 *      again), the offer, the device's chain head, the consumer's evidence
 *      counters and one escrow shard of its credit, picked at random;
 *   2. decide() on them, the credit check being "amount ≤ the shard's free credit";
 *   3. one TransactWriteItems: store the obligation (pending publication), claim
 *      the offer (a single-use offer: bind it to this obligation; a standing one:
 *      add the amount to what it has carried, within its cap), advance the chain
 *      and draw the amount from the shard — all or nothing, so a crash leaves
 *      either nothing or everything.
 * A shard that is short is refilled by a rebalance (store.rebalance) and the
 * decision taken again; only when the whole limit is used is it OverCredit.
 * A reputation judged too low on the counters item alone is judged again on the
 * counters with every shard's evidence (store.getCounters) before it is refused.
 */
import { checkPayTo } from './addresses.ts';
import {
  ChainBreakError,
  ExpiredError,
  ObligationError,
  OfferExhaustedError,
  OfferMismatchError,
  OverCreditError,
  ReplayError,
  ReputationTooLowError,
  TermTooShortError,
  UnknownDomainError,
} from '../core/errors.ts';
import { randomInt } from 'node:crypto';
import { decide } from '../core/policy.ts';
import { parseObligation } from '../core/records.ts';
import { reputationOf } from '../core/reputation.ts';
import type { AcceptanceBody, Obligation, Signed } from '../core/types.ts';
import type { ObligationItem } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { hubKeyOf } from './keys.ts';
import { limitFn } from './credit.ts';
import { topicsUnder } from './topics.ts';

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
      return { accepted: false, obligationId: ob?.id, error: ob && BEHIND.has(e.code) ? await withChainHead(deps, ob, e) : e };
    }
    throw e;
  }
}

/** Refusals that say the device's chain head is behind this hub's. */
const BEHIND = new Set([ReplayError.code, ChainBreakError.code]);

/**
 * The refusal with the device's chain head as this hub knows it (`details.head`: seq, id and
 * the head obligation the device signed), so a device that lost an acceptance reply resumes
 * from the refusal itself, over MQTT as over HTTP (devices/scd.ts adopts it only if it verifies
 * with its own key). Public anyway: the head is on the ledger and at GET …/devices/{device}/head.
 */
async function withChainHead(deps: Deps, ob: Obligation, e: ObligationError): Promise<ObligationError> {
  const h = await deps.store.getChainHead(ob.body.consumerDomain, ob.body.consumerDevice);
  if (!h) return e;
  const obligation = (await deps.store.getObligation(h.id))?.accepted.obligation;
  return e.withDetails({ head: { seq: h.seq, id: h.id, ...(obligation ? { obligation } : {}) } });
}

async function accept(deps: Deps, ob: Obligation): Promise<AcceptOutcome> {
  const { store } = deps;
  const b = ob.body;
  const now = deps.now();
  const limit = limitFn(deps.config);
  // 1. one batched read (the provider's config and the consumer's domain record are cached)
  let shard = randomInt(store.creditShards);
  const [provider, consumerKey, read] = await Promise.all([
    store.getHostedDomain(b.providerDomain),
    // its current key: a credential signed by a key the domain rotated away from is refused
    deps.directory.currentKey(b.consumerDomain, b.credential),
    // with the device key's revocation: revocations are in the store (this hub's own, and those the
    // follower verified), so no ledger read here; eventually consistent, in the same batch as the
    // counters and shard (see DynamoStore.getRevocation for why that is enough)
    store.readForAcceptance({
      obligationId: ob.id,
      offerId: b.offerId,
      consumerDomain: b.consumerDomain,
      consumerDevice: b.consumerDevice,
      shard,
      deviceKey: b.credential.body.deviceKey,
    }),
  ]);
  if (read.stored) return duplicate(ob, read.stored);
  // A standing offer is used by many obligations, so `read.stored` (found through a single-use
  // offer's usedBy) cannot name this one: an obligation at or below the chain head is either
  // this very obligation again (the same answer) or a replay, refused below.
  const cap = read.offer?.offer.body.cap;
  if (cap !== undefined && read.head && b.seq <= read.head.seq) {
    const again = await store.getObligation(ob.id);
    if (again) return duplicate(ob, again);
  }
  checkPayTo(deps, b.payTo);
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
  // signed in process with a hub key the domain key certified: no KMS call per obligation (one per half-life)
  const hubKey = await hubKeyOf(deps, provider);
  if (read.offer?.usedBy !== undefined && read.offer.usedBy !== ob.id) {
    throw new ReplayError(`offer ${b.offerId} was already used by another obligation`, { offerId: b.offerId });
  }
  let counters = { ...read.counters, outstanding: 0 };
  let reputation = reputationOf(counters, now, deps.config.reputation);
  let free = read.shard.until >= now ? read.shard.free : 0;
  let rebalanced = false;
  let evidenceRead = false;
  for (let attempt = 0; ; attempt++) {
    // The credit check on this shard's free credit: drawing at most `free` keeps outstanding ≤ limit (store invariant J).
    const creditLine = limit(counters, now);
    const decision = decide(ob, {
      now,
      consumerDomainKey: consumerKey,
      offer: read.offer?.offer.body,
      providerDomain: provider.domain,
      providerKey: hubKey.privateKey,
      providerCertificate: hubKey.certificate,
      revoked: read.revocation !== undefined,
      threshold: provider.threshold,
      reputation,
      creditLimit: creditLine,
      outstanding: Math.max(0, creditLine - free),
      chainHead: read.head,
      seen: false,
    });
    if (!decision.accept) {
      // Judged on the counters item alone, a payer's newest fulfilled evidence (kept on the escrow
      // shards until the next rebalance folds it in) is missing: before refusing for reputation,
      // judge once more on the counters item plus every shard's evidence, read as one serialisable
      // snapshot. Fulfilled evidence only grows, so this can only raise the reputation; it costs a
      // read on this refusal path only, never on an acceptance judged high enough at once.
      if (decision.error instanceof ReputationTooLowError && !evidenceRead) {
        evidenceRead = true;
        const whole = { ...(await store.getCounters(b.consumerDomain)), outstanding: 0 };
        const fresher = reputationOf(whole, now, deps.config.reputation);
        if (fresher > reputation) {
          counters = whole;
          reputation = fresher;
          continue;
        }
      }
      // this shard is short: refill the shards (giving this one the amount if the limit allows) and judge again
      if (decision.error instanceof OverCreditError && !rebalanced) {
        rebalanced = true;
        const r = await store.rebalance(b.consumerDomain, { limit, now, prefer: shard, need: b.amount });
        free = r.free[shard] ?? 0;
        continue;
      }
      throw decision.error;
    }
    const item: ObligationItem & { shard: number } = {
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
      shard,
    };
    // 2. one transaction: obligation, offer claim, chain advance and credit draw, all or nothing
    const outcome =
      cap === undefined
        ? await store.commitAcceptance(item, { seq: b.seq, prev: b.prev }, b.offerId, now)
        : await store.commitStandingAcceptance(item, { seq: b.seq, prev: b.prev }, { offerId: b.offerId, cap }, now);
    if (outcome === 'accepted') {
      return { accepted: true, obligation: ob, obligationId: ob.id, acceptance: decision.acceptance, duplicate: false };
    }
    if (outcome === 'duplicate') {
      const again = await store.getObligation(ob.id);
      if (again) return duplicate(ob, again);
      continue;
    }
    if (outcome === 'offer' && cap !== undefined) {
      throw new OfferExhaustedError(`standing offer ${b.offerId} has no room for ${b.amount} more sats (cap ${cap})`, {
        offerId: b.offerId,
        cap,
        amount: b.amount,
      });
    }
    if (outcome === 'offer') {
      throw new ReplayError(`offer ${b.offerId} was already used by another obligation`, { offerId: b.offerId });
    }
    if (outcome === 'chain') {
      throw new ReplayError(`sequence ${b.seq} of ${b.consumerDomain}/${b.consumerDevice} is already taken`, { seq: b.seq });
    }
    // 'credit': concurrent acceptances drained this shard (or its grant expired) since the read
    if (attempt >= 3) {
      throw new OverCreditError(`${b.consumerDomain} would exceed its credit limit`, { amount: b.amount, limit: creditLine });
    }
    const r = await store.rebalance(b.consumerDomain, { limit, now, prefer: shard, need: b.amount });
    const best = r.free.reduce((bi, f, i, all) => (f > (all[bi] ?? 0) ? i : bi), shard);
    shard = (r.free[shard] ?? 0) >= b.amount ? shard : best;
    free = r.free[shard] ?? 0;
  }
}

function duplicate(ob: Obligation, stored: ObligationItem): AcceptOutcome {
  return { accepted: true, obligation: ob, obligationId: ob.id, acceptance: stored.accepted.acceptance, duplicate: true };
}

/**
 * Tell the consumer device the answer and, on a first acceptance, grant the
 * service on the provider device. The answer goes to `replyTo` (over MQTT: the
 * sender the broker vouched for), else to the consumer the obligation names, if
 * it is readable enough to name one. A first acceptance is ONE publish that both
 * devices receive (topics.acceptedReply: the consumer's inbox, named after the
 * provider device, which subscribes to topics.grantsFor): the reply with the
 * signed acceptance, and the grant. IoT Core bills each publish and each delivery,
 * so this saves one message per purchase over a reply and a separate grant.
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
  if (outcome.accepted && !outcome.duplicate) {
    const b = outcome.obligation.body;
    // acceptObligation refused an obligation whose sender is not its consumer, so `to` is the consumer here
    const consumer = to ?? { domain: b.consumerDomain, thing: b.consumerDevice };
    await deps.notifier.publish(topicsUnder(deps.config.topicRoot).acceptedReply(consumer.domain, consumer.thing, b.providerDomain, b.providerDevice), {
      requestId,
      obligationId: outcome.obligationId,
      accepted: true,
      acceptance: outcome.acceptance,
      grant: { obligationId: outcome.obligationId, consumer: `${b.consumerDomain}/${b.consumerDevice}`, service: b.service, amount: b.amount },
    } as never);
    return;
  }
  if (!to) return;
  const reply = outcome.accepted
    ? { requestId, obligationId: outcome.obligationId, accepted: true, acceptance: outcome.acceptance }
    : { requestId, obligationId: outcome.obligationId ?? null, accepted: false, error: outcome.error.toJSON() };
  await deps.notifier.publish(topicsUnder(deps.config.topicRoot).toDevice(to.domain, to.thing, 'reply'), reply as never);
}

function consumerNamedIn(raw: unknown): { consumerDomain: string; consumerDevice: string } | undefined {
  const body = (raw as { body?: { consumerDomain?: unknown; consumerDevice?: unknown } } | null)?.body;
  return body && typeof body.consumerDomain === 'string' && typeof body.consumerDevice === 'string'
    ? { consumerDomain: body.consumerDomain, consumerDevice: body.consumerDevice }
    : undefined;
}
