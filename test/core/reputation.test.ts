import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DAY_MS,
  DEFAULT_REPUTATION,
  MAX_SATS,
  MalformedError,
  createDomainRecord,
  evidenceDelta,
  evidenceWeight,
  generateKeyPair,
  recompute,
  reputationOf,
  type DomainRecord,
  type EvidenceEvent,
  type ReputationParams,
  type ScaledCounters,
} from '../../core/index.ts';

const p = DEFAULT_REPUTATION;
const T0 = p.epoch + 100 * DAY_MS;

/** Fold events into counters with evidenceDelta, as atomic ADDs would. */
function fold(events: readonly EvidenceEvent[], params: ReputationParams = p): ScaledCounters {
  const c = { rScaled: 0, sScaled: 0 };
  for (const e of events) {
    const d = evidenceDelta(e.kind, e.amount, e.at, e.weight, params);
    c.rScaled += d.rScaled;
    c.sScaled += d.sScaled;
  }
  return c;
}

function ev(kind: EvidenceEvent['kind'], amount: number, at: number, weight = 1): EvidenceEvent {
  return { kind, amount, at, weight, consumerDomain: 'acme', providerDomain: 'wifico' };
}

const eventArb = fc.record({
  kind: fc.constantFrom('fulfilled' as const, 'defaulted' as const),
  amount: fc.integer({ min: 1, max: 100_000_000 }),
  at: fc.integer({ min: p.epoch - 365 * DAY_MS, max: p.epoch + 3 * 365 * DAY_MS }),
  weight: fc.constantFrom(0, 1),
  consumerDomain: fc.constant('acme'),
  providerDomain: fc.constant('wifico'),
});
const nowArb = fc.integer({ min: p.epoch + 3 * 365 * DAY_MS, max: p.epoch + 6 * 365 * DAY_MS });

describe('reputationOf', () => {
  it('gives a newcomer 0.5', () => {
    assert.equal(reputationOf({ rScaled: 0, sScaled: 0 }, T0), 0.5);
  });

  it('rises with fulfilled evidence and falls with defaulted evidence', () => {
    const paid = fold([ev('fulfilled', 100_000, T0)]);
    const unpaid = fold([ev('defaulted', 100_000, T0)]);
    // 10 units of evidence: (10+1)/(10+2) and 1/(10+2).
    assert.ok(Math.abs(reputationOf(paid, T0) - 11 / 12) < 1e-12);
    assert.ok(Math.abs(reputationOf(unpaid, T0) - 1 / 12) < 1e-12);
  });

  it('barely moves on one small payment (amounts in units)', () => {
    const tiny = fold([ev('fulfilled', 100, T0)]);
    assert.ok(reputationOf(tiny, T0) - 0.5 < 0.01);
    assert.ok(reputationOf(tiny, T0) > 0.5);
  });

  it('fades evidence by lambda per day', () => {
    const c = fold([ev('fulfilled', 100_000, T0)]);
    const r = (now: number) => {
      const rep = reputationOf(c, now);
      return (2 * rep - 1) / (1 - rep); // invert (r+1)/(r+2) for s = 0
    };
    assert.ok(Math.abs(r(T0 + DAY_MS) / r(T0) - p.lambda) < 1e-9);
    assert.ok(Math.abs(r(T0 + 30 * DAY_MS) / r(T0) - p.lambda ** 30) < 1e-9);
  });

  it('weighs old evidence less than new (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 1000 }), (amount, days) => {
        const now = T0 + 2000 * DAY_MS;
        const old = fold([ev('fulfilled', amount, now - days * DAY_MS - DAY_MS)]);
        const recent = fold([ev('fulfilled', amount, now - days * DAY_MS)]);
        assert.ok(reputationOf(old, now) < reputationOf(recent, now));
        const oldDefault = fold([ev('defaulted', amount, now - days * DAY_MS - DAY_MS)]);
        const recentDefault = fold([ev('defaulted', amount, now - days * DAY_MS)]);
        assert.ok(reputationOf(oldDefault, now) > reputationOf(recentDefault, now));
      }),
      { numRuns: 150 },
    );
  });

  it('stays strictly inside (0, 1) (property)', () => {
    const extreme = fc.record({
      kind: fc.constantFrom('fulfilled' as const, 'defaulted' as const),
      amount: fc.integer({ min: 0, max: MAX_SATS }),
      at: fc.integer({ min: p.epoch - 3650 * DAY_MS, max: p.epoch + 3650 * DAY_MS }),
      weight: fc.constantFrom(0, 1),
      consumerDomain: fc.constant('acme'),
      providerDomain: fc.constant('wifico'),
    });
    fc.assert(
      fc.property(fc.array(extreme, { maxLength: 30 }), fc.integer({ min: p.epoch - 3650 * DAY_MS, max: p.epoch + 3650 * DAY_MS }), (events, now) => {
        const rep = reputationOf(fold(events), now);
        assert.ok(rep > 0 && rep < 1, `reputation ${rep}`);
      }),
      { numRuns: 200 },
    );
  });

  it('more fulfilled raises it, more defaulted lowers it (property)', () => {
    // The added evidence is at least one unit and at most 90 days old, so it is not faded
    // below floating-point resolution (strictness is then observable).
    const extraArb = fc.record({ amount: fc.integer({ min: p.unit, max: 100_000_000 }), ageDays: fc.integer({ min: 0, max: 90 }) });
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 20 }), extraArb, nowArb, (events, extra, now) => {
        const at = now - extra.ageDays * DAY_MS;
        const base = reputationOf(fold(events), now);
        const withPaid = reputationOf(fold([...events, ev('fulfilled', extra.amount, at)]), now);
        const withDefault = reputationOf(fold([...events, ev('defaulted', extra.amount, at)]), now);
        assert.ok(withPaid > base, `${withPaid} > ${base}`);
        assert.ok(withDefault < base, `${withDefault} < ${base}`);
      }),
      { numRuns: 200 },
    );
  });

  it('costs the same whatever the number of events: counters are two numbers', () => {
    const events = Array.from({ length: 10_000 }, (_, i) => ev(i % 10 === 0 ? 'defaulted' : 'fulfilled', 5_000, T0 + i * 60_000));
    const c = fold(events);
    assert.deepEqual(Object.keys(c).sort(), ['rScaled', 'sScaled']);
    assert.ok(Math.abs(reputationOf(c, T0 + 8 * DAY_MS) - recompute(events, T0 + 8 * DAY_MS).reputation) < 1e-12);
  });
});

