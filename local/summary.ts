/** The readable end-of-run summary of `npm start` (plain text, fixed-width). */

export interface DomainSummary {
  domain: string;
  defaulter: boolean;
  /** Reputation sampled after each round (first: before any). */
  history: number[];
  reputation: number;
  creditLimit: number;
  accepted: number;
  refused: Record<string, number>;
  timeouts: number;
  fulfilled: number;
  defaulted: number;
  stored: number;
  onLedger: number;
  payments: number;
  paidSats: number;
  ledgerAgrees: boolean;
  /**
   * With `npm start -- --data DIR` run again: this domain's obligations over
   * every run kept in DIR (the fields above count this run's only).
   */
  allRuns?: { stored: number; fulfilled: number; defaulted: number; paidSats: number };
}

export interface RunFacts {
  threshold: number;
  open: number;
  seconds: number;
  p50: number;
  p99: number;
  brokerRefusals: number;
  ruleFailures: number;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A sparkline of values in [0,1]. */
export function sparkline(values: number[]): string {
  return values.map((v) => BARS[Math.max(0, Math.min(BARS.length - 1, Math.floor(v * BARS.length)))] ?? ' ').join('');
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** Widest line of the summaries: fits a 100-column terminal (and an 80-column one for the usual domain names). */
export const SUMMARY_COLUMNS = 100;

/**
 * `head` followed by `items` joined with `sep`, wrapped at `width` columns;
 * continuation lines are indented under the first item.
 */
export function wrapList(head: string, items: string[], width = SUMMARY_COLUMNS, sep = ', '): string[] {
  const indent = ' '.repeat(Math.min(head.length, 24));
  const lines: string[] = [];
  let line = head;
  let empty = true; // nothing after the head (or the indent) yet
  items.forEach((item, i) => {
    const piece = i < items.length - 1 ? item + sep.trimEnd() : item;
    if (!empty && line.length + 1 + piece.length > width) {
      lines.push(line);
      line = indent;
      empty = true;
    }
    line += empty ? piece : ` ${piece}`;
    empty = false;
  });
  lines.push(line);
  return lines;
}

/** At most `n` values evenly spread over the whole of `values`, first and last included: the trend of the whole run. */
export function spread(values: number[], n: number): number[] {
  if (values.length <= n) return values;
  if (n <= 1) return values.slice(-1);
  return Array.from({ length: n }, (_, i) => values[Math.round((i * (values.length - 1)) / (n - 1))] ?? 0);
}

/** 1234 → '1234', 1_250_000 → '1.3M', 2.1e12 → '2.1T'. */
function compact(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M']];
  for (const [size, unit] of units) if (Math.abs(n) >= size) return `${(n / size).toFixed(1)}${unit}`;
  return String(n);
}

interface Column<R> {
  label: string;
  right: boolean;
  cell: (r: R) => string;
}

/** A table whose columns are as wide as their widest cell (or label), one space apart. */
function table<R>(columns: Column<R>[], rows: R[]): string[] {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.label.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: string[]) =>
    values.map((v, i) => (columns[i]?.right ? lpad(v, widths[i] ?? 0) : pad(v, widths[i] ?? 0))).join(' ').trimEnd();
  const header = line(columns.map((c) => c.label));
  return [header, '-'.repeat(header.length), ...cells.map(line)];
}

export function renderSummary(rows: DomainSummary[], facts: RunFacts, width = SUMMARY_COLUMNS): string {
  const lines: string[] = [];
  lines.push('');
  const ms = (x: number) => (Number.isNaN(x) ? '–' : `${x.toFixed(0)} ms`);
  lines.push(`summary (${facts.seconds.toFixed(1)} s; accept latency p50 ${ms(facts.p50)}, p99 ${ms(facts.p99)})`);
  lines.push('');
  const refusedOf = (r: DomainSummary) => Object.values(r.refused).reduce((a, b) => a + b, 0);
  const columns = (bars: number, num: (n: number) => string): Column<DomainSummary>[] => [
    { label: 'domain', right: false, cell: (r) => r.domain },
    { label: 'pays?', right: false, cell: (r) => (r.defaulter ? 'no' : 'yes') },
    ...(bars > 0
      ? [{ label: 'reputation trend', right: false, cell: (r: DomainSummary) => `${(r.history[0] ?? 0.5).toFixed(2)} ${sparkline(spread(r.history, bars))}` }]
      : []),
    { label: 'rep', right: true, cell: (r) => r.reputation.toFixed(2) },
    { label: 'credit', right: true, cell: (r) => num(r.creditLimit) },
    { label: 'accepted', right: true, cell: (r) => num(r.accepted) },
    { label: 'refused', right: true, cell: (r) => num(refusedOf(r)) },
    { label: 'fulfilled', right: true, cell: (r) => num(r.fulfilled) },
    { label: 'defaulted', right: true, cell: (r) => num(r.defaulted) },
    { label: 'payments', right: true, cell: (r) => num(r.payments) },
    { label: 'paid sats', right: true, cell: (r) => num(r.paidSats) },
  ];
  // Too wide (long names, huge figures)? The trend gives up bars (down to 4), then figures
  // of a million and more are abbreviated, then the trend goes.
  let bars = 12;
  let num: (n: number) => string = String;
  let t = table(columns(bars, num), rows);
  const tooWide = () => (t[0]?.length ?? 0) > width;
  while (bars > 4 && tooWide()) t = table(columns(--bars, num), rows);
  if (tooWide()) t = table(columns(bars, (num = compact)), rows);
  if (tooWide()) t = table(columns(0, num), rows);
  lines.push(...t);
  const earlier = rows.filter((r) => r.allRuns !== undefined && r.allRuns.stored > r.stored);
  if (earlier.length > 0) {
    lines.push('');
    lines.push('over every run kept in the data directory (the table above counts this run only):');
    for (const r of earlier) {
      const a = r.allRuns as NonNullable<DomainSummary['allRuns']>;
      lines.push(`  ${pad(r.domain, Math.max(6, ...earlier.map((e) => e.domain.length)))} obligations ${a.stored}, fulfilled ${a.fulfilled}, defaulted ${a.defaulted}, paid sats ${a.paidSats}`);
    }
  }
  lines.push('');
  lines.push(`refusals by reason (providers' threshold: reputation ≥ ${facts.threshold}):`);
  const name = Math.max(6, ...rows.map((r) => r.domain.length));
  for (const r of rows) {
    const reasons = Object.entries(r.refused).map(([code, n]) => `${code} ×${n}`);
    if (r.timeouts) reasons.push(`timeouts ×${r.timeouts}`);
    lines.push(...wrapList(`  ${pad(r.domain, name)} `, reasons.length > 0 ? reasons : ['none'], width));
  }
  const accepted = rows.reduce((s, r) => s + r.accepted, 0);
  const onLedger = rows.reduce((s, r) => s + r.onLedger, 0);
  const closed = rows.reduce((s, r) => s + r.fulfilled + r.defaulted, 0);
  const agrees = rows.every((r) => r.ledgerAgrees);
  lines.push('');
  lines.push('checks:');
  lines.push(`  ${mark(onLedger === accepted)} every accepted obligation is on the ledger exactly once (${onLedger}/${accepted})`);
  lines.push(`  ${mark(closed === accepted && facts.open === 0)} every accepted obligation ended fulfilled or defaulted (${closed}/${accepted}, ${facts.open} open)`);
  lines.push(`  ${mark(agrees)} reputation counters equal a recomputation from the ledger alone`);
  lines.push(`  ${mark(facts.ruleFailures === 0)} no topic-rule invocation failed (${facts.ruleFailures}); broker refusals: ${facts.brokerRefusals}`);
  return lines.join('\n');
}

const mark = (ok: boolean) => (ok ? '✔' : '✘');

/** What `renderFederationSummary` prints besides the report. */
export interface FederationFacts {
  threshold: number;
  seconds: number;
  p50: number;
  p99: number;
  ledgerDelayMs: number;
  /** Obligations still open after the drain. */
  open: number;
  /** How far apart a domain's reputations at different hubs may be and still "agree". */
  tolerance: number;
}

/** Structural type of local/federation-report.ts's report (kept here so this module imports nothing). */
interface FederationFates {
  accepted: number;
  settled: number;
  fulfilled: number;
  defaulted: number;
  open: number;
}
export interface FederationSummaryInput {
  hubs: { publisher: string; api: string; domains: string[]; follow: Readonly<Record<string, number>>; ruleFailures: number; brokerRefusals: number }[];
  consumers: {
    domain: string;
    hub: number;
    defaulter: boolean;
    reputationAt: number[];
    ledgerAgreesAt: boolean[];
    local: FederationFates;
    cross: FederationFates;
    refused: Record<string, number>;
    timeouts: number;
  }[];
  accepted: number;
  onEveryNodeOnce: number;
  maxSpread: number;
}

/** The verdicts of a federated run (also what the process exit code follows). */
export function federationChecks(r: FederationSummaryInput, facts: FederationFacts): { ok: boolean; text: string }[] {
  const sum = (f: (c: FederationSummaryInput['consumers'][number]) => number) => r.consumers.reduce((s, c) => s + f(c), 0);
  const accepted = sum((c) => c.local.accepted + c.cross.accepted);
  const closed = sum((c) => c.local.fulfilled + c.local.defaulted + c.cross.fulfilled + c.cross.defaulted);
  const crossAccepted = sum((c) => c.cross.accepted);
  const crossAsExpected = sum((c) => (c.defaulter ? c.cross.defaulted : c.cross.fulfilled));
  const agree = r.consumers.every((c) => c.ledgerAgreesAt.every(Boolean));
  const rules = r.hubs.reduce((s, h) => s + h.ruleFailures, 0);
  const refusals = r.hubs.reduce((s, h) => s + h.brokerRefusals, 0);
  // every obligation ended, so each follower learnt the outcome of each obligation it learnt
  const short = r.hubs.filter((h) => (h.follow.outcomes ?? 0) !== (h.follow.obligations ?? 0));
  const first = short[0];
  const shortText = first ? `; ${first.publisher} ${first.follow.outcomes ?? 0}/${first.follow.obligations ?? 0}${short.length > 1 ? ` +${short.length - 1}` : ''}` : '';
  return [
    { ok: r.onEveryNodeOnce === r.accepted, text: `every accepted obligation is once on every hub's ledger node (${r.onEveryNodeOnce}/${r.accepted})` },
    { ok: closed === accepted && facts.open === 0, text: `every accepted obligation ended fulfilled or defaulted (${closed}/${accepted}, ${facts.open} open)` },
    { ok: crossAccepted > 0 && crossAsExpected === crossAccepted, text: `cross-hub: payers' fulfilled, non-payers' defaulted (${crossAsExpected}/${crossAccepted})` },
    { ok: short.length === 0, text: `every follower learnt each obligation's outcome (${r.hubs.length - short.length}/${r.hubs.length} hubs${shortText})` },
    { ok: agree, text: 'reputation counters equal a recomputation from the ledger, at every hub' },
    { ok: r.maxSpread <= facts.tolerance, text: `each domain's reputation agrees across hubs (max spread ${r.maxSpread.toFixed(3)} ≤ ${facts.tolerance})` },
    { ok: rules === 0, text: `no topic-rule invocation failed (${rules}); broker refusals: ${refusals}` },
  ];
}

/** The end-of-run summary of `npm start -- --hubs N` (≤ 100 columns for up to 8 hubs). */
export function renderFederationSummary(r: FederationSummaryInput, facts: FederationFacts): string {
  const lines: string[] = [];
  const ms = (x: number) => (Number.isNaN(x) ? '–' : `${x.toFixed(0)} ms`);
  const hubName = (i: number) => r.hubs[i]?.publisher ?? `hub-${i + 1}`;
  lines.push('');
  lines.push(
    `summary (${facts.seconds.toFixed(1)} s; ${r.hubs.length} hubs, ledger delay ${facts.ledgerDelayMs} ms; ` +
      `accept p50 ${ms(facts.p50)}, p99 ${ms(facts.p99)})`,
  );
  lines.push('');
  lines.push('hubs:');
  for (const h of r.hubs) {
    lines.push(...wrapList(`  ${pad(h.publisher, 6)} ${pad(h.api, 23)} hosts `, h.domains, SUMMARY_COLUMNS, ' '));
    const f = h.follow;
    if (Object.keys(f).length > 0) {
      const n = (k: string) => f[k] ?? 0;
      lines.push(`         follower learnt ${n('obligations')} obligations, ${n('outcomes')} outcomes, ${n('settlements')} settlements`);
      lines.push(`         invalid ledger records skipped: ${n('invalid')}`);
    }
  }
  lines.push('');
  lines.push('reputation of each consumer domain as seen at each hub:');
  const repHeader = [pad('domain', 8), pad('home', 6), pad('pays?', 6), ...r.hubs.map((_, i) => lpad(hubName(i), 6)), lpad('spread', 7)].join(' ');
  lines.push(repHeader);
  lines.push('-'.repeat(repHeader.length));
  for (const c of r.consumers) {
    const spread = Math.max(...c.reputationAt) - Math.min(...c.reputationAt);
    lines.push(
      [
        pad(c.domain, 8),
        pad(hubName(c.hub), 6),
        pad(c.defaulter ? 'no' : 'yes', 6),
        ...c.reputationAt.map((x) => lpad(x.toFixed(2), 6)),
        lpad(spread.toFixed(2), 7),
      ].join(' '),
    );
  }
  lines.push('');
  lines.push(`obligations, as the accepting (provider's) hub recorded them; threshold ≥ ${facts.threshold}:`);
  const head = [
    pad('domain', 8),
    lpad('refused', 7),
    lpad('x-acc', 6),
    lpad('x-settled', 9),
    lpad('x-fulfilled', 11),
    lpad('x-defaulted', 11),
    lpad('x-open', 6),
    lpad('same-hub', 8),
    lpad('ended', 6),
  ].join(' ');
  lines.push(head);
  lines.push('-'.repeat(head.length));
  for (const c of r.consumers) {
    const refused = Object.values(c.refused).reduce((a, b) => a + b, 0);
    lines.push(
      [
        pad(c.domain, 8),
        lpad(String(refused), 7),
        lpad(String(c.cross.accepted), 6),
        lpad(String(c.cross.settled), 9),
        lpad(String(c.cross.fulfilled), 11),
        lpad(String(c.cross.defaulted), 11),
        lpad(String(c.cross.open), 6),
        lpad(String(c.local.accepted), 8),
        lpad(String(c.local.fulfilled + c.local.defaulted), 6),
      ].join(' '),
    );
  }
  lines.push('');
  lines.push('refusals by reason:');
  for (const c of r.consumers) {
    const reasons = Object.entries(c.refused).map(([code, n]) => `${code} ×${n}`);
    if (c.timeouts) reasons.push(`timeouts ×${c.timeouts}`);
    lines.push(...wrapList(`  ${pad(c.domain, 6)} `, reasons.length > 0 ? reasons : ['none']));
  }
  lines.push('');
  lines.push('checks:');
  for (const check of federationChecks(r, facts)) lines.push(`  ${mark(check.ok)} ${check.text}`);
  return lines.join('\n');
}

/** One consumer domain's payments, for `--json`: what was owed, what its settlements paid. */
export interface DomainPayments {
  domain: string;
  pays: boolean;
  accepted: number;
  fulfilled: number;
  defaulted: number;
  /** Sum of the amounts of its fulfilled obligations. */
  owedFulfilledSats: number;
  /** Sum of the outputs of its settlements that were broadcast (failed ones excluded). */
  settledSats: number;
  settlements: number;
  /** Obligations named by more than one broadcast settlement. */
  inSeveralSettlements: number;
}
