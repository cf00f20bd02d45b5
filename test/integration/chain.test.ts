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

  it('GET /chain and POST /chain/members are admin routes', () => {
    assert.equal(ROUTES.find((r) => r.method === 'GET' && r.path === '/chain')?.admin, true);
    assert.equal(ROUTES.find((r) => r.method === 'POST' && r.path === '/chain/members')?.admin, true);
  });

  it('POST /chain/members refuses a malformed address or action before any RPC (400), and the embedded ledger has nobody to grant (403)', async () => {
    const post = (body: unknown) => cloud.call<{ error: { code: string; message: string } }>('POST', '/chain/members', body);
    for (const bad of [{ address: '0OIl-not-base58-at-all-x', action: 'grant' }, { address: '1'.repeat(10), action: 'grant' }, { address: '1Abc'.repeat(8), action: 'promote' }, { address: '1Abc'.repeat(8) }]) {
      const r = await post(bad);
      assert.equal(r.status, 400, JSON.stringify(r.body));
    }
    const r = await post({ address: '1Abc'.repeat(8), action: 'grant' });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'F08_FORBIDDEN');
    assert.match(r.body.error.message, /no chain to join/);
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
