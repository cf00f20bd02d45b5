/**
 * SCB settlement (DESIGN.md protocol step 5): pay the domain's published,
 * unpaid obligations, batched per provider address into one transaction per
 * plan. The signed transaction is prepared first, its txid recorded in the
 * store and on the ledger (`settlements` stream, phase "intent") BEFORE it is
 * broadcast, and again after (phase "broadcast"). A run that dies anywhere
 * is completed by the next: an intent whose transaction the wallet does not
 * know is re-broadcast from the stored hex — the same transaction, so a
 * crash never pays twice and never loses a payment.
 *
 * At most one run settles a domain at a time, whatever the concurrency: a run
 * takes the domain's lease (a store item with an expiry and a fencing token)
 * before reading anything, checks it is still the holder right before each
 * broadcast, and gives it up at the end. A plan is paid whole or not at all:
 * if any of its obligations cannot move from 'accepted' into the settlement
 * (the watcher defaulted it, say), nothing is broadcast and the plan fails.
 * A transaction the node rejects for good is released (its obligations back
 * to 'accepted', planned again next run) only once the node shows it can
 * never confirm (an input spent elsewhere in the chain); until then it is
 * kept and retried ("stuck"), never paid a second time.
 *
 * A broadcast settlement stays on the consumer's unconfirmed list until a
 * transaction of it confirms. One still unconfirmed `bumpAfterBlocks` blocks
 * after its broadcast is fee-bumped (replace-by-fee): the wallet builds a
 * replacement that spends every input of the current transaction and pays the
 * same outputs at a higher fee, so at most one of them ever confirms — never
 * a second payment of the same obligations. The replacement goes through the
 * same intent → broadcast steps (its records name the new txid and list the
 * txids it replaces), so providers and other hubs match the payment that
 * actually confirms; if an earlier transaction confirms first, that one is
 * the settlement's payment. A settlement may spend the change of one still
 * unconfirmed (Core's wallet does when its confirmed coins do not cover it);
 * the wallet will not bump one that another spends, so such a chain waits as
 * one and is bumped through its last payment, whose higher fee pays for the
 * ones it spends (core/settlement.ts paymentChains). A bump the wallet still
 * refuses leaves the settlement waiting ("stuck"), never in the way of the
 * domain's other settlements. A bump the node refuses at broadcast (its fee too
 * low for the mempool, or for what it evicts) is outbid: the transaction it was
 * to replace is bumped again at OUTBID_FACTOR times its rate, once per run, up
 * to the fee policy's cap.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError, ObligationError, UnavailableError } from '../core/errors.ts';
import { BUMP_FACTOR, raisedRate } from '../core/network.ts';
import { checkPayTo } from './addresses.ts';
import { createSettlementRecord } from '../core/records.ts';
import { paymentChains, planSettlement, settlementIdOf, type PaymentChain } from '../core/settlement.ts';
import type { Json, SettlementRecord } from '../core/types.ts';
import { TxRejectedError } from '../adapters/payments/bitcoin.ts';
import { parseTx } from '../adapters/payments/rawtx.ts';
import type { Payments, PreparedReplacement } from '../adapters/ports.ts';
import type { SettlementItem } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';
import { ledgerKeys } from './ledger-records.ts';
import { domainSigner } from './keys.ts';

/** Test hooks: throwing from one simulates the process dying at that point. */
export interface SettleHooks {
  afterIntent?: (s: SettlementRecord) => void | Promise<void>;
  afterBroadcast?: (s: SettlementRecord) => void | Promise<void>;
}

