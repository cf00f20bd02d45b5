/**
 * GET /chain (admin; service/chain.ts) on the embedded cloud: the hub's own
 * ledger node answers with the address it publishes from, its permissions
 * and what there is to join (the embedded ledger: nothing; a real MultiChain
 * node is asserted in test/real-nodes/two-orgs.test.ts). A ledger that cannot
 * answer is a 503 with the retryable code, never a made-up answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { ROUTES } from '../../functions/routes.ts';
import { RETRY_MESSAGE } from '../../functions/shared/errors.ts';
import type { ChainMembership } from '../../service/chain.ts';

describe('GET /chain on the embedded cloud', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 }, publisher: 'hub-a' });
  });
  after(() => cloud?.stop());

  it('is an admin route', () => {
    assert.equal(ROUTES.find((r) => r.method === 'GET' && r.path === '/chain')?.admin, true);
  });

  it('answers with the hub\'s publishing address and permissions; the embedded ledger has no chain to join', async () => {
    const r = await cloud.call<ChainMembership>('GET', '/chain');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.kind, 'embedded');
    assert.equal(r.body.address, 'hub-a');
    assert.equal(r.body.address, await cloud.deps.ledger.identity());
    assert.deepEqual(r.body.permissions, ['connect', 'domains.write', 'obligations.write', 'receive', 'send', 'settlements.write']);
    assert.equal(r.body.p2pEndpoint, null);
    assert.deepEqual(r.body.params, {});
  });

  it('a ledger node that cannot answer: 503 with the retryable code', async () => {
    const ledger = await cloud.ledger();
    ledger.setAvailable(false);
    try {
      const r = await cloud.call<{ error: { code: string; class: string; message: string } }>('GET', '/chain');
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.class, 'retry');
      assert.equal(r.body.error.message, RETRY_MESSAGE);
    } finally {
      ledger.setAvailable(true);
    }
  });
});
