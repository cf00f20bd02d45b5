/**
 * The bitcoind strategy's requests, checked against a fake JSON-RPC server
 * (there is no bitcoind binary here). Shapes follow the Bitcoin Core RPC docs:
 * createrawtransaction [] {"address":amount}; fundrawtransaction "hex"
 * {"lockUnspents":true}; signrawtransactionwithwallet "hex"; lockunspent
 * unlock [{"txid","vout"}]; listsinceblock "blockhash" target_confirmations
 * include_watchonly include_removed. Wallet calls go to /wallet/<name>.
 * Behaviour seen on a real v31 node (../shared/notes/real-nodes.md): -18 for
 * a wallet not loaded after a restart, -5 for an unknown listsinceblock
 * block, getbalances' untrusted_pending, -4 "Transaction amount too small".
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AmountTooSmallError, BitcoinPayments, InsufficientFundsError, TxRejectedError } from '../../adapters/payments/bitcoin.ts';
import { UnavailableError } from '../../core/errors.ts';

interface Seen {
  path: string;
  method: string;
  params: unknown[];
  auth: string | undefined;
}
type Answer = { result: unknown } | { error: { code: number; message: string } } | { status: number };

const seen: Seen[] = [];
let answer: (method: string, params: unknown[]) => Answer = () => ({ result: null });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: unknown; method: string; params: unknown[] };
    seen.push({ path: req.url ?? '', method: body.method, params: body.params, auth: req.headers.authorization });
    const a = answer(body.method, body.params);
    if ('status' in a) {
      res.writeHead(a.status, { 'content-type': 'text/html' }).end('busy');
      return;
    }
    // Like bitcoind: errors come back as HTTP 500 with a JSON body.
    const payload = 'error' in a ? { result: null, error: a.error, id: body.id } : { result: a.result, error: null, id: body.id };
    res.writeHead('error' in a ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
  });
});

// A one-input, one-output legacy transaction spending aa…aa:1, and bcoin as the txid oracle.
const SIGNED =
  '0200000001' + 'aa'.repeat(32) + '01000000' + '00' + 'ffffffff' + '01' + '3930000000000000' + '16' + '0014' + '11'.repeat(20) + '00000000';
const oracle = createRequire(import.meta.url)('bcoin') as { TX: { fromRaw(raw: Buffer): { txid(): string } } };
const SIGNED_TXID = oracle.TX.fromRaw(Buffer.from(SIGNED, 'hex')).txid();
const ADDRESS = 'bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3ylv3n6';

let payments: BitcoinPayments;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = { host: '127.0.0.1', port, username: 'rpcuser', password: 'rpcpass' };
  payments = new BitcoinPayments({
    kind: 'bitcoind',
    node: endpoint,
    wallet: { ...endpoint, name: 'scb' },
    rpc: { retries: 2, retryDelayMs: 1 },
  });
});

after(async () => {
  await payments.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen.length = 0;
});

const happy = (method: string): Answer => {
  switch (method) {
    case 'validateaddress':
      return { result: { isvalid: true } };
    case 'createrawtransaction':
      return { result: 'unsignedhex' };
    case 'fundrawtransaction':
      return { result: { hex: SIGNED, fee: 0.0000141, changepos: -1 } };
    case 'signrawtransactionwithwallet':
      return { result: { hex: SIGNED, complete: true } };
    default:
      return { error: { code: -32601, message: 'Method not found' } };
  }
};

describe('BitcoinPayments on bitcoind (fake JSON-RPC server)', () => {
  it('prepares with createrawtransaction, fundrawtransaction (locking inputs) and signrawtransactionwithwallet', async () => {
    answer = happy;
    const prepared = await payments.prepareSendMany({ [ADDRESS]: 12_345 });
    assert.deepEqual(prepared, { txid: SIGNED_TXID, hex: SIGNED });
    assert.deepEqual(
      seen.map((s) => [s.path, s.method, s.params]),
      [
        ['/', 'validateaddress', [ADDRESS]],
        ['/', 'createrawtransaction', [[], { [ADDRESS]: 0.00012345 }]],
        ['/wallet/scb', 'fundrawtransaction', ['unsignedhex', { lockUnspents: true }]],
        ['/wallet/scb', 'signrawtransactionwithwallet', [SIGNED]],
      ],
    );
    const expectedAuth = `Basic ${Buffer.from('rpcuser:rpcpass').toString('base64')}`;
    assert.ok(seen.every((s) => s.auth === expectedAuth));
  });

  it('unlocks the funded inputs with lockunspent when signing fails', async () => {
    answer = (method) =>
      method === 'signrawtransactionwithwallet' ? { result: { hex: SIGNED, complete: false } } : method === 'lockunspent' ? { result: true } : happy(method);
    await assert.rejects(payments.prepareSendMany({ [ADDRESS]: 12_345 }), UnavailableError);
    const unlock = seen.find((s) => s.method === 'lockunspent');
    assert.deepEqual(unlock, {
      path: '/wallet/scb',
      method: 'lockunspent',
      params: [true, [{ txid: 'aa'.repeat(32), vout: 1 }]],
      auth: unlock?.auth,
    });
  });

  it('maps "Insufficient funds" from fundrawtransaction to InsufficientFundsError and signs nothing', async () => {
    answer = (method) =>
      method === 'fundrawtransaction' ? { error: { code: -4, message: 'Insufficient funds' } } : happy(method);
    await assert.rejects(payments.prepareSendMany({ [ADDRESS]: 12_345 }), InsufficientFundsError);
    assert.equal(seen.filter((s) => s.method === 'signrawtransactionwithwallet').length, 0);
  });

  it('treats "already in mempool / in block chain" as a successful broadcast', async () => {
    for (const error of [
      { code: -26, message: 'txn-already-in-mempool' },
      { code: -27, message: 'Transaction already in block chain' },
    ]) {
      answer = (method) => (method === 'sendrawtransaction' ? { error } : { result: null });
      assert.equal(await payments.broadcast(SIGNED), SIGNED_TXID);
    }
    assert.deepEqual(seen[0], { path: '/', method: 'sendrawtransaction', params: [SIGNED], auth: seen[0]?.auth });
  });

  it('turns a real rejection of an unknown transaction into TxRejectedError', async () => {
    answer = (method) =>
      method === 'sendrawtransaction'
        ? { error: { code: -26, message: 'min relay fee not met' } }
        : { error: { code: -5, message: 'Invalid or non-wallet transaction id' } };
    await assert.rejects(payments.broadcast(SIGNED), TxRejectedError);
  });

  it('lists receives since a block with listsinceblock, in sats, ignoring sends and coinbase', async () => {
    answer = (method) =>
      method === 'listsinceblock'
        ? {
            result: {
              transactions: [
                { txid: 'b1'.repeat(32), address: ADDRESS, category: 'receive', amount: 0.00012345, vout: 0, confirmations: 0 },
                { txid: 'b2'.repeat(32), address: ADDRESS, category: 'send', amount: -1, vout: 0, confirmations: 3 },
                { txid: 'b3'.repeat(32), address: ADDRESS, category: 'generate', amount: 50, vout: 0, confirmations: 120 },
              ],
              lastblock: 'cc'.repeat(32),
            },
          }
        : { result: null };
    const first = await payments.receivedSince();
    assert.deepEqual(first, {
      payments: [{ txid: 'b1'.repeat(32), address: ADDRESS, amount: 12_345, confirmations: 0 }],
      cursor: 'cc'.repeat(32),
    });
    await payments.receivedSince(first.cursor);
    assert.deepEqual(
      seen.map((s) => [s.path, s.method, s.params]),
      [
        ['/wallet/scb', 'listsinceblock', ['', 6, false, false]],
        ['/wallet/scb', 'listsinceblock', ['cc'.repeat(32), 6, false, false]],
      ],
    );
  });

  it('reads confirmations from gettransaction and answers null for -5', async () => {
    answer = (_method, params) =>
      params[0] === 'dd'.repeat(32) ? { result: { txid: 'dd'.repeat(32), confirmations: 4, hex: SIGNED, details: [] } } : { error: { code: -5, message: 'Invalid or non-wallet transaction id' } };
    assert.deepEqual(await payments.getTransaction('dd'.repeat(32)), { txid: 'dd'.repeat(32), confirmations: 4 });
    assert.equal(await payments.getTransaction('ee'.repeat(32)), null);
    assert.ok(seen.every((s) => s.path === '/wallet/scb' && s.method === 'gettransaction'));
  });

  it('creates the wallet with load_on_startup=true when loadwallet does not find it, and leaves a loaded one alone', async () => {
    answer = (method) => (method === 'loadwallet' ? { error: { code: -18, message: 'Wallet file not found' } } : { result: { name: 'scb' } });
    await payments.ensureWallet();
    // createwallet wallet_name disable_private_keys blank passphrase avoid_reuse descriptors load_on_startup
    assert.deepEqual(seen.map((s) => [s.method, s.params]), [
      ['loadwallet', ['scb', true]],
      ['createwallet', ['scb', false, false, '', false, true, true]],
    ]);
    seen.length = 0;
    answer = () => ({ error: { code: -35, message: 'Wallet "scb" is already loaded.' } });
    await payments.ensureWallet();
    assert.deepEqual(seen.map((s) => s.method), ['loadwallet']);
  });

  it('after a node restart (-18 on a wallet call) loads the wallet and retries the call once', async () => {
    let loaded = false;
    answer = (method) => {
      if (method === 'loadwallet') {
        loaded = true;
        return { result: { name: 'scb' } };
      }
      if (!loaded) return { error: { code: -18, message: 'Requested wallet does not exist or is not loaded' } };
      return method === 'getnewaddress' ? { result: ADDRESS } : { result: null };
    };
    assert.equal(await payments.newAddress('x'), ADDRESS);
    assert.deepEqual(seen.map((s) => [s.path, s.method, s.params]), [
      ['/wallet/scb', 'getnewaddress', ['x']],
      ['/', 'loadwallet', ['scb', true]],
      ['/wallet/scb', 'getnewaddress', ['x']],
    ]);
  });

  it('a wallet that cannot be loaded is not retried forever: the second -18 is the answer', async () => {
    answer = (method) =>
      method === 'loadwallet'
        ? { error: { code: -18, message: 'Wallet file not found' } }
        : { error: { code: -18, message: 'Requested wallet does not exist or is not loaded' } };
    await assert.rejects(payments.newAddress(), (e: Error) => !(e instanceof TxRejectedError));
    assert.deepEqual(seen.map((s) => s.method), ['getnewaddress', 'loadwallet']);
  });

  it('restarts listsinceblock from the beginning when the cursor is an unknown block (-5), instead of failing every run', async () => {
    answer = (method, params) =>
      method === 'listsinceblock' && params[0] !== ''
        ? { error: { code: -5, message: 'Block not found' } }
        : {
            result: {
              transactions: [{ txid: 'b1'.repeat(32), address: ADDRESS, category: 'receive', amount: 0.0001, vout: 0, confirmations: 2 }],
              lastblock: 'cc'.repeat(32),
            },
          };
    const got = await payments.receivedSince('ab'.repeat(32));
    assert.deepEqual(got, { payments: [{ txid: 'b1'.repeat(32), address: ADDRESS, amount: 10_000, confirmations: 2 }], cursor: 'cc'.repeat(32) });
    assert.deepEqual(seen.map((s) => s.params[0]), ['ab'.repeat(32), '']);
  });

  it('other listsinceblock failures still fail (no silent restart)', async () => {
    answer = () => ({ error: { code: -1, message: 'boom' } });
    await assert.rejects(payments.receivedSince('ab'.repeat(32)), UnavailableError);
    assert.equal(seen.length, 1);
  });

  it('balance is getbalances trusted + untrusted_pending (getbalance "*" 0 leaves out incoming unconfirmed payments)', async () => {
    answer = (method) =>
      method === 'getbalances'
        ? { result: { mine: { trusted: 0.5, untrusted_pending: 0.00012345, immature: 50 } } }
        : method === 'getbalance'
          ? { result: 0.5 }
          : { result: null };
    assert.equal(await payments.balance(), 50_012_345);
    assert.deepEqual(seen.map((s) => [s.path, s.method]), [['/wallet/scb', 'getbalances']]);
  });

  it('maps -4 "Transaction amount too small" (dust) to a final AmountTooSmallError, not a retry', async () => {
    answer = (method) =>
      method === 'fundrawtransaction' ? { error: { code: -4, message: 'Transaction amount too small' } } : happy(method);
    const err = await payments.prepareSendMany({ [ADDRESS]: 100 }).catch((e: unknown) => e);
    assert.ok(err instanceof AmountTooSmallError, String(err));
    assert.equal(err.errorClass, 'final');
    assert.equal(seen.filter((s) => s.method === 'fundrawtransaction').length, 1, 'not retried');
  });

  it('isConflicted: true only when an input of a confirmed funding transaction is gone from the chain UTXO set', async () => {
    const fundingTxid = 'aa'.repeat(32);
    let utxo: unknown = null;
    answer = (method, params) => {
      if (method === 'gettransaction') {
        return params[0] === fundingTxid
          ? { result: { txid: fundingTxid, confirmations: 3, hex: SIGNED, details: [] } }
          : { error: { code: -5, message: 'Invalid or non-wallet transaction id' } };
      }
      if (method === 'gettxout') return { result: utxo };
      return { result: null };
    };
    assert.equal(await payments.isConflicted(SIGNED), true, 'input spent in a block by another transaction');
    assert.deepEqual(seen.find((s) => s.method === 'gettxout')?.params, [fundingTxid, 1, false]);
    utxo = { value: 0.1, confirmations: 3 };
    assert.equal(await payments.isConflicted(SIGNED), false, 'input still unspent: the transaction may confirm');
  });

  it('isConflicted: false when the transaction itself confirmed, or its funding is not confirmed', async () => {
    answer = (method, params) =>
      method === 'gettransaction' && params[0] === SIGNED_TXID
        ? { result: { txid: SIGNED_TXID, confirmations: 1, hex: SIGNED, details: [] } }
        : method === 'gettransaction'
          ? { result: { txid: params[0], confirmations: 0, hex: SIGNED, details: [] } }
          : { result: null };
    assert.equal(await payments.isConflicted(SIGNED), false);
    answer = (method, params) =>
      method === 'gettransaction' && params[0] === SIGNED_TXID
        ? { error: { code: -5, message: 'Invalid or non-wallet transaction id' } }
        : method === 'gettransaction'
          ? { result: { txid: params[0], confirmations: 0, hex: SIGNED, details: [] } }
          : { result: null };
    assert.equal(await payments.isConflicted(SIGNED), false, 'unconfirmed funding: cannot tell, so never released');
  });

  it('abandon unlocks each input with lockunspent true, ignoring inputs that are not locked', async () => {
    answer = () => ({ error: { code: -8, message: 'Invalid parameter, expected locked output' } });
    await payments.abandon(SIGNED);
    assert.deepEqual(seen.map((s) => [s.path, s.method, s.params]), [['/wallet/scb', 'lockunspent', [true, [{ txid: 'aa'.repeat(32), vout: 1 }]]]]);
  });

  it('retries a busy node, then gives up with UnavailableError', async () => {
    answer = () => ({ status: 503 });
    await assert.rejects(payments.balance(), UnavailableError);
    assert.equal(seen.length, 3, 'one call and two retries');
    assert.deepEqual(seen[0]?.method, 'getbalances');
  });
});
