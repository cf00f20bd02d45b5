/**
 * The container entrypoints themselves (containers/multichain/entrypoint.sh,
 * containers/multichain/grant.sh, containers/bitcoind/entrypoint.sh) run with
 * the real binaries from OC_NODES_BIN, temporary data directories and free
 * loopback ports, as ECS would run them (environment only):
 * - organisation A's entrypoint creates a chain; organisation B's entrypoint
 *   joins it (JOIN_CHAIN), prints and stores its address and waits; A's grant
 *   script grants it; B then publishes an item that A reads with B's address
 *   as publisher; A's revoke takes B's write permission away again;
 * - both entrypoints exit 0 on SIGTERM after a clean shutdown (set -e + wait
 *   used to give 143).
 *
 * Skipped, saying why, without OC_NODES_BIN.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import { UnavailableError } from '../../core/errors.ts';
import { skippable } from '../skippable.ts';
import {
  BITCOIND_ENTRYPOINT,
  Entrypoint,
  MULTICHAIN_ENTRYPOINT as ENTRYPOINT,
  bitcoindContainer,
  containerRpc as fetchRpc,
  grantedOn,
  multichainContainer,
  runGrant,
  type MultichainContainer as NodeEnv,
} from './containers.ts';
import { BITCOIN_BINARIES, MULTICHAIN_BINARIES, missingNodes, until } from './harness.ts';

describe('the MultiChain container entrypoint and grant script on real binaries', () => {
  const { it, before, after } = skippable(missingNodes([...MULTICHAIN_BINARIES, 'multichain-cli']));
  let root: string;
  const chain = `oc${Math.random().toString(36).slice(2, 8)}`;
  const running: Entrypoint[] = [];
  let a: NodeEnv;
  let b: NodeEnv;
  let nodeA: Entrypoint;
  let nodeB: Entrypoint;

  const nodeEnv = (name: string, extra: Record<string, string> = {}) => multichainContainer(root, name, chain, extra);
  const start = (path: string, env: Record<string, string>) => {
    const e = new Entrypoint(path, env);
    running.push(e);
    return e;
  };
  const ledgerOf = (n: NodeEnv) => new MultiChainLedger({ url: `http://127.0.0.1:${n.rpcPort}/`, user: 'oc', password: n.password, chainName: chain, retries: 2 });
  const grant = (...args: string[]) => runGrant(a, ...args);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'oc-entrypoints-'));
    a = await nodeEnv('a', { TARGET_BLOCK_TIME: '2' });
    b = await nodeEnv('b', { GRANT_POLL: '1' });
    b.env.JOIN_CHAIN = `127.0.0.1:${a.p2pPort}`;
  });
  after(async () => {
    await Promise.all(running.map((e) => e.kill()));
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('A creates the chain with its streams; B joins, prints and stores its address, and waits for the grant', async () => {
    nodeA = start(ENTRYPOINT, a.env);
    const [, addressA] = await nodeA.waitFor(/chain \S+ ready, address ([1-9A-HJ-NP-Za-km-z]+),/);
    assert.equal(readFileSync(join(a.dir, 'address'), 'utf8').trim(), addressA);
    const streams = (await fetchRpc(a, 'liststreams', ['*', true])) as { name: string; subscribed: boolean; restrict?: { write?: boolean } }[];
    for (const s of ['domains', 'obligations', 'settlements']) {
      const found = streams.find((x) => x.name === s);
      assert.equal(found?.subscribed, true, `${s} subscribed`);
      assert.equal(found?.restrict?.write, true, `${s} write-restricted`);
    }

    nodeB = start(ENTRYPOINT, b.env);
    const [, printed] = await nodeB.waitFor(/node address ([1-9A-HJ-NP-Za-km-z]+): waiting for the chain's admin to run: grant\.sh grant \1/);
    assert.equal(readFileSync(join(b.dir, 'address'), 'utf8').trim(), printed);
    assert.notEqual(printed, addressA);
    // still waiting: the node does not run without connect permission
    await nodeB.waitFor(new RegExp(`(node address ${printed}: waiting[\\s\\S]*){2}`));
    assert.equal(existsSync(join(b.dir, '.oc-joined')), false);
  });

  it('the grant script refuses bad input in one line with exit 2, before any RPC', () => {
    for (const args of [[], ['grant'], ['promote', 'x'], ['grant', '0OIl-not-an-address']]) {
      const r = grant(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });

  it('after A grants B, B runs, subscribes, and publishes an item A reads with B\'s address as publisher; revoke takes the write away', async () => {
    const addressB = readFileSync(join(b.dir, 'address'), 'utf8').trim();
    const granted = grant('grant', addressB);
    assert.equal(granted.status, 0, granted.stderr);
    assert.deepEqual(
      granted.stdout.trim().split('\n').map((l) => l.split(' ').slice(0, 3).join(' ')),
      ['connect,send,receive', 'domains.write', 'obligations.write', 'settlements.write'].map((p) => `grant ${p} ${addressB}`),
    );
    await nodeB.waitFor(new RegExp(`chain ${chain} ready, address ${addressB}`));
    assert.equal(existsSync(join(b.dir, '.oc-joined')), true);
    const streams = (await fetchRpc(b, 'liststreams')) as { name: string; subscribed: boolean }[];
    for (const s of ['domains', 'obligations', 'settlements']) assert.equal(streams.find((x) => x.name === s)?.subscribed, true, s);

    await grantedOn(b, addressB); // the write grants may reach B's node a block after connect
    const ledgerB = ledgerOf(b);
    const ledgerA = ledgerOf(a);
    assert.equal(await ledgerB.identity(), addressB);
    const id = 'e'.repeat(64);
    // B spends the output its grant sent it, which its wallet may not count yet (a real node's
    // "No unspent outputs are available", an UnavailableError the publish job retries next run)
    const published = await until('B able to publish', async () => {
      try {
        return await ledgerB.publish('obligations', id, ['p:org-b'], { from: 'organisation B' });
      } catch (e) {
        if (e instanceof UnavailableError && /No unspent outputs/.test(e.message)) return undefined;
        throw e;
      }
    });
    const [item] = await until('B\'s item on A', async () => {
      const items = await ledgerA.listByKey('obligations', id);
      return items.length > 0 ? items : undefined;
    });
    assert.equal(item?.txid, published.txid);
    assert.equal(item?.publisher, addressB);
    assert.deepEqual(item?.data, { from: 'organisation B' });

    assert.equal(((await fetchRpc(a, 'listpermissions', ['obligations.write', addressB])) as unknown[]).length, 1, 'granted, as A sees it');
    const revoked = grant('revoke', addressB);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.deepEqual(
      revoked.stdout.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ')),
      ['revoke domains.write', 'revoke obligations.write', 'revoke settlements.write', 'revoke connect,send,receive'],
    );
    // on the admin's node every permission of B is gone once the revokes are in a block (2 s blocks)
    for (const kind of ['connect', 'send', 'receive', 'domains.write', 'obligations.write', 'settlements.write']) {
      await until(`B's ${kind} revoked on A`, async () => ((await fetchRpc(a, 'listpermissions', [kind, addressB])) as unknown[]).length === 0, 30_000, 250);
    }
  });

  it('both MultiChain entrypoints exit 0 on SIGTERM after stopping their node cleanly', async () => {
    for (const [node, env] of [
      [nodeB, b],
      [nodeA, a],
    ] as const) {
      const exit = await node.terminate();
      assert.deepEqual(exit, { code: 0, signal: null }, node.output.slice(-800));
      await assert.rejects(fetchRpc(env, 'getinfo'), 'the node is down');
    }
  });
});

describe('the bitcoind container entrypoint on the real binary', () => {
  const { it, after } = skippable(missingNodes([...BITCOIN_BINARIES, 'bitcoin-cli']));
  let dir: string | undefined;
  let node: Entrypoint | undefined;
  after(async () => {
    await node?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts regtest, creates the wallet, mines 101 blocks, and exits 0 on SIGTERM after a clean shutdown', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-bitcoind-entrypoint-'));
    node = new Entrypoint(BITCOIND_ENTRYPOINT, (await bitcoindContainer(dir)).env);
    await node.waitFor(/regtest initialised: 101 blocks mined to wallet oc/);
    const exit = await node.terminate();
    assert.deepEqual(exit, { code: 0, signal: null }, node.output.slice(-800));
    assert.match(node.output, /Shutdown done/);
  });
});
