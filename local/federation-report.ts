/**
 * What a federated run ended with, gathered the way an outside observer would:
 * each consumer domain's reputation as each hub's API reports it, the fate of
 * every obligation as the accepting (provider's) hub recorded it, and checks
 * against each hub's own node of the ledger. Used by `npm start -- --hubs N`
 * and by the federation end-to-end test.
 */
import type { Fleet } from '../devices/fleet.ts';
import type { FollowSummary } from '../service/follow.ts';
import { recomputeFromLedger } from '../service/reputation.ts';
import type { LocalCloud } from './cloud.ts';
import type { Federation } from './federation.ts';
import { allObligations } from './pages.ts';

/** Obligations by how they ended (from the provider hub's records). */
export interface Fates {
  accepted: number;
  /** A payment was seen for it (fulfilled, or paid and awaiting confirmations). */
  settled: number;
  fulfilled: number;
  defaulted: number;
  /** Still accepted or settling. */
  open: number;
}

export interface ConsumerFigures {
  domain: string;
  /** Index of the hub hosting it. */
  hub: number;
  defaulter: boolean;
  /** Reputation as GET /domains/{d}/reputation answers at each hub, by hub index. */
  reputationAt: number[];
  /** At each hub: do its counters for the domain equal its recomputation from its own ledger node? */
  ledgerAgreesAt: boolean[];
  /** Obligations accepted by providers at its own hub / at other hubs. */
  local: Fates;
  cross: Fates;
  refused: Record<string, number>;
  timeouts: number;
}

export interface HubFigures {
  index: number;
  publisher: string;
  api: string;
  domains: string[];
  /** Sums over the follower's runs at this hub (empty when it does not run). */
  follow: Readonly<Record<string, number>>;
  ruleFailures: number;
  brokerRefusals: number;
}

export interface FederationReport {
  hubs: HubFigures[];
  consumers: ConsumerFigures[];
  /** Obligations the devices saw accepted. */
  accepted: number;
  /** Of those, how many are exactly once on every hub's ledger node. */
  onEveryNodeOnce: number;
  /** Largest spread (max − min) of a domain's reputation across hubs. */
  maxSpread: number;
}

const none = (): Fates => ({ accepted: 0, settled: 0, fulfilled: 0, defaulted: 0, open: 0 });

async function get<T>(hub: LocalCloud, path: string): Promise<T> {
  const r = await hub.call<T>('GET', path);
  if (r.status !== 200) throw new Error(`GET ${path} at ${hub.api} → ${r.status}`);
  return r.body;
}

type Listed = { id: string; status: string; consumerDomain: string; paidTxid?: string };

