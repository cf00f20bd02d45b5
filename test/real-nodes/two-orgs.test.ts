/**
 * The two-organisation walkthrough of docs/deploy.md ("Two organisations on
 * one chain"), end to end on real binaries, through the container entrypoints
 * as ECS runs them:
 *
 *   - organisation A's MultiChain node is started by
 *     containers/multichain/entrypoint.sh in create mode; organisation B's by
 *     the same entrypoint with JOIN_CHAIN (it prints and stores its address
 *     and waits); A runs containers/multichain/grant.sh for that address and
 *     B's node starts for real;
 *   - one regtest bitcoind, started by containers/bitcoind/entrypoint.sh, is
 *     the Bitcoin network both organisations pay on;
 *   - hub A and hub B are the project's embedded back-ends (real handlers),
 *     each with its own DynamoDB store, each pointed by configuration alone
 *     (LEDGER_KIND=multichain, MULTICHAIN_RPC_URL…, as `npm start --multichain`
 *     builds it) at its OWN node, and both at the shared bitcoind;
 *   - both hubs publish; a consumer domain hosted at hub B buys from a
 *     provider hosted at hub A (the device talks to hub A's API); hub B learns
 *     the obligation from its own node, settles it on the shared regtest; hub
 *     A sees the payment and fulfils; hub B applies the outcome from the
 *     ledger; both hubs then hold the same reputation.
 *
 * Jobs run by hand, so every step is observable; propagation is awaited by
 * polling. Skipped, saying why, without OC_NODES_BIN.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import type { RegtestNode } from '../../local/bitcoin.ts';
import { connectBitcoind } from '../../local/bitcoind.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { multichainLedgerEnv } from '../../local/ledger-env.ts';
import { domainKey } from '../../service/directory.ts';
import { followLedger } from '../../service/follow.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import type { ChainMembership } from '../../service/chain.ts';
import { publishPending } from '../../service/publish.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { skippable } from '../skippable.ts';
import {
  BITCOIND_ENTRYPOINT,
  Entrypoint,
  MULTICHAIN_ENTRYPOINT,
  GRANTED_WRITES,
  bitcoindContainer,
  containerRpc,
  grantedOn,
  multichainContainer,
  runGrant,
  type MultichainContainer,
} from './containers.ts';
import { BITCOIN_BINARIES, MULTICHAIN_BINARIES, missingNodes, until } from './harness.ts';

type Rep = { reputation: number; outstanding: number; paidVolume: number; rScaled: number; sScaled: number };

describe('two organisations: B joins A\'s chain through the entrypoints and the grant script; a cross-hub purchase settles on a shared regtest', () => {
  const { it, before, after } = skippable(missingNodes([...BITCOIN_BINARIES, 'bitcoin-cli', ...MULTICHAIN_BINARIES, 'multichain-cli']));
  const chain = `oc${Math.random().toString(36).slice(2, 8)}`;
  const entrypoints: Entrypoint[] = [];
  const ledgers: MultiChainLedger[] = [];
  let root: string;
  let orgA: MultichainContainer;
  let orgB: MultichainContainer;
  let addressA: string;
  let addressB: string;
  let regtest: RegtestNode;
  let hubA: LocalCloud;
  let hubB: LocalCloud;
  let device: TestDevice;
  let lazyDevice: TestDevice;
  let obligation: string;
  let unpaid: string;
  let membershipA: ChainMembership;

  const start = (path: string, env: Record<string, string>) => {
    const e = new Entrypoint(path, env);
    entrypoints.push(e);
    return e;
  };
  /** The hub's configuration for its own node, as `npm start --multichain URL` builds it. */
  const ledgerEnvOf = (c: MultichainContainer) => multichainLedgerEnv(`http://oc:${c.password}@127.0.0.1:${c.rpcPort}/${chain}`, {});
  const ledgerOf = (c: MultichainContainer) => {
    const l = new MultiChainLedger({ url: `http://127.0.0.1:${c.rpcPort}/`, user: 'oc', password: c.password, chainName: chain, retries: 2 });
    ledgers.push(l);
    return l;
  };
  /** A domain's reputation at a hub, without the time of the answer. */
  const rep = async (hub: LocalCloud, d: string) => {
    const { at: _at, ...r } = (await hub.call<Rep & { at: string }>('GET', `/domains/${d}/reputation`)).body;
    return r;
  };
  const statusAt = async (hub: LocalCloud, d: string, id: string) =>
    (await hub.call<{ obligations: { id: string; status: string }[] }>('GET', `/domains/${d}/obligations`)).body.obligations.find((o) => o.id === id)?.status;
  const publishAt = (hub: LocalCloud) => hub.invoke(() => publishPending(hub.deps));
  const followAt = (hub: LocalCloud) => hub.invoke(() => followLedger(hub.deps));
  /** Until `ledger`'s node lists an item under `key`. */
  const onNode = (ledger: MultiChainLedger, stream: 'domains' | 'obligations' | 'settlements', key: string) =>
    until(`${key} in ${stream}`, async () => {
      const items = await ledger.listByKey(stream, key);
      return items.length > 0 ? items : undefined;
    }, 60_000, 200);

  /** Organisation `org`'s hub: its own store, configured for its own node and the shared bitcoind. */
  const hub = (org: MultichainContainer, env: Record<string, string> = {}) =>
    startCloud({
      regtest,
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: { SETTLEMENT_GRACE_MS: '1000', ...ledgerEnvOf(org), ...env },
    });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'oc-two-orgs-'));
    // the shared Bitcoin network: the bitcoind container on regtest (wallet oc, 101 blocks)
    const btcDir = join(root, 'bitcoind');
    await mkdir(btcDir);
    const btc = await bitcoindContainer(btcDir);
    await start(BITCOIND_ENTRYPOINT, btc.env).waitFor(/regtest initialised: 101 blocks mined to wallet oc/);
    regtest = await connectBitcoind(`http://${btc.user}:${btc.password}@127.0.0.1:${btc.rpcPort}`);

    // organisation A creates the chain, and runs its hub on its node
    orgA = await multichainContainer(root, 'org-a', chain, { TARGET_BLOCK_TIME: '2' });
    const nodeA = start(MULTICHAIN_ENTRYPOINT, orgA.env);
    [, addressA = ''] = await nodeA.waitFor(/chain \S+ ready, address ([1-9A-HJ-NP-Za-km-z]+),/);
    // on AWS MULTICHAIN_P2P_ENDPOINT is the P2P load balancer's host:port (lib/backend-stack.ts); here A's loopback port
    hubA = await hub(orgA, { MULTICHAIN_P2P_ENDPOINT: `127.0.0.1:${orgA.p2pPort}` });
    // A's admin reads what B needs from A's hub (docs/deploy.md step 3): the chain's name and where to join
    const asked = await hubA.call<ChainMembership>('GET', '/chain');
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    membershipA = asked.body;

    // organisation B's node joins through that endpoint, prints and stores its address, and waits for the grant
    orgB = await multichainContainer(root, 'org-b', membershipA.chainName, { GRANT_POLL: '1' });
    orgB.env.JOIN_CHAIN = membershipA.p2pEndpoint ?? 'no P2P endpoint';
    const nodeB = start(MULTICHAIN_ENTRYPOINT, orgB.env);
    [, addressB = ''] = await nodeB.waitFor(/node address ([1-9A-HJ-NP-Za-km-z]+): waiting for the chain's admin to run: grant\.sh grant/);
    assert.equal(readFileSync(join(orgB.dir, 'address'), 'utf8').trim(), addressB);
    // A's admin grants B's address (docs/deploy.md step 7)
    const granted = runGrant(orgA, 'grant', addressB);
    assert.equal(granted.status, 0, granted.stderr);
    await nodeB.waitFor(new RegExp(`chain ${chain} ready, address ${addressB}`));
    await grantedOn(orgB, addressB); // the stream-write grants may reach B's node a block after connect
    hubB = await hub(orgB);
  });
  after(async () => {
    await hubA?.stop();
    await hubB?.stop();
    for (const l of ledgers) await l.close();
    await Promise.all(entrypoints.map((e) => e.kill()));
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('GET /chain (admin) at each hub: its own node\'s address and permissions, the chain\'s parameters, A\'s P2P endpoint', async () => {
    const atB = await hubB.call<ChainMembership>('GET', '/chain');
    assert.equal(atB.status, 200, JSON.stringify(atB.body));
    for (const [m, address] of [
      [membershipA, addressA],
      [atB.body, addressB],
    ] as const) {
      assert.equal(m.kind, 'multichain');
      assert.equal(m.chainName, chain);
      assert.equal(m.address, address);
      assert.equal(m.params['chain-name'], chain);
      assert.equal(m.params['default-network-port'], orgA.p2pPort, 'the creator\'s port is the chain\'s default');
      assert.equal(m.params['anyone-can-connect'], false, 'a closed chain');
      assert.equal(m.params['protocol-version'], m.node.protocolVersion);
      assert.match(String(m.params['chain-params-hash']), /^[0-9a-f]{64}$/);
    }
    assert.equal(atB.body.params['chain-params-hash'], membershipA.params['chain-params-hash'], 'one chain');
    assert.equal(atB.body.params['genesis-hash'], membershipA.params['genesis-hash']);
    assert.equal(membershipA.p2pEndpoint, `127.0.0.1:${orgA.p2pPort}`);
    assert.equal(atB.body.p2pEndpoint, null, 'B admits nobody');
    assert.equal(membershipA.node.nodeAddress, `${chain}@127.0.0.1:${orgA.p2pPort}`);
    // the creator holds every global permission; B exactly what grant.sh granted
    for (const p of ['admin', 'connect', 'create', 'mine', 'send', 'receive', 'domains.write']) assert.ok(membershipA.permissions.includes(p), `A holds ${p}: ${membershipA.permissions.join(',')}`);
    assert.deepEqual(atB.body.permissions, ['connect', 'domains.write', 'obligations.write', 'receive', 'send', 'settlements.write']);
  });

  it('each hub publishes from its own node\'s address; each sees the other\'s domain through its own node', async () => {
    assert.equal(hubA.env.LEDGER_KIND, 'multichain');
    assert.equal(hubA.env.MULTICHAIN_RPC_URL, `http://127.0.0.1:${orgA.rpcPort}/`);
    assert.equal(hubB.env.MULTICHAIN_RPC_URL, `http://127.0.0.1:${orgB.rpcPort}/`);
    assert.equal(hubB.env.BITCOIN_KIND, 'bitcoind');
    assert.equal(await hubA.deps.ledger.identity(), addressA);
    assert.equal(await hubB.deps.ledger.identity(), addressB);
    await registerDomain(hubA, 'shop-a', 'provider', { threshold: 0.3 });
    await registerDomain(hubB, 'acme-b', 'consumer');
    await registerDomain(hubB, 'lazy-b', 'consumer', { autoSettle: false }); // never pays: defaulted at hub A
    const [onA, onB] = [ledgerOf(orgA), ledgerOf(orgB)];
    // B's record, published through B's node, read on A's node (and the reverse)
    const [acme] = await onNode(onA, 'domains', domainKey('acme-b'));
    const [shop] = await onNode(onB, 'domains', domainKey('shop-a'));
    assert.equal(acme?.publisher, addressB);
    assert.equal(shop?.publisher, addressA);
    await hubB.fund('acme-b'); // generatetoaddress on the shared bitcoind, then 100 blocks: mature
    device = await enrol(hubB, 'acme-b', 'acme-b-d1');
    lazyDevice = await enrol(hubB, 'lazy-b', 'lazy-b-d1');
    assert.ok((await followAt(hubA)).domains >= 1, 'hub A keeps acme-b\'s record');
  });

  it('a device of B\'s consumer buys from A\'s provider at hub A; hub B learns it from its node and pays it on the shared regtest', async () => {
    const { ob, res } = await buy(hubA, device, 'shop-a', 'shop-a-spd-1', { dueInMs: 600_000 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    obligation = ob.id;
    const late = await buy(hubA, lazyDevice, 'shop-a', 'shop-a-spd-1', { dueInMs: 1_500 });
    assert.equal(late.res.status, 201, JSON.stringify(late.res.body));
    unpaid = late.ob.id;
    assert.ok((await publishAt(hubA)).published >= 1);
    const ledgerB = ledgerOf(orgB);
    const [item] = await onNode(ledgerB, 'obligations', ledgerKeys.obligation(obligation));
    assert.equal(item?.publisher, addressA);
    await onNode(ledgerB, 'obligations', ledgerKeys.obligation(unpaid));
    const learnt = await followAt(hubB);
    assert.equal(learnt.obligations, 2, JSON.stringify(learnt));
    assert.equal(learnt.invalid, 0);
    assert.equal((await rep(hubB, 'acme-b')).outstanding, 2_000);
    const settled = await hubB.call<{ settlements: { obligations: number; txid: string }[] }>('POST', '/domains/acme-b/settlements', {});
    assert.equal(settled.status, 200, JSON.stringify(settled.body));
    assert.equal(settled.body.settlements.reduce((n, s) => n + s.obligations, 0), 1);
    // settle publishes its records itself, signed by acme-b, through B's node: A's node has them from B's address
    const records = await onNode(ledgerOf(orgA), 'settlements', ledgerKeys.consumer('acme-b'));
    assert.ok(records.every((r) => r.publisher === addressB), JSON.stringify(records.map((r) => r.publisher)));
    await regtest.mine(1);
  });

  it('hub A fulfils the paid one and defaults the other; hub B applies both outcomes from the ledger; both hubs hold the same reputations', async () => {
    await until('hub A fulfils acme-b\'s and defaults lazy-b\'s', async () => {
      await followAt(hubA); // B's settlement record, through A's node
      await hubA.runJob('watch'); // the confirmed payment, through the shared bitcoind; lazy-b past due and grace
      return (await statusAt(hubA, 'acme-b', obligation)) === 'fulfilled' && (await statusAt(hubA, 'lazy-b', unpaid)) === 'defaulted';
    }, 60_000, 250);
    assert.equal((await publishAt(hubA)).outcomes, 2);
    await until('hub B applies both outcomes', async () => {
      await followAt(hubB);
      return (await statusAt(hubB, 'acme-b', obligation)) === 'fulfilled' && (await statusAt(hubB, 'lazy-b', unpaid)) === 'defaulted';
    }, 60_000, 250);
    for (const d of ['acme-b', 'lazy-b']) {
      // the same counters at both hubs; the reputation read from them decays with the time of the read (1e-6)
      const [{ reputation: ra, ...a }, { reputation: rb, ...b }] = [await rep(hubA, d), await rep(hubB, d)];
      assert.deepEqual(b, a, `${d}: the same counters at both hubs`);
      assert.ok(Math.abs(ra - rb) < 1e-6, `${d}: the same reputation at both hubs (${ra}, ${rb})`);
    }
    assert.equal((await rep(hubA, 'acme-b')).outstanding, 0);
    assert.ok((await rep(hubB, 'lazy-b')).reputation < 0.5, 'the default decided at hub A lowers lazy-b at hub B');
    for (const hub of [hubA, hubB]) {
      const v = await hub.call<Rep & { ledger: Rep & { fulfilled: number } }>('GET', '/domains/acme-b/reputation/verify');
      assert.equal(v.body.ledger.fulfilled, 1);
      assert.ok(Math.abs(v.body.ledger.rScaled - v.body.rScaled) <= 1e-9 * Math.max(1, v.body.rScaled));
    }
  });
  it('POST /chain/members: hub A (the chain\'s admin node) revokes B, writes first, and grants it again; hub B\'s node, no admin, may not', async () => {
    const notAdmin = await hubB.call<{ error: { code: string } }>('POST', '/chain/members', { address: addressA, action: 'revoke' });
    assert.equal(notAdmin.status, 403, JSON.stringify(notAdmin.body));
    assert.equal(notAdmin.body.error.code, 'F08_FORBIDDEN');
    const permissionsOfB = async () => {
      const held: string[] = [];
      for (const kind of ['connect', 'send', 'receive', ...GRANTED_WRITES]) {
        if (((await containerRpc(orgA, 'listpermissions', [kind, addressB])) as unknown[]).length > 0) held.push(kind);
      }
      return held;
    };
    const change = async (action: 'grant' | 'revoke') => {
      const r = await hubA.call<{ address: string; action: string; transactions: { permission: string; txid: string }[] }>('POST', '/chain/members', { address: addressB, action });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.address, addressB);
      for (const t of r.body.transactions) assert.match(t.txid, /^[0-9a-f]{64}$/);
      return r.body.transactions.map((t) => t.permission);
    };
    assert.deepEqual(await change('revoke'), ['domains.write', 'obligations.write', 'settlements.write', 'connect,send,receive']);
    // on the admin's node every permission of B is gone once the revokes are in a block (2 s blocks)
    await until('B revoked on A\'s node', async () => (await permissionsOfB()).length === 0, 30_000, 250);
    assert.deepEqual(await change('grant'), ['connect,send,receive', 'domains.write', 'obligations.write', 'settlements.write']);
    await until('B granted again on A\'s node', async () => (await permissionsOfB()).length === 6, 30_000, 250);
  });
});
