/**
 * bitcoind's read-only RPC user on a real Bitcoin Core (v31, regtest): the
 * bitcoin.conf lines come from containers/bitcoind/reader.sh, as the container
 * entrypoint appends them, and the node is started with them next to the main
 * user. The reader (what query, watch and follow hold) may read the chain and a
 * wallet's balances, transactions and receives, and load a wallet; it cannot
 * create a wallet, an address or a key, show private keys, sign, spend, mine or
 * stop the node; the main user keeps every call (rpcwhitelistdefault=0). A hub
 * whose watching goes through the reader pays, watches and answers funding as
 * before. Skips, saying why, without OC_NODES_BIN.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import { startCloud } from '../../local/cloud.ts';
import { settleDomain } from '../../service/settle.ts';
import { watchProvider } from '../../service/watch.ts';
import { fundingOf } from '../../service/domains.ts';
import { FOLLOWER_WALLET } from '../../service/follow.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { buy, enrol, registerDomain } from '../integration/support.ts';
import { skippable } from '../skippable.ts';
import { BITCOIN_BINARIES, Bitcoind, missingNodes, NodeRpcError } from './harness.ts';

const { it, before, after } = skippable(missingNodes(BITCOIN_BINARIES));

const READER = { username: 'oc-reader', password: `reader-${Math.random().toString(36).slice(2)}` };

function readerConf(): string {
  const script = fileURLToPath(new URL('../../containers/bitcoind/reader.sh', import.meta.url));
  const run = spawnSync('sh', [script], {
    env: { PATH: process.env.PATH, RPC_READER_USER: READER.username, RPC_READER_PASSWORD: READER.password },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout;
}

async function asReader<T>(node: Bitcoind, method: string, params: unknown[] = [], path = '/'): Promise<T> {
  const res = await fetch(`${node.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${READER.username}:${READER.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '1.0', id: 1, method, params }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new NodeRpcError(res.status, `${method}: HTTP ${res.status}`, res.status);
  return (JSON.parse(text) as { result: T }).result;
}

describe('the read-only bitcoind user (rpcauth + rpcwhitelist) on a real Bitcoin Core', () => {
  let node: Bitcoind;
  before(async () => {
    node = await Bitcoind.start({ conf: readerConf() });
    await node.rpc('createwallet', ['oc-main']); // the main user keeps wallet calls
    await node.mine(101);
  });
  after(async () => {
    await node?.stop();
  });

  it('reads the chain: what the query function asks (getblockchaininfo through the adapter) and transaction lookups', async () => {
    const adapter = new BitcoinPayments({
      kind: 'bitcoind',
      node: { ...node.endpoint, ...READER },
      wallet: { ...node.endpoint, ...READER, name: '' },
    });
    const health = await adapter.health();
    assert.equal(health.ok, true, health.detail);
    assert.match(health.detail, /regtest at height 10[1-9]/);
    const tip = await asReader<string>(node, 'getbestblockhash');
    const block = await node.rpc<{ tx: string[] }>('getblock', [tip]);
    const raw = await asReader<{ txid: string }>(node, 'getrawtransaction', [block.tx[0], true]);
    assert.equal(raw.txid, block.tx[0]);
  });

  it("reads a wallet through the adapter (balances, receives, its transactions), loading it once the node has unloaded it", async () => {
    const adapter = new BitcoinPayments({
      kind: 'bitcoind',
      node: { ...node.endpoint, ...READER },
      wallet: { ...node.endpoint, ...READER, name: 'oc-main' },
    });
    try {
      const to = await node.rpc<string>('getnewaddress', [], 'oc-main');
      await node.miner(); // the harness's funded wallet
      const txid = await node.rpc<string>('sendtoaddress', [to, 0.5], 'oc-harness-miner');
      await node.rpc('unloadwallet', ['oc-main']); // as after a node restart: the reader's call answers -18, then loadwallet
      assert.deepEqual(await adapter.balances(), { trusted: 0, pending: 50_000_000 });
      assert.equal((await adapter.getTransaction(txid))?.confirmations, 0);
      const got = await adapter.receivedSince();
      assert.ok(got.payments.some((p) => p.txid === txid && p.address === to && p.amount === 50_000_000), JSON.stringify(got.payments.slice(0, 3)));
      assert.equal((await adapter.lookupTransaction(txid))?.txid, txid);
    } finally {
      await adapter.close();
    }
  });

  const refused: Array<[string, unknown[], string?]> = [
    ['createwallet', ['mallory']],
    ['unloadwallet', ['oc-main']],
    ['getnewaddress', [], '/wallet/oc-main'],
    ['getrawchangeaddress', [], '/wallet/oc-main'],
    ['getbalance', [], '/wallet/oc-main'],
    ['listdescriptors', [true], '/wallet/oc-main'],
    ['backupwallet', ['/tmp/oc-reader-backup.dat'], '/wallet/oc-main'],
    ['importdescriptors', [[]], '/wallet/oc-main'],
    ['walletprocesspsbt', ['cHNidP8BAAoCAAAAAAAAAAAAAA=='], '/wallet/oc-main'],
    ['signrawtransactionwithwallet', ['00'], '/wallet/oc-main'],
    ['fundrawtransaction', ['00'], '/wallet/oc-main'],
    ['psbtbumpfee', ['00'.repeat(32)], '/wallet/oc-main'],
    ['lockunspent', [false, []], '/wallet/oc-main'],
    ['send', [{ bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080: 1 }], '/wallet/oc-main'],
    ['sendtoaddress', ['bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', 1], '/wallet/oc-main'],
    ['sendrawtransaction', ['00']],
    ['generatetoaddress', [1, 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080']],
    ['stop', []],
  ];
  for (const [method, params, path] of refused) {
    it(`refuses ${method} (HTTP 403)`, async () => {
      await assert.rejects(asReader(node, method, params, path), (e: unknown) => e instanceof NodeRpcError && e.status === 403);
    });
  }

  it("a hub whose watch, follow and query go through the reader: a purchase is paid (main user), seen and fulfilled by watch, and the domains' funding answered", async () => {
    const cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
      regtest: node.asRegtest(),
      env: { BITCOIN_READER_USER: READER.username, BITCOIN_READER_PASSWORD: READER.password },
    });
    try {
      assert.deepEqual(cloud.deps.config.bitcoin.reader?.user, READER.username);
      await registerDomain(cloud, 'rdc', 'consumer');
      await registerDomain(cloud, 'rdp', 'provider', { threshold: 0.3 });
      await cloud.fund('rdc');
      const dev = await enrol(cloud, 'rdc', 'rdc-dev');
      const { ob, res } = await buy(cloud, dev, 'rdp', 'rdp-spd');
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await cloud.runJob('publish');
      assert.equal((await settleDomain(cloud.deps, 'rdc')).settlements.length, 1);
      await node.mine(1);
      const provider = await cloud.deps.store.getHostedDomain('rdp');
      assert.ok(provider);
      // what the watching functions hold on AWS: the reader alone, no spending credential
      const watching: Deps = {
        ...cloud.deps,
        payments: async () => {
          throw new Error('a watching function reached for the spending credential');
        },
      };
      const watched = await watchProvider(watching, provider);
      assert.deepEqual([watched.fulfilled, watched.payments], [1, 1], JSON.stringify(watched));
      assert.equal((await cloud.deps.store.getObligation(ob.id))?.status, 'fulfilled');
      const funding = await fundingOf(watching, provider);
      assert.equal(funding.balance.trusted + funding.balance.pending, ob.body.amount, JSON.stringify(funding));
      const paidTx = (await cloud.deps.store.getObligation(ob.id))?.paidTxid as string;
      assert.equal((await (await watching.walletReads(FOLLOWER_WALLET)).lookupTransaction(paidTx))?.confirmations, 1, "the follower's look-up");
      assert.ok(!(await node.rpc<string[]>('listwallets')).includes(FOLLOWER_WALLET), 'the follower creates no wallet');
    } finally {
      await cloud.stop();
    }
  });

  it('leaves the main user every call (rpcwhitelistdefault=0)', async () => {
    const address = await node.rpc<string>('getnewaddress', [], 'oc-main');
    assert.match(address, /^bcrt1/);
    assert.equal(typeof (await node.rpc<number>('getbalance', [], 'oc-main')), 'number');
  });
});
