/**
 * End to end across hubs: three independent hubs in one process share only the
 * embedded ledger network (items reach the other hubs after a delay) and the
 * regtest Bitcoin network. Consumer domains are hosted at one hub and buy, with
 * real SDK devices, only from provider domains hosted at the others, through
 * those hubs' HTTP API. Each hub's ledger follower learns what the others did:
 * the consumer's hub settles obligations accepted elsewhere, the provider's hub
 * sees the payment, and every hub ends with the same reputation for a domain.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FLEET, Fleet } from '../../devices/fleet.ts';
import { hubEnv, startFederation, type Federation } from '../../local/federation.ts';
import { catchUpFollowers, drainFederation, federationReport, type FederationReport } from '../../local/federation-report.ts';

const TOLERANCE = 0.05;


describe('a federation of three hubs', () => {
  let fed: Federation;
  let fleet: Fleet;
  let report: FederationReport;
  let open: number;

  before(async () => {
    fed = await startFederation({
      hubs: 3,
      ledgerDelayMs: 100,
      schedule: { publish: 200, watch: 300, settle: 500, follow: 250, mine: 250 },
    });
    // c1@hub-1 and c2@hub-2 pay, c3@hub-3 never does; p1@hub-3, p2@hub-1:
    // c1 buys from p1, c2 from p1 and p2, c3 from p2 — every purchase crosses hubs.
    fleet = new Fleet(
      {
        ...DEFAULT_FLEET,
        consumers: 3,
        devicesPerConsumer: 1,
        providers: 2,
        devicesPerProvider: 1,
        defaulterShare: 1 / 3,
        rounds: 4,
        roundMs: 400,
        // A cross-hub payment takes publish + propagation + follow + settle +
        // a block + watch, all hubs on one event loop: 8–15 s on a loaded
        // 2-core machine. The provider's hub gives no grace for a foreign
        // settlement in progress (it never sees the obligation "settling"),
        // so the payment must confirm before dueBy: a generous window.
        payWindowMs: 30_000,
        seed: 11,
      },
      { ...hubEnv(fed.hubs[0]!), hubs: fed.hubs.map(hubEnv) },
    );
    await fleet.setUp();
    await fleet.run();
    open = await drainFederation(fed, fleet, 80_000);
    // the last outcomes reach every node, and every follower folds them in
    await catchUpFollowers(fed, 100);
    report = await federationReport(fed, fleet);
  });
  after(async () => {
    await fleet?.close();
    await fed?.stop();
  });

  it('hosts each domain at one hub and trades only across hubs', () => {
    assert.deepEqual(
      fleet.consumers.map((c) => [c.domain, c.hub]),
      [['c1', 0], ['c2', 1], ['c3', 2]],
    );
    assert.deepEqual(
      fleet.providers.map((p) => [p.domain, p.hub]),
      [['p1', 2], ['p2', 0]],
    );
    assert.ok(fleet.results.length > 0);
    assert.ok(fleet.results.every((r) => r.crossHub), 'every purchase crossed hubs');
  });

  it('accepts obligations across hubs, each once on every hub’s ledger node, granted to the provider device', () => {
    const accepted = fleet.results.filter((r) => r.ok);
    assert.ok(accepted.length > 0, JSON.stringify(fleet.results.slice(0, 3)));
    for (const d of ['c1', 'c2']) {
      assert.ok(accepted.some((r) => r.consumer === d), `${d} had obligations accepted`);
    }
    assert.equal(report.onEveryNodeOnce, report.accepted);
    const delivered = fleet.providers.flatMap((p) => p.devices).reduce((n, d) => n + d.delivered.size, 0);
    assert.equal(delivered, accepted.length, 'each acceptance was granted over the provider hub’s MQTT');
    assert.equal(
      report.consumers.reduce((n, c) => n + c.cross.accepted, 0),
      accepted.length,
      'the provider hubs recorded every acceptance the devices saw',
    );
  });

  it('ends every obligation: fulfilled for the paying domains, defaulted for the one that never pays', () => {
    assert.equal(open, 0);
    for (const c of report.consumers) {
      const x = c.cross;
      assert.equal(x.fulfilled + x.defaulted, x.accepted, `${c.domain} ended ${JSON.stringify(x)}`);
      if (c.defaulter) assert.equal(x.fulfilled, 0, `${c.domain} never pays`);
      else assert.equal(x.fulfilled, x.accepted, `${c.domain} pays for everything: ${JSON.stringify(x)}`);
    }
  });

  it('every hub computes the same reputation for a domain, equal to its own recomputation from the ledger', () => {
    for (const c of report.consumers) {
      const spread = Math.max(...c.reputationAt) - Math.min(...c.reputationAt);
      assert.ok(spread <= TOLERANCE, `${c.domain} at the hubs: ${c.reputationAt.join(', ')}`);
      assert.deepEqual(c.ledgerAgreesAt, [true, true, true], `${c.domain}: counters = ledger at each hub`);
    }
    const byDomain = new Map(report.consumers.map((c) => [c.domain, c]));
    for (const d of ['c1', 'c2']) assert.ok(Math.min(...byDomain.get(d)!.reputationAt) > 0.5, `${d} rose everywhere`);
    assert.ok(Math.max(...byDomain.get('c3')!.reputationAt) < 0.5, 'c3 fell everywhere');
  });

  it('each follower learns every obligation accepted at the other hubs, and its outcome', () => {
    // each obligation is accepted at its provider's hub and learnt by the two others
    const learnt = report.hubs.reduce((n, h) => n + (h.follow.obligations ?? 0), 0);
    assert.equal(learnt, 2 * report.accepted, JSON.stringify(report.hubs.map((h) => h.follow)));
    for (const h of report.hubs) assert.equal(h.follow.outcomes ?? 0, h.follow.obligations ?? 0, `${h.publisher}: ${JSON.stringify(h.follow)}`);
  });

  it('skips no valid record: the followers count no invalid items', () => {
    for (const h of report.hubs) assert.equal(h.follow.invalid ?? 0, 0, `${h.publisher}: ${JSON.stringify(h.follow)}`);
    assert.ok(report.hubs.every((h) => h.ruleFailures === 0));
  });
});
