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

/** An unconfirmed settlement as the fee-bump decision sees it. */
export interface UnconfirmedPayment {
  txid: string;
  /** The txids its inputs spend. */
  spends: readonly string[];
  /** Height it (its current transaction) was broadcast at; undefined: not broadcast yet. */
  broadcastHeight?: number;
  /** Is its current transaction a fee bump (it replaced another)? */
  bumped: boolean;
}

export interface PaymentChain {
  /** Nothing else in the set spends it: a fee bump of it pays for what it spends too. */
  leaf: boolean;
  /**
   * The height its chain's wait counts from: the later of its oldest member's
   * broadcast and the chain's last fee bump; undefined when no member was broadcast.
   */
  waitingSince?: number;
}

/**
 * Unconfirmed payments of one wallet linked by spending each other's outputs
 * (a payment that spends the change of one still unconfirmed) form a chain.
 * A wallet will not fee-bump a payment something else spends (Bitcoin Core:
 * "Transaction has descendants in the wallet"), but a bump of the last one
 * pays for the ones it spends (Core v31 raises the package to the new fee
 * rate), so a chain is bumped through its leaves, and the chain waits as one:
 * from its oldest payment's broadcast, or from its last bump if later. Keyed by txid.
 */
export function paymentChains(payments: readonly UnconfirmedPayment[]): Map<string, PaymentChain> {
  const txids = new Set(payments.map((p) => p.txid));
  const root = new Map(payments.map((p) => [p.txid, p.txid]));
  const find = (t: string): string => {
    let r = t;
    while (root.get(r) !== r) r = root.get(r) as string;
    root.set(t, r);
    return r;
  };
  const spent = new Set<string>();
  for (const p of payments) {
    for (const parent of p.spends) {
      if (!txids.has(parent) || parent === p.txid) continue;
      spent.add(parent);
      root.set(find(p.txid), find(parent));
    }
  }
  const members = new Map<string, UnconfirmedPayment[]>();
  for (const p of payments) {
    const group = members.get(find(p.txid));
    if (group) group.push(p);
    else members.set(find(p.txid), [p]);
  }
  const out = new Map<string, PaymentChain>();
  for (const group of members.values()) {
    const heights = group.flatMap((p) => (p.broadcastHeight === undefined ? [] : [p.broadcastHeight]));
    const bumps = group.flatMap((p) => (p.bumped && p.broadcastHeight !== undefined ? [p.broadcastHeight] : []));
    const waitingSince = heights.length === 0 ? undefined : Math.max(Math.min(...heights), ...bumps);
    for (const p of group) out.set(p.txid, { leaf: !spent.has(p.txid), ...(waitingSince === undefined ? {} : { waitingSince }) });
  }
  return out;
}
