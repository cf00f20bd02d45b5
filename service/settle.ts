/**
 * SCB settlement (DESIGN.md protocol step 5): pay the domain's published,
 * unpaid obligations, batched per provider address into one transaction per
 * plan. The signed transaction is prepared first, its txid recorded in the
 * store and on the ledger (`settlements` stream, phase "intent") BEFORE it is
 * broadcast, and again after (phase "broadcast"). A run that dies anywhere
 * is completed by the next: an intent whose transaction the wallet does not
 * know is re-broadcast from the stored hex — the same transaction, so a
 * crash never pays twice and never loses a payment.
 */
import { NotFoundError, UnavailableError } from '../core/errors.ts';
import { createSettlementRecord } from '../core/records.ts';
import { planSettlement, settlementIdOf } from '../core/settlement.ts';
import type { Json, SettlementRecord } from '../core/types.ts';
import type { Payments } from '../adapters/ports.ts';
import type { SettlementItem } from '../adapters/store/dynamo.ts';
import type { Deps } from '../functions/shared/deps.ts';
import { ledgerKeys } from './ledger-records.ts';

/** Test hooks: throwing from one simulates the process dying at that point. */
export interface SettleHooks {
  afterIntent?: (s: SettlementRecord) => void | Promise<void>;
  afterBroadcast?: (s: SettlementRecord) => void | Promise<void>;
}

export interface SettleSummary {
  domain: string;
  recovered: number;
  settlements: { settlementId: string; txid: string; total: number; obligations: number }[];
  /** Why the run stopped early, if it did (ledger or bitcoind unavailable, no funds). */
  deferred?: string;
}

const recordOf = (s: SettlementItem, phase: SettlementRecord['phase']): SettlementRecord => ({
  version: 1,
  settlementId: s.settlementId,
  consumerDomain: s.consumerDomain,
  phase,
  txid: s.txid,
  outputs: s.outputs,
  at: s.at,
});

async function publishRecord(deps: Deps, s: SettlementItem, phase: SettlementRecord['phase']): Promise<void> {
  const hosted = await deps.store.getHostedDomain(s.consumerDomain);
  if (!hosted) throw new NotFoundError(`domain ${s.consumerDomain} is not hosted here`, { domain: s.consumerDomain });
  const keys = [ledgerKeys.consumer(s.consumerDomain), s.txid, ...new Set(s.outputs.map((o) => ledgerKeys.provider(o.providerDomain)))];
  // signed by the paying domain: a record only it can publish, checkable against the transaction it names
  const signed = createSettlementRecord(recordOf(s, phase), hosted.privateKey);
  await deps.ledger.publish('settlements', ledgerKeys.settlement(s.settlementId, phase), keys, signed as unknown as Json);
}

async function markSettling(deps: Deps, s: SettlementItem): Promise<void> {
  for (const out of s.outputs) {
    for (const id of out.obligationIds) await deps.store.transition(id, ['accepted'], 'settling', { settlementId: s.settlementId });
  }
}

/** Bring one recorded settlement forward to "broadcast" (idempotent). */
async function complete(deps: Deps, payments: Payments, s: SettlementItem, hooks: SettleHooks): Promise<void> {
  await publishRecord(deps, s, 'intent');
  await markSettling(deps, s);
  if (s.phase === 'intent') {
    await hooks.afterIntent?.(recordOf(s, 'intent'));
    const known = await payments.getTransaction(s.txid);
    if (!known) await payments.broadcast(s.hex);
    await hooks.afterBroadcast?.(recordOf(s, 'broadcast'));
    await deps.store.setSettlementPhase(s.settlementId, 'broadcast');
  }
  await publishRecord(deps, s, 'broadcast');
}

export async function settleDomain(
  deps: Deps,
  domain: string,
  opts: { hooks?: SettleHooks; maxOutputs?: number } = {},
): Promise<SettleSummary> {
  const hooks = opts.hooks ?? {};
  const hosted = await deps.store.getHostedDomain(domain);
  if (!hosted) throw new NotFoundError(`domain ${domain} is not hosted here`, { domain });
  const summary: SettleSummary = { domain, recovered: 0, settlements: [] };
  const payments = await deps.payments(hosted.wallet);
  try {
    // 1. finish what an earlier run left half done
    for (const s of await deps.store.listSettlements(domain)) {
      if (s.phase !== 'intent') {
        await publishRecord(deps, s, 'broadcast'); // cheap when already there (duplicate)
        continue;
      }
      await complete(deps, payments, s, hooks);
      summary.recovered += 1;
    }
    // 2. pay what is published and unpaid
    const pending = (await deps.store.listByConsumer(domain, 'accepted')).filter(
      (o) => o.ledgerTxid !== undefined && o.settlementId === undefined,
    );
    const plans = planSettlement(pending, opts.maxOutputs ? { maxOutputs: opts.maxOutputs } : {});
    for (const plan of plans) {
      const settlementId = settlementIdOf(domain, plan.obligationIds);
      let s = await deps.store.getSettlement(settlementId);
      if (!s) {
        const prepared = await payments.prepareSendMany(Object.fromEntries(plan.outputs.map((o) => [o.payTo, o.amount])));
        const fresh: SettlementItem = {
          version: 1,
          settlementId,
          consumerDomain: domain,
          phase: 'intent',
          txid: prepared.txid,
          hex: prepared.hex,
          outputs: plan.outputs,
          at: deps.now(),
        };
        s = (await deps.store.putSettlement(fresh)) ? fresh : await deps.store.getSettlement(settlementId);
        if (!s) continue;
      }
      await complete(deps, payments, s, hooks);
      summary.settlements.push({ settlementId, txid: s.txid, total: plan.total, obligations: plan.obligationIds.length });
    }
  } catch (e) {
    if (e instanceof UnavailableError || (e as { errorClass?: string }).errorClass === 'temporary') {
      summary.deferred = (e as Error).message;
      return summary;
    }
    throw e;
  }
  return summary;
}

/** Settle every hosted consumer domain that settles automatically. */
export async function settleAll(deps: Deps): Promise<SettleSummary[]> {
  const out: SettleSummary[] = [];
  for (const d of await deps.store.listHostedDomains()) {
    if (d.role === 'provider' || !d.autoSettle) continue;
    try {
      out.push(await settleDomain(deps, d.domain));
    } catch (e) {
      // one domain's failure must not stop the others from paying
      out.push({ domain: d.domain, recovered: 0, settlements: [], deferred: `failed: ${(e as Error).message}` });
    }
  }
  return out;
}
