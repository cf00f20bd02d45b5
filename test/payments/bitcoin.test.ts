/**
 * BitcoinPayments against a real bcoin regtest node (in memory, this process).
 * Tests run in order and share the chain: payer 'scb', payee 'spb'.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BitcoinPayments, checkReplacement, InsufficientFundsError } from '../../adapters/payments/bitcoin.ts';
import { parseTx } from '../../adapters/payments/rawtx.ts';
import { restCall } from '../../adapters/payments/rest.ts';
import { RpcCaller } from '../../adapters/payments/rpc.ts';
import { FeeCapError, MalformedError, UnavailableError } from '../../core/errors.ts';
import { bcoinPaymentsOptions, startRegtest, type RegtestNode } from '../../local/bitcoin.ts';
import { freePort } from '../cli/support.ts';
import type { IncomingPayment } from '../../adapters/ports.ts';

let node: RegtestNode;
let scb: BitcoinPayments;
let spb: BitcoinPayments;

/** Poll until `probe` returns a value that passes `ok` (bounded; no timing assertion). */
async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let last = await probe();
  for (let i = 0; i < 100 && !ok(last); i++) {
    await new Promise((r) => setTimeout(r, 20));
    last = await probe();
  }
  return last;
}

const byAddress = (payments: IncomingPayment[], txid: string) =>
  new Map(payments.filter((p) => p.txid === txid).map((p) => [p.address, p]));

before(async () => {
  node = await startRegtest({ walletIds: ['scb', 'spb'] });
  scb = new BitcoinPayments(bcoinPaymentsOptions(node, 'scb'));
  spb = new BitcoinPayments(bcoinPaymentsOptions(node, 'spb'));
  await scb.mine(101);
});

after(async () => {
  await scb?.close();
  await spb?.close();
  await node?.stop();
});