export interface SettleSummary {
  domain: string;
  recovered: number;
  settlements: { settlementId: string; txid: string; total: number; obligations: number }[];
  /** Settlements given up this run (never broadcast, or can never confirm): their obligations are pending again. */
  failed?: { settlementId: string; txid: string; reason: string }[];
  /** Settlements the node refused but that may still confirm: kept, and retried next run. */
  stuck?: { settlementId: string; txid: string; reason: string }[];
  /** Obligations left unpaid because their payTo is not an address of this hub's network (F17_WRONG_NETWORK). */
  unpayable?: string[];
  /** Settlements fee-bumped this run: the stuck transaction and its replacement. */
  bumped?: { settlementId: string; from: string; to: string; satVb: number; refused?: string }[];
  /** Settlements whose payment confirmed since the last run (they leave the unconfirmed list). */
  confirmed?: number;
  /** Why the run stopped early, if it did (another run holds the domain, ledger or bitcoind unavailable, no funds). */
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
  ...(s.replaces && s.replaces.length > 0 ? { replaces: s.replaces } : {}),
});

async function publishRecord(deps: Deps, s: SettlementItem, phase: SettlementRecord['phase']): Promise<void> {
  const hosted = await deps.store.getHostedDomain(s.consumerDomain);
  if (!hosted) throw new NotFoundError(`domain ${s.consumerDomain} is not hosted here`, { domain: s.consumerDomain });
  const keys = [ledgerKeys.consumer(s.consumerDomain), s.txid, ...new Set(s.outputs.map((o) => ledgerKeys.provider(o.providerDomain)))];
  // signed by the paying domain: a record only it can publish, checkable against the transaction it names
  const signed = await createSettlementRecord(recordOf(s, phase), domainSigner(deps, hosted));
  const replacement = s.replaces && s.replaces.length > 0 ? s.txid : undefined;
  await deps.ledger.publish('settlements', ledgerKeys.settlement(s.settlementId, phase, replacement), keys, signed as unknown as Json);
}

/**
 * Move every obligation of `s` from 'accepted' (in no settlement) into it.
 * True when all of them are in it now (a retry finds its own earlier moves);
 * false at the first one that is not (`best`: carry on with the rest).
 */
async function markSettling(deps: Deps, s: SettlementItem, best = false): Promise<boolean> {
  let all = true;
  for (const out of s.outputs) {
    for (const id of out.obligationIds) {
      const moved = await deps.store.transition(id, ['accepted'], 'settling', { settlementId: s.settlementId }, { expect: { settlementId: null } });
      if (moved) continue;
      const cur = await deps.store.getObligation(id);
      if (cur?.settlementId === s.settlementId && (cur.status === 'settling' || cur.status === 'fulfilled')) continue;
      if (!best) return false;
      all = false;
    }
  }
  return all;
}

/**
 * Give a settlement up: its obligations go back to 'accepted' (only those
 * still in it), its inputs back to the wallet, and it leaves recovery. In
 * this order, so a crash midway leaves an intent that the next run either
 * completes (never broadcast: nothing was paid) or gives up again.
 */
async function fail(deps: Deps, payments: Payments, s: SettlementItem, reason: string, summary: SettleSummary): Promise<void> {
  for (const out of s.outputs) {
    for (const id of out.obligationIds) {
      await deps.store.transition(id, ['settling'], 'accepted', {}, { expect: { settlementId: s.settlementId }, remove: ['settlementId'] });
    }
  }
  await payments.abandon(s.hex);
  await deps.store.failSettlement(s.settlementId, reason, deps.now());
  (summary.failed ??= []).push({ settlementId: s.settlementId, txid: s.txid, reason });
}

/**
 * Bring one settlement in phase "intent" forward to "broadcast" (idempotent). False when it failed or is stuck.
 * A fee bump the node refuses is outbid (`outbid`: once per run, so a run's work stays bounded).
 */
