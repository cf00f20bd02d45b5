/**
 * Standing offers (service/offers.ts): one signed offer for repeated purchases by
 * one consumer device, within an expiry and a cap; each obligation still unique,
 * chained and replay-proof. One acceptance and one refusal per rule, through the
 * HTTP front of the embedded cloud; the device side over MQTT.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, signValue } from '../../core/keys.ts';
import { createOffer, parseOffer, verifyOffer } from '../../core/records.ts';
import { loadConfig } from '../../functions/shared/config.ts';
import type { DeviceCredential, Offer, PublicKeyRef, Signed } from '../../core/types.ts';
import { createLink } from '../../devices/link.ts';
import { ConsumerDevice } from '../../devices/scd.ts';
import { ProviderDevice } from '../../devices/spd.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { enrol, ensureProviderDevice, registerDomain, sign, sleep, submit, type TestDevice } from './support.ts';

const PRICE = 2_000; // the scenario price of wifi-access
const PURCHASES = 3;

function standingRequest(dev: TestDevice, providerDomain: string, providerDevice: string, issuedAt = Date.now()) {
  const body = { requestId: 'http', consumerDomain: dev.domain, consumerDevice: dev.id, providerDomain, providerDevice, service: 'wifi-access', issuedAt, standing: true };
  return { request: signValue(body, dev.keys.privateKey, `${dev.domain}/${dev.id}`), credential: dev.credential };
}

async function standingOffer(cloud: LocalCloud, dev: TestDevice): Promise<Signed<Offer>> {
  const r = await cloud.call<{ offer: Signed<Offer> }>('POST', '/offers', standingRequest(dev, 's1', 's1-spd-1'));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.offer;
}

type Answer = { status: number; body: { obligationId?: string; duplicate?: boolean; error?: { code: string } } };
const code = (r: Answer) => r.body.error?.code ?? String(r.status);

describe('standing offers', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: { STANDING_OFFER_PURCHASES: String(PURCHASES) },
    });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 's1', 'provider', { threshold: 0.3 });
    await ensureProviderDevice(cloud, 's1', 's1-spd-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  it('is made when asked for: signed by the provider, for this device, with cap = price × STANDING_OFFER_PURCHASES', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-1');
    const offer = await standingOffer(cloud, dev);
    const key = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/s1')).body.record.body.key;
    verifyOffer(offer, key);
    assert.equal(offer.body.consumer, 'c1/c1-st-1');
    assert.equal(offer.body.cap, PRICE * PURCHASES);
    assert.ok(offer.body.expiresAt > Date.now() + 30 * 60_000, 'lasts STANDING_OFFER_TTL_MS (1 h by default), not OFFER_TTL_MS');
  });

  it('carries repeated purchases up to its cap, each a new link of the chain; one more is F20_OFFER_EXHAUSTED', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-2');
    const offer = await standingOffer(cloud, dev);
    const ids = new Set<string>();
    for (let i = 1; i <= PURCHASES; i++) {
      const ob = sign(dev, offer);
      const r = await submit(cloud, dev, ob);
      assert.equal(r.status, 201, `purchase ${i}: ${JSON.stringify(r.body)}`);
      ids.add(ob.id);
      assert.equal(dev.head.seq, i);
    }
    assert.equal(ids.size, PURCHASES);
    assert.equal(await cloud.deps.store.offerSpent(offer.body.offerId), PRICE * PURCHASES);
    const over = await submit(cloud, dev, sign(dev, offer));
    assert.equal(code(over), 'F20_OFFER_EXHAUSTED');
    assert.equal(dev.head.seq, PURCHASES, 'a refused obligation leaves the chain where it was');
    // a fresh offer continues the chain at the next sequence number
    const next = await submit(cloud, dev, sign(dev, await standingOffer(cloud, dev)));
    assert.equal(next.status, 201, JSON.stringify(next.body));
    assert.equal(dev.head.seq, PURCHASES + 1);
  });

  it('a replayed purchase is answered as a duplicate and not counted again; another obligation at a used sequence is F04_REPLAY', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-3');
    const offer = await standingOffer(cloud, dev);
    const first = sign(dev, offer);
    assert.equal((await submit(cloud, dev, first)).status, 201);
    const second = sign(dev, offer);
    assert.equal((await submit(cloud, dev, second)).status, 201);
    const outstanding = (await cloud.deps.store.getCounters('c1')).outstanding;
    for (const again of [first, second]) {
      const r = await submit(cloud, dev, again);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.duplicate, true);
      assert.equal(r.body.obligationId, again.id);
    }
    assert.equal(await cloud.deps.store.offerSpent(offer.body.offerId), 2 * PRICE, 'duplicates draw nothing from the cap');
    assert.equal((await cloud.deps.store.getCounters('c1')).outstanding, outstanding, 'nor from the credit');
    // the same sequence number with another body (a later issuedAt): a different obligation, a replay of seq 2
    const forkAt2 = sign(dev, offer, { seq: 2, prev: first.id, now: Date.now() + 5 });
    assert.notEqual(forkAt2.id, second.id);
    assert.equal(code(await submit(cloud, dev, forkAt2)), 'F04_REPLAY');
  });

  it('concurrent obligations under one offer never exceed its cap', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-4');
    const offer = await standingOffer(cloud, dev);
    // PURCHASES + 3 links signed ahead and sent at once (the hub accepts forward steps of a chain)
    const obs = [];
    let prev = dev.head;
    for (let i = 0; i < PURCHASES + 3; i++) {
      const ob = sign(dev, offer, { seq: prev.seq + 1, prev: prev.id });
      obs.push(ob);
      prev = { seq: ob.body.seq, id: ob.id };
    }
    const answers = await Promise.all(obs.map((ob) => cloud.call<Answer['body']>('POST', '/obligations', { obligation: ob })));
    const accepted = answers.filter((r) => r.status === 201).length;
    assert.ok(accepted <= PURCHASES, `${accepted} accepted under a cap of ${PURCHASES} purchases`);
    assert.ok(await cloud.deps.store.offerSpent(offer.body.offerId) <= PRICE * PURCHASES);
  });

  it('binds to its device: another device of the same domain cannot use it (F06_OFFER_MISMATCH)', async () => {
    const owner = await enrol(cloud, 'c1', 'c1-st-5');
    const other = await enrol(cloud, 'c1', 'c1-st-6');
    const offer = await standingOffer(cloud, owner);
    assert.equal(code(await submit(cloud, other, sign(other, offer))), 'F06_OFFER_MISMATCH');
  });

  it('a forged standing offer (a single-use offer given a cap and re-signed by another key) is refused by the device and by the hub', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-7');
    const single = await cloud.call<{ offer: Signed<Offer> }>('POST', '/offers', {
      ...standingRequest(dev, 's1', 's1-spd-1'),
      request: signValue(
        { requestId: 'http', consumerDomain: 'c1', consumerDevice: dev.id, providerDomain: 's1', providerDevice: 's1-spd-1', service: 'wifi-access', issuedAt: Date.now() },
        dev.keys.privateKey,
        `c1/${dev.id}`,
      ),
    });
    assert.equal(single.body.offer.body.cap, undefined, 'not asked for: a single-use offer');
    const { version: _v, ...body } = single.body.offer.body;
    const forged = createOffer({ ...body, cap: 100 * PRICE }, generateKeyPair().privateKey);
    const key = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/s1')).body.record.body.key;
    assert.throws(() => verifyOffer(forged, key), /not signed by s1|certificate/);
    // the hub goes by the offer it stored: the first obligation uses it up, the second is a replay
    assert.equal((await submit(cloud, dev, sign(dev, forged))).status, 201);
    assert.equal(code(await submit(cloud, dev, sign(dev, forged))), 'F04_REPLAY');
  });

  it('the `standing` flag is signed: added to a single-use request after signing, it is F01_BAD_SIGNATURE', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-st-8');
    const plain = signValue(
      { requestId: 'http', consumerDomain: 'c1', consumerDevice: dev.id, providerDomain: 's1', providerDevice: 's1-spd-1', service: 'wifi-access', issuedAt: Date.now() },
      dev.keys.privateKey,
      `c1/${dev.id}`,
    );
    const r = await cloud.call<{ error?: { code: string } }>('POST', '/offers', { request: { ...plain, body: { ...plain.body, standing: true } }, credential: dev.credential });
    assert.equal(r.body.error?.code, 'F01_BAD_SIGNATURE');
  });

  it('a device holding a standing offer asks for one offer per cap, not per purchase; reply and grant are one publish (counted at the broker)', async () => {
    const keys = generateKeyPair();
    const { body } = await cloud.call<{ credential: Signed<DeviceCredential> }>('POST', '/domains/c1/devices', { deviceId: 'c1-st-9', deviceKey: keys.publicKey, creditLimit: 1_000_000 });
    cloud.registerThing('c1-st-9', 'c1', keys.publicKey);
    const providerKey = (await cloud.call<{ record: { body: { key: PublicKeyRef } } }>('GET', '/domains/s1')).body.record.body.key;
    const spdKeys = generateKeyPair();
    await cloud.call('POST', '/domains/s1/devices', { deviceId: 's1-spd-2', deviceKey: spdKeys.publicKey, creditLimit: 0 });
    cloud.registerThing('s1-spd-2', 's1', spdKeys.publicKey);
    const spd = new ProviderDevice('s1', 's1-spd-2', createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: 's1-spd-2', privateKey: spdKeys.privateKey }));
    const scd = new ConsumerDevice({
      domain: 'c1',
      deviceId: 'c1-st-9',
      privateKey: keys.privateKey,
      credential: body.credential,
      link: createLink({ kind: 'local', host: '127.0.0.1', port: cloud.broker.port, thing: 'c1-st-9', privateKey: keys.privateKey }),
      providerKey: async () => providerKey,
      timeoutMs: 10_000,
    });
    try {
      await spd.start();
      await scd.start();
      // the device sends by Basic Ingest: counted apart from billed messages
      const requests = () => cloud.broker.meter.ingestByKind['request'] ?? 0;
      const obligations = () => cloud.broker.meter.ingestByKind['obligation'] ?? 0;
      const billedFromDevice = () => (cloud.broker.meter.byKind['request'] ?? 0) + (cloud.broker.meter.byKind['obligation'] ?? 0);
      const billedBefore = billedFromDevice();
      const replies = () => cloud.broker.meter.byKind['reply'] ?? 0;
      const before = requests();
      const sentBefore = obligations();
      const repliesBefore = replies();
      const granted = new Set<string>();
      spd.onGrant((g) => granted.add(g.obligationId));
      for (let i = 0; i < 2 * PURCHASES + 1; i++) {
        const r = await scd.buy('s1', 's1-spd-2', 'wifi-access');
        assert.ok(r.ok, JSON.stringify(r));
      }
      assert.equal(requests() - before, 3, `${2 * PURCHASES + 1} purchases under a cap of ${PURCHASES}: three offers`);
      assert.equal(obligations() - sentBefore, 2 * PURCHASES + 1, 'the device renews before the cap: no obligation refused as over it');
      assert.equal(billedFromDevice() - billedBefore, 0, 'no request or obligation billed as a message');
      // reply and grant in one publish that both devices receive: 1 back-end publish + 2 deliveries per purchase
      for (let i = 0; i < 300 && granted.size < 2 * PURCHASES + 1; i++) await sleep(10);
      assert.equal(granted.size, 2 * PURCHASES + 1, 'every purchase granted on the provider device');
      await sleep(50);
      assert.equal(replies() - repliesBefore, 3 * (2 * PURCHASES + 1));
    } finally {
      await scd.close();
      await spd.close();
    }
  });
});

describe('standing offers: expiry', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: { STANDING_OFFER_TTL_MS: '3000' },
    });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 's1', 'provider', { threshold: 0.3 });
    await ensureProviderDevice(cloud, 's1', 's1-spd-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  it('an obligation under an expired standing offer is F03_EXPIRED', async () => {
    const dev = await enrol(cloud, 'c1', 'c1-ex-1');
    const offer = await standingOffer(cloud, dev);
    assert.ok(offer.body.expiresAt <= Date.now() + 3000);
    assert.equal((await submit(cloud, dev, sign(dev, offer))).status, 201);
    await sleep(Math.max(0, offer.body.expiresAt - Date.now()) + 50);
    assert.equal(code(await submit(cloud, dev, sign(dev, offer))), 'F03_EXPIRED');
  });
});

describe('standing offers: configuration and shape', () => {
  const base = { TABLE_NAME: 't', BITCOIN_RPC_URL: 'http://127.0.0.1:18443', LEDGER_KIND: 'embedded' };

  it('defaults to 1 h and 100 purchases; a standing offer may not outlive half a hub key (its signer)', () => {
    assert.deepEqual(loadConfig(base).standingOffer, { ttlMs: 3_600_000, purchases: 100 });
    assert.deepEqual(loadConfig({ ...base, STANDING_OFFER_PURCHASES: '0' }).standingOffer.purchases, 0);
    assert.throws(() => loadConfig({ ...base, HUB_KEY_TTL_MS: String(2 * 3_600_000 - 2) }), /STANDING_OFFER_TTL_MS \(3600000\) must be at most half HUB_KEY_TTL_MS/);
  });

  it('an offer whose cap is below its price is malformed', () => {
    const body = { version: 1, offerId: 'o1', providerDomain: 's1', providerDevice: 's1-spd-1', service: 'wifi-access', price: 2_000, payTo: 'bcrt1qexample', consumer: 'c1/d1', expiresAt: 1 };
    assert.equal(parseOffer({ body: { ...body, cap: 2_000 }, sig: 'x', by: 's1' }).body.cap, 2_000);
    assert.throws(() => parseOffer({ body: { ...body, cap: 1_999 }, sig: 'x', by: 's1' }), /cap \(1999\) is below the price/);
  });
});
