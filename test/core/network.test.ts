/**
 * Bitcoin networks: addresses are checked against the hub's network before any
 * wallet sees them, and the fee rate is the node's estimate clamped to the
 * policy. The addresses below were made by Bitcoin Core v31 wallets
 * (getnewaddress '' legacy|p2sh-segwit|bech32|bech32m) on each network, and by
 * bcoin 1.0.2 regtest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MalformedError } from '../../core/errors.ts';
import {
  addressFormat,
  checkAddress,
  ceilRate,
  chooseBumpRate,
  chooseFeeRate,
  NETWORK_DEFAULTS,
  raisedRate,
  WrongNetworkError,
  type BitcoinNetwork,
} from '../../core/network.ts';

const ADDRESSES: Record<'mainnet' | 'regtest' | 'signet', string[]> = {
  mainnet: [
    '1BV7JXdr3nY6Kxb9SNvB9FTtPsuYap1Dug',
    '3818qsybCGCAP7xrmpfTBwmdtw8FRBKXxR',
    'bc1qmfmgeswv7wd378sewj8qva3pnk4l53msq9ny2h',
    'bc1pdn926zjazhcf880q6w07gl5e44hm90fupaqqrgrqmvnwh4q4vy6sxcs6e9',
  ],
  regtest: [
    'mragkpmxq31Sv7iPPrKhwBwE4U384moqgB',
    '2MsGeUyt3UAzoWNp4SzXSMtr5bnifhYFixE',
    'bcrt1qmxww734jdpynjphapden482g452vxyx4fteef3',
    'bcrt1pjrsw6y4az86hl4v8tpumjrmc5la7lnneqqe48wesqawevh5gyxpquaf4uc',
  ],
  signet: [
    'mjVqEg1jryGZ8UkFfoF6A1n9zZipK3Voib',
    'tb1q247jyme52y66thmtvllkx5utrllfrkxc345tlr',
    'tb1puz0p7hpxs6l47yyhtn6gjarcwpzkpth6r5n48sgt0z77nfyzkrxsn6rc05',
  ],
};
const BCOIN_REGTEST = 'RQGoRTWXYR48KDvmtwx8zFHYy63v3GV6Cz';

describe('addresses are checked against the network', () => {
  it('accepts every address type of its own network (upper-case bech32 too)', () => {
    for (const a of ADDRESSES.mainnet) assert.equal(checkAddress(a, addressFormat('mainnet')), a);
    for (const a of ADDRESSES.regtest) assert.equal(checkAddress(a, addressFormat('regtest')), a);
    for (const a of ADDRESSES.signet) {
      assert.equal(checkAddress(a, addressFormat('signet')), a);
      assert.equal(checkAddress(a, addressFormat('testnet4')), a);
    }
    const upper = (ADDRESSES.mainnet[2] as string).toUpperCase();
    assert.equal(checkAddress(upper, addressFormat('mainnet')), upper);
    assert.equal(checkAddress(BCOIN_REGTEST, addressFormat('regtest', 'bcoin')), BCOIN_REGTEST);
  });

  it('a regtest bcrt1 address on mainnet is F17_WRONG_NETWORK, and a mainnet address on every test network', () => {
    for (const a of ADDRESSES.regtest.slice(2)) {
      assert.throws(() => checkAddress(a, addressFormat('mainnet')), (e: unknown) => e instanceof WrongNetworkError && e.code === 'F17_WRONG_NETWORK' && e.errorClass === 'final');
    }
    for (const net of ['regtest', 'signet', 'testnet4'] as const) {
      for (const a of ADDRESSES.mainnet) assert.throws(() => checkAddress(a, addressFormat(net)), WrongNetworkError, `${a} on ${net}`);
    }
    for (const a of ADDRESSES.signet.slice(1)) assert.throws(() => checkAddress(a, addressFormat('regtest')), WrongNetworkError);
    assert.throws(() => checkAddress(ADDRESSES.regtest[2], addressFormat('signet')), WrongNetworkError);
    // bcoin's regtest format is not Core's, either way
    assert.throws(() => checkAddress(BCOIN_REGTEST, addressFormat('regtest')), WrongNetworkError);
    assert.throws(() => checkAddress(ADDRESSES.regtest[2], addressFormat('regtest', 'bcoin')), WrongNetworkError);
  });

  it('a corrupted checksum, mixed case, a bad program length or garbage is F00_MALFORMED', () => {
    const fmt = addressFormat('mainnet');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'q' ? 'p' : 'q') + s.slice(i + 1);
    const bech = ADDRESSES.mainnet[2] as string;
    const legacy = ADDRESSES.mainnet[0] as string;
    for (const bad of [
      flip(bech, 10),
      bech.slice(0, 10) + bech.slice(10).toUpperCase(),
      legacy.slice(0, -1) + (legacy.endsWith('g') ? 'h' : 'g'),
      'bc1qqqqqq', // too short
      'not an address',
      '',
      42,
    ]) {
      assert.throws(() => checkAddress(bad, fmt), (e: unknown) => e instanceof MalformedError && !(e instanceof WrongNetworkError), String(bad));
    }
  });
});

describe('per-network defaults', () => {
  it('confirmations are 1 / 3 / 3 / 6', () => {
    const c = (n: BitcoinNetwork) => NETWORK_DEFAULTS[n].confirmations;
    assert.deepEqual([c('regtest'), c('signet'), c('testnet4'), c('mainnet')], [1, 3, 3, 6]);
  });
});

describe('fee rate from estimatesmartfee', () => {
  const policy = { targetBlocks: 6, floorSatVb: 2, capSatVb: 100, fallbackSatVb: 15 };
  it('uses the estimate (BTC/kvB → sat/vB) inside the bounds', () => {
    assert.deepEqual(chooseFeeRate({ feerate: 0.00012345 }, policy), { satVb: 12.345, source: 'estimate' });
  });
  it('clamps the estimate to the floor and the cap', () => {
    assert.equal(chooseFeeRate({ feerate: 0.00000500 }, policy).satVb, 2);
    assert.equal(chooseFeeRate({ feerate: 0.05 }, policy).satVb, 100);
  });
  it('falls back when the node has no estimate (regtest: "Insufficient data or no feerate found")', () => {
    assert.deepEqual(chooseFeeRate({ errors: ['Insufficient data or no feerate found'] }, policy), { satVb: 15, source: 'fallback' });
    assert.deepEqual(chooseFeeRate(undefined, policy), { satVb: 15, source: 'fallback' });
    assert.equal(chooseFeeRate({ feerate: -1 }, policy).source, 'fallback');
  });
});

describe('fee rate of a first bump', () => {
  const policy = { targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 10 };
  it('pays the policy rate when the estimate rose above a step over what the payment pays', () => {
    assert.deepEqual(chooseBumpRate(30, { satVb: 10, incrementalSatVb: 0.1 }, policy), { rate: 30 });
  });
  it('else raises the paid rate one step (1.5 times, at least 1 sat/vB more), even when the estimate rose a little', () => {
    assert.deepEqual(chooseBumpRate(10, { satVb: 10, incrementalSatVb: 0.1 }, policy), { rate: 15 });
    assert.deepEqual(chooseBumpRate(12, { satVb: 10, incrementalSatVb: 0.1 }, policy), { rate: 15 });
    assert.deepEqual(chooseBumpRate(1, { satVb: 1.2, incrementalSatVb: 0.1 }, policy), { rate: 2.2 });
    assert.equal(raisedRate(10.0004), 15.001, 'rounded up, never down');
  });
  it('pays at least what nodes relay as a replacement, when their incremental relay rate is more than a step', () => {
    assert.deepEqual(chooseBumpRate(1, { satVb: 1, incrementalSatVb: 2 }, policy), { rate: 3 });
  });
  it('holds the rate to the cap, as long as the cap still beats the paid rate by the incremental relay rate', () => {
    assert.deepEqual(chooseBumpRate(80, { satVb: 40, incrementalSatVb: 0.1 }, policy), { rate: 50 });
    assert.deepEqual(chooseBumpRate(10, { satVb: 49.9, incrementalSatVb: 0.1 }, policy), { rate: 50 });
    assert.deepEqual(chooseBumpRate(10, { satVb: 49.95, incrementalSatVb: 0.1 }, policy), { least: 50.05 });
    assert.deepEqual(chooseBumpRate(10, { satVb: 50, incrementalSatVb: 0 }, policy), { least: 50.001 }, 'no replacement at the paid rate itself');
  });
  it('rounds a rate up to 3 decimals, and leaves one already on them as it is', () => {
    assert.equal(ceilRate(16.1), 16.1);
    assert.equal(ceilRate(2.007), 2.007);
    assert.equal(ceilRate(2.0071), 2.008);
  });
});
