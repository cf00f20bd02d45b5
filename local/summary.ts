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

export function renderSummary(rows: DomainSummary[], facts: RunFacts): string {
  const lines: string[] = [];
  lines.push('');
  const ms = (x: number) => (Number.isNaN(x) ? '–' : `${x.toFixed(0)} ms`);
  lines.push(`summary (${facts.seconds.toFixed(1)} s; accept latency p50 ${ms(facts.p50)}, p99 ${ms(facts.p99)})`);
  lines.push('');
  const header = [
    pad('domain', 8),
    pad('pays?', 6),
    pad('reputation over time', 22),
    lpad('rep', 5),
    lpad('credit', 8),
    lpad('accepted', 9),
    lpad('refused', 8),
    lpad('fulfilled', 10),
    lpad('defaulted', 10),
    lpad('payments', 9),
    lpad('paid sats', 10),
  ].join(' ');
  lines.push(header);
  lines.push('-'.repeat(header.length));
  for (const r of rows) {
    const refused = Object.values(r.refused).reduce((a, b) => a + b, 0);
    const first = r.history[0] ?? 0.5;
    lines.push(
      [
        pad(r.domain, 8),
        pad(r.defaulter ? 'no' : 'yes', 6),
        pad(`${first.toFixed(2)} ${sparkline(r.history.slice(-14))}`, 22),
        lpad(r.reputation.toFixed(2), 5),
        lpad(String(r.creditLimit), 8),
        lpad(String(r.accepted), 9),
        lpad(String(refused), 8),
        lpad(String(r.fulfilled), 10),
        lpad(String(r.defaulted), 10),
        lpad(String(r.payments), 9),
        lpad(String(r.paidSats), 10),
      ].join(' '),
    );
  }
  const earlier = rows.filter((r) => r.allRuns !== undefined && r.allRuns.stored > r.stored);
  if (earlier.length > 0) {
    lines.push('');
    lines.push('over every run kept in the data directory (the table above counts this run only):');
    for (const r of earlier) {
      const a = r.allRuns as NonNullable<DomainSummary['allRuns']>;
      lines.push(`  ${pad(r.domain, 6)} obligations ${a.stored}, fulfilled ${a.fulfilled}, defaulted ${a.defaulted}, paid sats ${a.paidSats}`);
    }
  }
  lines.push('');
  lines.push(`refusals by reason (providers' threshold: reputation ≥ ${facts.threshold}):`);
  for (const r of rows) {
    const reasons = Object.entries(r.refused)
      .map(([code, n]) => `${code} ×${n}`)
      .join(', ');
    lines.push(`  ${pad(r.domain, 6)} ${reasons || 'none'}${r.timeouts ? `, timeouts ×${r.timeouts}` : ''}`);
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
  return [
    { ok: r.onEveryNodeOnce === r.accepted, text: `every accepted obligation is once on every hub's ledger node (${r.onEveryNodeOnce}/${r.accepted})` },
    { ok: closed === accepted && facts.open === 0, text: `every accepted obligation ended fulfilled or defaulted (${closed}/${accepted}, ${facts.open} open)` },
    { ok: crossAccepted > 0 && crossAsExpected === crossAccepted, text: `cross-hub: payers' fulfilled, non-payers' defaulted (${crossAsExpected}/${crossAccepted})` },
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
    lines.push(`  ${pad(h.publisher, 6)} ${pad(h.api, 23)} hosts ${h.domains.join(' ')}`);
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
    const reasons = Object.entries(c.refused)
      .map(([code, n]) => `${code} ×${n}`)
      .join(', ');
    lines.push(`  ${pad(c.domain, 6)} ${reasons || 'none'}${c.timeouts ? `, timeouts ×${c.timeouts}` : ''}`);
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
