/**
 * Payments.lookupTransaction(txid) against a real Bitcoin Core (v31) regtest
 * node: getrawtransaction verbose through the node, which finds any
 * transaction (not only the wallet's) because the node runs with -txindex.
 * This is how a follower checks a fulfilment claim against the payment named
 * in a consumer's settlement record, at a hub whose wallets took no part in it.
 *
 * Skipped, saying why, without OC_NODES_BIN (see harness.ts).
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import { MalformedError } from '../../core/errors.ts';
import { skippable } from '../skippable.ts';
import { BITCOIN_BINARIES, Bitcoind, missingNodes } from './harness.ts';

const { it, before, after } = skippable(missingNodes(BITCOIN_BINARIES));

describe('Payments.lookupTransaction on a real bitcoind (regtest, -txindex)', () => {
  let node: Bitcoind;
  const wallet = (name: string) =>
    new BitcoinPayments({ kind: 'bitcoind', node: node.endpoint, wallet: { ...node.endpoint, name }, rpc: { retries: 3, retryDelayMs: 100 } });

  before(async () => {
    node = await Bitcoind.start();
  });
  after(async () => {
    await node?.stop();
  });

  it('finds a payment between two wallets with its outputs (address, sats), then its confirmations and block time', async () => {
    const payer = wallet('oc-payer');
    const payee = wallet('oc-payee');
    await payer.ensureWallet();
    await payee.ensureWallet();
    await payer.mine(1);
    await node.mine(100); // coinbase maturity
    const to = await payee.newAddress('lookup');
    const prepared = await payer.prepareSendMany({ [to]: 12_345 });
    const txid = await payer.broadcast(prepared.hex);
    assert.equal(txid, prepared.txid);

    // A third party (no wallet of its own involved) looks it up through the node.
    const stranger = wallet('oc-stranger');
    await stranger.ensureWallet();
    const pending = await stranger.lookupTransaction(txid);
    assert.ok(pending, 'found in the mempool');
    assert.equal(pending.txid, txid);
    assert.equal(pending.confirmations, 0);
    assert.equal(pending.blockTime, undefined);
    const paid = pending.outputs.filter((o) => o.address === to);
    assert.deepEqual(paid, [{ address: to, amount: 12_345 }]);
    assert.equal(pending.outputs.length, 2, 'payment and change');
    for (const o of pending.outputs) assert.ok(Number.isSafeInteger(o.amount) && o.amount > 0 && typeof o.address === 'string' && o.address.startsWith('bcrt1'));

    const before = Date.now();
    const [hash] = await node.mine(2);
    const header = await node.rpc<{ time: number }>('getblockheader', [hash]);
    const confirmed = await stranger.lookupTransaction(txid);
    assert.ok(confirmed);
    assert.equal(confirmed.confirmations, 2);
    assert.equal(confirmed.blockTime, header.time * 1000);
    assert.ok(Math.abs((confirmed.blockTime ?? 0) - before) < 2 * 60 * 60 * 1000, 'block time is close to now (regtest clock)');
    assert.deepEqual(confirmed.outputs, pending.outputs);
  });

  it('finds a transaction no wallet of this node ever knew once it is confirmed (the index, not the wallet)', async () => {
    // a coinbase paid to an address of another wallet: the looker's wallet knows nothing of it
    const other = wallet('oc-other');
    await other.ensureWallet();
    const [hash] = await node.mine(1, await other.newAddress());
    const block = await node.rpc<{ tx: string[] }>('getblock', [hash]);
    const coinbase = block.tx[0];
    assert.ok(coinbase);
    const looker = wallet('oc-looker');
    await looker.ensureWallet();
    assert.equal(await looker.getTransaction(coinbase), null, 'not a transaction of the looking wallet');
    const found = await looker.lookupTransaction(coinbase);
    assert.ok(found);
    assert.equal(found.confirmations, 1);
    assert.ok(found.outputs.some((o) => o.amount > 0));
  });

  it('answers null for a txid the node has never seen, and refuses a string that is not a txid', async () => {
    const looker = wallet('oc-looker');
    assert.equal(await looker.lookupTransaction('ab'.repeat(32)), null);
    await assert.rejects(looker.lookupTransaction('not-a-txid'), MalformedError);
  });
});
