// @ts-check
/**
 * The page's pure part: turns the JSON API's answers into what the page shows
 * (history of reputation samples, chart geometry, per-domain counts, the
 * obligation flow). No DOM, no fetch: node tests import it as is
 * (types in model.d.ts), the browser loads it as an ES module.
 */

/** Obligation statuses, in the order of an obligation's life. */
export const STATUSES = /** @type {const} */ (['accepted', 'settling', 'fulfilled', 'defaulted']);

/** How many samples each domain keeps (one per poll: about five minutes at 1 s). */
export const MAX_SAMPLES = 300;

/**
 * Hosted domains that consume (role consumer or both) and have a reputation figure.
 * @param {import('./model.d.ts').DomainsBody | undefined} body
 * @returns {import('./model.d.ts').ConsumerRow[]}
 */
export function consumerDomains(body) {
  const out = [];
  for (const d of body?.domains ?? []) {
    if (d.role === 'provider' || !d.reputation) continue;
    const r = d.reputation;
    if (!Number.isFinite(r.reputation)) continue;
    out.push({
      domain: d.domain,
      reputation: r.reputation,
      creditLimit: r.creditLimit,
      outstanding: r.outstanding,
      paidVolume: r.paidVolume,
    });
  }
  return out.sort((a, b) => a.domain.localeCompare(b.domain));
}

/**
 * Provider thresholds worth a dashed line: one per distinct value in [0, 1], with the providers that set it.
 * @param {import('./model.d.ts').DomainsBody | undefined} body
 * @returns {{ value: number; providers: string[] }[]}
 */
export function providerThresholds(body) {
  /** @type {Map<number, string[]>} */
  const byValue = new Map();
  for (const d of body?.domains ?? []) {
    if (d.role === 'consumer' || typeof d.threshold !== 'number' || !Number.isFinite(d.threshold)) continue;
    if (d.threshold < 0 || d.threshold > 1) continue;
    const list = byValue.get(d.threshold) ?? [];
    list.push(d.domain);
    byValue.set(d.threshold, list);
  }
  return [...byValue.entries()].map(([value, providers]) => ({ value, providers: providers.sort() })).sort((a, b) => a.value - b.value);
}

/**
 * Append one sample per consumer domain taken at `t` (epoch ms) to `history`, in place,
 * keeping at most `max` samples per domain. Returns the same map.
 * @param {Map<string, import('./model.d.ts').Sample[]>} history
 * @param {import('./model.d.ts').ConsumerRow[]} rows
 * @param {number} t
 * @param {number} [max]
 */
export function recordSamples(history, rows, t, max = MAX_SAMPLES) {
  for (const row of rows) {
    const samples = history.get(row.domain) ?? [];
    samples.push({ t, reputation: clamp01(row.reputation) });
    if (samples.length > max) samples.splice(0, samples.length - max);
    history.set(row.domain, samples);
  }
  return history;
}

/**
 * Merge the back-end's history (GET /ui/history: `[t, reputation]` pairs per
 * domain, oldest first) into `history`, in place: points not newer than a
 * domain's last sample are skipped, so asking again with an overlap is harmless.
 * Over `max` samples a domain's series is thinned (every other older sample
 * goes; the first and the last stay): the whole run stays on the chart.
 * Returns the newest time seen (or `since` when nothing is new).
 * @param {Map<string, import('./model.d.ts').Sample[]>} history
 * @param {Record<string, [number, number][]> | undefined} series
 * @param {number} since
 * @param {number} [max]
 */
export function mergeSeries(history, series, since, max = 1000) {
  let newest = since;
  for (const [domain, points] of Object.entries(series ?? {})) {
    if (!Array.isArray(points)) continue;
    let samples = history.get(domain) ?? [];
    const lastT = samples[samples.length - 1]?.t ?? -Infinity;
    for (const p of points) {
      if (!Array.isArray(p) || !Number.isFinite(p[0]) || !Number.isFinite(p[1]) || p[0] <= lastT) continue;
      samples.push({ t: p[0], reputation: clamp01(p[1]) });
      newest = Math.max(newest, p[0]);
    }
    while (samples.length > max && samples.length > 2) {
      const last = /** @type {import('./model.d.ts').Sample} */ (samples[samples.length - 1]);
      samples = samples.filter((_, i) => i % 2 === 0);
      if (samples[samples.length - 1] !== last) samples.push(last);
    }
    history.set(domain, samples);
  }
  return newest;
}

