/**
 * The three-hub federation of test/integration/federation.test.ts on real
 * infrastructure: each hub on its own MultiChain 2.3.3 node (one chain of
 * three, through MultiChainLedger) and all hubs on one real regtest bitcoind
 * (BITCOIN_KIND=bitcoind, through the bitcoind adapter; `fund` and `mine` are
 * generatetoaddress on it). Jobs run by hand, so every step is observable;
 * propagation is awaited by polling, not sleeping.
 *
 *   hub 1 hosts consumers c1 (pays) and c2 (never pays); hubs 2 and 3 host
 *   providers p2 and p3. c1's and c2's devices buy at hubs 2 and 3 over their
 *   HTTP APIs; hub 1 learns those obligations only through its follower and
 *   pays c1's; hubs 2 and 3 fulfil or default them; every hub applies every
 *   outcome.
 *
 * Then c1 rotates its domain key: the rotation reaches every hub through its own
 * node, c1's old credential is refused there, a renewed one buys, and what each
 * key signed (an obligation accepted before and published after, the settlement
 * record after) verifies everywhere.
 *
 * Mid-run, hub 3's MultiChain node is stopped (SIGTERM to its process) for
 * ~30 s while c1 keeps buying at hubs 2 and 3. Afterwards nothing is lost:
 * every obligation is on the ledger once, every one ended, hub 3's node caught
 * up, and all hubs compute the same reputations, equal to a recomputation from
 * the ledger. The outcome-propagation lag (an outcome published at one hub →
 * applied by another hub's follower) is measured and printed.
 *
 * A second suite runs the same scenario on embedded ledger nodes and the real
 * bitcoind (the ledger outage is then the embedded node's), so the bitcoind
 * side of the federation runs where only bitcoind is at hand.
 *
 * Skipped, saying why, without OC_NODES_BIN or without the binaries each needs.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext } from 'node:test';
import { EmbeddedLedgerNetwork, type EmbeddedLedger } from '../../adapters/ledger/embedded.ts';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import { STREAMS, type Ledger } from '../../adapters/ports.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import { startFederationOn, type FederationOn } from '../../local/federation.ts';
import { createRenewalRequest } from '../../core/records.ts';
import type { DeviceCredential, KeyRotationBody, Signed } from '../../core/types.ts';
import { domainKey, rotationKey } from '../../service/directory.ts';
import { FOLLOWER_WALLET, followLedger } from '../../service/follow.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import { publishPending } from '../../service/publish.ts';
import { watchAll } from '../../service/watch.ts';
import { buy, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { skippable, type Skippable } from '../skippable.ts';
import { BITCOIN_BINARIES, Bitcoind, MULTICHAIN_BINARIES, MultiChain, missingNodes, sleep, until } from './harness.ts';

type Rep = { reputation: number; outstanding: number; paidVolume: number; rScaled: number; sScaled: number };

/** The ledger side of one run: a ledger per hub, and how to take hub i's ledger node down and back. */
interface LedgerInfra {
  ledgers: Ledger[];
  /** Take hub i's ledger node down (its process stopped, or the embedded node unavailable). */
  down(i: number): Promise<void>;
  /** Bring it back; resolves once it runs (catching up is measured by the test). */
  up(i: number): Promise<void>;
  /** Whether hub i's node is up (the test reads only running nodes). */
  isUp(i: number): boolean;
  stop(): Promise<void>;
}

const multichainInfra = async (): Promise<LedgerInfra> => {
  const opts = (node: MultiChain['nodes'][number], chain: string) => ({
    url: node.url,
    user: node.endpoint.username,
    password: node.endpoint.password,
    chainName: chain,
  });
  const chain = await MultiChain.start({
    nodes: 3,
    streams: STREAMS,
    onFirstNode: async (node) => new MultiChainLedger(opts(node, node.chain)).ensureStreams(),
  });
  const ledgers = chain.nodes.map((n) => new MultiChainLedger(opts(n, chain.name)));
  for (const l of ledgers) await l.ensureStreams();
  return {
    ledgers,
    down: (i) => chain.stopNode(i, 'SIGTERM'),
    up: (i) => chain.restartNode(i),
    isUp: (i) => chain.node(i).alive,
    stop: async () => {
      for (const l of ledgers) await l.close();
      await chain.stop();
    },
  };
};

