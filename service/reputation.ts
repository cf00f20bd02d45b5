/**
 * Reputation and credit queries. The O(1) answer comes from the counters;
 * `fromLedger` recomputes the same figures from the ledger alone (domain
 * records, accepted obligations and outcome records), as any party could.
 */
import { creditLimit } from '../core/credit.ts';
import { parseAccepted } from '../core/records.ts';
import { evidenceWeight, recompute, reputationOf, type EvidenceEvent } from '../core/reputation.ts';
import type { DomainRecord } from '../core/types.ts';
import type { Deps } from '../functions/shared/deps.ts';
import type { OutcomeRecord } from './publish.ts';

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

function isOutcome(x: unknown): x is OutcomeRecord {
  const o = x as Partial<OutcomeRecord> | null;
  return !!o && o.kind === 'outcome' && typeof o.obligationId === 'string' && typeof o.at === 'number';
}

/** Recompute every consumer domain's figures from the ledger alone. */
export async function recomputeFromLedger(deps: Deps): Promise<Map<string, LedgerReputation>> {
  const records = new Map<string, DomainRecord>((await deps.directory.all()).map((r) => [r.body.domain, r.body]));
  const accepted = new Map<string, { consumer: string; provider: string; amount: number }>();
  const outcomes = new Map<string, OutcomeRecord>();
  for (const item of await deps.ledger.list('obligations')) {
    if (isOutcome(item.data)) {
      if (!outcomes.has(item.data.obligationId)) outcomes.set(item.data.obligationId, item.data);
      continue;
    }
    try {
      const a = parseAccepted(item.data);
      const b = a.obligation.body;
      if (!accepted.has(a.obligation.id)) {
        accepted.set(a.obligation.id, { consumer: b.consumerDomain, provider: b.providerDomain, amount: b.amount });
      }
    } catch {
      // not an accepted obligation: ignored by every reader
    }
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
  for (const [id, a] of accepted) {
    const r = row(a.consumer);
    const o = outcomes.get(id);
    if (!o) {
      r.outstanding += a.amount;
      continue;
    }
    // amounts and parties come from the signed obligation, never from the outcome's claim
    const weight = o.outcome === 'fulfilled' ? evidenceWeight(records.get(a.consumer), records.get(a.provider)) : 1;
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
