/**
 * The publish job (service/publish.ts) against a real MultiChain 2.3.3 node,
 * configured by environment alone (LEDGER_KIND=multichain, as a deployment is):
 * one run drains a queue of several pages, with batches in flight at once and
 * up to 32 items per publishmultifrom transaction, and the node then holds each
 * acceptance and each outcome exactly once; a follower's `list` reads them all.
 *
 * Skipped, saying why, without OC_NODES_BIN or without the MultiChain binaries.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import { publishPending } from '../../service/publish.ts';
import { acceptMany, enrol, registerDomain, type TestDevice } from '../integration/support.ts';
import { skippable } from '../skippable.ts';
import { MULTICHAIN_BINARIES, MultiChain, missingNodes } from './harness.ts';

const { it, before, after } = skippable(missingNodes(MULTICHAIN_BINARIES));

const DEVICES = 4;
const PER_DEVICE = 60;
const DECIDED = 70;

describe('publish job on a real MultiChain node (configured by environment)', () => {
  let chain: MultiChain;
  let cloud: LocalCloud;

  before(async () => {
    chain = await MultiChain.start({ nodes: 1, streams: [] });
    const node = chain.node(0);
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 },
      env: { ...node.ledgerEnv, CREDIT_BASE: '100000000' },
    });
  });
  after(async () => {
    await cloud?.stop();
    await chain?.stop();
  });

  it(`one run publishes ${DEVICES * PER_DEVICE} acceptances and ${DECIDED} outcomes in pages, batches in parallel; the node holds each once`, async () => {
    await registerDomain(cloud, 'jc', 'consumer');
    await registerDomain(cloud, 'jp', 'provider', { threshold: 0.3 });
    const devices: TestDevice[] = [];
    for (let d = 0; d < DEVICES; d++) devices.push(await enrol(cloud, 'jc', `jc-dev-${d}`));
    const ids = (await Promise.all(devices.map((dev) => acceptMany(cloud, dev, 'jp', 'jp-spd', PER_DEVICE)))).flat();
    // some obligations are decided before publication: acceptance and outcome go in the same run
    const decided = ids.slice(0, DECIDED);
    for (const id of decided) assert.ok(await cloud.deps.store.transition(id, ['accepted'], 'defaulted', { closedAt: Date.now() }, { pending: true }), id);

    const run = await publishPending(cloud.deps, { limit: 64 });
    assert.equal(run.deferred, false, JSON.stringify(run));
    assert.equal(run.published, ids.length, JSON.stringify(run));
    assert.equal(run.outcomes, DECIDED);
    assert.equal(run.duplicates, 0);
    assert.ok(run.pages >= Math.ceil(ids.length / 64), `pages ${run.pages}`);
    assert.equal((await cloud.deps.store.listPendingPublication(1_000)).length, 0);

    for (const id of ids) {
      const items = await cloud.deps.ledger.listByKey('obligations', ledgerKeys.obligation(id));
      assert.equal(items.length, 1, `acceptance of ${id} on the node once`);
    }
    for (const id of decided) {
      const items = await cloud.deps.ledger.listByKey('obligations', ledgerKeys.outcome(id));
      assert.equal(items.length, 1, `outcome of ${id} on the node once`);
    }
    // what a follower reads: every item, several per transaction
    const listed = await cloud.deps.ledger.list('obligations');
    assert.equal(listed.length, ids.length + DECIDED);
    const txids = new Set(listed.map((i) => i.txid));
    assert.ok(txids.size < listed.length / 4, `${listed.length} items in ${txids.size} transactions`);
    // a second run finds nothing to do
    const again = await publishPending(cloud.deps);
    assert.equal(again.published + again.outcomes, 0, JSON.stringify(again));
  });
});
