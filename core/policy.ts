/**
 * The provider's acceptance decision, pure: given an obligation and what the SPB
 * knows (keys, the offer it issued, the consumer's standing, the device's chain head),
 * accept with a signed countersignature or reject with a typed error.
 */
import {
  ChainBreakError,
  ExpiredError,
  ObligationError,
  OfferMismatchError,
  OverCreditError,
  ReplayError,
  ReputationTooLowError,
  RevokedError,
  UnknownDomainError,
} from './errors.ts';
import type { PrivateKeyRef } from './keys.ts';
import { acceptanceOf, verifyObligation, type ChainLink } from './obligation.ts';
import { parseObligation } from './records.ts';
import {
  GENESIS,
  type AcceptanceBody,
  type HubKeyCertificate,
  type Obligation,
  type Offer,
  type PublicKeyRef,
  type Signed,
} from './types.ts';

export interface DecisionContext {
  now: number;
  /** The consumer domain's key from its domain record; undefined when the domain is unknown. */
  consumerDomainKey: PublicKeyRef | undefined;
  /** The offer the SPB issued, looked up by the obligation's offerId; undefined when there is none. */
  offer: Offer | undefined;
  /** The domain making the decision. */
  providerDomain: string;
  /** The key the acceptance is signed with: the provider's domain key, or a hub key certified by it. */
  providerKey: PrivateKeyRef;
  /** The hub key's certificate, when providerKey is one. */
  providerCertificate?: Signed<HubKeyCertificate>;
  /** True when the consumer domain revoked the key of the device that signed (store lookup, learnt from the ledger). */
  revoked?: boolean;
  /** Minimum consumer-domain reputation this provider accepts. */
  threshold: number;
  /** The consumer domain's reputation now. */
  reputation: number;
  /** The consumer domain's credit limit (sats). */
  creditLimit: number;
  /** The consumer domain's accepted but unsettled amount (sats). */
  outstanding: number;
  /** The device's last accepted obligation; undefined if none. */
  chainHead: ChainLink | undefined;
  /** True when this obligation id was already accepted. */
  seen: boolean;
}

export type Decision =
  | { accept: true; acceptance: Signed<AcceptanceBody> }
  | { accept: false; error: ObligationError };

function checkOffer(ob: Obligation, ctx: DecisionContext): void {
  const b = ob.body;
  const offer = ctx.offer;
  if (offer === undefined || offer.offerId !== b.offerId) {
    throw new OfferMismatchError(`no offer ${b.offerId} was made`, { offerId: b.offerId });
  }
  const consumer = `${b.consumerDomain}/${b.consumerDevice}`;
  const mismatches: string[] = [];
  if (b.providerDomain !== ctx.providerDomain || offer.providerDomain !== ctx.providerDomain) mismatches.push('providerDomain');
  if (b.providerDevice !== offer.providerDevice) mismatches.push('providerDevice');
  if (b.service !== offer.service) mismatches.push('service');
  if (b.amount !== offer.price) mismatches.push('amount');
  if (b.payTo !== offer.payTo) mismatches.push('payTo');
  if (consumer !== offer.consumer) mismatches.push('consumer');
  if (mismatches.length > 0) {
    throw new OfferMismatchError(`obligation does not match offer ${offer.offerId}: ${mismatches.join(', ')}`, {
      offerId: offer.offerId,
      fields: mismatches,
    });
  }
  if (ctx.now > offer.expiresAt || b.issuedAt > offer.expiresAt) {
    throw new ExpiredError(`offer ${offer.offerId} expired`, { expiresAt: offer.expiresAt, now: ctx.now, issuedAt: b.issuedAt });
  }
  if (b.dueBy <= ctx.now) throw new ExpiredError('obligation is already past due', { dueBy: b.dueBy, now: ctx.now });
}

/**
 * The device chain as far as this hub knows it. Where the hub holds the link just before
 * this one, it must match exactly. Where its head is older (or absent), the links between
 * were accepted at other hubs and are not yet followed from the ledger: the hub accepts the
 * forward step — replay stays excluded (seq above the head, id unseen, offer single-use) and
 * a fork shows on the ledger, where every hub's follower sees both links.
 */
function checkChain(ob: Obligation, head: ChainLink | undefined): void {
  const { seq, prev } = ob.body;
  const expected: ChainLink = head ?? { seq: 0, id: GENESIS };
  const knowsPrevious = seq === expected.seq + 1;
  if ((knowsPrevious && prev !== expected.id) || (seq === 1 && prev !== GENESIS) || (seq > 1 && prev === GENESIS)) {
    throw new ChainBreakError(`seq ${seq} does not continue the device chain at ${expected.seq}`, {
      seq,
      prev,
      headSeq: expected.seq,
      headId: expected.id,
    });
  }
}

function check(ob: Obligation, ctx: DecisionContext): void {
  parseObligation(ob);
  const key = ctx.consumerDomainKey;
  if (key === undefined) {
    throw new UnknownDomainError(`consumer domain ${ob.body.consumerDomain} is unknown`, { domain: ob.body.consumerDomain });
  }
  verifyObligation(ob, key, ctx.now);
  if (ctx.revoked) {
    throw new RevokedError(`the key of ${ob.body.consumerDomain}/${ob.body.consumerDevice} is revoked`, {
      domain: ob.body.consumerDomain,
      device: ob.body.consumerDevice,
    });
  }
  checkOffer(ob, ctx);
  if (ctx.seen) throw new ReplayError(`obligation ${ob.id} was already accepted`, { id: ob.id });
  if (ctx.chainHead !== undefined && ob.body.seq <= ctx.chainHead.seq) {
    throw new ReplayError(`seq ${ob.body.seq} was already used`, { seq: ob.body.seq, headSeq: ctx.chainHead.seq });
  }
  checkChain(ob, ctx.chainHead);
  if (ctx.reputation < ctx.threshold) {
    throw new ReputationTooLowError(`reputation of ${ob.body.consumerDomain} is below the threshold`, {
      reputation: ctx.reputation,
      threshold: ctx.threshold,
    });
  }
  if (ctx.outstanding + ob.body.amount > ctx.creditLimit) {
    throw new OverCreditError(`obligation would exceed the credit limit of ${ob.body.consumerDomain}`, {
      outstanding: ctx.outstanding,
      amount: ob.body.amount,
      limit: ctx.creditLimit,
    });
  }
}

/**
 * Decide on an obligation. Checks, in order: structure (MalformedError) → known consumer
 * domain (UnknownDomainError) → id, credential and signatures (verifyObligation) → device key not
 * revoked (RevokedError) → offer
 * exists and matches, not expired (OfferMismatchError / ExpiredError) → not replayed
 * (ReplayError) → continues the device chain (ChainBreakError) → reputation ≥ threshold
 * (ReputationTooLowError) → outstanding + amount ≤ credit limit (OverCreditError) → accept
 * with the provider's signed acceptance. Errors that are not ObligationErrors (bugs) propagate,
 * and so does any error signing the acceptance: a bad provider key is the server's fault,
 * not a rejection of the caller.
 */
export function decide(ob: Obligation, ctx: DecisionContext): Decision {
  try {
    check(ob, ctx);
  } catch (error) {
    if (error instanceof ObligationError) return { accept: false, error };
    throw error;
  }
  return { accept: true, acceptance: acceptanceOf(ob, ctx.providerKey, ctx.now, ctx.providerCertificate) };
}
