/**
 * What keeps an acceptance cheap on DynamoDB (issue 11), on the embedded stand-in:
 * - the obligation item stays below 1 KB (a transactional write bills 2 units per
 *   KB per item) and gives back exactly what was stored, the signed obligation
 *   and acceptance byte for byte, and fields that differ from them too;
 * - the acceptance reads only the offer and the chain head strongly, the counters,
 *   the shard and the revocation eventually consistent, all in one wave;
 * - the scheduled rebalancer (DynamoStore.topUp, service/rebalance.ts) refreshes
 *   grants before they lapse and tops up short shards, leaves fresh and idle
 *   domains alone, and keeps the bound (test/local/escrow.test.ts).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoStore, type ObligationItem } from '../../adapters/store/dynamo.ts';
import { startDynamo, type LocalDynamo } from '../../local/dynamo.ts';
import { acceptanceOf } from '../../core/obligation.ts';
import { certifyHubKey } from '../../core/records.ts';
import { generateKeyPair } from '../../core/keys.ts';
import { canonicalize } from '../../core/canonical.ts';
import { DEFAULT_REPUTATION } from '../../core/reputation.ts';
import { itemSize } from '../../bench/item-size.ts';
import { rebalanceAll } from '../../service/rebalance.ts';
import { makeOffer, makeWorld, obligationFor, NOW, DAY } from '../core/fixtures.ts';
import type { KeyAlg } from '../../core/types.ts';

const uid = () => randomBytes(6).toString('hex');

/**
 * An obligation accepted with a certified hub key (as service/accept.ts does), as its item: the
 * second of its chain (a random `prev`), a 32-hex offer id and a 34-character address, as in a run.
 */
function acceptedItem(alg: KeyAlg = 'ed25519'): ObligationItem & { shard: number } {
  const w = makeWorld(alg);
  const offer = makeOffer(w.providerDomain, randomBytes(16).toString('hex'), { payTo: 'mzBc4XEFSdzCDcTxAgf6EZXgsZWpztRhef' });
  const ob = obligationFor(w, obligationFor(w, undefined, offer), offer);
  const hub = generateKeyPair(alg);
  const certificate = certifyHubKey({ domain: 'wifico', key: hub.publicKey, notBefore: NOW - 1000, notAfter: NOW + DAY }, w.providerDomain.privateKey);
  const acceptance = acceptanceOf(ob, hub.privateKey, NOW + 5, certificate);
  const b = ob.body;
  return {
    id: ob.id,
    status: 'accepted',
    accepted: { obligation: ob, acceptance },
    consumerDomain: b.consumerDomain,
    consumerDevice: b.consumerDevice,
    providerDomain: b.providerDomain,
    amount: b.amount,
    payTo: b.payTo,
    acceptedAt: acceptance.body.acceptedAt,
    dueBy: b.dueBy,
    shard: 3,
  };
}

