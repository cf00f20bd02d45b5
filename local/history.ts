/**
 * The run's history for the live page, kept by the back-end: every hosted
 * consumer domain's reputation sampled from the start of the run (thinned,
 * never cut, as the run grows; a sample is one query and a counter read per
 * domain), and, when the page asks, its obligations counted by status. The
 * page loads the whole series when it opens, so a visitor who comes late
 * still sees the run from its start, then asks only for what is new
 * (`GET /ui/history?since=<ms>`). Local only: the page is served by the
 * embedded cloud, not by the deployed API.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Deps } from '../functions/shared/deps.ts';
import { reputationOfDomain } from '../service/reputation.ts';
import type { ObligationStatus } from '../core/types.ts';

export type StatusCounts = Record<ObligationStatus, number>;

export interface DomainSample {
  domain: string;
  reputation: number;
}

/** What GET /ui/history answers. */
export interface HistoryView {
  startedAt: number;
  now: number;
  everyMs: number;
  /** Per consumer domain: [t (epoch ms), reputation] pairs after `since`, oldest first. */
  series: Record<string, [number, number][]>;
  /** Per consumer domain: its obligations by status, now. */
  counts: Record<string, StatusCounts>;
}

/** Most points kept per domain; beyond it every other older point goes (first and last stay). */
export const MAX_POINTS = 1_000;

/** Halve `points` (every other one, keeping the first and the last) until at most `max` remain. */
export function thin<T>(points: T[], max: number): T[] {
  let out = points;
  while (out.length > max && out.length > 2) {
    const last = out[out.length - 1] as T;
    out = out.filter((_, i) => i % 2 === 0);
    if (out[out.length - 1] !== last) out.push(last);
  }
  return out;
}

export class RunHistory {
  readonly startedAt: number;
  private readonly series = new Map<string, [number, number][]>();

  constructor(
    readonly everyMs: number,
    private readonly maxPoints = MAX_POINTS,
    now = Date.now(),
  ) {
    this.startedAt = now;
  }

  record(t: number, samples: DomainSample[]): void {
    for (const s of samples) {
      const points = this.series.get(s.domain) ?? [];
      points.push([t, Math.round(s.reputation * 1e4) / 1e4]);
      this.series.set(s.domain, points.length > this.maxPoints ? thin(points, Math.floor(this.maxPoints / 2)) : points);
    }
  }

  /** Every domain's points after `since`. */
  seriesSince(since = -Infinity): Record<string, [number, number][]> {
    const series: Record<string, [number, number][]> = {};
    for (const [domain, points] of [...this.series].sort(([a], [b]) => (a < b ? -1 : 1))) {
      series[domain] = points.filter(([t]) => t > since);
    }
    return series;
  }
}

const consumersOf = async (deps: Deps) => (await deps.store.listHostedDomains()).filter((d) => d.role !== 'provider');

/** One sample of a hub: its hosted consumer domains' reputation (O(1) each, from the counters). */
export async function sampleHub(deps: Deps): Promise<DomainSample[]> {
  return Promise.all(
    (await consumersOf(deps)).map(async (d) => ({ domain: d.domain, reputation: (await reputationOfDomain(deps, d.domain)).reputation })),
  );
}

/**
 * A hub's consumer domains' obligations by status. It reads every obligation, so
 * it runs only when the page asks (about once a second while someone watches),
 * never on the sampler's timer: a long unwatched run (the soak) pays nothing.
 */
export async function countHub(deps: Deps): Promise<Record<string, StatusCounts>> {
  const out: Record<string, StatusCounts> = {};
  for (const d of await consumersOf(deps)) {
    const counts: StatusCounts = { accepted: 0, settling: 0, fulfilled: 0, defaulted: 0 };
    for (const o of await deps.store.listByConsumer(d.domain)) counts[o.status] += 1;
    out[d.domain] = counts;
  }
  return out;
}

export interface HistorySampler {
  readonly history: RunHistory;
  /** Take one sample now (also what the timer does). */
  sample(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Sample every `everyMs` from now on (the first at once); a failed sample is
 * skipped, the next one tries again. `everyMs` 0: only when asked (`sample()`).
 */
export function startHistory(sample: () => Promise<DomainSample[]>, everyMs = 1_000): HistorySampler {
  const history = new RunHistory(everyMs > 0 ? everyMs : 1_000);
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const once = async () => {
    try {
      const samples = await sample();
      if (!stopped) history.record(Date.now(), samples);
    } catch {
      // the store is restarting or closing: this sample is lost, the series goes on
    }
  };
  const tick = () => {
    running = running.then(once);
  };
  const timer = everyMs > 0 ? setInterval(tick, everyMs) : undefined;
  if (timer) {
    tick();
    timer.unref();
  }
  return {
    history,
    sample: () => (tick(), running),
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/** GET /ui/history[?since=<epoch ms>]: the run's series (after `since`) and the counts now. */
export function historyHandler(history: RunHistory, counts: () => Promise<Record<string, StatusCounts>>) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const q = event.queryStringParameters ?? {};
    const unknown = Object.keys(q).filter((k) => k !== 'since');
    const since = q.since;
    if (unknown.length > 0 || (since !== undefined && !/^[0-9]{1,15}$/.test(since))) {
      const message = unknown.length > 0 ? `query: unknown parameter ${unknown[0]?.slice(0, 40)}` : 'query.since: epoch milliseconds';
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'F00_MALFORMED', class: 'final', message } }),
      };
    }
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: JSON.stringify({
        startedAt: history.startedAt,
        now: Date.now(),
        everyMs: history.everyMs,
        series: history.seriesSince(since === undefined ? -Infinity : Number(since)),
        counts: await counts().catch(() => ({})), // the store is closing: the page keeps its last counts
      } satisfies HistoryView),
    };
  };
}