describe('recompute', () => {
  it('equals summing evidenceDelta over the same events, within 1e-9 relative (property)', () => {
    const rel = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 40 }), nowArb, (events, now) => {
        const counters = fold(events);
        const full = recompute(events, now);
        assert.ok(rel(counters.rScaled, full.rScaled) < 1e-9, `r ${counters.rScaled} vs ${full.rScaled}`);
        assert.ok(rel(counters.sScaled, full.sScaled) < 1e-9, `s ${counters.sScaled} vs ${full.sScaled}`);
        assert.ok(Math.abs(reputationOf(counters, now) - full.reputation) < 1e-9);
      }),
      { numRuns: 200 },
    );
  });
});

describe('evidenceDelta', () => {
  it('adds to rScaled for fulfilled and to sScaled for defaulted', () => {
    const f = evidenceDelta('fulfilled', 10_000, p.epoch, 1);
    const d = evidenceDelta('defaulted', 10_000, p.epoch, 1);
    assert.deepEqual(f, { rScaled: 1, sScaled: 0 });
    assert.deepEqual(d, { rScaled: 0, sScaled: 1 });
  });

  it('counts fulfilled evidence by weight, and defaulted evidence always in full', () => {
    assert.equal(evidenceDelta('fulfilled', 10_000, p.epoch, 0).rScaled, 0);
    assert.equal(evidenceDelta('defaulted', 10_000, p.epoch, 0).sScaled, 1);
  });

  it('rejects negative amounts, weights outside [0, 1] and bad params', () => {
    assert.throws(() => evidenceDelta('fulfilled', -1, p.epoch, 1), MalformedError);
    assert.throws(() => evidenceDelta('fulfilled', 1, p.epoch, 2), MalformedError);
    assert.throws(() => evidenceDelta('fulfilled', 1, p.epoch, 1, { ...p, lambda: 0 }), MalformedError);
  });
});

describe('evidenceWeight (Sybil guard)', () => {
  const acmeKeys = generateKeyPair();
  const record = (domain: string, keys = generateKeyPair(), publisher = `pub-${domain}`, operates: string[] = []): DomainRecord =>
    createDomainRecord({ domain, publisher, operates, createdAt: 0 }, keys).body;
  const acme = record('acme', acmeKeys);

  it('counts a distinct, known provider in full', () => {
    assert.equal(evidenceWeight(acme, record('wifico')), 1);
  });

  it('counts nothing from an unknown consumer or provider', () => {
    assert.equal(evidenceWeight(acme, undefined), 0);
    assert.equal(evidenceWeight(undefined, record('wifico')), 0);
  });

  it('counts nothing for payments to itself', () => {
    assert.equal(evidenceWeight(acme, acme), 0);
  });

  it('counts nothing from a provider sharing its key or its ledger publisher', () => {
    assert.equal(evidenceWeight(acme, record('puppet', acmeKeys)), 0);
    assert.equal(evidenceWeight(acme, record('puppet', generateKeyPair(), 'pub-acme')), 0);
  });

  it('counts nothing when either declares it operates the other', () => {
    assert.equal(evidenceWeight(record('acme', acmeKeys, 'pub-acme', ['puppet']), record('puppet')), 0);
    assert.equal(evidenceWeight(acme, record('puppet', generateKeyPair(), 'pub-puppet', ['acme'])), 0);
  });
});
