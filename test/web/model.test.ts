/** The page's pure part (local/web/model.js): what it keeps and draws from the API's answers. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chartGeometry,
  consumerDomains,
  countByStatus,
  formatReputation,
  formatSats,
  providerThresholds,
  recentFlow,
  recordSamples,
  shortId,
  type DomainsBody,
  type ObligationView,
  type Sample,
} from '../../local/web/model.js';

const rep = (reputation: number) => ({ reputation, creditLimit: 50_000, outstanding: 2_000, paidVolume: 0, at: '2026-01-01T00:00:00.000Z' });

const body: DomainsBody = {
  count: 4,
  domains: [
    { domain: 'p1', role: 'provider', threshold: 0.3 },
    { domain: 'c2', role: 'both', threshold: 0.3, reputation: rep(0.7) },
    { domain: 'c1', role: 'consumer', threshold: 0, reputation: rep(0.5) },
    { domain: 'p2', role: 'provider', threshold: 0.45 },
  ],
};

const ob = (id: string, status: string, acceptedAt: string): ObligationView => ({
  id,
  status,
  consumerDomain: 'c1',
  consumerDevice: 'c1-scd-1',
  providerDomain: 'p1',
  amount: 2_000,
  acceptedAt,
  dueBy: acceptedAt,
});

const BOX = { width: 200, height: 120, left: 0, right: 0, top: 10, bottom: 10 };

describe('consumerDomains', () => {
  it('keeps consumers (and both-role domains) with a reputation, sorted by name', () => {
    assert.deepEqual(
      consumerDomains(body).map((r) => [r.domain, r.reputation]),
      [
        ['c1', 0.5],
        ['c2', 0.7],
      ],
    );
  });

  it('drops providers, domains without a figure, and non-finite figures', () => {
    const odd: DomainsBody = {
      count: 3,
      domains: [
        { domain: 'p', role: 'provider', reputation: rep(0.5) },
        { domain: 'x', role: 'consumer' },
        { domain: 'y', role: 'consumer', reputation: rep(Number.NaN) },
      ],
    };
    assert.deepEqual(consumerDomains(odd), []);
    assert.deepEqual(consumerDomains(undefined), []);
  });
});

describe('providerThresholds', () => {
  it('gives one line per distinct threshold of a providing domain, lowest first', () => {
    assert.deepEqual(providerThresholds(body), [
      { value: 0.3, providers: ['c2', 'p1'] },
      { value: 0.45, providers: ['p2'] },
    ]);
  });

  it('ignores pure consumers and thresholds outside [0, 1]', () => {
    const odd: DomainsBody = {
      count: 2,
      domains: [
        { domain: 'c', role: 'consumer', threshold: 0.4 },
        { domain: 'p', role: 'provider', threshold: 2 },
      ],
    };
    assert.deepEqual(providerThresholds(odd), []);
  });
});

describe('recordSamples', () => {
  it('appends one sample per domain per poll, clamped to [0, 1]', () => {
    const h = new Map<string, Sample[]>();
    recordSamples(h, consumerDomains(body), 1_000);
    recordSamples(h, [{ domain: 'c1', reputation: 1.2, creditLimit: 0, outstanding: 0, paidVolume: 0 }], 2_000);
    assert.deepEqual(h.get('c1'), [
      { t: 1_000, reputation: 0.5 },
      { t: 2_000, reputation: 1 },
    ]);
    assert.equal(h.get('c2')?.length, 1);
  });

  it('keeps only the newest `max` samples', () => {
    const h = new Map<string, Sample[]>();
    for (let t = 1; t <= 5; t++) recordSamples(h, [{ domain: 'c1', reputation: t / 10, creditLimit: 0, outstanding: 0, paidVolume: 0 }], t, 3);
    assert.deepEqual(h.get('c1')?.map((s) => s.t), [3, 4, 5]);
  });
});

describe('chartGeometry', () => {
  it('maps reputation 1 to the top and 0 to the bottom of the plot, newest sample at the right edge', () => {
    const h = new Map<string, Sample[]>([
      [
        'c1',
        [
          { t: 0, reputation: 1 },
          { t: 50_000, reputation: 0 },
        ],
      ],
    ]);
    const g = chartGeometry(h, { ...BOX, now: 100_000, minSpanMs: 10_000 });
    assert.equal(g.start, 0);
    assert.equal(g.series.length, 1);
    assert.equal(g.series[0]?.points, '0,10 100,110');
    assert.deepEqual(g.series[0]?.last, { x: 100, y: 110 });
    assert.equal(g.y(0.5), 60);
  });

  it('draws a lone sample as a short flat segment, and leaves out samples older than the window', () => {
    const h = new Map<string, Sample[]>([
      ['c1', [{ t: 100_000, reputation: 0.5 }]],
      ['old', [{ t: 1, reputation: 0.5 }]],
    ]);
    const g = chartGeometry(h, { ...BOX, now: 100_000, windowMs: 60_000 });
    assert.deepEqual(
      g.series.map((s) => [s.domain, s.points]),
      [['c1', '194,60 200,60']],
    );
  });

  it('spans at least minSpanMs so the first seconds are not stretched across the plot', () => {
    const h = new Map<string, Sample[]>([['c1', [{ t: 99_000, reputation: 0.5 }, { t: 100_000, reputation: 0.5 }]]]);
    const g = chartGeometry(h, { ...BOX, now: 100_000, minSpanMs: 20_000 });
    assert.equal(g.start, 80_000);
    assert.equal(g.series[0]?.points, '190,60 200,60');
  });
});

describe('countByStatus and recentFlow', () => {
  const list = [
    ob('a', 'accepted', '2026-01-01T00:00:01.000Z'),
    ob('b', 'fulfilled', '2026-01-01T00:00:03.000Z'),
    ob('c', 'defaulted', '2026-01-01T00:00:02.000Z'),
    ob('d', 'fulfilled', '2026-01-01T00:00:04.000Z'),
    ob('e', 'lost', '2026-01-01T00:00:05.000Z'),
  ];

  it('counts each known status and ignores unknown ones', () => {
    assert.deepEqual(countByStatus(list), { accepted: 1, settling: 0, fulfilled: 2, defaulted: 1 });
    assert.deepEqual(countByStatus([]), { accepted: 0, settling: 0, fulfilled: 0, defaulted: 0 });
  });

  it('lists the newest first, each obligation once, at most `limit`', () => {
    const flow = recentFlow([list, [ob('b', 'fulfilled', '2026-01-01T00:00:03.000Z')]], 3);
    assert.deepEqual(
      flow.map((o) => o.id),
      ['e', 'd', 'b'],
    );
  });
});

describe('formatting', () => {
  it('formats satoshis, reputations and ids for display', () => {
    assert.equal(formatSats(1_234_567), '1,234,567');
    assert.equal(formatSats(Number.NaN), '–');
    assert.equal(formatReputation(0.5), '0.500');
    assert.equal(shortId('0123456789abcdef'), '0123456789…');
    assert.equal(shortId('abc'), 'abc');
  });
});
