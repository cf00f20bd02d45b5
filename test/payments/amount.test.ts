import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_SATS, btcToSats, satsToBtc, satsToBtcString } from '../../adapters/payments/amount.ts';
import { MalformedError } from '../../core/errors.ts';

describe('sats ↔ BTC', () => {
  it('round-trips every amount from 0 to 21e14 sats through the string form', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_SATS }), (sats) => btcToSats(satsToBtcString(sats)) === sats),
      { numRuns: 20_000 },
    );
  });

  it('round-trips every amount through the JSON number form sent to and read from the RPC', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_SATS }), (sats) => {
        const wire = JSON.parse(JSON.stringify({ amount: satsToBtc(sats) })) as { amount: number };
        return btcToSats(wire.amount) === sats;
      }),
      { numRuns: 20_000 },
    );
  });

  it('keeps the edges and the classic float traps exact', () => {
    assert.equal(satsToBtcString(0), '0.00000000');
    assert.equal(satsToBtcString(1), '0.00000001');
    assert.equal(satsToBtcString(MAX_SATS), '21000000.00000000');
    assert.equal(btcToSats(0.1 + 0.2), 30_000_000);
    assert.equal(btcToSats(1e-8), 1);
    assert.equal(btcToSats('20999999.99999999'), 2_099_999_999_999_999);
    assert.equal(btcToSats(-0.5), -50_000_000);
  });

  it('rejects what is not an amount', () => {
    for (const bad of [-1, 1.5, MAX_SATS + 1, Number.NaN]) assert.throws(() => satsToBtcString(bad), MalformedError);
    for (const bad of ['0.000000001', 'abc', '', '1e-8']) assert.throws(() => btcToSats(bad), MalformedError);
    assert.throws(() => btcToSats(Number.POSITIVE_INFINITY), MalformedError);
  });
});
