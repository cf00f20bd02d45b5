import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { parseTx } from '../../adapters/payments/rawtx.ts';
import { MalformedError } from '../../core/errors.ts';

// bcoin serves as an independent oracle for txid / wtxid.
interface OracleTx {
  txid(): string;
  wtxid(): string;
  toRaw(): Buffer;
  getVirtualSize(): number;
}
interface OracleMtx {
  inputs: { witness: { push(item: Buffer): void } }[];
  addOutpoint(outpoint: unknown): void;
  addOutput(script: unknown, value: number): void;
  toTX(): OracleTx;
}
const bcoin = createRequire(import.meta.url)('bcoin') as {
  MTX: new (options: { version: number }) => OracleMtx;
  Outpoint: new (hash: string, index: number) => unknown;
  Script: { fromRaw(raw: Buffer): unknown };
};

// The genesis block's coinbase (txid 4a5e1e4b…a33b).
const GENESIS_COINBASE =
  '01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000';

describe('parseTx', () => {
  it('computes the txid of a legacy transaction and sees a coinbase', () => {
    const tx = parseTx(GENESIS_COINBASE);
    assert.equal(tx.txid, '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b');
    assert.equal(tx.isCoinbase, true);
    assert.equal(tx.outputCount, 1);
    assert.equal(tx.vsize, GENESIS_COINBASE.length / 2, 'without witness a byte is a virtual byte');
  });

  it('gives a segwit transaction its txid (witness stripped), not its wtxid, and reads its inputs', () => {
    const mtx = new bcoin.MTX({ version: 2 });
    mtx.addOutpoint(new bcoin.Outpoint('07'.repeat(32), 1));
    mtx.addOutpoint(new bcoin.Outpoint('08'.repeat(32), 3));
    for (const input of mtx.inputs) {
      input.witness.push(Buffer.alloc(71, 1));
      input.witness.push(Buffer.alloc(33, 2));
    }
    mtx.addOutput(bcoin.Script.fromRaw(Buffer.concat([Buffer.from([0, 20]), Buffer.alloc(20, 3)])), 12_345);
    const oracle = mtx.toTX();
    const parsed = parseTx(oracle.toRaw().toString('hex'));
    assert.equal(parsed.txid, oracle.txid());
    assert.notEqual(parsed.txid, oracle.wtxid());
    assert.deepEqual(parsed.inputs, [
      { txid: '07'.repeat(32), vout: 1 },
      { txid: '08'.repeat(32), vout: 3 },
    ]);
    assert.equal(parsed.isCoinbase, false);
    // weight / 4 rounded up: the witness counts a quarter (bcoin's own figure as the oracle)
    assert.equal(parsed.vsize, oracle.getVirtualSize());
    assert.ok(parsed.vsize < oracle.toRaw().length);
  });

  it('rejects garbage, truncation and trailing bytes', () => {
    assert.throws(() => parseTx('zz'), MalformedError);
    assert.throws(() => parseTx(GENESIS_COINBASE.slice(0, -10)), MalformedError);
    assert.throws(() => parseTx(GENESIS_COINBASE + '00'), MalformedError);
  });
});
