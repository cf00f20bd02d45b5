/**
 * The bcoin stand-in's fee bump (local/bitcoin.ts sizeReplacementFee): the fee meets its
 * bounds at the size the replacement has once signed, whatever that size turns out to be.
 * Signing is scripted here: `sizes(total)` is the vsize a signature at that fee comes out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sizeReplacementFee } from '../../local/bitcoin.ts';

/** A signer whose replacement at fee `total` is `sizeOf(total)` vbytes; the fees it was asked to sign at. */
function scripted(sizeOf: (total: number) => number): { sign: (total: number) => Promise<number>; signed: number[] } {
  const signed: number[] = [];
  return { signed, sign: async (total) => (signed.push(total), sizeOf(total)) };
}

const FEE = 1_125; // the original paid 5 sat/vB at 225 vB

describe('sizeReplacementFee (the stand-in bump)', () => {
  it('pays the rate for the signed size: the same size, a byte more, two bytes more', async () => {
    for (const grown of [0, 1, 2, 3]) {
      const s = scripted(() => 225 + grown);
      const got = await sizeReplacementFee({ fee: FEE, rate: 30, vsize: 225 }, s.sign);
      assert.deepEqual(got, { total: Math.ceil(30 * (225 + grown)) }, `grown by ${grown}`);
      assert.equal(s.signed.at(-1), Math.ceil(30 * (225 + grown)), 'signed last at the fee it answers');
    }
  });

  it('never above the cap for the signed size, also when the signature comes out shorter', async () => {
    for (const shrunk of [0, 1, 2]) {
      const s = scripted(() => 225 - shrunk);
      const got = await sizeReplacementFee({ fee: FEE, rate: 40, maxRate: 13, vsize: 225 }, s.sign);
      assert.deepEqual(got, { total: Math.floor(13 * (225 - shrunk)) }, `shrunk by ${shrunk}`);
    }
  });

  it('when two sizes take turns and the rate is the cap, the cap wins: the highest fee within it, signed last', async () => {
    // a fee of 1695 signs at 225 vB, any other at 226: 7.5 × 226 = 1695 is over 7.5 at 225
    const s = scripted((total) => (total === 1695 ? 225 : 226));
    const got = await sizeReplacementFee({ fee: FEE, rate: 7.5, maxRate: 7.5, vsize: 225 }, s.sign);
    assert.ok('total' in got, JSON.stringify(got));
    assert.ok(got.total <= Math.floor(7.5 * 226), `${got.total} within the cap at its size`);
    assert.equal(s.signed.at(-1), got.total);
  });

  it('when two sizes take turns without a cap, the rate holds: the higher fee, at least the rate at its size', async () => {
    const s = scripted((total) => (total === 1695 ? 225 : 226));
    const got = await sizeReplacementFee({ fee: FEE, rate: 7.5, vsize: 225 }, s.sign);
    assert.ok('total' in got, JSON.stringify(got));
    const size = got.total === 1695 ? 225 : 226;
    assert.ok(got.total >= 7.5 * size, `${got.total} sat at ${size} vB`);
    assert.equal(s.signed.at(-1), got.total);
  });

  it('never settles on a fee under the rate: each fee signs a byte larger than it was sized for (refused)', async () => {
    // 30 sat/vB × s signs at s + 1, every time (the same fee, the same size)
    const s = scripted((total) => Math.round(total / 30) + 1);
    assert.deepEqual(await sizeReplacementFee({ fee: FEE, rate: 30, vsize: 225 }, s.sign), { unsettled: true });
  });

  it('refuses when even 1 sat/vB more is over the cap, at the first guess or at the signed size', async () => {
    assert.deepEqual(await sizeReplacementFee({ fee: FEE, rate: 30, maxRate: 5.5, vsize: 225 }, scripted(() => 225).sign), { over: true });
    // a cap of 6 leaves exactly 1 sat/vB more at 225 vB (1350 = 1125 + 225), not at 224 (6 × 224 = 1344 < 1125 + 224)
    const s = scripted(() => 224);
    assert.deepEqual(await sizeReplacementFee({ fee: FEE, rate: 30, maxRate: 6, vsize: 225 }, s.sign), { over: true });
    assert.deepEqual(s.signed, [1350]);
  });

  it('without a rate pays the original fee again (at least 1 sat/vB more)', async () => {
    assert.deepEqual(await sizeReplacementFee({ fee: FEE, vsize: 225 }, scripted(() => 226).sign), { total: 2 * FEE });
    assert.deepEqual(await sizeReplacementFee({ fee: 100, vsize: 225 }, scripted(() => 226).sign), { total: 100 + 226 });
  });
});
