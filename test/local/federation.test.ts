/**
 * The federation harness: hubs that share nothing but the chain. A domain
 * registered at one hub is known at the others only through the ledger, after
 * the propagation delay; each hub has its own table; a hub's ledger node can be
 * stopped and restarted.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFederation, type Federation } from '../../local/federation.ts';
import { catchUpFollowers } from '../../local/federation-report.ts';

const DELAY = 2_000;

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('federation of hubs', () => {
  let fed: Federation;
  before(async () => {
    // a delay long enough that a registration (ledger publish, then a wallet
    // and a reply) is answered well before the record reaches the other hub
    fed = await startFederation({ hubs: 2, ledgerDelayMs: DELAY, schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
  });
  after(async () => {
    await fed?.stop();
  });

  it('gives each hub its own API, broker, table and ledger publisher', () => {
    const [a, b] = fed.hubs;
    assert.ok(a && b);
    assert.notEqual(a.api, b.api);
    assert.notEqual(a.broker.port, b.broker.port);
    assert.notEqual(a.env.TABLE_NAME, b.env.TABLE_NAME);
    assert.equal(a.env.AWS_ENDPOINT_URL_DYNAMODB, b.env.AWS_ENDPOINT_URL_DYNAMODB, 'one dynalite server');
    // both hubs' stores reach it in-process (the SDK's transport plug-in), not over loopback HTTP
    const transport = a.dynamo.requestHandler;
    assert.ok(transport);
    assert.equal(b.dynamo.requestHandler, transport);
    for (const hub of [a, b]) assert.equal(hub.deps.store.doc.config.requestHandler, transport);
    assert.deepEqual([a.env.LEDGER_PUBLISHER, b.env.LEDGER_PUBLISHER], ['hub-1', 'hub-2']);
    assert.equal(process.env.TABLE_NAME, undefined, 'nothing written to process.env');
  });

  it('a domain hosted at hub 1 is known at hub 2 only through the ledger, after the delay', async () => {
    const [a, b] = fed.hubs as [NonNullable<(typeof fed.hubs)[0]>, NonNullable<(typeof fed.hubs)[0]>];
    const reg = await a.call('POST', '/domains', { domain: 'fa', role: 'consumer' });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal((await b.call('GET', '/domains/fa')).status, 404, 'not yet at hub 2');
    await until('fa at hub 2', async () => (await b.call('GET', '/domains/fa')).status === 200, 4 * DELAY);
    const listed = await b.call<{ domains: { domain: string }[] }>('GET', '/domains');
    assert.deepEqual(listed.body.domains, [], 'hub 2 hosts nothing: its own table');
    const items = await fed.ledgers[1]!.listByKey('domains', 'domain:fa');
    assert.equal(items[0]?.publisher, 'hub-1');
  });

  it('a hub whose ledger node is down catches up when it comes back', async () => {
    const [a, b] = fed.hubs as [NonNullable<(typeof fed.hubs)[0]>, NonNullable<(typeof fed.hubs)[0]>];
    fed.stopHubLedger(1);
    assert.equal((await a.call('POST', '/domains', { domain: 'fb', role: 'consumer' })).status, 201);
    await new Promise((r) => setTimeout(r, DELAY + 100));
    assert.equal((await b.call('GET', '/health')).status, 503, 'hub 2 reports its ledger down');
    fed.restartHubLedger(1);
    assert.equal((await b.call('GET', '/domains/fb')).status, 200, 'caught up at once: the item had arrived');
  });

  it('catching up runs every hub\'s follow job until it learns nothing new, and counts what it learnt', async () => {
    // no follower is scheduled here: all the learning is the catch-up's, and it shows in followTotals
    assert.deepEqual(fed.hubs.map((h) => h.followTotals.domains ?? 0), [0, 0]);
    assert.equal(await catchUpFollowers(fed, DELAY), true);
    assert.deepEqual(fed.hubs.map((h) => h.followTotals.domains), [2, 2], 'fa and fb, at each hub');
    assert.deepEqual(fed.hubs.map((h) => h.followTotals.invalid), [0, 0]);
  });
});