describe('an acceptance at DynamoDB cost (embedded stand-in)', () => {
  let dynamo: LocalDynamo;
  let store: DynamoStore;
  let seen: { op: string; input: Record<string, unknown> }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  before(async () => {
    dynamo = await startDynamo();
    const doc = DynamoDBDocumentClient.from(dynamo.client, { marshallOptions: { removeUndefinedValues: true } });
    doc.middlewareStack.add(
      (next, context) => async (args) => {
        seen.push({ op: String((context as { commandName?: string }).commandName), input: args.input as Record<string, unknown> });
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          return await next(args);
        } finally {
          inFlight -= 1;
        }
      },
      { step: 'initialize', name: 'testSeen' },
    );
    store = new DynamoStore(doc, dynamo.tableName, 5_000, { shards: 4 });
  });
  after(() => dynamo.stop());
  beforeEach(() => {
    seen = [];
  });

  const raw = async (pk: string, sk: string) =>
    (await store.doc.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk, sk }, ConsistentRead: true }))).Item ?? {};

  test('the obligation item is below 1 KB as DynamoDB sizes it (P-256 keys: the larger), and reads back exactly as stored', async () => {
    const item = acceptedItem('p256');
    assert.equal(await store.putObligation(item), true);
    const stored = await raw(`OB#${item.id}`, 'OB');
    assert.ok(itemSize(stored) < 1024, `obligation item is ${itemSize(stored)} bytes`);
    const back = await store.getObligation(item.id);
    assert.deepEqual(back, item);
    // the ledger record is signed over these: not one byte differs
    assert.equal(canonicalize(back!.accepted as never), canonicalize(item.accepted as never));
    // listed through an index, the same
    const [listed] = await store.listByConsumer(item.consumerDomain);
    assert.deepEqual(listed, item);
  });

  test('fields that differ from the signed obligation are kept (and the id where the obligation names another)', async () => {
    const item = acceptedItem();
    const crafted: ObligationItem = { ...item, id: 'e'.repeat(64), payTo: 'Rsomewhere-else', amount: 7, origin: 'ledger' };
    assert.equal(await store.putObligation(crafted), true);
    assert.deepEqual(await store.getObligation(crafted.id), crafted);
    const bare: ObligationItem = { ...item, id: 'f'.repeat(64), accepted: {} as never };
    assert.equal(await store.putObligation(bare), true);
    assert.deepEqual(await store.getObligation(bare.id), bare);
  });

  test('an acceptance reads the offer and chain head strongly, the counters, shard and revocation eventually, in one wave', async () => {
    const domain = `c-${uid()}`;
    const w = makeWorld();
    await store.putOffer({ body: { ...w.offer, offerId: `o-${uid()}` }, sig: 's', by: 'wifico' });
    seen = [];
    await store.readForAcceptance({ obligationId: 'x', offerId: 'o-1', consumerDomain: domain, consumerDevice: 'd', shard: 1, deviceKey: w.device.publicKey });
    const reads = seen.map((s) => {
      const keys = Object.values((s.input.RequestItems ?? {}) as Record<string, { Keys: { pk: string }[]; ConsistentRead?: boolean }>)[0];
      const pks = keys ? keys.Keys.map((k) => k.pk.split('#')[0]).sort().join('+') : String((s.input.Key as { pk: string }).pk).split('#')[0];
      return `${s.op} ${pks} ${(keys ? keys.ConsistentRead : s.input.ConsistentRead) === true ? 'strong' : 'eventual'}`;
    });
    assert.deepEqual(reads.sort(), ['BatchGetItemCommand CREDIT+REP+REVOKED eventual', 'BatchGetItemCommand DEV+OFFER strong']);
    // the two batches of readForAcceptance are in flight together: one round trip
    inFlight = 0;
    maxInFlight = 0;
    await store.readForAcceptance({ obligationId: 'x', offerId: 'o-1', consumerDomain: domain, consumerDevice: 'd', shard: 2 });
    assert.equal(maxInFlight, 2);
  });

  test('a rebalance lists its domain for the scheduled rebalancer, with what it granted', async () => {
    const domain = `c-${uid()}`;
    await store.rebalance(domain, { limit: () => 8_000, now: NOW });
    const entry = (await store.listCreditDomains()).find((e) => e.domain === domain);
    assert.deepEqual(entry, { domain, granted: 8_000, wanted: NOW });
  });

  test('the scheduled rebalancer refreshes a grant about to lapse, and leaves a fresh one alone', async () => {
    const domain = `c-${uid()}`;
    const limit = () => 8_000;
    await store.rebalance(domain, { limit, now: NOW });
    const entry = (await store.listCreditDomains()).find((e) => e.domain === domain)!;
    const opts = { limit, refreshBeforeMs: 60_000, idleMs: 3_600_000 };
    assert.equal(await store.topUp(domain, entry, { ...opts, now: NOW + 1_000 }), 'fresh');
    // 5 min grant: at +4.5 min it lapses within the minute
    assert.equal(await store.topUp(domain, entry, { ...opts, now: NOW + 270_000 }), 'refreshed');
    const snap = await store.creditSnapshot(domain);
    assert.ok(snap.shards.every((s) => s.until === NOW + 270_000 + 300_000), JSON.stringify(snap.shards));
    assert.equal(snap.shards.reduce((t, s) => t + s.free, 0), 8_000);
  });

  test('the scheduled rebalancer tops up a shard that acceptances drained', async () => {
    const domain = `c-${uid()}`;
    const limit = () => 8_000;
    await store.rebalance(domain, { limit, now: NOW });
    // draw shard 0 down to 100 of its 2,000
    await store.putOffer({ body: { ...makeWorld().offer, offerId: 'o-drain' + domain }, sig: 's', by: 'wifico' });
    const item = { ...acceptedItem(), consumerDomain: domain, amount: 1_900, shard: 0 };
    assert.equal(await store.commitAcceptance(item, { seq: 2, prev: item.accepted.obligation.body.prev }, 'o-drain' + domain, NOW), 'accepted');
    const entry = (await store.listCreditDomains()).find((e) => e.domain === domain)!;
    assert.equal(await store.topUp(domain, entry, { limit, now: NOW + 1_000, refreshBeforeMs: 60_000, idleMs: 3_600_000 }), 'refreshed');
    const snap = await store.creditSnapshot(domain);
    assert.equal(snap.counters.outstanding, 1_900);
    assert.deepEqual(snap.shards.map((s) => s.free), [1_525, 1_525, 1_525, 1_525]);
  });

  test('an idle domain (nothing drawn since its grant, no credit wanted for idleMs) is left to lapse', async () => {
    const domain = `c-${uid()}`;
    const limit = () => 8_000;
    await store.rebalance(domain, { limit, now: NOW });
    const entry = (await store.listCreditDomains()).find((e) => e.domain === domain)!;
    assert.equal(await store.topUp(domain, entry, { limit, now: NOW + 270_000, refreshBeforeMs: 60_000, idleMs: 60_000 }), 'idle');
    assert.ok((await store.creditSnapshot(domain)).shards.every((s) => s.until === NOW + 300_000));
    // a refresh by the job does not make it look wanted: once idleMs passes it lapses
    await store.topUp(domain, entry, { limit, now: NOW + 270_000, refreshBeforeMs: 60_000, idleMs: 3_600_000 });
    const again = (await store.listCreditDomains()).find((e) => e.domain === domain)!;
    assert.equal(again.wanted, NOW);
  });

  test('the scheduled rebalancer folds evidence waiting on the shards into the counters item, even for an idle domain', async () => {
    const domain = `c-${uid()}`;
    const limit = () => 8_000;
    await store.rebalance(domain, { limit, now: NOW });
    await store.applyCounters(domain, 'evidence:x', { rScaled: 0.5, paidVolume: 300 }, { limit, now: NOW, shard: 3 });
    const rep = async () => (await store.doc.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: `REP#${domain}`, sk: 'COUNTERS' }, ConsistentRead: true }))).Item ?? {};
    assert.equal((await rep()).paidVolume, undefined, 'on the shard until folded');
    const entry = (await store.listCreditDomains()).find((e) => e.domain === domain)!;
    // idle and fresh by every other measure: folded anyway
    assert.equal(await store.topUp(domain, entry, { limit, now: NOW + 1_000, refreshBeforeMs: 60_000, idleMs: 0 }), 'refreshed');
    assert.deepEqual([(await rep()).rScaled, (await rep()).paidVolume], [0.5, 300]);
    const snap = await store.creditSnapshot(domain);
    assert.deepEqual([snap.counters.rScaled, snap.counters.paidVolume], [0.5, 300], 'counted once');
    assert.equal(await store.topUp(domain, entry, { limit, now: NOW + 2_000, refreshBeforeMs: 60_000, idleMs: 0 }), 'idle', 'nothing left to fold');
  });

  test('rebalanceAll tops up every listed domain that needs it', async () => {
    const a = `c-${uid()}`;
    const b = `c-${uid()}`;
    const now = Date.now();
    const deps = { store, now: () => now + 270_000, config: { reputation: DEFAULT_REPUTATION, credit: { base: 4_000, k: 0, cap: 4_000, minReputation: 0 } } };
    await store.rebalance(a, { limit: () => 4_000, now });
    await store.rebalance(b, { limit: () => 4_000, now: now + 200_000 });
    const summary = await rebalanceAll(deps as never, { refreshBeforeMs: 60_000, idleMs: 3_600_000 });
    assert.ok(summary.refreshed.includes(a), JSON.stringify(summary));
    assert.ok(!summary.refreshed.includes(b), JSON.stringify(summary));
  });
});
