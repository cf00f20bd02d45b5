/**
 * Reputation of a consumer domain. OUR model (the paper's formula is not public):
 * a faded beta reputation after Jøsang & Ismail, "The Beta Reputation System" (2002).
 *
 *   r = Σ over fulfilled obligations  w · (amount / unit) · λ^((now − t) / day)
 *   s = Σ over defaulted obligations      (amount / unit) · λ^((now − t) / day)
 *   reputation = (r + 1) / (r + s + 2)         (a newcomer, r = s = 0, has 0.5)
 *
 * - Evidence is amount-weighted, in units of `unit` sats, so one small payment barely moves it.
 * - λ ∈ (0, 1] is the fading factor per day: evidence a day older weighs λ times as much.
 * - t is when the evidence happened: the payment's confirmation (fulfilled) or dueBy (defaulted).
 *
 * Incremental form, compatible with DynamoDB's atomic ADD (no read-modify-write): each event
 * adds w·(a/unit)·λ^(−(t − epoch)/day) to a stored counter (rScaled or sScaled); reading
 * multiplies by λ^((now − epoch)/day). So a query is O(1) whatever the number of events, and
 * the counters equal a full recomputation from the ledger (recompute). With λ = 0.98 the scale
 * factor reaches 1e32 after ten years and overflows after about 95, well inside a double;
 * move `epoch` forward (rescaling the counters) long before that.
 *
 * Sybil guard (evidenceWeight): fulfilled evidence counts with weight 1 only when the provider
 * is a known domain that is clearly not the consumer: not the same domain, not the same key,
 * not the same ledger publisher, and neither record lists the other in `operates`. Otherwise it
 * counts 0: payments to itself earn nothing. Defaulted evidence always counts with weight 1
 * (you cannot hide your defaults behind a puppet provider). The publisher is the hub that
 * really published each domain's record (checked on read), so all domains of one hub — one
 * operator — count 0 for each other.
 *
 * Standing (vouches): on top of that, a provider's payments vouch for a consumer only once
 * the provider has also been paid by a consumer of a THIRD hub — neither the consumer's hub
 * nor its own. A colluding pair on two hubs therefore earns nothing until an unrelated hub's
 * consumer pays the provider too; on a permissioned chain each hub is a node some admin
 * granted, so that is the Sybil's real cost. Evidence held back waits (parked) and counts
 * from its own time once the provider qualifies, so the final figures do not depend on the
 * order in which a hub learns the events: every hub converges on the same counters.
 */
import { MalformedError } from './errors.ts';
import { sameKey } from './keys.ts';
import type { DomainRecord, ReputationCounters } from './types.ts';

export const DAY_MS = 86_400_000;

export interface ReputationParams {
  /** Fading factor per day, in (0, 1]. */
  lambda: number;
  /** Sats per unit of evidence. */
  unit: number;
  /** Reference time (epoch ms) of the scaled counters. */
  epoch: number;
}

export const DEFAULT_REPUTATION: ReputationParams = {
  lambda: 0.98,
  unit: 10_000,
  epoch: Date.UTC(2026, 0, 1),
};

export type EvidenceKind = 'fulfilled' | 'defaulted';

export interface EvidenceEvent {
  kind: EvidenceKind;
  amount: number;
  at: number;
  consumerDomain: string;
  providerDomain: string;
  /** From evidenceWeight; ignored (taken as 1) for defaulted evidence. */
  weight: number;
}

export type ScaledCounters = Pick<ReputationCounters, 'rScaled' | 'sScaled'>;

/** Newcomer reputation. */
export const NEUTRAL_REPUTATION = 0.5;
/** Readings are kept inside (0, 1) even when floating point would round to an end. */
const EPS = Number.EPSILON;

function checkParams(p: ReputationParams): void {
  if (!(p.lambda > 0 && p.lambda <= 1) || !(p.unit > 0) || !Number.isFinite(p.epoch)) {
    throw new MalformedError('reputation params need 0 < lambda <= 1, unit > 0 and a finite epoch', { ...p });
  }
}

/** λ^(days since epoch) at time t. */
function fade(t: number, p: ReputationParams): number {
  return Math.pow(p.lambda, (t - p.epoch) / DAY_MS);
}

/** The reputation for faded evidence r and s. */
export function betaReputation(r: number, s: number): number {
  const rr = Math.max(0, r);
  const ss = Math.max(0, s);
  const value = (rr + 1) / (rr + ss + 2);
  return Math.min(1 - EPS, Math.max(EPS, value));
}

/** The increments to ADD to the scaled counters for one piece of evidence. */
export function evidenceDelta(
  kind: EvidenceKind,
  amount: number,
  at: number,
  weight: number,
  p: ReputationParams = DEFAULT_REPUTATION,
): { rScaled: number; sScaled: number } {
  checkParams(p);
  if (!Number.isFinite(amount) || amount < 0) throw new MalformedError('evidence amount must be >= 0', { amount });
  if (!Number.isFinite(at)) throw new MalformedError('evidence time must be finite', { at });
  if (!(weight >= 0 && weight <= 1)) throw new MalformedError('evidence weight must be in [0, 1]', { weight });
  const scaled = amount / p.unit / fade(at, p);
  return kind === 'fulfilled' ? { rScaled: weight * scaled, sScaled: 0 } : { rScaled: 0, sScaled: scaled };
}

/** The reputation now, from the scaled counters: O(1). */
export function reputationOf(c: ScaledCounters, now: number, p: ReputationParams = DEFAULT_REPUTATION): number {
  const f = fade(now, p);
  return betaReputation(c.rScaled * f, c.sScaled * f);
}

/**
 * Full recomputation from the ledger's evidence: sums the faded evidence directly
 * (λ^((now − t)/day)) and rescales to counters, independently of evidenceDelta, so a test
 * can check the incremental counters against it.
 */
export function recompute(
  events: readonly EvidenceEvent[],
  now: number,
  p: ReputationParams = DEFAULT_REPUTATION,
): { rScaled: number; sScaled: number; reputation: number } {
  checkParams(p);
  let r = 0;
  let s = 0;
  for (const e of events) {
    const faded = (e.amount / p.unit) * Math.pow(p.lambda, (now - e.at) / DAY_MS);
    if (e.kind === 'fulfilled') r += e.weight * faded;
    else s += faded;
  }
  const f = fade(now, p);
  return { rScaled: r / f, sScaled: s / f, reputation: betaReputation(r, s) };
}

/** Does a provider, paid by consumers of `payerHubs`, vouch for a consumer of `consumerHub`? (Standing, above.) */
export function vouches(payerHubs: Iterable<string>, consumerHub: string, providerHub: string): boolean {
  for (const h of payerHubs) if (h !== consumerHub && h !== providerHub) return true;
  return false;
}

/**
 * How much a provider's fulfilled evidence counts for a consumer (the Sybil guard above):
 * 0 if either record is unknown, or the two are the same domain, share a key or a ledger
 * publisher, or either lists the other in `operates`; else 1.
 */
export function evidenceWeight(consumer: DomainRecord | undefined, provider: DomainRecord | undefined): number {
  if (consumer === undefined || provider === undefined) return 0;
  if (consumer.domain === provider.domain) return 0;
  if (sameKey(consumer.key, provider.key)) return 0;
  if (consumer.publisher === provider.publisher) return 0;
  if (consumer.operates.includes(provider.domain) || provider.operates.includes(consumer.domain)) return 0;
  return 1;
}
