/**
 * End to end: real aws-iot-device-sdk-v2 devices on the embedded broker trade
 * with the real handlers; the paying domain's reputation rises, the domain that
 * never pays is refused once it falls below the providers' threshold, and
 * nothing is lost: every accepted obligation is on the ledger once and ends
 * fulfilled or defaulted, and the counters equal the ledger's recomputation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLink } from '../../devices/link.ts';
import { DEFAULT_FLEET, Fleet } from '../../devices/fleet.ts';
import { recomputeFromLedger } from '../../service/reputation.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { DEFAULT_PRICES } from '../../service/domains.ts';

/** Rounds of purchases: every consumer device buys once per round. */
const ROUNDS = 12;

describe('fleet of SDK devices on the embedded cloud', () => {
  let cloud: LocalCloud;
  let fleet: Fleet;
  before(async () => {
    cloud = await startCloud({
      schedule: { publish: 100, watch: 150, settle: 300, mine: 150 },
      // Credit never binds here: the defaulter's purchases over the whole run
      // (at most ROUNDS × 2 devices × the highest price) stay below its base credit, so the only
      // thing that can stop it is its reputation. With the default base (50 000)
      // its credit ran out at the eighth round, and whether its reputation had
      // fallen by then was a race with the watcher's lag on a loaded machine.
      env: { CREDIT_BASE: String(ROUNDS * 2 * Math.max(...Object.values(DEFAULT_PRICES)) + 1) },
    });
    fleet = new Fleet(
      {
        ...DEFAULT_FLEET,
        consumers: 2,
        devicesPerConsumer: 2,
        providers: 1,
        devicesPerProvider: 2,
        defaulterShare: 0.5,
        rounds: ROUNDS,
        roundMs: 350,
        payWindowMs: 4_000, // settle runs every 300 ms; room for a loaded machine (a paying domain must never default)
        seed: 7,
      },
      {
        api: cloud.api,
        link: (thing, keys) => createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing, privateKey: keys.privateKey }),
        registerThing: (thing, domain, key) => cloud.registerThing(thing, domain, key),
        fund: (domain) => cloud.fund(domain),
      },
    );
    await fleet.setUp();
    await fleet.run();
    // drain: let every obligation reach its end
    const deadline = Date.now() + 20_000;
    for (;;) {
      const open = (await cloud.deps.store.listByProvider('p1')).filter((o) => o.status === 'accepted' || o.status === 'settling');
      if (open.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await cloud.runJob('publish');
  });
  after(async () => {
    await fleet?.close();
    await cloud?.stop();
  });

  it('accepts the paying domain every time; one hub earns it no reputation from its own providers', async () => {
    const c1 = fleet.reports.get('c1');
    assert.ok(c1);
    assert.equal(c1.accepted, ROUNDS * 2, JSON.stringify(c1));
    const rep = await cloud.deps.store.getCounters('c1');
    assert.equal(rep.outstanding, 0);
    const view = await cloud.call<{ reputation: number }>('GET', '/domains/c1/reputation');
    // every provider is hosted by the same hub (one operator): evidence weight 0 (README, Sybil guard)
    assert.equal(view.body.reputation, 0.5, `c1 reputation ${view.body.reputation}`);
  });

  it('refuses the domain that never pays once its reputation is below the threshold', async () => {
    const c2 = fleet.reports.get('c2');
    assert.ok(c2);
    assert.ok(c2.accepted > 0, 'it was trusted at first');
    assert.ok((c2.refused['T01_REPUTATION_TOO_LOW'] ?? 0) > 0, JSON.stringify(c2.refused));
    const view = await cloud.call<{ reputation: number }>('GET', '/domains/c2/reputation');
    assert.ok(view.body.reputation < DEFAULT_FLEET.threshold, `c2 reputation ${view.body.reputation}`);
    // once refused for reputation, never accepted again in this run
    const firstRefusal = fleet.results.find((r) => r.consumer === 'c2' && !r.ok && r.error.code === 'T01_REPUTATION_TOO_LOW');
    assert.ok(firstRefusal);
    assert.ok(!fleet.results.some((r) => r.consumer === 'c2' && r.ok && r.round > firstRefusal.round));
  });

  it('loses nothing: each accepted obligation is on the ledger once, stored once, and ended', async () => {
    const accepted = fleet.results.filter((r) => r.ok).map((r) => (r.ok ? r.obligationId : ''));
    assert.equal(new Set(accepted).size, accepted.length);
    for (const id of accepted) {
      assert.equal((await cloud.deps.ledger.listByKey('obligations', id)).length, 1, `on ledger once: ${id}`);
      const item = await cloud.deps.store.getObligation(id);
      assert.ok(item && (item.status === 'fulfilled' || item.status === 'defaulted'), `${id} is ${item?.status}`);
    }
    const stored = await cloud.deps.store.listByProvider('p1');
    assert.equal(stored.length, accepted.length);
    const delivered = fleet.providers.flatMap((p) => p.devices).reduce((n, d) => n + d.delivered.size, 0);
    assert.equal(delivered, accepted.length, 'every accepted obligation was granted to its provider device');
  });

  it('keeps counters equal to a recomputation from the ledger alone', async () => {
    const ledger = await recomputeFromLedger(cloud.deps);
    for (const d of ['c1', 'c2']) {
      const c = await cloud.deps.store.getCounters(d);
      const l = ledger.get(d);
      assert.ok(l, d);
      assert.ok(Math.abs(l.rScaled - c.rScaled) <= 1e-9 * Math.max(1, c.rScaled), `${d} r`);
      assert.ok(Math.abs(l.sScaled - c.sScaled) <= 1e-9 * Math.max(1, c.sScaled), `${d} s`);
      assert.equal(l.paidVolume, c.paidVolume, `${d} paid volume`);
    }
  });
});
