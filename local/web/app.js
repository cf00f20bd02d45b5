// @ts-check
/**
 * The live page: polls the JSON API every second and redraws the reputation
 * chart, the consumer-domain table, the obligation flow and the health badge.
 * The API lives one level above this page (the page is /ui/index.html, the
 * API /domains, /health, …), so a stage prefix in front of both still works.
 * The chart and the counts come from the back-end's history of the run
 * (/ui/history, beside this page): loaded whole on open, so a late visitor
 * sees the run from its start, then only what is new at each poll.
 */
import {
  STATUSES,
  chartGeometry,
  consumerDomains,
  formatReputation,
  formatSats,
  isStatus,
  mergeSeries,
  providerThresholds,
  recentFlow,
  shortId,
} from './model.js';

const POLL_MS = 1000;
const API = new URL('../', document.baseURI);
const SVG_NS = 'http://www.w3.org/2000/svg';
const BOX = { width: 760, height: 280, left: 44, right: 92, top: 14, bottom: 28 };
const COLOURS = ['#2563eb', '#d97706', '#059669', '#9333ea', '#dc2626', '#0891b2', '#65a30d', '#db2777'];

/** @type {Map<string, import('./model.d.ts').Sample[]>} */
const history = new Map();
/** Newest history time merged so far (the next poll asks for what follows). */
let historySince = 0;
/** @type {Record<string, Record<import('./model.d.ts').Status, number>>} */
let counts = {};
/** Obligations shown in the flow, newest first, per consumer domain. */
const FLOW_PER_DOMAIN = 12;
/** @type {Map<string, string>} */
const colourOf = new Map();
let lastFlowKey = '';

/** @param {string} domain */
function colour(domain) {
  let c = colourOf.get(domain);
  if (!c) {
    c = COLOURS[colourOf.size % COLOURS.length] ?? '#333';
    colourOf.set(domain, c);
  }
  return c;
}

/**
 * GET a JSON resource of the API; a non-2xx answer still yields its body with `ok: false`.
 * @template T
 * @param {string} path relative to the API root, e.g. `domains`
 * @returns {Promise<{ ok: boolean; status: number; body: T | undefined }>}
 */