export async function federationReport(fed: Federation, fleet: Fleet): Promise<FederationReport> {
  const hubs = fed.hubs;
  // The fate of every obligation, from the hub that accepted it (its provider's).
  const fates = new Map<string, { local: Fates; cross: Fates }>();
  for (const c of fleet.consumers) fates.set(c.domain, { local: none(), cross: none() });
  for (const p of fleet.providers) {
    const hub = hubs[p.hub];
    if (!hub) continue;
    for (const o of await allObligations<Listed>(hub, p.domain, 'side=provider')) {
      const consumer = fleet.consumers.find((c) => c.domain === o.consumerDomain);
      const f = fates.get(o.consumerDomain);
      if (!consumer || !f) continue;
      const bucket = consumer.hub === p.hub ? f.local : f.cross;
      bucket.accepted += 1;
      if (o.paidTxid !== undefined || o.status === 'fulfilled') bucket.settled += 1;
      if (o.status === 'fulfilled') bucket.fulfilled += 1;
      else if (o.status === 'defaulted') bucket.defaulted += 1;
      else bucket.open += 1;
    }
  }

  const recomputed = await Promise.all(hubs.map((h) => recomputeFromLedger(h.deps)));
  const consumers: ConsumerFigures[] = [];
  for (const c of fleet.consumers) {
    const reputationAt: number[] = [];
    const ledgerAgreesAt: boolean[] = [];
    for (const [i, hub] of hubs.entries()) {
      const view = await get<{ reputation: number; rScaled: number; sScaled: number }>(hub, `/domains/${c.domain}/reputation`);
      reputationAt.push(view.reputation);
      const l = recomputed[i]?.get(c.domain);
      const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, b);
      ledgerAgreesAt.push(l !== undefined ? near(l.rScaled, view.rScaled) && near(l.sScaled, view.sScaled) : view.rScaled === 0 && view.sScaled === 0);
    }
    const report = fleet.reports.get(c.domain);
    const f = fates.get(c.domain) ?? { local: none(), cross: none() };
    consumers.push({
      domain: c.domain,
      hub: c.hub,
      defaulter: c.defaulter,
      reputationAt,
      ledgerAgreesAt,
      local: f.local,
      cross: f.cross,
      refused: report?.refused ?? {},
      timeouts: report?.timeouts ?? 0,
    });
  }

  const ids = fleet.results.filter((r) => r.ok).map((r) => (r.ok ? r.obligationId : ''));
  let onEveryNodeOnce = 0;
  for (const id of ids) {
    let once = true;
    for (const ledger of fed.ledgers) {
      if (!ledger.available) continue;
      if ((await ledger.listByKey('obligations', id)).length !== 1) once = false;
    }
    if (once) onEveryNodeOnce += 1;
  }

  const hubFigures: HubFigures[] = hubs.map((h, i) => ({
    index: i,
    publisher: fed.publisher(i),
    api: h.api,
    domains: [...fleet.consumers, ...fleet.providers].filter((d) => d.hub === i).map((d) => d.domain),
    follow: h.followTotals,
    ruleFailures: h.broker.stats.ruleFailures,
    brokerRefusals: h.broker.stats.refusedPublish + h.broker.stats.refusedSubscribe + h.broker.stats.refusedConnect,
  }));
  const maxSpread = Math.max(0, ...consumers.map((c) => Math.max(...c.reputationAt) - Math.min(...c.reputationAt)));
  return { hubs: hubFigures, consumers, accepted: ids.length, onEveryNodeOnce, maxSpread };
}

/** Obligations still open at any hub, for the drain (as the accepting hubs see them). */
export async function openObligations(fed: Federation, fleet: Fleet): Promise<number> {
  let open = 0;
  for (const p of fleet.providers) {
    const hub = fed.hubs[p.hub];
    if (!hub) continue;
    open += (await allObligations<Listed>(hub, p.domain, 'side=provider')).filter((o) => o.status === 'accepted' || o.status === 'settling').length;
  }
  return open;
}

/** Wait until no obligation is open at any hub, or the timeout; returns how many still are. */
export async function drainFederation(
  fed: Federation,
  fleet: Fleet,
  timeoutMs: number,
  onChange?: (open: number) => void,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    const open = await openObligations(fed, fleet);
    if (open === 0 || Date.now() > deadline) return open;
    if (open !== last) onChange?.(open);
    last = open;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * After the drain: publish what every hub still holds, wait `ledgerDelayMs`
 * for it to reach every node, then run every hub's follow job until a pass at
 * each learns nothing new (at most `timeoutMs`). The scheduled followers would
 * get there too, but in one busy process a run can wait seconds. The passes go
 * through the hubs' follow jobs, so what they learn is in each hub's
 * followTotals. True when the followers went quiet within the time.
 */
export async function catchUpFollowers(fed: Federation, ledgerDelayMs: number, timeoutMs = 30_000): Promise<boolean> {
  for (const hub of fed.hubs) await hub.runJob('publish');
  await new Promise((r) => setTimeout(r, ledgerDelayMs + 200));
  for (const settleBy = Date.now() + timeoutMs; Date.now() < settleBy; ) {
    const passes = (await Promise.all(fed.hubs.map((hub) => hub.runJob('follow')))) as FollowSummary[];
    if (passes.every((p) => p.obligations === 0 && p.outcomes === 0 && p.settlements === 0 && p.pendingClaims === 0 && p.deferred === undefined)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
