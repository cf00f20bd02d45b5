/**
 * Exact conversion between integer satoshis (inside) and the BTC decimals the
 * Bitcoin JSON-RPC speaks. No float multiplication: amounts go through their
 * 8-decimal string form.
 */
import { MalformedError } from '../../core/errors.ts';

export const SATS_PER_BTC = 100_000_000;
/** 21 million BTC in satoshis: no valid amount is larger. */
export const MAX_SATS = 21_000_000 * SATS_PER_BTC;

/** 12345 → "0.00012345". Throws MalformedError unless 0 <= sats <= MAX_SATS is an integer. */
export function satsToBtcString(sats: number): string {
  if (!Number.isSafeInteger(sats) || sats < 0 || sats > MAX_SATS) {
    throw new MalformedError(`not an amount in satoshis: ${sats}`);
  }
  const whole = Math.floor(sats / SATS_PER_BTC);
  const frac = sats % SATS_PER_BTC;
  return `${whole}.${String(frac).padStart(8, '0')}`;
}

/**
 * The RPC parameter form of an amount: a JSON number. bcoin's RPC validator
 * rejects strings (bval `float`, not loose) and reads numbers with toFixed(8);
 * Bitcoin Core's AmountFromValue accepts numbers too. Every value up to
 * MAX_SATS / 1e8 with 8 decimals has at most 16 significant digits and is
 * recovered exactly by toFixed(8) (see the property test).
 */
export function satsToBtc(sats: number): number {
  return Number(satsToBtcString(sats));
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d{1,8})0*)?$/;

/**
 * An RPC amount → integer satoshis. Accepts a JSON number (formatted with
 * toFixed(8), which is exact for every amount that fits in 21e6 BTC) or a
 * decimal string (json-bigint hands numbers with more than 15 significant
 * digits over as strings). Negative amounts (e.g. "send" entries) stay negative.
 */
export function btcToSats(btc: number | string): number {
  const text = typeof btc === 'number' ? (Number.isFinite(btc) ? btc.toFixed(8) : 'NaN') : btc.trim();
  const match = DECIMAL.exec(text);
  if (match === null) throw new MalformedError(`not a BTC amount: ${String(btc)}`);
  const [, sign, whole = '0', frac = ''] = match;
  const sats = Number(whole) * SATS_PER_BTC + Number(frac.padEnd(8, '0'));
  if (!Number.isSafeInteger(sats)) throw new MalformedError(`BTC amount out of range: ${String(btc)}`);
  return sign === '-' && sats !== 0 ? -sats : sats;
}