async function complete(
  deps: Deps,
  payments: Payments,
  s: SettlementItem,
  hooks: SettleHooks,
  fence: () => Promise<void>,
  summary: SettleSummary,
  outbid = true,
): Promise<boolean> {
  // A fee bump whose original confirmed first (mined before the replacement was sent): paid by that one.
  if (await confirmedEarlier(deps, payments, s, summary)) return true;
  // A run that died right after broadcasting left an intent the wallet already knows.
  const known = await payments.getTransaction(s.txid);
  if (known !== null && known.confirmations === 0 && (await payments.isConflicted(s.hex))) {
    await fail(deps, payments, s, 'its transaction can never confirm: an input is spent elsewhere', summary);
    return false;
  }
  if (known === null) {
    // Paid whole or not at all: an obligation that left the pending set meanwhile aborts the plan.
    if (!(await markSettling(deps, s))) {
      await fail(deps, payments, s, 'an obligation left the pending set before it was paid; nothing was broadcast', summary);
      return false;
    }
  } else {
    await markSettling(deps, s, true); // paid already: record it on every obligation still pending
  }
  await publishRecord(deps, s, 'intent');
  await hooks.afterIntent?.(recordOf(s, 'intent'));
  if (known === null) {
    await fence();
    try {
      await payments.broadcast(s.hex);
    } catch (e) {
      if (!(e instanceof TxRejectedError)) throw e;
      if (await payments.isConflicted(s.hex)) {
        await fail(deps, payments, s, `rejected, inputs spent elsewhere: ${e.message}`, summary);
      } else if (outbid && s.satVb !== undefined && s.replacedHex !== undefined) {
        // a fee bump the node refused (its fee too low for the mempool now, or for what it replaces):
        // the transaction it was to replace is bumped again, at a higher rate than this one
        await bump(deps, payments, s, { hex: s.replacedHex, atLeastSatVb: raisedRate(s.satVb), refused: e.message }, hooks, fence, summary);
      } else {
        // may still confirm (another node may hold it): keep waiting, never pay these obligations again
        (summary.stuck ??= []).push({ settlementId: s.settlementId, txid: s.txid, reason: e.message });
      }
      return false;
    }
  }
  await hooks.afterBroadcast?.(recordOf(s, 'broadcast'));
  // the record first: the phase change takes the settlement out of recovery, so a
  // crash between the two leaves an intent that the next run completes (no re-broadcast)
  await publishRecord(deps, s, 'broadcast');
  await deps.store.markBroadcast(s, await payments.height());
  return true;
}

/** Has a transaction this settlement's current one replaced confirmed? Then that one paid it: record so. */
async function confirmedEarlier(deps: Deps, payments: Payments, s: SettlementItem, summary: SettleSummary): Promise<boolean> {
  for (const old of s.replaces ?? []) {
    const tx = await payments.getTransaction(old);
    if (tx !== null && tx.confirmations > 0) {
      await deps.store.confirmSettlement(s.settlementId, old, deps.now());
      summary.confirmed = (summary.confirmed ?? 0) + 1;
      return true;
    }
  }
  return false;
}

/** The txids the inputs of a stored settlement's transaction spend (none if its hex does not parse). */
function spendsOf(hex: string): string[] {
  try {
    return parseTx(hex).inputs.map((i) => i.txid);
  } catch {
    return [];
  }
}

/**
 * One broadcast, unconfirmed settlement: leave it once a transaction of it
 * confirmed; give it up if it can never confirm; send it again if the node
 * lost it; fee-bump it once its chain has waited `bumpAfterBlocks` blocks, if
 * nothing else of the domain spends it (the chain's leaves are bumped instead).
 */
