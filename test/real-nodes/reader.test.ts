/**
 * bitcoind's read-only RPC user on a real Bitcoin Core (v31, regtest): the
 * bitcoin.conf lines come from containers/bitcoind/reader.sh, as the container
 * entrypoint appends them, and the node is started with them next to the main
 * user. The reader (what the query function holds) may read the chain and
 * nothing else: no wallet, no spend, no mining, no stop; the main user keeps
 * every call (rpcwhitelistdefault=0). Skips, saying why, without OC_NODES_BIN.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
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

  const refused: Array<[string, unknown[], string?]> = [
    ['createwallet', ['mallory']],
    ['loadwallet', ['oc-main']],
    ['getnewaddress', [], '/wallet/oc-main'],
    ['getbalance', [], '/wallet/oc-main'],
    ['listdescriptors', [true], '/wallet/oc-main'],
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

  it('leaves the main user every call (rpcwhitelistdefault=0)', async () => {
    const address = await node.rpc<string>('getnewaddress', [], 'oc-main');
    assert.match(address, /^bcrt1/);
    assert.equal(typeof (await node.rpc<number>('getbalance', [], 'oc-main')), 'number');
  });
});
