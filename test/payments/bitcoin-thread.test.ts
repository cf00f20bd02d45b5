/**
 * The bcoin regtest node in a worker thread of its own (startRegtestInThread,
 * what npm start and federations use): the Payments adapter reaches its RPC as
 * before, and the node's own calls (mine, wallets, availability, stop) cross
 * the thread.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import { UnavailableError } from '../../core/errors.ts';
import { bcoinPaymentsOptions, startRegtestInThread, type RegtestNode } from '../../local/bitcoin.ts';

const ports = (): number => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;

describe('bcoin regtest in a worker thread', () => {
  let node: RegtestNode;
  let scb: BitcoinPayments;
  let spb: BitcoinPayments;
  before(async () => {
    node = await startRegtestInThread({ walletIds: ['scb', 'spb'] });
    scb = new BitcoinPayments(bcoinPaymentsOptions(node, 'scb'));
    spb = new BitcoinPayments(bcoinPaymentsOptions(node, 'spb'));
  });
  after(async () => {
    await scb?.close();
    await spb?.close();
    await node?.stop();
  });

  it('mines across the thread to a wallet, which has synced when mine() returns', async () => {
    const to = await scb.newAddress();
    const hashes = await node.mine(101, to);
    assert.equal(hashes.length, 101);
    assert.ok((await scb.balance()) >= 50 * 1e8, 'the coinbase of the first block is spendable');
  });

  it('a payment through the RPC confirms in the next block mined across the thread', async () => {
    const to = await spb.newAddress();
    const tx = await scb.prepareSendMany({ [to]: 25_000 });
    await scb.broadcast(tx.hex);
    await node.mine(1);
    assert.equal((await scb.getTransaction(tx.txid))?.confirmations, 1);
    assert.equal(await spb.balance(), 25_000);
  });

  it('a wallet created across the thread exists at the RPC', async () => {
    const later = new BitcoinPayments(bcoinPaymentsOptions(node, 'later'));
    try {
      await assert.rejects(later.newAddress(), 'no such wallet yet');
      await node.createWallet('later');
      assert.equal(typeof (await later.newAddress()), 'string');
    } finally {
      await later.close();
    }
  });

  it('a failure in the thread comes back as an error naming it', async () => {
    await assert.rejects(node.mine(1, 'not-an-address'), (e: Error) => e instanceof Error && e.message.length > 0);
  });

  it('taken down and brought back across the thread: the RPC refuses, then answers', async () => {
    await node.setAvailable(false);
    assert.equal((await scb.health()).ok, false);
    await node.setAvailable(true);
    assert.equal((await scb.health()).ok, true);
  });
});

describe('bcoin regtest thread lifecycle', () => {
  it('a wallet seed crosses the thread: the same seed gives the same addresses in a new thread', async () => {
    const seed = randomBytes(32);
    const first: string[] = [];
    for (let i = 0; i < 2; i++) {
      const node = await startRegtestInThread({ walletIds: ['w'], walletSeed: seed });
      const w = new BitcoinPayments(bcoinPaymentsOptions(node, 'w'));
      try {
        first.push(await w.newAddress());
      } finally {
        await w.close();
        await node.stop();
      }
    }
    assert.equal(first[0], first[1]);
  });

  it('stopped: the thread ends, its RPC is closed and a later call fails as unavailable', async () => {
    const before = ports();
    const node = await startRegtestInThread({ walletIds: ['x'] });
    assert.equal(ports(), before + 1);
    const x = new BitcoinPayments(bcoinPaymentsOptions(node, 'x'));
    await node.stop();
    assert.equal(ports(), before, 'the thread ended');
    assert.equal((await x.health()).ok, false);
    await x.close();
    await assert.rejects(node.mine(1), UnavailableError);
  });
});
