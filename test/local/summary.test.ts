/** The `npm start` summary and the latency figures it prints. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { percentile } from '../../local/stats.ts';
import { renderSummary, sparkline, type DomainSummary } from '../../local/summary.ts';

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
});