/**
 * Geometry of the reputation chart: x is time over [start, now] (at least `minSpanMs`,
 * at most `windowMs` wide), y is reputation in [0, 1] with 1 at the top.
 * @param {Map<string, import('./model.d.ts').Sample[]>} history
 * @param {import('./model.d.ts').ChartBox & { now: number; windowMs?: number; minSpanMs?: number }} opts
 * @returns {import('./model.d.ts').ChartGeometry}
 */
export function chartGeometry(history, opts) {
  const { width, height, left, right, top, bottom, now } = opts;
  const windowMs = opts.windowMs ?? 5 * 60_000;
  const minSpanMs = opts.minSpanMs ?? 30_000;
  let oldest = now;
  for (const samples of history.values()) for (const s of samples) oldest = Math.min(oldest, s.t);
  const start = Math.min(Math.max(oldest, now - windowMs), now - minSpanMs);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  /** @param {number} t */
  const x = (t) => left + ((t - start) / (now - start)) * plotW;
  /** @param {number} v */
  const y = (v) => top + (1 - clamp01(v)) * plotH;
  const series = [];
  for (const [domain, samples] of history) {
    const visible = samples.filter((s) => s.t >= start && s.t <= now);
    if (visible.length === 0) continue;
    /** @type {[number, number][]} */
    const points = visible.map((s) => [round(x(s.t)), round(y(s.reputation))]);
    const last = points[points.length - 1];
    // one sample is a dot on its own: extend it to a short flat segment so the line is visible
    if (points.length === 1 && last) points.unshift([round(Math.max(left, last[0] - 6)), last[1]]);
    series.push({ domain, points: points.map((p) => `${p[0]},${p[1]}`).join(' '), last: { x: last?.[0] ?? left, y: last?.[1] ?? top } });
  }
  return { start, end: now, y, x, series };
}

/**
 * Count a domain's obligations by status.
 * @param {{ status: string }[]} obligations
 * @returns {Record<import('./model.d.ts').Status, number>}
 */
export function countByStatus(obligations) {
  const counts = { accepted: 0, settling: 0, fulfilled: 0, defaulted: 0 };
  for (const o of obligations) if (isStatus(o.status)) counts[o.status] += 1;
  return counts;
}

/**
 * The most recent obligations across domains, newest first, each once (by id).
 * @param {import('./model.d.ts').ObligationView[][]} lists
 * @param {number} [limit]
 * @returns {import('./model.d.ts').ObligationView[]}
 */
export function recentFlow(lists, limit = 12) {
  /** @type {Map<string, import('./model.d.ts').ObligationView>} */
  const byId = new Map();
  for (const list of lists) for (const o of list) if (!byId.has(o.id)) byId.set(o.id, o);
  return [...byId.values()]
    .sort((a, b) => Date.parse(b.acceptedAt) - Date.parse(a.acceptedAt) || a.id.localeCompare(b.id))
    .slice(0, limit);
}

/**
 * @param {string} s
 * @returns {s is import('./model.d.ts').Status}
 */
export function isStatus(s) {
  return /** @type {readonly string[]} */ (STATUSES).includes(s);
}

/** First characters of an obligation id (hex hash). @param {string} id */
export const shortId = (id) => (id.length > 10 ? `${id.slice(0, 10)}…` : id);

/** Integer satoshis with thousands separators. @param {number} sats */
export const formatSats = (sats) => (Number.isFinite(sats) ? Math.round(sats).toLocaleString('en-US') : '–');

/** A reputation to three decimals. @param {number} r */
export const formatReputation = (r) => (Number.isFinite(r) ? r.toFixed(3) : '–');

/** @param {number} v */
function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

/** @param {number} v */
function round(v) {
  return Math.round(v * 10) / 10;
}