const embeddedInfra = async (): Promise<LedgerInfra> => {
  const network = new EmbeddedLedgerNetwork({ delayMs: 30 });
  const ledgers: EmbeddedLedger[] = [0, 1, 2].map((i) => network.node(`hub-${i + 1}`));
  return {
    ledgers,
    down: async (i) => ledgers[i]?.setAvailable(false),
    up: async (i) => ledgers[i]?.setAvailable(true),
    isUp: (i) => ledgers[i]?.available ?? false,
    stop: () => network.close(),
  };
};

function scenario(name: string, t: Skippable, makeInfra: () => Promise<LedgerInfra>, outageMs: number): void {
  const { it, before, after } = t;
  describe(name, () => {
    let bitcoind: Bitcoind;
    let infra: LedgerInfra;
    let fed: FederationOn;
    let hub1: LocalCloud;
    let hub2: LocalCloud;
    let hub3: LocalCloud;
    let c1: TestDevice;
    let c2: TestDevice;
    /** Every obligation accepted anywhere: id → provider hub index. */
    const accepted = new Map<string, number>();
    const lags: { from: number; to: number; ms: number }[] = [];
    const timings: Record<string, number> = {};

    const rep = async (hub: LocalCloud, d: string) => (await hub.call<Rep>('GET', `/domains/${d}/reputation`)).body;
    const obligationsAt = async (hub: LocalCloud, d: string) =>
      (await hub.call<{ obligations: { id: string; status: string }[] }>('GET', `/domains/${d}/obligations`)).body.obligations;
    const statusAt = async (hub: LocalCloud, id: string) => {
      for (const d of ['c1', 'c2']) {
        const found = (await obligationsAt(hub, d)).find((o) => o.id === id);
        if (found) return found.status;
      }
      return undefined;
    };
    const ended = (s: string | undefined) => s === 'fulfilled' || s === 'defaulted';
    const up = (i: number) => infra.isUp(i);
    /** Until every running node lists an item under each key. */
    const onEveryNode = (keys: string[], stream: 'obligations' | 'domains' = 'obligations') =>
      until(
        `${keys.length} key(s) on every running node`,
        async () => {
          for (const [i, l] of infra.ledgers.entries()) {
            if (!up(i)) continue;
            for (const k of keys) if ((await l.listByKey(stream, k)).length === 0) return false;
          }
          return true;
        },
        60_000,
        100,
      );
    const purchase = async (hub: LocalCloud, hubIndex: number, dev: TestDevice, provider: string, dueInMs: number) => {
      const { ob, res } = await buy(hub, dev, provider, `${provider}-spd-1`, { dueInMs });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      accepted.set(ob.id, hubIndex);
      return ob.id;
    };
    const publishAt = async (hub: LocalCloud) => hub.invoke(() => publishPending(hub.deps));
    const followAt = async (hub: LocalCloud) => hub.invoke(() => followLedger(hub.deps));
    const settleC1 = async () => {
      const settled = await hub1.call<{ settlements: { obligations: number }[] }>('POST', '/domains/c1/settlements', {});
      assert.equal(settled.status, 200, JSON.stringify(settled.body));
      return settled.body.settlements.reduce((n, s) => n + s.obligations, 0);
    };
    /**
     * Outcomes just published at hub `from` for `ids`: run the other running
     * hubs' followers until each shows every id ended; record each lag.
     */
    const measureOutcomeLag = async (from: number, ids: string[], publishedAt: number) => {
      const waiting = new Set(fed.hubs.map((_, i) => i).filter((i) => i !== from && up(i)));
      await until(
        `outcomes from hub ${from + 1} applied at hubs ${[...waiting].map((i) => i + 1).join(', ')}`,
        async () => {
          for (const i of [...waiting]) {
            const hub = fed.hubs[i] as LocalCloud;
            await followAt(hub);
            const done = (await Promise.all(ids.map((id) => statusAt(hub, id)))).every(ended);
            if (done) {
              lags.push({ from: from + 1, to: i + 1, ms: Date.now() - publishedAt });
              waiting.delete(i);
            }
          }
          return waiting.size === 0;
        },
        60_000,
        50,
      );
    };
    const providerIds = (hubIndex: number) => [...accepted].filter(([, h]) => h === hubIndex).map(([id]) => id);

    before(async () => {
      const t0 = Date.now();
      bitcoind = await Bitcoind.start();
      infra = await makeInfra();
      timings.startNodesMs = Date.now() - t0;
      fed = await startFederationOn(
        { schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 }, env: { SETTLEMENT_GRACE_MS: '1000' } },
        { ledgers: infra.ledgers, bitcoin: bitcoind.asRegtest() },
      );
      [hub1, hub2, hub3] = fed.hubs as [LocalCloud, LocalCloud, LocalCloud];
      await registerDomain(hub1, 'c1', 'consumer');
      await registerDomain(hub1, 'c2', 'consumer', { autoSettle: false });
      await registerDomain(hub2, 'p2', 'provider', { threshold: 0.3 });
      await registerDomain(hub3, 'p3', 'provider', { threshold: 0.3 });
      await hub1.fund('c1'); // generatetoaddress to c1's wallet, then 100 blocks: mature
      c1 = await enrol(hub1, 'c1', 'c1-d1');
      c2 = await enrol(hub1, 'c2', 'c2-d1');
      await onEveryNode(['c1', 'c2', 'p2', 'p3'].map(domainKey), 'domains');
      timings.setupMs = Date.now() - t0;
    });
    after(async () => {
      await fed?.stop();
      await infra?.stop();
      await bitcoind?.stop();
    });

    it('hub publishers are their nodes\' own addresses, and each hub\'s wallet is on the one real bitcoind', async () => {
      const ids = await Promise.all(infra.ledgers.map((l) => l.identity()));
      assert.equal(new Set(ids).size, 3);
      for (const [i, id] of ids.entries()) assert.equal(fed.publisher(i), id);
      assert.equal(hub1.env.BITCOIN_KIND, 'bitcoind');
      const wallets = await bitcoind.rpc<string[]>('listwallets');
      assert.ok(wallets.includes('oc-c1') && wallets.includes('oc-p2') && wallets.includes('oc-p3'), JSON.stringify(wallets));
      const balance = await bitcoind.rpc<{ mine: { trusted: number } }>('getbalances', [], 'oc-c1');
      assert.ok(balance.mine.trusted >= 50, `c1 is funded with mature coins: ${JSON.stringify(balance)}`);
    });

    it('accepts across hubs; hub 1 learns the obligations from its node and pays c1\'s; the providers fulfil them; outcomes reach every hub', async () => {
      const a = await purchase(hub2, 1, c1, 'p2', 600_000);
      const b = await purchase(hub3, 2, c1, 'p3', 600_000);
      await purchase(hub3, 2, c2, 'p3', 1_500); // c2 never pays: defaulted later
      for (const h of fed.hubs) assert.equal((await publishAt(h)).deferred, false);
      await onEveryNode([...accepted.keys()]);
      const followed = await followAt(hub1);
      assert.equal(followed.obligations, 3, JSON.stringify(followed));
      assert.equal(followed.invalid, 0);
      assert.equal((await rep(hub1, 'c1')).outstanding, 2 * 2_000);
      assert.equal(await settleC1(), 2);
      await bitcoind.mine(1);
      // the providers see the settlement records through their own nodes, and the confirmed payment through bitcoind
      await until('the providers fulfil', async () => {
        await hub2.runJob('watch');
        await hub3.runJob('watch');
        return (await statusAt(hub2, a)) === 'fulfilled' && (await statusAt(hub3, b)) === 'fulfilled';
      });
      let at = Date.now();
      assert.equal((await publishAt(hub2)).outcomes, 1);
      await measureOutcomeLag(1, [a], at);
      at = Date.now();
      assert.ok((await publishAt(hub3)).outcomes >= 1); // c2's default too, if it is already past due and grace
      await measureOutcomeLag(2, [b], at);
    });

    it('c1 rotates its key: every hub follows it from its own node; the old credential is refused, the renewed one buys; what either key signed verifies everywhere', async () => {
      // accepted with the old key's credential, published only after the rotation
      const before = await purchase(hub3, 2, c1, 'p3', 600_000);
      const rotated = await hub1.call<{ rotation: Signed<KeyRotationBody> }>('POST', '/domains/c1/key-rotation', {});
      assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
      const seq = rotated.body.rotation.body.seq;
      await onEveryNode([rotationKey('c1', seq)], 'domains');
      for (const h of [hub2, hub3]) {
        const followed = await followAt(h);
        assert.equal(followed.rotations, 1, JSON.stringify(followed));
        assert.equal(followed.invalid, 0, JSON.stringify(followed));
      }
      await assert.rejects(buy(hub2, c1, 'p2', 'p2-spd-1', { dueInMs: 600_000 }), /F02_BAD_CREDENTIAL/, 'no offer for the old credential');
      const renewed = await hub1.call<{ credential: Signed<DeviceCredential> }>('POST', '/domains/c1/devices/c1-d1/renewal', {
        request: createRenewalRequest({ domain: 'c1', deviceId: 'c1-d1', at: Date.now() }, c1.keys.privateKey),
      });
      assert.equal(renewed.status, 201, JSON.stringify(renewed.body));
      c1.credential = renewed.body.credential;
      const after = await purchase(hub2, 1, c1, 'p2', 600_000);
      for (const h of [hub2, hub3]) assert.equal((await publishAt(h)).published, 1);
      await onEveryNode([before, after]);
      const learnt = await followAt(hub1);
      assert.equal(learnt.obligations, 2, JSON.stringify(learnt));
      assert.equal(learnt.invalid, 0, JSON.stringify(learnt));
      // the settlement record is signed with the new key: the providers' watchers verify it and fulfil
      assert.equal(await settleC1(), 2);
      await bitcoind.mine(1);
      await until('the providers fulfil after the rotation', async () => {
        await hub2.runJob('watch');
        await hub3.runJob('watch');
        return (await statusAt(hub2, after)) === 'fulfilled' && (await statusAt(hub3, before)) === 'fulfilled';
      });
      const at = Date.now();
      assert.equal((await publishAt(hub2)).outcomes, 1);
      await measureOutcomeLag(1, [after], at);
    });

    it(`keeps working while hub 3's ledger node is down (~${Math.round(outageMs / 1000)} s): accepts, defers, and loses nothing`, async () => {
      const downAt = Date.now();
      await infra.down(2);
      // acceptance never waits for the ledger
      const during3 = await purchase(hub3, 2, c1, 'p3', 600_000);
      const during2 = await purchase(hub2, 1, c1, 'p2', 600_000);
      const deferred = await publishAt(hub3);
      assert.equal(deferred.deferred, true, JSON.stringify(deferred));
      assert.equal(deferred.published, 0);
      assert.ok((await followAt(hub3)).deferred, 'the follower stops where it is');
      const watched = await hub3.invoke(() => watchAll(hub3.deps));
      assert.ok(watched.some((w) => w.deferred !== undefined), JSON.stringify(watched));
      // the rest of the federation goes on
      assert.equal((await publishAt(hub2)).published, 1);
      await onEveryNode([during2]);
      const learnt = await followAt(hub1);
      assert.equal(learnt.obligations, 1, JSON.stringify(learnt));
      assert.equal(await settleC1(), 1);
      await bitcoind.mine(1);
      await until('hub 2 fulfils during the outage', async () => {
        await hub2.runJob('watch');
        return (await statusAt(hub2, during2)) === 'fulfilled';
      });
      const at = Date.now();
      assert.equal((await publishAt(hub2)).outcomes, 1);
      await measureOutcomeLag(1, [during2], at);
      assert.equal(await statusAt(hub1, during3), undefined, 'hub 1 cannot know yet what hub 3 accepted');

      const rest = outageMs - (Date.now() - downAt);
      if (rest > 0) await sleep(rest);
      timings.outageMs = Date.now() - downAt;
      const upAt = Date.now();
      await infra.up(2);
      // caught up: node 3 lists everything the others list
      const count = async (i: number) => (await Promise.all(STREAMS.map((s) => infra.ledgers[i]?.list(s) ?? []))).map((x) => x.length);
      await until('hub 3\'s node caught up', async () => JSON.stringify(await count(2)) === JSON.stringify(await count(0)), 60_000, 100);
      timings.catchUpMs = Date.now() - upAt;

      // what hub 3 accepted meanwhile goes out now, once
      const published = await publishAt(hub3);
      assert.equal(published.deferred, false, JSON.stringify(published));
      assert.equal(published.published, 1);
      await onEveryNode([during3]);
      assert.equal((await followAt(hub1)).obligations, 1);
      assert.equal(await settleC1(), 1);
      await bitcoind.mine(1);
    });

    it('afterwards every obligation ends, each once on every node, and outcomes reach every hub', async () => {
      await until('hub 3 fulfils c1\'s and defaults c2\'s', async () => {
        await hub3.runJob('watch');
        const s = await Promise.all(providerIds(2).map((id) => statusAt(hub3, id)));
        return s.every(ended);
      });
      const at = Date.now();
      const out = await publishAt(hub3);
      assert.ok(out.outcomes >= 1, JSON.stringify(out)); // the outage-time obligation (and c2's default unless already out)
      await measureOutcomeLag(2, providerIds(2), at);
      for (const h of fed.hubs) {
        const p = await publishAt(h);
        assert.equal(p.published + p.outcomes, 0, 'nothing left to publish');
      }
      assert.equal(accepted.size, 7);
      for (const [i, l] of infra.ledgers.entries()) {
        for (const id of accepted.keys()) {
          assert.equal((await l.listByKey('obligations', ledgerKeys.obligation(id))).length, 1, `obligation ${id} once on node ${i + 1}`);
          assert.equal((await l.listByKey('obligations', ledgerKeys.outcome(id))).length, 1, `outcome of ${id} once on node ${i + 1}`);
        }
      }
      // hub 3 learns, through its caught-up node, what was decided while it was down
      const sinceUp = Date.now();
      await until('every obligation ended at every hub', async () => {
        for (const h of fed.hubs) await followAt(h);
        for (const h of fed.hubs) for (const [id] of accepted) if (!ended(await statusAt(h, id))) return false;
        return true;
      });
      timings.hub3AppliedMissedMs = Date.now() - sinceUp;
      // the followers checked other hubs' payment claims on the node (getrawtransaction), with no wallet of their own
      assert.ok(!(await bitcoind.rpc<string[]>('listwallets')).includes(FOLLOWER_WALLET), 'no follower wallet');
      assert.deepEqual((await obligationsAt(hub1, 'c1')).map((o) => o.status), Array(6).fill('fulfilled'));
      assert.deepEqual((await obligationsAt(hub1, 'c2')).map((o) => o.status), ['defaulted']);
    });

    it('reputations converge across hubs, and each hub\'s counters equal a recomputation from its own node', async (t: TestContext) => {
      for (const h of fed.hubs) await followAt(h); // one more pass: nothing new
      for (const d of ['c1', 'c2']) {
        const views = await Promise.all(fed.hubs.map((h) => rep(h, d)));
        const first = views[0];
        assert.ok(first);
        for (const v of views) {
          assert.ok(Math.abs(v.rScaled - first.rScaled) <= 1e-9 * Math.max(1, first.rScaled), `${d} rScaled at every hub: ${JSON.stringify(views)}`);
          assert.ok(Math.abs(v.sScaled - first.sScaled) <= 1e-9 * Math.max(1, first.sScaled), `${d} sScaled at every hub`);
          assert.ok(Math.abs(v.reputation - first.reputation) < 1e-6, `${d}: ${JSON.stringify(views.map((x) => x.reputation))}`);
          assert.equal(v.outstanding, 0);
          assert.equal(v.paidVolume, first.paidVolume);
        }
      }
      // only hub 1's consumers pay p2 and p3, so neither provider has standing yet (README,
      // Sybil guard): c1's fulfilled evidence is held back at every hub alike
      assert.equal((await rep(hub1, 'c1')).reputation, 0.5, 'no third-hub payer: no standing');
      assert.equal((await rep(hub1, 'c1')).paidVolume, 0);
      assert.ok((await rep(hub2, 'c2')).reputation < 0.5, 'a default elsewhere lowers it here');
      for (const h of fed.hubs) {
        const r = await h.call<Rep & { ledger: Rep & { fulfilled: number; defaulted: number } }>('GET', '/domains/c1/reputation/verify');
        assert.equal(r.body.ledger.fulfilled, 6);
        assert.ok(Math.abs(r.body.ledger.rScaled - r.body.rScaled) <= 1e-9 * Math.max(1, r.body.rScaled));
        assert.equal(r.body.ledger.paidVolume, r.body.paidVolume);
        assert.equal(h.followTotals.invalid ?? 0, 0);
      }
      const ms = lags.map((l) => l.ms).sort((x, y) => x - y);
      const line =
        `${name}: outcome propagation (publish at one hub → applied by another's follower) ` +
        `${lags.map((l) => `${l.from}→${l.to} ${l.ms} ms`).join(', ')}; median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms; ` +
        `timings ${JSON.stringify(timings)}`;
      t.diagnostic(line);
      console.log(line);
    });
  });
}

scenario(
  'three hubs, each on its own real MultiChain node, one real bitcoind; hub 3\'s node down ~30 s',
  skippable(missingNodes([...BITCOIN_BINARIES, ...MULTICHAIN_BINARIES])),
  multichainInfra,
  30_000,
);

scenario(
  'three hubs on embedded ledger nodes and one real bitcoind; hub 3\'s node down ~3 s',
  skippable(missingNodes(BITCOIN_BINARIES)),
  embeddedInfra,
  3_000,
);