async function getJson(path) {
  const res = await fetch(new URL(path, API), { headers: { accept: 'application/json' }, cache: 'no-store' });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { ok: res.ok, status: res.status, body };
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {string} [text]
 */
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {boolean} empty */
function showEmpty(empty) {
  for (const p of document.querySelectorAll('[data-empty]')) /** @type {HTMLElement} */ (p).hidden = !empty;
  const figure = document.querySelector('.chart');
  const table = document.querySelector('.table-wrap');
  const flow = document.getElementById('flow-live');
  if (figure instanceof HTMLElement) figure.hidden = empty;
  if (table instanceof HTMLElement) table.hidden = empty;
  if (flow) flow.hidden = empty;
}

/**
 * @param {import('./model.d.ts').DomainsBody | undefined} domainsBody
 * @param {number} now
 */
function drawChart(domainsBody, now) {
  const root = document.getElementById('chart');
  if (!root) return;
  const geo = chartGeometry(history, { ...BOX, now, windowMs: Number.POSITIVE_INFINITY });
  const desc = root.querySelector('desc');
  root.replaceChildren(...(desc ? [desc] : []));
  const plotRight = BOX.width - BOX.right;

  const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    const y = geo.y(v);
    grid.append(svg('line', { x1: BOX.left, x2: plotRight, y1: y, y2: y }));
    grid.append(svg('text', { x: BOX.left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, v.toFixed(2)));
  }
  const seconds = Math.round((geo.end - geo.start) / 1000);
  const span = seconds >= 120 ? `−${Math.round(seconds / 60)} min` : `−${seconds} s`;
  grid.append(svg('text', { x: BOX.left, y: BOX.height - 8, class: 'tick' }, span));
  grid.append(svg('text', { x: plotRight, y: BOX.height - 8, class: 'tick', 'text-anchor': 'end' }, 'now'));
  root.append(grid);

  for (const th of providerThresholds(domainsBody)) {
    const y = geo.y(th.value);
    const g = svg('g', { class: 'threshold', 'data-threshold': th.value });
    g.append(svg('line', { x1: BOX.left, x2: plotRight, y1: y, y2: y }));
    g.append(svg('text', { x: plotRight + 6, y: y + 4, class: 'threshold-label' }, `${th.providers.join(', ')} ≥ ${th.value.toFixed(2)}`));
    root.append(g);
  }

  for (const s of geo.series) {
    const c = colour(s.domain);
    const g = svg('g', { class: 'series', 'data-domain': s.domain });
    g.append(svg('title', {}, `${s.domain} reputation`));
    g.append(svg('polyline', { points: s.points, fill: 'none', stroke: c, 'stroke-width': 2.5, 'data-domain': s.domain }));
    g.append(svg('circle', { cx: s.last.x, cy: s.last.y, r: 3.5, fill: c }));
    root.append(g);
  }
}

/** @param {import('./model.d.ts').ConsumerRow[]} rows */
function drawLegend(rows) {
  const legend = document.getElementById('legend');
  if (!legend) return;
  legend.replaceChildren(
    ...rows.map((r) =>
      el('li', {}, [
        el('span', { class: 'swatch', style: `background:${colour(r.domain)}`, 'aria-hidden': 'true' }),
        `${r.domain} `,
        el('strong', {}, [formatReputation(r.reputation)]),
      ]),
    ),
  );
}

/** @param {import('./model.d.ts').ConsumerRow[]} rows */
function drawTable(rows) {
  const body = document.querySelector('#domains tbody');
  if (!body) return;
  body.replaceChildren(
    ...rows.map((r) => {
      const c = counts[r.domain];
      const num = (/** @type {string} */ text) => el('td', { class: 'num' }, [text]);
      return el('tr', { 'data-domain': r.domain }, [
        el('th', { scope: 'row' }, [
          el('span', { class: 'swatch', style: `background:${colour(r.domain)}`, 'aria-hidden': 'true' }),
          r.domain,
        ]),
        el('td', { class: 'num', 'data-field': 'reputation' }, [formatReputation(r.reputation)]),
        num(formatSats(r.creditLimit)),
        num(formatSats(r.outstanding)),
        num(formatSats(r.paidVolume)),
        ...STATUSES.map((s) => el('td', { class: 'num', 'data-field': s }, [c ? String(c[s]) : '–'])),
      ]);
    }),
  );
}

/** @param {import('./model.d.ts').ObligationView[]} flow */
function drawFlow(flow) {
  const list = document.getElementById('flow');
  if (!list) return;
  const key = JSON.stringify(flow.map((o) => [o.id, o.status]));
  if (key === lastFlowKey) return; // unchanged: leave the live region alone
  lastFlowKey = key;
  if (flow.length === 0) {
    list.replaceChildren(el('li', { class: 'muted' }, ['No obligations yet.']));
    return;
  }
  list.replaceChildren(
    ...flow.map((o) => {
      const status = isStatus(o.status) ? o.status : 'unknown';
      return el('li', { 'data-id': o.id, 'data-status': status }, [
        el('code', { class: 'id', title: o.id }, [shortId(o.id)]),
        el('span', { class: 'route' }, [`${o.consumerDomain} → ${o.providerDomain}`]),
        el('span', { class: 'amount' }, [`${formatSats(o.amount)} sats`]),
        el('span', { class: `pill status-${status}` }, [status]),
        el('time', { datetime: o.acceptedAt, class: 'muted when' }, [new Date(o.acceptedAt).toLocaleTimeString('en-GB')]),
      ]);
    }),
  );
}

/** @param {{ ok: boolean; status: number; body: unknown } | undefined} health */
function drawHealth(health) {
  const badge = document.getElementById('health');
  if (!badge) return;
  /** @type {[string, string, string]} */
  let view;
  if (!health) view = ['unreachable', 'badge-down', 'The API did not answer'];
  else if (health.ok) view = ['healthy', 'badge-ok', JSON.stringify(health.body)];
  else view = [`degraded (${health.status})`, 'badge-warn', JSON.stringify(health.body)];
  badge.textContent = view[0];
  badge.className = `badge ${view[1]}`;
  badge.title = view[2];
}

/** Merge what the back-end's history has after `historySince` (everything on the first call). */
async function pullHistory() {
  const res = await getJson(new URL(`history${historySince > 0 ? `?since=${historySince}` : ''}`, document.baseURI).href).catch(() => undefined);
  const body = /** @type {import('./model.d.ts').HistoryBody | undefined} */ (res?.ok ? res.body : undefined);
  if (!body) return;
  historySince = mergeSeries(history, body.series, historySince);
  counts = body.counts ?? {};
}

async function poll() {
  const [domainsRes, healthRes] = await Promise.all([
    getJson('domains?limit=500').catch(() => undefined),
    getJson('health').catch(() => undefined),
    pullHistory(),
  ]);
  drawHealth(healthRes);
  const updated = document.getElementById('updated');
  if (!domainsRes || !domainsRes.ok) {
    if (updated) updated.textContent = `API error at ${new Date().toLocaleTimeString('en-GB')}`;
    return;
  }
  const domainsBody = /** @type {import('./model.d.ts').DomainsBody | undefined} */ (domainsRes.body);
  const now = Date.now();
  const rows = consumerDomains(domainsBody);

  // the flow: each domain's newest obligations (one short page each, however long the run)
  const lists = await Promise.all(
    rows.map(async (r) => {
      const res = await getJson(`domains/${encodeURIComponent(r.domain)}/obligations?side=consumer&order=newest&limit=${FLOW_PER_DOMAIN}`).catch(() => undefined);
      const body = /** @type {{ obligations?: import('./model.d.ts').ObligationView[] } | undefined} */ (res?.ok ? res.body : undefined);
      return body?.obligations ?? [];
    }),
  );

  showEmpty(rows.length === 0);
  drawChart(domainsBody, now);
  drawLegend(rows);
  drawTable(rows);
  drawFlow(recentFlow(lists));
  if (updated) updated.textContent = `updated ${new Date(now).toLocaleTimeString('en-GB')}`;
  document.body.dataset.polls = String(Number(document.body.dataset.polls ?? '0') + 1);
}

/** Poll, then wait a second after each answer (never two polls in flight). */
async function loop() {
  try {
    await poll();
  } catch (e) {
    console.error('poll failed', e);
  }
  setTimeout(loop, POLL_MS);
}

loop();
