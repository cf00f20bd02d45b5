/**
 * Just enough of the Bitcoin transaction serialisation (BIP 144 for segwit)
 * to read a signed transaction's inputs and compute its txid locally. The txid
 * is sha256d of the serialisation WITHOUT witness data (not the wtxid), shown
 * byte-reversed as RPC does.
 */
import { createHash } from 'node:crypto';
import { MalformedError } from '../../core/errors.ts';

export interface Outpoint {
  txid: string;
  vout: number;
}

export interface TxOutput {
  /** Satoshis. */
  value: number;
  /** scriptPubKey, hex. */
  script: string;
}

export interface ParsedTx {
  txid: string;
  inputs: Outpoint[];
  outputCount: number;
  outputs: TxOutput[];
  isCoinbase: boolean;
  /** Virtual size (BIP 141: weight / 4, rounded up), what fee rates are per. */
  vsize: number;
}

const NULL_TXID = '0'.repeat(64);

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  take(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new MalformedError('truncated transaction');
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  u32(): number {
    return this.take(4).readUInt32LE(0);
  }
  varint(): number {
    const first = this.u8();
    if (first < 0xfd) return first;
    if (first === 0xfd) return this.take(2).readUInt16LE(0);
    if (first === 0xfe) return this.u32();
    const big = this.take(8).readBigUInt64LE(0);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedError('varint too large');
    return Number(big);
  }
  skipVarBytes(): void {
    this.take(this.varint());
  }
}

const sha256d = (data: Buffer) =>
  createHash('sha256').update(createHash('sha256').update(data).digest()).digest();

/** Parse a raw transaction (hex). Throws MalformedError on bad input. */
export function parseTx(hex: string): ParsedTx {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new MalformedError('transaction is not hex');
  const r = new Reader(Buffer.from(hex, 'hex'));
  const versionEnd = 4;
  r.take(4);
  let segwit = false;
  if (r.buf[r.offset] === 0x00 && r.buf[r.offset + 1] === 0x01) {
    segwit = true;
    r.take(2);
  }
  const bodyStart = r.offset;
  const inputs: Outpoint[] = [];
  const inCount = r.varint();
  // A transaction needs inputs (and a zero-input serialisation is ambiguous with the segwit marker).
  if (inCount === 0) throw new MalformedError('transaction has no inputs');
  for (let i = 0; i < inCount; i++) {
    const txid = Buffer.from(r.take(32)).reverse().toString('hex');
    const vout = r.u32();
    r.skipVarBytes(); // scriptSig
    r.take(4); // sequence
    inputs.push({ txid, vout });
  }
  const outputCount = r.varint();
  if (outputCount === 0) throw new MalformedError('transaction has no outputs');
  const outputs: TxOutput[] = [];
  for (let i = 0; i < outputCount; i++) {
    const value = r.take(8).readBigUInt64LE(0);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedError('output value too large');
    const script = r.take(r.varint()).toString('hex');
    outputs.push({ value: Number(value), script });
  }
  const bodyEnd = r.offset;
  if (segwit) {
    for (let i = 0; i < inCount; i++) {
      const items = r.varint();
      for (let j = 0; j < items; j++) r.skipVarBytes();
    }
  }
  const locktime = r.take(4);
  if (r.offset !== r.buf.length) throw new MalformedError('trailing bytes after transaction');
  const stripped = Buffer.concat([r.buf.subarray(0, versionEnd), r.buf.subarray(bodyStart, bodyEnd), locktime]);
  // weight: the serialisation without witness counts 4 times a byte, the witness (marker, flag, stacks) once
  const vsize = Math.ceil((stripped.length * 3 + r.buf.length) / 4);
  const txid = sha256d(stripped).reverse().toString('hex');
  const first = inputs[0];
  const isCoinbase = inputs.length === 1 && first !== undefined && first.txid === NULL_TXID && first.vout === 0xffffffff;
  return { txid, inputs, outputCount, outputs, isCoinbase, vsize };
}