async function follow(
  deps: Deps,
  payments: Payments,
  s: SettlementItem,
  chain: PaymentChain | undefined,
  hooks: SettleHooks,
  fence: () => Promise<void>,
  summary: SettleSummary,
): Promise<void> {
  const tx = await payments.getTransaction(s.txid);
  if (tx !== null && tx.confirmations > 0) {
    await deps.store.confirmSettlement(s.settlementId, s.txid, deps.now());
    summary.confirmed = (summary.confirmed ?? 0) + 1;
    return;
  }
  if (await confirmedEarlier(deps, payments, s, summary)) return;
  const height = await payments.height();
  const since = chain?.waitingSince ?? s.broadcastHeight;
  const due = s.broadcastHeight === undefined || since === undefined || height - since >= deps.config.bumpAfterBlocks;
  if (tx !== null && !due) return; // in the mempool, waiting for a block
  if (await payments.isConflicted(s.hex)) {
    await fail(deps, payments, s, 'its transaction can never confirm: an input is spent elsewhere', summary);
    return;
  }
  if (tx === null || s.broadcastHeight === undefined) {
    // the node forgot it (restarted without its mempool): the same transaction again, never a new one
    await fence();
    await payments.broadcast(s.hex).catch((e: unknown) => {
      // refused, or not taken (e.g. a node that never saw its inputs): kept and tried again next run,
      // never in the way of the domain's other settlements
      if (!(e instanceof TxRejectedError) && !(e instanceof UnavailableError)) throw e;
      (summary.stuck ??= []).push({ settlementId: s.settlementId, txid: s.txid, reason: e.message });
    });
    if (s.broadcastHeight === undefined) await deps.store.markBroadcast(s, height);
    return;
  }
  if (chain !== undefined && !chain.leaf) return; // another payment spends it: bumped through that one
  await bump(deps, payments, s, { hex: s.hex }, hooks, fence, summary);
}

/** A refused fee bump is outbid at this many times its rate (at least 1 sat/vB more: raisedRate), up to the fee policy's cap. */
export const OUTBID_FACTOR = BUMP_FACTOR;

/**
 * Fee-bump settlement `s`: a replacement of `from.hex` (its current transaction, or, when the node
 * refused the bump `s` is, the one that bump was to replace, at `atLeastSatVb`) takes its place and
 * is sent. Every transaction it replaced stays listed, so whichever confirms pays it, and only one can.
 */
