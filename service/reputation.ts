/**
 * Reputation and credit queries. The O(1) answer comes from the counters;
 * `fromLedger` recomputes the same figures from the ledger alone (domain
 * records, accepted obligations and outcome records), as any party could.
 */
import { creditLimit } from '../core/credit.ts';
import { InvalidRecordError } from '../core/errors.ts';
import { evidenceWeight, recompute, reputationOf, vouches, type EvidenceEvent } from '../core/reputation.ts';
import type { DomainRecord, OutcomeBody } from '../core/types.ts';
import type { Deps } from './deps.ts';
import { isOutcomeItem, readAccepted, readOutcome, readSettlement } from './ledger-records.ts';

/** The record, or undefined when it does not verify (every reader skips it). */
async function valid<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof InvalidRecordError) return undefined;
    throw e;
  }
}

export interface ReputationView {
  domain: string;
  reputation: number;
  creditLimit: number;
  outstanding: number;
  paidVolume: number;
  rScaled: number;
  sScaled: number;
  at: string;
}

export async function reputationOfDomain(deps: Deps, domain: string): Promise<ReputationView> {
  const c = await deps.store.getCounters(domain);
  const now = deps.now();
  const reputation = reputationOf(c, now, deps.config.reputation);
  return {
    domain,
    reputation,
    creditLimit: creditLimit(reputation, c.paidVolume, deps.config.credit),
    outstanding: c.outstanding,
    paidVolume: c.paidVolume,
    rScaled: c.rScaled,
    sScaled: c.sScaled,
    at: new Date(now).toISOString(),
  };
}

export interface LedgerReputation {
  domain: string;
  reputation: number;
  rScaled: number;
  sScaled: number;
  paidVolume: number;
  /** Accepted obligations on the ledger with no outcome yet (sats). */
  outstanding: number;
  fulfilled: number;
  defaulted: number;
}

/**
 * Recompute every consumer domain's figures from the ledger alone, reading every
 * record with the same verifying readers the follower uses: forged, squatted or
 * foreign-signed records are skipped, the first valid record per id wins, and a
 * fulfilled outcome counts only when the consumer's own settlement record names
 * the obligation and the transaction it claims.
 */
export async function recomputeFromLedger(deps: Deps): Promise<Map<string, LedgerReputation>> {
  const records = new Map<string, DomainRecord>((await deps.directory.all()).map((r) => [r.body.domain, r.body]));
  const paidBy = new Set<string>(); // `${obligationId}:${txid}` named by the consumer's settlement records
  for (const item of await deps.ledger.list('settlements')) {
    const r = await valid(() => readSettlement(deps.directory, item));
    for (const out of r?.body.outputs ?? []) for (const id of out.obligationIds) paidBy.add(`${id}:${r?.body.txid}`);
  }
  const accepted = new Map<string, { consumer: string; provider: string; amount: number }>();
  const outcomes = new Map<string, OutcomeBody>();
  for (const item of await deps.ledger.list('obligations')) {
    if (isOutcomeItem(item)) {
      const o = (await valid(() => readOutcome(deps.directory, item)))?.body;
      if (!o || outcomes.has(o.obligationId)) continue;
      if (o.outcome === 'fulfilled' && !paidBy.has(`${o.obligationId}:${o.txid}`)) continue;
      outcomes.set(o.obligationId, o);
      continue;
    }
    const a = await valid(() => readAccepted(deps.directory, item));
    if (!a || accepted.has(a.obligation.id)) continue;
    const b = a.obligation.body;
    accepted.set(a.obligation.id, { consumer: b.consumerDomain, provider: b.providerDomain, amount: b.amount });
  }
  const events = new Map<string, EvidenceEvent[]>();
  const out = new Map<string, LedgerReputation>();
  const row = (d: string): LedgerReputation => {
    let r = out.get(d);
    if (!r) {
      r = { domain: d, reputation: 0.5, rScaled: 0, sScaled: 0, paidVolume: 0, outstanding: 0, fulfilled: 0, defaulted: 0 };
      out.set(d, r);
    }
    return r;
  };
  // Standing: which hubs' consumers paid each provider (fulfilled, not same-operator evidence).
  const hubOf = (d: string) => records.get(d)?.publisher ?? '';
  const staticWeight = (a: { consumer: string; provider: string }) => evidenceWeight(records.get(a.consumer), records.get(a.provider));
  const payerHubs = new Map<string, Set<string>>();
  for (const [id, a] of accepted) {
    if (outcomes.get(id)?.outcome !== 'fulfilled' || staticWeight(a) === 0) continue;
    const hubs = payerHubs.get(a.provider) ?? new Set<string>();
    hubs.add(hubOf(a.consumer));
    payerHubs.set(a.provider, hubs);
  }
  for (const [id, a] of accepted) {
    const r = row(a.consumer);
    const o = outcomes.get(id);
    if (!o || o.consumerDomain !== a.consumer || o.providerDomain !== a.provider) {
      r.outstanding += a.amount;
      continue;
    }
    // amounts and parties come from the signed obligation, never from the outcome's claim
    const counts = staticWeight(a) > 0 && vouches(payerHubs.get(a.provider) ?? [], hubOf(a.consumer), hubOf(a.provider));
    const weight = o.outcome === 'fulfilled' ? (counts ? 1 : 0) : 1;
    const list = events.get(a.consumer) ?? [];
    list.push({ kind: o.outcome, amount: a.amount, at: o.at, consumerDomain: a.consumer, providerDomain: a.provider, weight });
    events.set(a.consumer, list);
    if (o.outcome === 'fulfilled') {
      r.fulfilled += 1;
      r.paidVolume += Math.floor(a.amount * weight);
    } else {
      r.defaulted += 1;
    }
  }
  const now = deps.now();
  for (const [d, list] of events) {
    const r = row(d);
    const x = recompute(list, now, deps.config.reputation);
    r.rScaled = x.rScaled;
    r.sScaled = x.sScaled;
    r.reputation = x.reputation;
  }
  return out;
}
