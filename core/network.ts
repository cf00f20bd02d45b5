/**
 * Bitcoin networks and their address formats, pure (no I/O).
 *
 * Which network a payment address belongs to is decided here, before any
 * address reaches a wallet: a regtest `bcrt1…` address on mainnet (or a
 * mainnet `bc1…` address on a test network) is a typed error, never a payment.
 *
 * Formats (Bitcoin Core src/kernel/chainparams.cpp; BIP173 bech32, BIP350
 * bech32m for witness v1+): mainnet hrp `bc`, base58 P2PKH 0x00, P2SH 0x05;
 * testnet3, testnet4 and signet hrp `tb`, 0x6f, 0xc4; regtest hrp `bcrt`,
 * 0x6f, 0xc4. The embedded cloud's bcoin regtest uses its own prefixes
 * (bcoin lib/protocol/networks.js: hrp `rb`, 0x3c, 0x26).
 */
import { createHash } from 'node:crypto';
import { MalformedError, WrongNetworkError } from './errors.ts';

export const BITCOIN_NETWORKS = ['regtest', 'signet', 'testnet4', 'mainnet'] as const;
export type BitcoinNetwork = (typeof BITCOIN_NETWORKS)[number];

/** Per-network defaults: confirmations before a payment counts, and fee policy (sat/vB). */
export interface NetworkDefaults {
  confirmations: number;
  /** Bitcoin Core's default RPC port on this network. */
  rpcPort: number;
  fees: FeePolicy;
}

/** How the settlement fee rate is chosen: estimatesmartfee, clamped to [floor, cap], fallback when there is no estimate. */
export interface FeePolicy {
  /** estimatesmartfee conf_target (blocks). */
  targetBlocks: number;
  floorSatVb: number;
  capSatVb: number;
  fallbackSatVb: number;
}

export const NETWORK_DEFAULTS: Record<BitcoinNetwork, NetworkDefaults> = {
  // regtest has no fee market (estimatesmartfee has no data): the fallback of 20 sat/vB equals the old -fallbackfee=0.0002
  regtest: { confirmations: 1, rpcPort: 18443, fees: { targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 20 } },
  signet: { confirmations: 3, rpcPort: 38332, fees: { targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 2 } },
  testnet4: { confirmations: 3, rpcPort: 48332, fees: { targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 2 } },
  mainnet: { confirmations: 6, rpcPort: 8332, fees: { targetBlocks: 6, floorSatVb: 1, capSatVb: 200, fallbackSatVb: 10 } },
};

// An address of another network: typed where every code is (core/errors.ts).
export { WrongNetworkError };

export interface AddressFormat {
  /** Name for messages (`regtest`, `bcoin-regtest`, …). */
  name: string;
  hrp: string;
  p2pkh: number;
  p2sh: number;
}

const CORE_FORMATS: Record<BitcoinNetwork, AddressFormat> = {
  mainnet: { name: 'mainnet', hrp: 'bc', p2pkh: 0x00, p2sh: 0x05 },
  signet: { name: 'signet', hrp: 'tb', p2pkh: 0x6f, p2sh: 0xc4 },
  testnet4: { name: 'testnet4', hrp: 'tb', p2pkh: 0x6f, p2sh: 0xc4 },
  regtest: { name: 'regtest', hrp: 'bcrt', p2pkh: 0x6f, p2sh: 0xc4 },
};
const BCOIN_REGTEST: AddressFormat = { name: 'bcoin-regtest', hrp: 'rb', p2pkh: 0x3c, p2sh: 0x26 };
const ALL_FORMATS: AddressFormat[] = [...Object.values(CORE_FORMATS), BCOIN_REGTEST];

/** The address format of `network` as the given node software writes it (bcoin only runs regtest here). */
export function addressFormat(network: BitcoinNetwork, node: 'bitcoind' | 'bcoin' = 'bitcoind'): AddressFormat {
  if (node === 'bcoin') {
    if (network !== 'regtest') throw new MalformedError(`bcoin runs regtest only here, not ${network}`);
    return BCOIN_REGTEST;
  }
  return CORE_FORMATS[network];
}

/**
 * Throws unless `address` is a valid address of `format`: WrongNetworkError
 * (F13) when it is a valid address of another network, MalformedError when it
 * is no valid address at all.
 */
export function checkAddress(address: unknown, format: AddressFormat): string {
  if (typeof address !== 'string' || address.length === 0 || address.length > 90) {
    throw new MalformedError('not a Bitcoin address', { address: String(address).slice(0, 100) });
  }
  if (matches(address, format)) return address;
  const other = ALL_FORMATS.find((f) => f.name !== format.name && f.hrp !== format.hrp && matches(address, f))
    ?? ALL_FORMATS.find((f) => f.name !== format.name && matches(address, f));
  if (other !== undefined) {
    throw new WrongNetworkError(`${address} is a ${other.name} address; this hub pays on ${format.name}`, {
      address,
      network: format.name,
      addressNetwork: other.name,
    });
  }
  throw new MalformedError(`not a valid ${format.name} address: ${address}`, { address, network: format.name });
}

