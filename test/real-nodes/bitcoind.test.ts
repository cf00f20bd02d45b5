/**
 * The bitcoind adapter against a real Bitcoin Core (v31) regtest node on
 * loopback, started here (temp datadir, random free RPC port, -listen=0) and
 * killed in teardown. The binaries come from the folder in OC_NODES_BIN
 * (../shared/notes/real-nodes.md); without it the suite is skipped, saying why.
 *
 * Checks what the fake JSON-RPC server (test/payments/bitcoind.test.ts) can
 * only imitate: a wallet the adapter created is loaded again after a node
 * restart; one created without load_on_startup is reloaded on -18; the
 * watcher resumes from an unknown cursor; balance counts untrusted pending
 * receives; a dust output is a final error; a transaction whose input was
 * spent elsewhere in a block is rejected for good and seen as conflicted.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmountTooSmallError, BitcoinPayments, TxRejectedError } from '../../adapters/payments/bitcoin.ts';
import { REGTEST_LOOPBACK_FLAGS } from './harness.ts';
import { addressFormat, WrongNetworkError } from '../../core/network.ts';

const BIN = process.env.OC_NODES_BIN;
const skip = !BIN
  ? 'OC_NODES_BIN is not set (a folder holding bitcoind and bitcoin-cli of Bitcoin Core v31)'
  : !existsSync(join(BIN, 'bitcoind'))
    ? `no bitcoind in OC_NODES_BIN=${BIN}`
    : false;

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
      join(BIN as string, 'bitcoind'),
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
});