describe('BitcoinPayments on bcoin regtest', () => {
  it('reports health and a spendable balance after 101 blocks', async () => {
    const health = await scb.health();
    assert.equal(health.ok, true);
    assert.match(health.detail, /regtest/);
    assert.ok((await scb.balance()) >= 50 * 1e8);
  });

  it('prepares without broadcasting, then pays each output exactly once however often the hex is sent', async () => {
    const [a1, a2] = [await spb.newAddress(), await spb.newAddress()];
    const before = await spb.balance();
    const first = await spb.receivedSince();

    const prepared = await scb.prepareSendMany({ [a1]: 12_345, [a2]: 1_000_000 });
    assert.match(prepared.txid, /^[0-9a-f]{64}$/);
    assert.equal(await scb.getTransaction(prepared.txid), null, 'prepare must not broadcast');

    assert.equal(await scb.broadcast(prepared.hex), prepared.txid, 'the node reports the prepared txid');
    assert.equal(await scb.broadcast(prepared.hex), prepared.txid, 'a second broadcast is harmless');

    const unconfirmed = await eventually(
      () => spb.receivedSince(first.cursor),
      (r) => byAddress(r.payments, prepared.txid).size === 2,
    );
    const seen = byAddress(unconfirmed.payments, prepared.txid);
    assert.equal(unconfirmed.payments.filter((p) => p.txid === prepared.txid).length, 2, 'one entry per output');
    assert.deepEqual(seen.get(a1), { txid: prepared.txid, address: a1, amount: 12_345, confirmations: 0 });
    assert.deepEqual(seen.get(a2), { txid: prepared.txid, address: a2, amount: 1_000_000, confirmations: 0 });
    assert.equal(await spb.balance(), before + 1_012_345, 'paid once');

    await scb.mine(1);
    const confirmed = byAddress((await spb.receivedSince(unconfirmed.cursor)).payments, prepared.txid);
    assert.equal(confirmed.get(a1)?.confirmations, 1);
    assert.equal(confirmed.get(a2)?.confirmations, 1);
    assert.equal(confirmed.get(a2)?.amount, 1_000_000);
    assert.equal((await scb.getTransaction(prepared.txid))?.confirmations, 1);

    await scb.mine(1);
    assert.equal((await scb.getTransaction(prepared.txid))?.confirmations, 2);
    assert.equal((await spb.getTransaction(prepared.txid))?.confirmations, 2);
    assert.equal(await spb.balance(), before + 1_012_345, 'still paid once after more blocks');
  });

  it('does not hand the same coins to two prepared transactions', async () => {
    const to = await spb.newAddress();
    // Both prepared before either is broadcast: without input locks they would double-spend.
    const one = await scb.prepareSendMany({ [to]: 20_000 });
    const two = await scb.prepareSendMany({ [to]: 30_000 });
    assert.notEqual(one.txid, two.txid);
    await scb.broadcast(one.hex);
    await scb.broadcast(two.hex);
    await scb.mine(1);
    assert.equal((await scb.getTransaction(one.txid))?.confirmations, 1);
    assert.equal((await scb.getTransaction(two.txid))?.confirmations, 1);
  });

  it('answers null for a transaction the wallet does not know and rejects a malformed txid', async () => {
    assert.equal(await scb.getTransaction('ab'.repeat(32)), null);
    await assert.rejects(scb.getTransaction('not-a-txid'), MalformedError);
  });

  it('does not count mined coinbase outputs as received payments', async () => {
    const { payments } = await scb.receivedSince();
    assert.deepEqual(payments, []);
  });

  it('rejects a payment the wallet cannot fund with InsufficientFundsError', async () => {
    const to = await scb.newAddress();
    await assert.rejects(spb.prepareSendMany({ [to]: 21_000_000 * 1e8 }), (err: unknown) => {
      assert.ok(err instanceof InsufficientFundsError);
      assert.equal(err.code, 'T03_INSUFFICIENT_FUNDS');
      assert.equal(err.errorClass, 'temporary');
      return true;
    });
  });

  it('rejects a bad address, a bad amount and a bad hex as malformed', async () => {
    await assert.rejects(scb.prepareSendMany({ 'not-an-address': 10_000 }), MalformedError);
    await assert.rejects(scb.prepareSendMany({ [await spb.newAddress()]: 0.5 }), MalformedError);
    await assert.rejects(scb.prepareSendMany({}), MalformedError);
    await assert.rejects(scb.broadcast('deadbeef'), MalformedError);
  });

  it('fee-bumps a stuck payment (RBF): the replacement spends the same inputs, evicts the original, and only it confirms', async () => {
    // a payer of its own, with one confirmed coin (bcoin's wallet trips over replacing a spend of
    // coins that came to it as change of its own earlier payments: see the report of this change)
    await node.createWallet('bumper');
    const payer = new BitcoinPayments(bcoinPaymentsOptions(node, 'bumper'));
    const funding = await scb.prepareSendMany({ [await payer.newAddress()]: 5_000_000 });
    await scb.broadcast(funding.hex);
    await scb.mine(1);
    const to = await spb.newAddress();
    const original = await payer.prepareSendMany({ [to]: 70_000 });
    await payer.broadcast(original.hex);
    await node.mineEmpty(3); // blocks that leave it out: stuck
    assert.equal((await payer.getTransaction(original.txid))?.confirmations, 0);

    const bump = await payer.prepareReplacement(original.hex);
    assert.notEqual(bump.txid, original.txid);
    const [a, b] = [parseTx(original.hex), parseTx(bump.hex)];
    assert.deepEqual(b.inputs, a.inputs, 'the same inputs: the two can never both confirm');
    const payee = a.outputs.find((o) => o.value === 70_000);
    assert.ok(payee && b.outputs.some((o) => o.script === payee.script && o.value === 70_000), 'the payee gets the same amount');
    assert.equal(await payer.lookupTransaction(bump.txid), null, 'prepared, not broadcast');
    // its fee and rate as it pays them: the one coin (5 000 000) less every output
    const feeOf = (hex: string) => 5_000_000 - parseTx(hex).outputs.reduce((sum, o) => sum + o.value, 0);
    assert.equal(bump.fee, feeOf(bump.hex));
    assert.ok(Math.abs(bump.satVb - bump.fee / b.vsize) < 0.001, `${bump.satVb} sat/vB`);
    assert.ok(bump.fee > feeOf(original.hex));
    // asked for at least twice its rate (as when the node refused it): another one, paying that
    const higher = await payer.prepareReplacement(original.hex, { atLeastSatVb: bump.satVb * 2 });
    assert.ok(higher.satVb >= bump.satVb * 2 && higher.fee === feeOf(higher.hex), `${higher.satVb} ≥ 2 × ${bump.satVb} sat/vB`);
    await payer.abandon(higher.hex);
    // not above the fee policy's cap: nothing is built
    const cap = Math.floor(bump.satVb * 2) - 1;
    const capped = new BitcoinPayments(bcoinPaymentsOptions(node, 'bumper', { fees: { targetBlocks: 6, floorSatVb: 1, fallbackSatVb: 1, capSatVb: cap } }));
    await assert.rejects(capped.prepareReplacement(original.hex, { atLeastSatVb: bump.satVb * 2 }), (err) => err instanceof FeeCapError && err.message.includes(`over the fee cap of ${cap} sat/vB`));
    await capped.close();

    assert.equal(await payer.broadcast(bump.hex), bump.txid, 'the mempool takes the replacement (full RBF)');
    assert.equal(await payer.lookupTransaction(original.txid), null, 'and evicts the original');
    await scb.mine(1);
    assert.equal((await payer.getTransaction(bump.txid))?.confirmations, 1);
    const got = await spb.receivedSince();
    const paid = got.payments.filter((p) => p.address === to);
    assert.deepEqual(paid.map((p) => [p.txid, p.amount]), [[bump.txid, 70_000]], 'paid once, by the replacement');
    assert.equal(await payer.isConflicted(original.hex), true, 'the original can never confirm now');
  });

  it("a first fee bump pays the policy's rate when it rose, else the paid rate 1.5 times, held to the cap; a cap that leaves no replacement refuses (F18)", async () => {
    await node.createWallet('bumper2');
    const policy = (fallbackSatVb: number, capSatVb = 50) => ({ fees: { targetBlocks: 6, floorSatVb: 1, fallbackSatVb, capSatVb } });
    const payer = new BitcoinPayments(bcoinPaymentsOptions(node, 'bumper2', policy(5)));
    const funding = await scb.prepareSendMany({ [await payer.newAddress()]: 5_000_000 });
    await scb.broadcast(funding.hex);
    await scb.mine(1);
    const original = await payer.prepareSendMany({ [await spb.newAddress()]: 70_000 });
    await payer.broadcast(original.hex);
    const feeOf = (hex: string) => 5_000_000 - parseTx(hex).outputs.reduce((sum, o) => sum + o.value, 0);
    const paid = feeOf(original.hex) / parseTx(original.hex).vsize;
    assert.ok(Math.abs(paid - 5) < 0.1, `paid ${paid} sat/vB`);
    /** The rate of a first bump of `original` under `fees` (built, not sent). */
    const bumpAt = async (fees: ReturnType<typeof policy>) => {
      const p = new BitcoinPayments(bcoinPaymentsOptions(node, 'bumper2', fees));
      try {
        const r = await p.prepareReplacement(original.hex);
        assert.equal(r.fee, feeOf(r.hex));
        await p.abandon(r.hex);
        return r.satVb;
      } finally {
        await p.close();
      }
    };
    // the stand-in sizes the fee for the signed replacement's own size (a signature's length varies;
    // test/local/bump-sizing.test.ts scripts the sizes)
    const near = (got: number, want: number) => assert.ok(got >= want && got <= want * 1.02, `${got} sat/vB, wanted ${want}`);
    near(await bumpAt(policy(5)), 7.5); // the estimate has not risen: a step up from what it pays
    near(await bumpAt(policy(6)), 7.5); // it rose less than a step: still the step
    near(await bumpAt(policy(30)), 30); // it rose: the policy's rate
    const capped = await bumpAt(policy(5, 6.5)); // held to the cap, still 1 sat/vB (the relay fee) over what it pays
    assert.ok(capped <= 6.5 && capped >= 6.5 * 0.98, `${capped} sat/vB, wanted at most 6.5`);
    await assert.rejects(bumpAt(policy(5, 5.5)), (err) => err instanceof FeeCapError && /at least 6(\.\d+)? sat\/vB, over the fee cap of 5.5 sat\/vB/.test(err.message));
    // the stand-in's own refusal, typed as bcoin types its errors (what the adapter maps to F18)
    const refused = await restCall(node.walletRpc, 'POST', '/wallet/bumper2/bump', { txid: original.txid, rate: 30, maxRate: 5.5 });
    assert.deepEqual([refused.status, refused.errorType], [409, 'FeeCapError'], refused.errorMessage);
    // a transaction this wallet does not know (another wallet's payment): a clear error, no bump
    const foreign = await scb.prepareSendMany({ [await spb.newAddress()]: 10_000 });
    await assert.rejects(payer.prepareReplacement(foreign.hex), (err) => err instanceof UnavailableError && /no fee for the transaction to replace/.test(err.message));
    await scb.abandon(foreign.hex);
    await payer.close();
  });

  it("pays at the fee policy's rate (the fallback without an estimate, clamped to the cap), not bcoin's own", async () => {
    // a fresh regtest node has no fee estimate: estimatesmartfee answers fee −1 (bcoin node/rpc.js)
    assert.equal((await new RpcCaller(node.nodeRpc).call<{ fee: number }>('estimatesmartfee', 6)).fee, -1);
    /** A wallet of its own with one confirmed coin of 5 000 000 sats, paying 70 000 under `fees`; the payment's rate (sat/vB). */
    const rateOf = async (wallet: string, fees?: { targetBlocks: number; floorSatVb: number; capSatVb: number; fallbackSatVb: number }) => {
      await node.createWallet(wallet);
      const payer = new BitcoinPayments(bcoinPaymentsOptions(node, wallet, fees ? { fees } : {}));
      const funding = await scb.prepareSendMany({ [await payer.newAddress()]: 5_000_000 });
      await scb.broadcast(funding.hex);
      await scb.mine(1);
      const paid = parseTx((await payer.prepareSendMany({ [await spb.newAddress()]: 70_000 })).hex);
      await payer.close();
      assert.equal(paid.inputs.length, 1);
      return (5_000_000 - paid.outputs.reduce((sum, o) => sum + o.value, 0)) / paid.vsize;
    };
    const own = await rateOf('rate-own');
    const fallback = await rateOf('rate-fallback', { targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 7 });
    const capped = await rateOf('rate-capped', { targetBlocks: 6, floorSatVb: 1, capSatVb: 3, fallbackSatVb: 7 });
    assert.ok(Math.abs(own - 20) < 0.5, `bcoin's own regtest rate, 20 sat/vB: ${own}`);
    assert.ok(Math.abs(fallback - 7) < 0.5, `the fallback, 7 sat/vB: ${fallback}`);
    assert.ok(Math.abs(capped - 3) < 0.5, `the cap, 3 sat/vB: ${capped}`);
  });

  it('a replacement that does not pay the same inputs and outputs is refused before it can be sent', () => {
    const tx = (inputs: string[], outputs: [string, number][]) => ({
      txid: inputs.join('') + outputs.join(''),
      inputs: inputs.map((t) => ({ txid: t, vout: 0 })),
      outputCount: outputs.length,
      outputs: outputs.map(([script, value]) => ({ script, value })),
      isCoinbase: false,
      vsize: 100,
    });
    const original = tx(['aa', 'bb'], [['payee', 5_000], ['change', 90_000]]);
    checkReplacement(original, tx(['aa', 'bb', 'cc'], [['payee', 5_000], ['change', 80_000]]));
    assert.throws(() => checkReplacement(original, tx(['aa'], [['payee', 5_000], ['change', 80_000]])), /every input/);
    assert.throws(() => checkReplacement(original, tx(['aa', 'bb'], [['payee', 4_000], ['change', 80_000]])), /more than the change/);
    assert.throws(() => checkReplacement(original, original), /is the original/);
  });

  it('creates a missing wallet once and finds it the second time', async () => {
    const extra = new BitcoinPayments(bcoinPaymentsOptions(node, 'extra'));
    await extra.ensureWallet();
    await extra.ensureWallet();
    assert.equal(await extra.balance(), 0);
    assert.notEqual(await extra.newAddress(), await spb.newAddress());
  });

  it('turns an unreachable node into UnavailableError, and recovers when it is back', async () => {
    const fast = { rpc: { retries: 1, retryDelayMs: 1, timeoutMs: 2000 } };
    const nowhere = await freePort();
    const lost = new BitcoinPayments(
      bcoinPaymentsOptions({ ...node, nodeRpc: { ...node.nodeRpc, port: nowhere }, walletRpc: { ...node.walletRpc, port: nowhere } }, 'scb', fast),
    );
    await assert.rejects(lost.balance(), UnavailableError);
    await assert.rejects(lost.mine(1), UnavailableError);
    assert.equal((await lost.health()).ok, false);

    const flaky = new BitcoinPayments(bcoinPaymentsOptions(node, 'scb', fast));
    await node.setAvailable(false);
    try {
      await assert.rejects(flaky.balance(), UnavailableError);
      await assert.rejects(flaky.broadcast('00'.repeat(10)), MalformedError, 'bad input stays a caller error');
    } finally {
      await node.setAvailable(true);
    }
    assert.ok((await flaky.balance()) > 0);
  });
});
