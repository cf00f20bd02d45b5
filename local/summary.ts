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
