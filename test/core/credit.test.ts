import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_CREDIT, creditLimit } from '../../core/index.ts';

describe('creditLimit', () => {
  it('is 0 below the minimum reputation', () => {
    assert.equal(creditLimit(DEFAULT_CREDIT.minReputation - 0.01, 1e9), 0);
  });

  it('gives a newcomer (0.5, nothing paid) the base line', () => {
    assert.equal(creditLimit(0.5, 0), DEFAULT_CREDIT.base);
  });

  it('grows by k · reputation · paidVolume, in whole sats', () => {
    assert.equal(creditLimit(0.75, 100_001), Math.floor(50_000 + 2 * 0.75 * 100_001));
    assert.ok(Number.isInteger(creditLimit(0.7777, 12_345)));
  });

  it('is capped', () => {
    assert.equal(creditLimit(1, 1e12), DEFAULT_CREDIT.cap);
  });

  it('is monotone in reputation and in paid volume (property)', () => {
    const rep = fc.double({ min: 0, max: 1, noNaN: true });
    const vol = fc.integer({ min: 0, max: 1e10 });
    fc.assert(
      fc.property(rep, rep, vol, vol, (r1, r2, v1, v2) => {
        const [rLo, rHi] = r1 <= r2 ? [r1, r2] : [r2, r1];
        const [vLo, vHi] = v1 <= v2 ? [v1, v2] : [v2, v1];
        assert.ok(creditLimit(rLo, vLo) <= creditLimit(rHi, vLo));
        assert.ok(creditLimit(rLo, vLo) <= creditLimit(rLo, vHi));
        assert.ok(creditLimit(rHi, vHi) <= DEFAULT_CREDIT.cap);
      }),
      { numRuns: 200 },
    );
  });
});
