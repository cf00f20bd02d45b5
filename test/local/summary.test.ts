/** The `npm start` summary and the latency figures it prints. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { percentile } from '../../local/stats.ts';
import {
  federationChecks,
  renderFederationSummary,
  renderSummary,
  sparkline,
  spread,
  SUMMARY_COLUMNS,
  wrapList,
  type DomainSummary,
  type FederationSummaryInput,
} from '../../local/summary.ts';

const row = (over: Partial<DomainSummary> = {}): DomainSummary => ({
  domain: 'c1',
  defaulter: false,
  history: [0.5, 0.6, 0.9],
  reputation: 0.9,
  creditLimit: 100_000,
  accepted: 3,
  refused: {},
  timeouts: 0,
  fulfilled: 3,
  defaulted: 0,
  stored: 3,
  onLedger: 3,
  payments: 1,
  paidSats: 6_000,
  ledgerAgrees: true,
  ...over,
});
const facts = { threshold: 0.4, open: 0, seconds: 1, p50: 10, p99: 20, brokerRefusals: 0, ruleFailures: 0 };

describe('summary', () => {
  it('percentile is nearest-rank over any order, NaN when empty', () => {
    assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
    assert.equal(percentile([5, 1, 3, 2, 4], 99), 5);
    assert.equal(percentile([7], 1), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('sparkline maps [0,1] onto eight bars, clamping the ends', () => {
    assert.equal(sparkline([0, 0.5, 0.999, 1, 2, -1]), '▁▅███▁');
  });

  it('a run against a data directory with earlier runs shows their totals apart; a first run does not', () => {
    const again = renderSummary([row({ allRuns: { stored: 7, fulfilled: 6, defaulted: 1, paidSats: 14_000 } })], facts);
    assert.match(again, /over every run kept in the data directory \(the table above counts this run only\):\n  c1 +obligations 7, fulfilled 6, defaulted 1, paid sats 14000/);
    assert.match(again, /✔ every accepted obligation ended fulfilled or defaulted \(3\/3, 0 open\)/, 'the checks count this run');
    const first = renderSummary([row({ allRuns: { stored: 3, fulfilled: 3, defaulted: 0, paidSats: 6_000 } })], facts);
    assert.doesNotMatch(first, /over every run/);
  });

  it('ticks every check when nothing is lost', () => {
    const text = renderSummary([row()], facts);
    assert.equal((text.match(/✔/g) ?? []).length, 4);
    assert.doesNotMatch(text, /✘/);
  });

  it('crosses the checks that fail: missing from the ledger, still open, counters disagreeing', () => {
    const text = renderSummary([row({ onLedger: 2, fulfilled: 2, ledgerAgrees: false })], { ...facts, open: 1 });
    assert.equal((text.match(/✘/g) ?? []).length, 3);
    assert.match(text, /\(2\/3\)/);
  });

  it('lists refusals by reason per domain', () => {
    const text = renderSummary([row({ domain: 'c4', defaulter: true, refused: { T01_REPUTATION_TOO_LOW: 5 } })], facts);
    assert.match(text, /c4\s+T01_REPUTATION_TOO_LOW ×5/);
  });

  /** Columns a line takes in a terminal (every character of the summary is one column wide: ASCII, ▁…█, ✔, ✘, ×, ≥, –). */
  const columns = (line: string) => [...line].length;
  const widest = (text: string) => Math.max(...text.split('\n').map(columns));

  // The default `npm start` scenario as the README shows it (four consumers, one defaulter), over a long run.
  const history = (from: number, to: number) => Array.from({ length: 40 }, (_, i) => from + ((to - from) * i) / 39);
  const realistic: DomainSummary[] = [
    row({ domain: 'c1', history: history(0.5, 0.5), reputation: 0.5, creditLimit: 50_000, accepted: 42, fulfilled: 42, payments: 17, paidSats: 93_000 }),
    row({ domain: 'c2', history: history(0.5, 0.91), reputation: 0.91, creditLimit: 1_250_000, accepted: 4_200, fulfilled: 4_200, payments: 1_700, paidSats: 1_060_000_000 }),
    row({ domain: 'c3', history: history(0.5, 0.5), reputation: 0.5, creditLimit: 50_000, accepted: 42, fulfilled: 42, payments: 17, paidSats: 140_000 }),
    row({
      domain: 'c4',
      defaulter: true,
      history: history(0.5, 0.14),
      reputation: 0.14,
      creditLimit: 0,
      accepted: 15,
      refused: { T02_OVER_CREDIT: 1_500, T01_REPUTATION_TOO_LOW: 1_200, F04_REPLAY: 3, F05_CHAIN_BREAK: 2, R01_UNAVAILABLE: 1 },
      timeouts: 4,
      fulfilled: 0,
      defaulted: 15,
      payments: 0,
      paidSats: 0,
    }),
  ];

  it(`fits ${SUMMARY_COLUMNS} columns with realistic figures (the table was ~115 wide and wrapped)`, () => {
    const text = renderSummary(realistic, { ...facts, seconds: 612.4, p50: 33, p99: 1_160, brokerRefusals: 12, ruleFailures: 0 });
    assert.ok(widest(text) <= SUMMARY_COLUMNS, `widest line ${widest(text)}:\n${text}`);
    assert.match(text, /^c2\s+yes\s+0\.50 \S+\s+0\.91\s+1250000\s+4200\s+0\s+4200\s+0\s+1700\s+1060000000$/m);
    // the defaulter's many reasons wrap onto indented lines, none lost
    for (const reason of ['T02_OVER_CREDIT ×1500', 'T01_REPUTATION_TOO_LOW ×1200', 'F04_REPLAY ×3', 'F05_CHAIN_BREAK ×2', 'R01_UNAVAILABLE ×1', 'timeouts ×4']) {
      assert.ok(text.includes(reason), reason);
    }
  });

  it('keeps fitting with long domain names and huge figures: the trend gives up bars first', () => {
    const wide = realistic.map((r, i) => ({ ...r, domain: `consumer-${i}-long`, creditLimit: 2_100_000_000_000, paidSats: 2_100_000_000_000 }));
    const text = renderSummary(wide, facts);
    assert.ok(widest(text) <= SUMMARY_COLUMNS, `widest line ${widest(text)}:\n${text}`);
    assert.match(text, /consumer-3-long/);
  });

  it('the trend spans the whole run: evenly spread samples, first and last kept', () => {
    assert.deepEqual(spread([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3), [0, 5, 10]);
    assert.deepEqual(spread([1, 2], 12), [1, 2]);
    const text = renderSummary([row({ history: [0.5, ...Array.from({ length: 50 }, () => 0.1)] })], facts);
    assert.match(text, /0\.50 ▅▁{11} /, 'the first sample (0.5) is still drawn after 50 later ones');
  });

  it('wrapList wraps at the width under the first item and keeps every item', () => {
    const items = Array.from({ length: 30 }, (_, i) => `ITEM_${i} ×${i}`);
    const lines = wrapList('  c4     ', items, 40);
    assert.ok(lines.length > 1);
    assert.ok(lines.every((l) => l.length <= 40), lines.join('\n'));
    assert.ok(lines.slice(1).every((l) => l.startsWith('         I')), 'continuations indented under the first item');
    assert.deepEqual(lines.join(' ').split(/,?\s+/).filter((w) => w.startsWith('ITEM_')).length, 30);
  });

  it(`the federated summary fits ${SUMMARY_COLUMNS} columns with 8 hubs and many hosted domains`, () => {
    const fates = { accepted: 1_200, settled: 1_100, fulfilled: 1_100, defaulted: 0, open: 100 };
    const input: FederationSummaryInput = {
      hubs: Array.from({ length: 8 }, (_, i) => ({
        publisher: `hub-${i + 1}`,
        api: `http://127.0.0.1:${40_000 + i}`,
        domains: Array.from({ length: 14 }, (_, j) => `c${i}x${j}`),
        follow: { obligations: 12_345, outcomes: 12_000, settlements: 4_000, invalid: 3 },
        ruleFailures: 0,
        brokerRefusals: 0,
      })),
      consumers: Array.from({ length: 8 }, (_, i) => ({
        domain: `c${i}`,
        hub: i,
        defaulter: i === 3,
        reputationAt: Array.from({ length: 8 }, () => 0.91),
        ledgerAgreesAt: Array.from({ length: 8 }, () => true),
        local: fates,
        cross: fates,
        refused: { T02_OVER_CREDIT: 1_500, T01_REPUTATION_TOO_LOW: 1_200, F04_REPLAY: 3, F05_CHAIN_BREAK: 2 },
        timeouts: 7,
      })),
      accepted: 19_200,
      onEveryNodeOnce: 19_200,
      maxSpread: 0,
    };
    const text = renderFederationSummary(input, { threshold: 0.4, seconds: 1_234.5, p50: 107, p99: 1_564, ledgerDelayMs: 150, open: 0, tolerance: 0.05 });
    assert.ok(widest(text) <= SUMMARY_COLUMNS, `widest line ${widest(text)}:\n${text}`);
    assert.match(text, /c7x13/, 'every hosted domain is listed');
  });

  it("the federated checks fail when a follower learnt an obligation but not its outcome", () => {
    const fates = { accepted: 2, settled: 2, fulfilled: 2, defaulted: 0, open: 0 };
    const hub = (i: number, follow: Record<string, number>) => ({ publisher: `hub-${i}`, api: '', domains: [], follow, ruleFailures: 0, brokerRefusals: 0 });
    const input = (follow: Record<string, number>): FederationSummaryInput => ({
      hubs: [hub(1, { obligations: 2, outcomes: 2 }), hub(2, follow)],
      consumers: [{ domain: 'c1', hub: 0, defaulter: false, reputationAt: [0.9, 0.9], ledgerAgreesAt: [true, true], local: fates, cross: fates, refused: {}, timeouts: 0 }],
      accepted: 4,
      onEveryNodeOnce: 4,
      maxSpread: 0,
    });
    const f = { threshold: 0.4, seconds: 1, p50: 1, p99: 1, ledgerDelayMs: 100, open: 0, tolerance: 0.05 };
    const check = (follow: Record<string, number>) => federationChecks(input(follow), f).find((c) => /follower/.test(c.text));
    assert.equal(check({ obligations: 2, outcomes: 2 })?.ok, true);
    assert.equal(check({})?.ok, true, 'a hub that learnt nothing');
    const short = check({ obligations: 2, outcomes: 1 });
    assert.equal(short?.ok, false);
    assert.match(short?.text ?? '', /1\/2 hubs; hub-2 1\/2\)/);
  });
});