async function bump(
  deps: Deps,
  payments: Payments,
  s: SettlementItem,
  from: { hex: string; atLeastSatVb?: number; refused?: string },
  hooks: SettleHooks,
  fence: () => Promise<void>,
  summary: SettleSummary,
): Promise<void> {
  await fence();
  let replacement: PreparedReplacement;
  try {
    replacement = await payments.prepareReplacement(from.hex, from.atLeastSatVb === undefined ? {} : { atLeastSatVb: from.atLeastSatVb });
  } catch (e) {
    // the wallet will not bump it (Core: "Transaction has descendants in the mempool" once a payee
    // spends its output unconfirmed), or not that high (F18_FEE_CAP): it waits as it is, never in the
    // way of the domain's other settlements
    if (!(e instanceof ObligationError) || e.errorClass === 'retry') throw e;
    const reason = from.refused === undefined ? `not fee-bumped: ${e.message}` : `fee bump refused (${from.refused}), not outbid: ${e.message}`;
    (summary.stuck ??= []).push({ settlementId: s.settlementId, txid: s.txid, reason });
    return;
  }
  const next: SettlementItem & { satVb: number; replacedHex: string } = {
    ...s,
    phase: 'intent',
    txid: replacement.txid,
    hex: replacement.hex,
    replaces: [...(s.replaces ?? []), s.txid],
    at: deps.now(),
    satVb: replacement.satVb,
    replacedHex: from.hex,
  };
  delete next.broadcastHeight;
  if (!(await deps.store.replaceSettlementTx(next, s.txid))) {
    await payments.abandon(replacement.hex);
    return; // another run changed it first
  }
  // a refused bump was never in any mempool: its inputs the wallet added go back to the wallet
  if (from.refused !== undefined) await payments.abandon(s.hex);
  (summary.bumped ??= []).push({
    settlementId: s.settlementId,
    from: s.txid,
    to: replacement.txid,
    satVb: replacement.satVb,
    ...(from.refused === undefined ? {} : { refused: from.refused }),
  });
  // a bump the node refuses is outbid once in this run; an outbid the node refuses waits for the next run
  await complete(deps, payments, next, hooks, fence, summary, from.refused === undefined);
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
  const lease = `settle:${domain}`;
  const owner = randomUUID();
  const ttl = deps.config.settleLeaseMs;
  let token: number | undefined;
  try {
    token = await deps.store.acquireLease(lease, owner, ttl, deps.now());
    if (token === undefined) {
      summary.deferred = `another run is settling ${domain}`;
      return summary;
    }
    const held = token;
    // Fencing: a run whose lease expired and was taken by another must not broadcast.
    const fence = async () => {
      if (!(await deps.store.checkLease(lease, owner, held, ttl, deps.now()))) {
        throw new UnavailableError(`lost the settle lease of ${domain}`, { domain, token: held });
      }
    };
    const payments = await deps.payments(hosted.wallet);
    // 1. finish what an earlier run left half done: only unfinished settlements are read, never the history
    for (const s of await deps.store.listOpenSettlements(domain)) {
      if (s.phase !== 'intent') continue;
      await complete(deps, payments, s, hooks, fence, summary);
      summary.recovered += 1;
    }
    // 2. follow what was broadcast until it confirms; fee-bump what is stuck
    const unconfirmed = await deps.store.listUnconfirmedSettlements(domain);
    const chains = paymentChains(
      unconfirmed.map((s) => ({
        txid: s.txid,
        spends: spendsOf(s.hex),
        bumped: (s.replaces?.length ?? 0) > 0,
        ...(s.broadcastHeight === undefined ? {} : { broadcastHeight: s.broadcastHeight }),
      })),
    );
    for (const s of unconfirmed) {
      await follow(deps, payments, s, chains.get(s.txid), hooks, fence, summary);
    }
    // 3. pay what is published and unpaid (read under the lease, after recovery)
    const unpaid = (await deps.store.listByConsumer(domain, 'accepted')).filter(
      (o) => o.ledgerTxid !== undefined && o.settlementId === undefined,
    );
    // never let one wrong-network address fail the whole batch (or reach the wallet): leave it out, say so
    const pending = unpaid.filter((o) => {
      try {
        checkPayTo(deps, o.payTo);
        return true;
      } catch (e) {
        if (!(e instanceof ObligationError) || e.errorClass !== 'final') throw e;
        (summary.unpayable ??= []).push(o.id);
        return false;
      }
    });
    const plans = planSettlement(pending, opts.maxOutputs ? { maxOutputs: opts.maxOutputs } : {});
    for (const plan of plans) {
      // the same set of obligations keeps its id until a settlement of it failed for good
      let settlementId = settlementIdOf(domain, plan.obligationIds);
      let s = await deps.store.getSettlement(settlementId);
      for (let attempt = 1; s?.phase === 'failed'; attempt++) {
        settlementId = settlementIdOf(domain, plan.obligationIds, attempt);
        s = await deps.store.getSettlement(settlementId);
      }
      if (s && s.phase !== 'intent') continue; // paid already
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
          fence: held,
        };
        if (await deps.store.putSettlement(fresh)) s = fresh;
        else {
          await payments.abandon(prepared.hex);
          s = await deps.store.getSettlement(settlementId);
        }
        if (!s || s.phase !== 'intent') continue;
      }
      if (await complete(deps, payments, s, hooks, fence, summary)) {
        summary.settlements.push({ settlementId, txid: s.txid, total: plan.total, obligations: plan.obligationIds.length });
      }
    }
  } catch (e) {
    if (e instanceof UnavailableError || (e as { errorClass?: string }).errorClass === 'temporary') {
      summary.deferred = (e as Error).message;
      return summary;
    }
    throw e;
  } finally {
    if (token !== undefined) await deps.store.releaseLease(lease, owner, token).catch(() => undefined);
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