function matches(address: string, f: AddressFormat): boolean {
  const seg = decodeSegwit(address);
  if (seg !== undefined) return seg.hrp === f.hrp;
  const version = decodeBase58Check(address);
  return version !== undefined && (version === f.p2pkh || version === f.p2sh);
}

// ---------------------------------------------------------------- bech32 / bech32m (BIP173, BIP350)

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_CONST = 1;
const BECH32M_CONST = 0x2bc830a3;

function polymod(values: number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i] as number;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

function convertBits(data: number[], from: number, to: number): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const value of data) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
  }
  if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) return undefined; // no padding allowed when decoding
  return out;
}

/** A segwit address's hrp, or undefined when `address` is not a valid segwit address (checksum, version, program length). */
export function decodeSegwit(address: string): { hrp: string; version: number; program: number[] } | undefined {
  if (address !== address.toLowerCase() && address !== address.toUpperCase()) return undefined;
  const a = address.toLowerCase();
  const sep = a.lastIndexOf('1');
  if (sep < 1 || sep + 7 > a.length) return undefined;
  const hrp = a.slice(0, sep);
  const data: number[] = [];
  for (const c of a.slice(sep + 1)) {
    const d = CHARSET.indexOf(c);
    if (d < 0) return undefined;
    data.push(d);
  }
  const version = data[0];
  if (version === undefined || version > 16) return undefined;
  const check = polymod([...hrpExpand(hrp), ...data]);
  if (check !== (version === 0 ? BECH32_CONST : BECH32M_CONST)) return undefined;
  const program = convertBits(data.slice(1, -6), 5, 8);
  if (program === undefined || program.length < 2 || program.length > 40) return undefined;
  if (version === 0 && program.length !== 20 && program.length !== 32) return undefined;
  return { hrp, version, program };
}

// ---------------------------------------------------------------- base58check

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** The version byte of a 25-byte base58check address, or undefined. */
export function decodeBase58Check(address: string): number | undefined {
  let n = 0n;
  for (const c of address) {
    const d = B58.indexOf(c);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  const bytes: number[] = [];
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  for (const c of address) {
    if (c !== '1') break;
    bytes.unshift(0);
  }
  if (bytes.length !== 25) return undefined;
  const raw = Buffer.from(bytes);
  const body = raw.subarray(0, 21);
  const sum = createHash('sha256').update(createHash('sha256').update(body).digest()).digest().subarray(0, 4);
  if (!sum.equals(raw.subarray(21))) return undefined;
  return raw[0];
}

// ---------------------------------------------------------------- fees

/** estimatesmartfee's answer (feerate in BTC/kvB, absent with `errors` when the node has no estimate). */
export interface FeeEstimate {
  feerate?: number;
  errors?: string[];
}

/**
 * The fee rate (sat/vB) for a settlement: the node's estimate clamped to
 * [floor, cap]; the fallback (itself clamped) when there is no estimate.
 * 1 BTC/kvB = 1e8 sat / 1000 vB = 1e5 sat/vB.
 */
export function chooseFeeRate(estimate: FeeEstimate | undefined, policy: FeePolicy): { satVb: number; source: 'estimate' | 'fallback' } {
  const clamp = (x: number) => Math.min(policy.capSatVb, Math.max(policy.floorSatVb, x));
  const rate = estimate?.feerate;
  if (typeof rate === 'number' && Number.isFinite(rate) && rate > 0) {
    return { satVb: round3(clamp(rate * 1e5)), source: 'estimate' };
  }
  return { satVb: round3(clamp(policy.fallbackSatVb)), source: 'fallback' };
}

/** fundrawtransaction's fee_rate takes at most 3 decimals (sat/vB). */
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** A fee bump raises a rate by this factor, and by at least 1 sat/vB (raisedRate). */
export const BUMP_FACTOR = 1.5;

/** `satVb` raised by one bump step: BUMP_FACTOR times, at least 1 sat/vB more; rounded up to 3 decimals. */
export function raisedRate(satVb: number): number {
  return ceilRate(Math.max(satVb * BUMP_FACTOR, satVb + 1));
}

/**
 * The fee rate (sat/vB) of a first fee bump of a payment that waited too long: the higher of
 * the policy's rate now (`policySatVb`, chooseFeeRate's) and the paid rate (`paid.satVb`)
 * raised one step (raisedRate), and at least the least replacement nodes relay: one paying
 * more than the paid rate by the node's incremental relay rate (`paid.incrementalSatVb`;
 * BIP125 rules 3 and 4); held to the policy's cap. `{ least }` instead when that least is
 * over the cap: no replacement can be made within it.
 */
export function chooseBumpRate(
  policySatVb: number,
  paid: { satVb: number; incrementalSatVb: number },
  policy: FeePolicy,
): { rate: number } | { least: number } {
  const least = ceilRate(paid.satVb + Math.max(paid.incrementalSatVb, 0.001));
  if (least > policy.capSatVb) return { least };
  return { rate: Math.min(policy.capSatVb, Math.max(ceilRate(policySatVb), raisedRate(paid.satVb), least)) };
}

/** `satVb` rounded up to the 3 decimals a fee_rate takes (a value already on them stays: a float's error is not rounded up). */
export function ceilRate(satVb: number): number {
  return Math.ceil(satVb * 1000 - 1e-6) / 1000;
}
