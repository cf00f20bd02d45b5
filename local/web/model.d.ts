/** Types of model.js (the page's pure part), for its JSDoc checks and for the node tests. */

export type Status = 'accepted' | 'settling' | 'fulfilled' | 'defaulted';

/** GET /domains */
export interface DomainsBody {
  count: number;
  next?: string | null;
  domains: {
    domain: string;
    role: 'consumer' | 'provider' | 'both';
    threshold?: number;
    reputation?: { reputation: number; creditLimit: number; outstanding: number; paidVolume: number; at: string };
  }[];
}

/** GET /ui/history (local/history.ts) */
export interface HistoryBody {
  startedAt: number;
  now: number;
  everyMs: number;
  series: Record<string, [number, number][]>;
  counts: Record<string, Record<Status, number>>;
}

/** One obligation of GET /domains/{d}/obligations (the fields the page uses). */
export interface ObligationView {
  id: string;
  status: string;
  consumerDomain: string;
  consumerDevice: string;
  providerDomain: string;
  amount: number;
  acceptedAt: string;
  dueBy: string;
}

export interface ConsumerRow {
  domain: string;
  reputation: number;
  creditLimit: number;
  outstanding: number;
  paidVolume: number;
}

export interface Sample {
  t: number;
  reputation: number;
}

export interface ChartBox {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface ChartGeometry {
  start: number;
  end: number;
  x(t: number): number;
  y(reputation: number): number;
  /** One polyline per domain: `points` is the SVG attribute value. */
  series: { domain: string; points: string; last: { x: number; y: number } }[];
}

export const STATUSES: readonly Status[];
export const MAX_SAMPLES: number;
export function consumerDomains(body: DomainsBody | undefined): ConsumerRow[];
export function providerThresholds(body: DomainsBody | undefined): { value: number; providers: string[] }[];
export function recordSamples(history: Map<string, Sample[]>, rows: ConsumerRow[], t: number, max?: number): Map<string, Sample[]>;
export function mergeSeries(history: Map<string, Sample[]>, series: Record<string, [number, number][]> | undefined, since: number, max?: number): number;
export function chartGeometry(
  history: Map<string, Sample[]>,
  opts: ChartBox & { now: number; windowMs?: number; minSpanMs?: number },
): ChartGeometry;
export function countByStatus(obligations: { status: string }[]): Record<Status, number>;
export function recentFlow(lists: ObligationView[][], limit?: number): ObligationView[];
export function isStatus(s: string): s is Status;
export function shortId(id: string): string;
export function formatSats(sats: number): string;
export function formatReputation(r: number): string;
