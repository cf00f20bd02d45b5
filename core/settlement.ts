/**
 * Settlement planning for an SCB: batch its pending obligations into transactions,
 * one output per provider address, deterministic so a retried run makes the same plan.
 */
import { canonicalize, sha256Hex } from './canonical.ts';
import { MalformedError } from './errors.ts';
import type { SettlementRecord } from './types.ts';

export interface PendingObligation {
  id: string;
  payTo: string;
  providerDomain: string;
  amount: number;
}

export interface SettlementPlan {
  outputs: SettlementRecord['outputs'];
  total: number;
  obligationIds: string[];
}

/** Default most outputs in one transaction. */
export const DEFAULT_MAX_OUTPUTS = 100;

/**
 * Group `pending` by payTo into outputs (summed amounts, sorted ids), outputs sorted by
 * payTo, split into plans of at most `maxOutputs` outputs. Throws MalformedError on a
 * duplicate obligation id, an address claimed by two provider domains, a bad amount, or a
 * total that is not a safe integer.
 */
export function planSettlement(
  pending: readonly PendingObligation[],
  opts: { maxOutputs?: number } = {},
): SettlementPlan[] {
  const maxOutputs = opts.maxOutputs ?? DEFAULT_MAX_OUTPUTS;
  if (!Number.isSafeInteger(maxOutputs) || maxOutputs < 1) throw new MalformedError('maxOutputs must be >= 1', { maxOutputs });
  const seen = new Set<string>();
  const byAddress = new Map<string, SettlementRecord['outputs'][number]>();
  for (const ob of pending) {
    if (seen.has(ob.id)) throw new MalformedError(`obligation ${ob.id} is pending twice`, { id: ob.id });
    seen.add(ob.id);
    if (!Number.isSafeInteger(ob.amount) || ob.amount <= 0) {
      throw new MalformedError(`obligation ${ob.id} has a bad amount`, { id: ob.id, amount: ob.amount });
    }
    const out = byAddress.get(ob.payTo);
    if (out === undefined) {
      byAddress.set(ob.payTo, { payTo: ob.payTo, providerDomain: ob.providerDomain, amount: ob.amount, obligationIds: [ob.id] });
      continue;
    }
    if (out.providerDomain !== ob.providerDomain) {
      throw new MalformedError(`address ${ob.payTo} is claimed by ${out.providerDomain} and ${ob.providerDomain}`, {
        payTo: ob.payTo,
      });
    }
    out.amount += ob.amount;
    if (!Number.isSafeInteger(out.amount)) throw new MalformedError(`total for ${ob.payTo} is too large`, { payTo: ob.payTo });
    out.obligationIds.push(ob.id);
  }
  const outputs = [...byAddress.values()].sort((a, b) => (a.payTo < b.payTo ? -1 : a.payTo > b.payTo ? 1 : 0));
  const plans: SettlementPlan[] = [];
  for (let i = 0; i < outputs.length; i += maxOutputs) {
    const chunk = outputs.slice(i, i + maxOutputs);
    for (const out of chunk) out.obligationIds.sort();
    const total = chunk.reduce((sum, out) => sum + out.amount, 0);
    if (!Number.isSafeInteger(total)) throw new MalformedError('settlement total is too large', { total });
    plans.push({ outputs: chunk, total, obligationIds: chunk.flatMap((out) => out.obligationIds).sort() });
  }
  return plans;
}

/**
 * The settlement id for a consumer domain paying a set of obligations: sha256 of the
 * canonical {consumerDomain, sorted ids} (and `attempt` when > 0). The same set always
 * gets the same id, so a retried settlement finds its own earlier intent record; after
 * a settlement of that set failed for good, the next attempt gets a new id.
 */
export function settlementIdOf(consumerDomain: string, obligationIds: readonly string[], attempt = 0): string {
  const ids = [...obligationIds].sort();
  return sha256Hex(canonicalize(attempt > 0 ? { consumerDomain, obligationIds: ids, attempt } : { consumerDomain, obligationIds: ids }));
}
