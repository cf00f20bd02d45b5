/**
 * The bitcoind adapter against a real Bitcoin Core (v31) regtest node on
 * loopback, started here (temp datadir, random free RPC port, -listen=0) and
 * killed in teardown. The binaries come from the folder in OC_NODES_BIN
 * (docs/real-nodes.md); without it the suite is skipped, saying why.
 *
 * Checks what the fake JSON-RPC server (test/payments/bitcoind.test.ts) can
 * only imitate: a wallet the adapter created is loaded again after a node
 * restart; one created without load_on_startup is reloaded on -18; the
 * watcher resumes from an unknown cursor; balance counts untrusted pending
 * receives; a dust output is a final error; a transaction whose input was
 * spent elsewhere in a block is rejected for good and seen as conflicted;
 * a settlement left out of BUMP_AFTER_BLOCKS blocks is fee-bumped (psbtbumpfee,
 * full RBF) and paid exactly once, under the replacement's txid; a chain of
 * settlements (one spending the unconfirmed change of another: psbtbumpfee
 * refuses the first, "Transaction has descendants in the wallet", which once
 * failed every settle run of the domain) is bumped through its last payment,
 * whose fee lifts the package; one the node will not bump (its payee spent the
 * output unconfirmed) is kept waiting while the domain pays from its other coin.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmountTooSmallError, BitcoinPayments, TxRejectedError } from '../../adapters/payments/bitcoin.ts';
import { addressFormat, WrongNetworkError } from '../../core/network.ts';
import { FeeCapError } from '../../core/errors.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { OUTBID_FACTOR, settleDomain } from '../../service/settle.ts';
import { watchProvider } from '../../service/watch.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { BITCOIN_BINARIES, Bitcoind, missingNodes, NODES_BIN, REGTEST_LOOPBACK_FLAGS } from './harness.ts';

const skip = missingNodes(BITCOIN_BINARIES);

const USER = 'oc';
const PASSWORD = 'oc-test-only';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One regtest bitcoind child process (not -daemon, so its pid is ours to stop). */
class Node {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly datadir: string,
    readonly port: number,
  ) {}

  get endpoint() {
    return { host: '127.0.0.1', port: this.port, username: USER, password: PASSWORD };
  }

  async start(): Promise<void> {
    const child = spawn(
      join(NODES_BIN as string, 'bitcoind'),
      [
        '-regtest',
        '-server',
        `-datadir=${this.datadir}`,
        `-rpcuser=${USER}`,
        `-rpcpassword=${PASSWORD}`,
        '-rpcbind=127.0.0.1',
        '-rpcallowip=127.0.0.1',
        `-rpcport=${this.port}`,
        ...REGTEST_LOOPBACK_FLAGS,
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.rpc('getblockchaininfo');
        return;
      } catch (e) {
        if (child.exitCode !== null) throw new Error(`bitcoind exited with ${child.exitCode}`);
        if (Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  /** Clean shutdown by RPC; the process is killed if it has not gone within 30 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await this.rpc('stop').catch(() => undefined);
    const gone = await Promise.race([this.exited.then(() => true), sleep(30_000).then(() => false)]);
    if (!gone) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.child = undefined;
  }

  /** Plain JSON-RPC, to set things up and to look behind the adapter. */
  async rpc<T = unknown>(method: string, params: unknown[] = [], wallet?: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.port}${wallet ? `/wallet/${wallet}` : '/'}`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params }),
    });
    const body = (await res.json().catch(() => ({ error: { code: res.status, message: res.statusText } }))) as {
      result: T;
      error: { code: number; message: string } | null;
    };
    if (body.error) throw Object.assign(new Error(`${method}: ${body.error.message} (${body.error.code})`), { code: body.error.code });
    return body.result;
  }
}

describe('BitcoinPayments on a real bitcoind (regtest)', { skip }, () => {
  let dir: string;
  let node: Node;
  const wallet = (name: string) => {
    const w = new BitcoinPayments({ kind: 'bitcoind', node: node.endpoint, wallet: { ...node.endpoint, name }, rpc: { retries: 5, retryDelayMs: 100 } });
    return w;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-bitcoind-'));
    node = new Node(dir, await freePort());
    await node.start();
  });
  after(async () => {
    await node?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a wallet the adapter created is loaded again after a node restart; one created without load_on_startup is reloaded on -18', async () => {
    const a = wallet('oc-a');
    await a.ensureWallet();
    await a.mine(101);
    const before = await a.balance();
    assert.ok(before > 0, `coinbase matured: ${before}`);
    await node.rpc('createwallet', ['legacy']); // as an older adapter did: no load_on_startup
    const legacyAddress = await node.rpc<string>('getnewaddress', [], 'legacy');

    await node.stop();
    await node.start();
    const loaded = await node.rpc<string[]>('listwallets');
    assert.ok(loaded.includes('oc-a'), `loaded at startup: ${loaded.join(',')}`);
    assert.ok(!loaded.includes('legacy'), 'the legacy wallet needs loading');
    assert.equal(await wallet('oc-a').balance(), before, 'wallet calls work after the restart');
    // no ensureWallet: the first wallet call meets -18, loads the wallet and is answered
    const legacy = wallet('legacy');
    assert.equal(await legacy.balance(), 0);
    assert.ok((await node.rpc<string[]>('listwallets')).includes('legacy'));
    assert.match(legacyAddress, /^bcrt1/);
  });

  it('the watcher resumes from an unknown cursor (listsinceblock -5) instead of failing every run', async () => {
    const a = wallet('oc-a');
    const b = wallet('oc-b');
    await b.ensureWallet();
    const to = await b.newAddress();
    const tx = await a.prepareSendMany({ [to]: 50_000 });
    await a.broadcast(tx.hex);
    await a.mine(1);
    const got = await b.receivedSince('11'.repeat(32));
    assert.ok(got.payments.some((p) => p.txid === tx.txid && p.address === to && p.amount === 50_000), JSON.stringify(got));
    assert.match(got.cursor, /^[0-9a-f]{64}$/);
    const next = await b.receivedSince(got.cursor);
    assert.ok(Array.isArray(next.payments));
  });

  it('balance includes untrusted pending receives (getbalance "*" 0 does not)', async () => {
    const a = wallet('oc-a');
    const c = wallet('oc-c');
    await c.ensureWallet();
    const tx = await a.prepareSendMany({ [await c.newAddress()]: 10_000_000 });
    await a.broadcast(tx.hex);
    assert.equal(await node.rpc<number>('getbalance', ['*', 0], 'oc-c'), 0, 'what the adapter used to read');
    assert.equal(await c.balance(), 10_000_000);
    await a.mine(1);
    assert.equal(await c.balance(), 10_000_000);
  });

  it('a dust output (100 sats) is a final AmountTooSmallError', async () => {
    const a = wallet('oc-a');
    const err = await a.prepareSendMany({ [await wallet('oc-b').newAddress()]: 100 }).catch((e: unknown) => e);
    assert.ok(err instanceof AmountTooSmallError, String(err));
    assert.equal(err.errorClass, 'final');
  });

  it('a transaction whose input another transaction spent: conflicted only once that one is in a block, then rejected for good', async () => {
    const a = wallet('oc-a');
    const d = wallet('oc-d');
    await d.ensureWallet();
    // one coin only, so both transactions below must spend it
    const fund = await a.prepareSendMany({ [await d.newAddress()]: 1_000_000 });
    await a.broadcast(fund.hex);
    await a.mine(1);
    const to = await wallet('oc-b').newAddress();
    const first = await d.prepareSendMany({ [to]: 10_000 });
    await d.abandon(first.hex);
    const second = await d.prepareSendMany({ [to]: 20_000 });
    assert.notEqual(second.txid, first.txid);
    await d.broadcast(second.hex);
    assert.equal(await d.isConflicted(first.hex), false, 'spent only in the mempool: not final yet');
    await a.mine(1);
    assert.equal(await d.isConflicted(first.hex), true);
    assert.equal(await d.isConflicted(second.hex), false, 'the confirmed one is not');
    await assert.rejects(d.broadcast(first.hex), TxRejectedError);
  });

  it('pays at the fee rate of the policy: the fallback (regtest has no estimate), raised to the floor; a mainnet address never reaches the node', async () => {
    const a = wallet('oc-a');
    await a.ensureWallet();
    if ((await a.balance()) < 1e8) await node.rpc('generatetoaddress', [101, await a.newAddress()]); // when run alone
    const b = wallet('oc-b');
    await b.ensureWallet();
    const to = await b.newAddress();
    const rateOf = async (policy: { targetBlocks: number; floorSatVb: number; capSatVb: number; fallbackSatVb: number }) => {
      const payer = new BitcoinPayments({ kind: 'bitcoind', node: node.endpoint, wallet: { ...node.endpoint, name: 'oc-a' }, fees: policy });
      const tx = await payer.prepareSendMany({ [to]: 30_000 });
      await payer.broadcast(tx.hex);
      const fee = -(await node.rpc<{ fee: number }>('gettransaction', [tx.txid], 'oc-a')).fee;
      const { vsize } = await node.rpc<{ vsize: number }>('getrawtransaction', [tx.txid, true]);
      return Math.round(fee * 1e8) / vsize;
    };
    // the node's own -fallbackfee is 20 sat/vB: 7 can only come from our fee_rate
    assert.ok(Math.abs((await rateOf({ targetBlocks: 6, floorSatVb: 1, capSatVb: 50, fallbackSatVb: 7 })) - 7) < 0.1);
    // confirm it first: spending its unconfirmed change, the wallet would add fee to lift the parent (ancestor bump)
    await a.mine(1);
    assert.ok(Math.abs((await rateOf({ targetBlocks: 6, floorSatVb: 12, capSatVb: 50, fallbackSatVb: 12 })) - 12) < 0.1);
    await a.mine(1);
    const guarded = new BitcoinPayments({ kind: 'bitcoind', node: node.endpoint, wallet: { ...node.endpoint, name: 'oc-a' }, addressFormat: addressFormat('regtest') });
    await assert.rejects(guarded.prepareSendMany({ bc1qmfmgeswv7wd378sewj8qva3pnk4l53msq9ny2h: 30_000 }), WrongNetworkError);
    assert.deepEqual(await node.rpc<unknown[]>('listlockunspent', [], 'oc-a'), [], 'nothing funded or locked');
  });

  it("a first fee bump (psbtbumpfee fee_rate) pays the policy's rate when it rose, else the paid rate 1.5 times, held to the cap; a cap that leaves no replacement refuses (F18) and locks nothing", async () => {
    const a = wallet('oc-a');
    await a.ensureWallet();
    if ((await a.balance()) < 1e8) await node.rpc('generatetoaddress', [101, await a.newAddress()]); // when run alone
    await node.rpc('generatetoaddress', [1, await a.newAddress()]); // confirm what earlier tests left unconfirmed
    const b = wallet('oc-b');
    await b.ensureWallet();
    const policy = (fallbackSatVb: number, capSatVb = 50) => ({ targetBlocks: 6, floorSatVb: 1, fallbackSatVb, capSatVb });
    const payer = (fees: ReturnType<typeof policy>) => new BitcoinPayments({ kind: 'bitcoind', node: node.endpoint, wallet: { ...node.endpoint, name: 'oc-a' }, fees });
    const original = await payer(policy(5)).prepareSendMany({ [await b.newAddress()]: 30_000 });
    await a.broadcast(original.hex);
    const rateOf = async (txid: string) => {
      const fee = -(await node.rpc<{ fee: number }>('gettransaction', [txid], 'oc-a')).fee;
      const { vsize } = await node.rpc<{ vsize: number }>('decoderawtransaction', [(await node.rpc<{ hex: string }>('gettransaction', [txid], 'oc-a')).hex]);
      return Math.round(fee * 1e8) / vsize;
    };
    const paid = await rateOf(original.txid);
    assert.ok(Math.abs(paid - 5) < 0.1, `paid ${paid} sat/vB`);
    const locked = async () => (await node.rpc<unknown[]>('listlockunspent', [], 'oc-a')).length;
    const before = await locked();
    /** The rate of a first bump of `original` under `fees`, as the replacement pays it (built, signed, not sent). */
    const bumpAt = async (fees: ReturnType<typeof policy>) => {
      const r = await payer(fees).prepareReplacement(original.hex);
      const { vsize } = await node.rpc<{ vsize: number }>('decoderawtransaction', [r.hex]);
      await a.abandon(r.hex);
      return r.fee / vsize;
    };
    // psbtbumpfee sizes the fee on its estimate of the signed size, so the paid rate can be a little over
    const near = (got: number, want: number) => assert.ok(got >= want - 0.01 && got <= want * 1.03, `${got} sat/vB, wanted ${want}`);
    near(await bumpAt(policy(5)), 7.5); // the estimate has not risen: a step up (Core's wallet alone: its fallbackfee, 20)
    near(await bumpAt(policy(6)), 7.5); // it rose less than a step: still the step
    near(await bumpAt(policy(30)), 30); // it rose: the policy's rate
    // held to the cap, still over what it pays by incrementalfee (Core's fee_rate on its largest-size estimate: a hair over on the actual size)
    const capped = await bumpAt(policy(5, 6));
    assert.ok(capped >= 6 - 0.01 && capped <= 6 * 1.005, `${capped} sat/vB, wanted 6`);
    await assert.rejects(payer(policy(5, 5.05)).prepareReplacement(original.hex), (err) => err instanceof FeeCapError && /over the fee cap of 5.05 sat\/vB/.test(err.message));
    assert.equal(await locked(), before, 'nothing more locked');
    await node.rpc('generatetoaddress', [1, await a.newAddress()]);
    assert.equal((await a.getTransaction(original.txid))?.confirmations, 1, 'the original, never replaced, confirms');
  });
});

describe('a stuck settlement on a real bitcoind is fee-bumped (RBF) and paid once', { skip }, () => {
  let node: Bitcoind;
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    node = await Bitcoind.start();
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
      regtest: node.asRegtest(),
      env: { CREDIT_BASE: '1000000' },
    });
    await registerDomain(cloud, 'rc', 'consumer');
    await registerDomain(cloud, 'rp', 'provider', { threshold: 0.3 });
    await cloud.fund('rc');
    dev = await enrol(cloud, 'rc', 'rc-dev');
  });
  after(async () => {
    await cloud?.stop();
    await node?.stop();
  });

  it('left out of K blocks (generateblock with no transaction), bumped once; the replacement confirms, the original never; paid == owed', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { ob, res } = await buy(cloud, dev, 'rp', 'rp-spd');
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(ob.id);
    }
    await cloud.runJob('publish');
    const owed = (await Promise.all(ids.map((id) => cloud.deps.store.getObligation(id)))).reduce((sum, o) => sum + (o?.amount ?? 0), 0);
    const k = cloud.deps.config.bumpAfterBlocks;

    const first = await settleDomain(cloud.deps, 'rc');
    const paid = first.settlements[0];
    assert.ok(paid && first.settlements.length === 1 && paid.total === owed, JSON.stringify(first));
    assert.ok((await node.rpc<string[]>('getrawmempool')).includes(paid.txid));

    await node.mineEmpty(k - 1);
    assert.deepEqual((await settleDomain(cloud.deps, 'rc')).bumped, undefined, 'not stuck yet');
    await node.mineEmpty(1);
    const run = await settleDomain(cloud.deps, 'rc');
    const bump = run.bumped?.[0];
    assert.ok(bump && run.bumped?.length === 1 && bump.from === paid.txid, JSON.stringify(run));
    assert.deepEqual(run.settlements, [], 'no second settlement of the same obligations');
    const mempool = await node.rpc<string[]>('getrawmempool');
    assert.ok(mempool.includes(bump.to) && !mempool.includes(paid.txid), 'the node replaced the original (full RBF)');
    const payer = (await cloud.deps.store.getHostedDomain('rc'))?.wallet as string;
    const [oldFee, newFee] = [
      (await node.rpc<{ fee: number }>('gettransaction', [paid.txid], payer)).fee,
      (await node.rpc<{ fee: number }>('gettransaction', [bump.to], payer)).fee,
    ];
    assert.ok(Math.abs(newFee) > Math.abs(oldFee), `a higher fee: ${oldFee} → ${newFee}`);
    // the regtest policy's fallback (20 sat/vB) has not risen: 1.5 times what the original pays
    assert.ok(bump.satVb >= 30 && bump.satVb < 31, `${bump.satVb} sat/vB`);

    await node.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'rc')).confirmed, 1);
    const provider = await cloud.deps.store.getHostedDomain('rp');
    assert.ok(provider?.payTo);
    await watchProvider(cloud.deps, provider);
    const done = await Promise.all(ids.map((id) => cloud.deps.store.getObligation(id)));
    assert.ok(done.every((o) => o?.status === 'fulfilled' && o.paidTxid === bump.to), JSON.stringify(done.map((o) => [o?.status, o?.paidTxid])));

    // what the chain says, through the node (as another hub's follower checks it)
    const payments = await cloud.deps.payments(provider.wallet);
    assert.equal(await payments.lookupTransaction(paid.txid), null, 'the original is in no block and no mempool');
    const tx = await payments.lookupTransaction(bump.to);
    assert.equal(tx?.confirmations, 1);
    assert.equal(tx?.outputs.filter((o) => o.address === provider.payTo).reduce((sum, o) => sum + o.amount, 0), owed);
    assert.equal(await payments.balance(), owed, 'the provider received exactly what is owed, once');
    assert.ok((await node.rpc<{ confirmations: number }>('gettransaction', [paid.txid], payer)).confirmations < 0, 'the wallet sees the original conflicted');
  });
  /** `n` purchases of `consumer` from `providerDomain`, published; their ids and what they owe. */
  async function purchases(device: TestDevice, providerDomain: string, n: number): Promise<{ ids: string[]; owed: number }> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { ob, res } = await buy(cloud, device, providerDomain, `${providerDomain}-spd`);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(ob.id);
    }
    await cloud.runJob('publish');
    const owed = (await Promise.all(ids.map((id) => cloud.deps.store.getObligation(id)))).reduce((sum, o) => sum + (o?.amount ?? 0), 0);
    return { ids, owed };
  }

  it('one coin: the next settlement spends the unconfirmed change of the first; the chain waits as one and is bumped through its last payment, whose fee lifts both; each paid once', async () => {
    await registerDomain(cloud, 'r1c', 'consumer');
    await registerDomain(cloud, 'r1p', 'provider', { threshold: 0.3 });
    await cloud.fund('r1c', 1); // one coinbase output
    const device = await enrol(cloud, 'r1c', 'r1c-dev');
    const k = cloud.deps.config.bumpAfterBlocks;
    const early = await purchases(device, 'r1p', 2);
    const s1 = (await settleDomain(cloud.deps, 'r1c')).settlements[0];
    await node.mineEmpty(1);
    const late = await purchases(device, 'r1p', 2);
    const s2 = (await settleDomain(cloud.deps, 'r1c')).settlements[0];
    assert.ok(s1 && s2);
    const second = await node.rpc<{ vin: { txid: string }[] }>('getrawtransaction', [s2.txid, true]);
    assert.ok(second.vin.some((i) => i.txid === s1.txid), 'the second spends the change of the first');

    await node.mineEmpty(k - 2);
    assert.deepEqual((await settleDomain(cloud.deps, 'r1c')).bumped, undefined, 'not stuck yet');
    await node.mineEmpty(1); // the first has waited k blocks, the second k − 1
    // Core refuses to bump the first ("Transaction has descendants in the wallet"), which once failed every run
    const run = await settleDomain(cloud.deps, 'r1c');
    assert.deepEqual(run.bumped?.map((b) => [b.settlementId, b.from]), [[s2.settlementId, s2.txid]], JSON.stringify(run));
    assert.deepEqual([run.stuck, run.deferred, run.settlements], [undefined, undefined, []], JSON.stringify(run));
    const to = run.bumped?.[0]?.to as string;
    const mempool = await node.rpc<string[]>('getrawmempool');
    assert.deepEqual([mempool.includes(s1.txid), mempool.includes(to), mempool.includes(s2.txid)], [true, true, false]);
    type Entry = { vsize: number; ancestorsize: number; fees: { base: number; ancestor: number } };
    const [first, bumped] = [await node.rpc<Entry>('getmempoolentry', [s1.txid]), await node.rpc<Entry>('getmempoolentry', [to])];
    const rate = (fee: number, vsize: number) => (fee * 1e8) / vsize;
    assert.ok(
      rate(bumped.fees.ancestor, bumped.ancestorsize) > rate(first.fees.base, first.vsize),
      `the package of both pays a higher rate than the first alone: ${rate(bumped.fees.ancestor, bumped.ancestorsize)} > ${rate(first.fees.base, first.vsize)} sat/vB`,
    );
    assert.equal((await settleDomain(cloud.deps, 'r1c')).bumped, undefined, 'the chain waits again from its bump');

    await node.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'r1c')).confirmed, 2);
    const provider = await cloud.deps.store.getHostedDomain('r1p');
    assert.ok(provider);
    await watchProvider(cloud.deps, provider);
    const done = await Promise.all([...early.ids, ...late.ids].map((id) => cloud.deps.store.getObligation(id)));
    assert.ok(done.every((o) => o?.status === 'fulfilled'), JSON.stringify(done.map((o) => o?.status)));
    assert.equal(await (await cloud.deps.payments(provider.wallet)).balance(), early.owed + late.owed, 'paid once, exactly what is owed');
  });

  /** A fresh consumer (two coins) and provider, with `n` published purchases and a settlement of them left out of K blocks. */
  async function stuckSettlement(consumer: string, providerDomain: string, n: number) {
    await registerDomain(cloud, consumer, 'consumer');
    await registerDomain(cloud, providerDomain, 'provider', { threshold: 0.3 });
    await cloud.fund(consumer);
    const device = await enrol(cloud, consumer, `${consumer}-dev`);
    const bought = await purchases(device, providerDomain, n);
    const paid = (await settleDomain(cloud.deps, consumer)).settlements[0];
    assert.ok(paid && paid.total === bought.owed);
    await node.mineEmpty(cloud.deps.config.bumpAfterBlocks);
    const entry = await node.rpc<{ vsize: number; fees: { base: number } }>('getmempoolentry', [paid.txid]);
    return { ...bought, paid, vsize: entry.vsize, satVb: (entry.fees.base * 1e8) / entry.vsize };
  }

  /** The provider's watcher fulfils every one of `ids` as paid by `txid`, and its wallet holds exactly what is owed. */
  async function paidOnceBy(providerDomain: string, ids: string[], txid: string, owed: number): Promise<void> {
    const provider = await cloud.deps.store.getHostedDomain(providerDomain);
    assert.ok(provider);
    await watchProvider(cloud.deps, provider);
    const done = await Promise.all(ids.map((id) => cloud.deps.store.getObligation(id)));
    assert.ok(done.every((o) => o?.status === 'fulfilled' && o.paidTxid === txid), JSON.stringify(done.map((o) => [o?.status, o?.paidTxid])));
    assert.equal(await (await cloud.deps.payments(provider.wallet)).balance(), owed, 'paid once, exactly what is owed');
  }

  it('a fee bump the node refuses ("insufficient fee": a miner prioritised the original) is outbid at 1.5 times its rate; the outbid replaces the original and pays once', async () => {
    const { ids, owed, paid, vsize, satVb } = await stuckSettlement('r3c', 'r3p', 2);
    // prioritisetransaction txid dummy fee_delta: a replacement must now pay the original's fee + 20 sat/vB
    // more (Core checks a replacement against the modified fee of what it evicts); the first bump (1.5 times
    // the original's 20 sat/vB: the policy's fallback has not risen) does not
    await node.rpc('prioritisetransaction', [paid.txid, 0, 20 * vsize]);
    const run = await settleDomain(cloud.deps, 'r3c');
    const [refused, outbid] = run.bumped ?? [];
    assert.ok(refused && outbid && run.bumped?.length === 2, JSON.stringify(run));
    assert.match(outbid.refused ?? '', /insufficient fee/);
    assert.ok(refused.satVb < satVb + 20 && outbid.satVb >= refused.satVb * OUTBID_FACTOR, `${satVb} → ${refused.satVb} (refused) → ${outbid.satVb} sat/vB`);
    assert.deepEqual([run.stuck, run.settlements], [undefined, []], JSON.stringify(run));
    const mempool = await node.rpc<string[]>('getrawmempool');
    assert.deepEqual([paid.txid, refused.to, outbid.to].map((t) => mempool.includes(t)), [false, false, true], 'the outbid replaced the original');
    const item = await cloud.deps.store.getSettlement(paid.settlementId);
    assert.deepEqual([item?.txid, item?.replaces, item?.phase], [outbid.to, [paid.txid, refused.to], 'broadcast']);

    await node.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'r3c')).confirmed, 1);
    await paidOnceBy('r3p', ids, outbid.to, owed);
  });

  it('outbid once per run up to the fee cap, then kept, stuck, saying so; the original confirms and pays once', async () => {
    const { ids, owed, paid } = await stuckSettlement('r4c', 'r4p', 1);
    await node.rpc('prioritisetransaction', [paid.txid, 0, 100_000_000]); // no replacement can outbid 1 BTC
    const cap = cloud.deps.config.bitcoin.fees.capSatVb;
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const run = await settleDomain(cloud.deps, 'r4c');
      runs.push(run);
      if (/over the fee cap/.test(run.stuck?.[0]?.reason ?? '')) break;
    }
    const last = runs[runs.length - 1];
    assert.match(last?.stuck?.[0]?.reason ?? '', new RegExp(`^fee bump refused \\(.*insufficient fee.*\\), not outbid: a replacement would need [0-9.]+ sat/vB, over the fee cap of ${cap} sat/vB`), JSON.stringify(runs));
    const rates = runs.flatMap((r) => (r.bumped ?? []).map((b) => b.satVb));
    assert.ok(runs.every((r) => (r.bumped?.length ?? 0) <= 2), 'at most one bump and one outbid per run');
    assert.ok(rates.every((r, i) => r <= cap && (i === 0 || r >= (rates[i - 1] as number) * OUTBID_FACTOR)), `rising rates under the cap: ${rates.join(', ')}`);
    assert.ok((await node.rpc<string[]>('getrawmempool')).includes(paid.txid), 'the original still waits');

    await node.mine(1); // the prioritised original is mined
    assert.equal((await settleDomain(cloud.deps, 'r4c')).confirmed, 1);
    assert.equal((await cloud.deps.store.getSettlement(paid.settlementId))?.confirmedTxid, paid.txid);
    await paidOnceBy('r4p', ids, paid.txid, owed);
  });

  it('a settlement the node will not bump (its payee spent the output unconfirmed: "descendants in the mempool") is kept, stuck, while the domain pays from its other coin', async () => {
    await registerDomain(cloud, 'r2c', 'consumer');
    await registerDomain(cloud, 'r2p', 'provider', { threshold: 0.3 });
    await cloud.fund('r2c'); // two coinbase outputs
    const device = await enrol(cloud, 'r2c', 'r2c-dev');
    const early = await purchases(device, 'r2p', 2);
    const first = await settleDomain(cloud.deps, 'r2c');
    const paid = first.settlements[0];
    assert.ok(paid && first.settlements.length === 1, JSON.stringify(first));

    // the payee spends what it received before any confirmation
    const provider = await cloud.deps.store.getHostedDomain('r2p');
    assert.ok(provider?.payTo);
    const tx = await node.rpc<{ vout: { n: number; value: number; scriptPubKey: { address?: string } }[] }>('getrawtransaction', [paid.txid, true]);
    const out = tx.vout.find((o) => o.scriptPubKey.address === provider.payTo);
    assert.ok(out);
    const to = await node.rpc<string>('getnewaddress', [], provider.wallet);
    const raw = await node.rpc<string>('createrawtransaction', [[{ txid: paid.txid, vout: out.n }], { [to]: Math.round(out.value * 1e8 - 1_000) / 1e8 }]);
    const signed = await node.rpc<{ hex: string; complete: boolean }>('signrawtransactionwithwallet', [raw], provider.wallet);
    assert.ok(signed.complete);
    const spend = await node.rpc<string>('sendrawtransaction', [signed.hex]);

    await node.mineEmpty(cloud.deps.config.bumpAfterBlocks);
    const late = await purchases(device, 'r2p', 1);
    const run = await settleDomain(cloud.deps, 'r2c');
    assert.deepEqual(run.stuck?.map((x) => x.txid), [paid.txid], JSON.stringify(run));
    assert.match(run.stuck?.[0]?.reason ?? '', /^not fee-bumped: .*descendants in the mempool/);
    assert.deepEqual([run.bumped, run.deferred, run.settlements.map((p) => [p.obligations, p.total])], [undefined, undefined, [[1, late.owed]]], JSON.stringify(run));
    const mempool = await node.rpc<string[]>('getrawmempool');
    assert.ok([paid.txid, spend].every((t) => mempool.includes(t)), 'the payment and its payee\'s spend still wait in the mempool');

    await node.mine(1);
    assert.equal((await settleDomain(cloud.deps, 'r2c')).confirmed, 2);
    await watchProvider(cloud.deps, provider);
    const done = await Promise.all([...early.ids, ...late.ids].map((id) => cloud.deps.store.getObligation(id)));
    assert.ok(done.every((o) => o?.status === 'fulfilled'), JSON.stringify(done.map((o) => [o?.status, o?.paidTxid])));
    assert.ok(done.slice(0, 2).every((o) => o?.paidTxid === paid.txid), 'paid by the original, never bumped');
  });
});
