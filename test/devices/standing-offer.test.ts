/**
 * The consumer device's handling of standing offers (devices/scd.ts), against a
 * stub provider hub over HTTP (the path a device takes to a provider at another
 * hub): it holds a standing offer and reuses it, renews it before its cap,
 * drops it and buys once more when the hub says it is used up, and never holds
 * (or uses) an offer made for another device or another purchase.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair } from '../../core/keys.ts';
import { acceptanceOf } from '../../core/obligation.ts';
import { createOffer, issueCredential, newOfferId, parseObligation } from '../../core/records.ts';
import type { Obligation, Offer } from '../../core/types.ts';
import { ConsumerDevice } from '../../devices/scd.ts';
import { idleLink } from '../integration/support.ts';

const provider = generateKeyPair();
const consumerDomain = generateKeyPair();
const device = generateKeyPair();
const PRICE = 2_000;

/** What the stub hub does: count offers, answer obligations (or refuse the next one with a code). */
const hub = {
  offers: 0,
  obligations: 0,
  refuseNext: undefined as string | undefined,
  consumer: 'c1/c1-scd-1',
  service: 'wifi-access',
  last: undefined as Obligation | undefined,
};

function offer(cap: number | undefined): ReturnType<typeof createOffer> {
  const body: Omit<Offer, 'version'> = {
    offerId: newOfferId(),
    providerDomain: 'p1',
    providerDevice: 'p1-spd-1',
    service: hub.service,
    price: PRICE,
    payTo: 'bcrt1qstub',
    consumer: hub.consumer,
    expiresAt: Date.now() + 3_600_000,
    ...(cap === undefined ? {} : { cap }),
  };
  return createOffer(body, provider.privateKey);
}

const noLink = idleLink('c1-scd-1', async () => assert.fail('a device buying at another hub sends nothing over MQTT'));

describe('consumer device: standing offers', () => {
  let server: Server;
  let api: string;
  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        const body = JSON.parse(text) as { request?: { body: { standing?: boolean } }; obligation?: unknown };
        const send = (status: number, value: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        if (req.url === '/offers') {
          hub.offers += 1;
          return send(201, { offer: offer(body.request?.body.standing ? 2 * PRICE : undefined) });
        }
        hub.obligations += 1;
        if (hub.refuseNext) {
          const code = hub.refuseNext;
          hub.refuseNext = undefined;
          return send(400, { error: { code, class: 'final', message: 'refused by the stub' } });
        }
        const ob = parseObligation(body.obligation);
        hub.last = ob;
        return send(201, { obligationId: ob.id, acceptance: acceptanceOf(ob, provider.privateKey, Date.now()) });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const newDevice = (standingOffers?: boolean) =>
    new ConsumerDevice({
      domain: 'c1',
      deviceId: 'c1-scd-1',
      privateKey: device.privateKey,
      credential: issueCredential(
        { domain: 'c1', deviceId: 'c1-scd-1', deviceKey: device.publicKey, creditLimit: 1_000_000, notBefore: Date.now() - 1000, notAfter: Date.now() + 3_600_000 },
        consumerDomain.privateKey,
      ),
      link: noLink,
      providerKey: async () => provider.publicKey,
      providerApi: () => api,
      timeoutMs: 2_000,
      attempts: 1,
      ...(standingOffers === undefined ? {} : { standingOffers }),
    });

  const reset = () => Object.assign(hub, { offers: 0, obligations: 0, refuseNext: undefined, consumer: 'c1/c1-scd-1', service: 'wifi-access', last: undefined });

  it('holds a standing offer for as many purchases as its cap allows, then asks for a new one', async () => {
    reset();
    const scd = newDevice();
    for (let i = 0; i < 5; i++) assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    assert.deepEqual([hub.offers, hub.obligations], [3, 5], 'cap = 2 purchases: offers at purchases 1, 3, 5');
  });

  it("signs with a sealed copy of its credential: the caller's object changed later changes nothing it sends", async () => {
    reset();
    const credential = issueCredential(
      { domain: 'c1', deviceId: 'c1-scd-1', deviceKey: device.publicKey, creditLimit: 1_000_000, notBefore: Date.now() - 1000, notAfter: Date.now() + 3_600_000 },
      consumerDomain.privateKey,
    );
    const scd = new ConsumerDevice({ domain: 'c1', deviceId: 'c1-scd-1', privateKey: device.privateKey, credential, link: noLink, providerKey: async () => provider.publicKey, providerApi: () => api, timeoutMs: 2_000, attempts: 1 });
    credential.body.creditLimit = 5;
    assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    assert.equal(hub.last?.body.credential.body.creditLimit, 1_000_000);
    assert.equal(Object.isFrozen(scd.credential.body.deviceKey), true);
  });

  it('with standingOffers false, asks for an offer per purchase', async () => {
    reset();
    const scd = newDevice(false);
    for (let i = 0; i < 3; i++) assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    assert.deepEqual([hub.offers, hub.obligations], [3, 3]);
  });

  it('a held offer the hub calls used up (F20) is dropped and the purchase made once more with a fresh offer', async () => {
    reset();
    const scd = newDevice();
    assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    hub.refuseNext = 'F20_OFFER_EXHAUSTED';
    const r = await scd.buy('p1', 'p1-spd-1', 'wifi-access');
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual([hub.offers, hub.obligations], [2, 3]);
  });

  it('a refusal of another kind under a held offer is the answer (no second try), and the offer stays held', async () => {
    reset();
    const scd = newDevice();
    assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    hub.refuseNext = 'T02_OVER_CREDIT';
    const r = await scd.buy('p1', 'p1-spd-1', 'wifi-access');
    assert.equal(r.ok ? undefined : r.error.code, 'T02_OVER_CREDIT');
    assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
    assert.deepEqual([hub.offers, hub.obligations], [1, 3]);
  });

  it('an offer made for another device, or for another service, is refused at the offer stage and not held', async () => {
    for (const [field, value] of [['consumer', 'c1/c1-scd-2'], ['service', 'premium']] as const) {
      reset();
      hub[field] = value;
      const scd = newDevice();
      const r = await scd.buy('p1', 'p1-spd-1', 'wifi-access');
      assert.deepEqual(r.ok ? 'accepted' : [r.stage, r.error.code], ['offer', 'BAD_OFFER'], field);
      assert.equal(hub.obligations, 0, field);
      hub[field] = field === 'consumer' ? 'c1/c1-scd-1' : 'wifi-access';
      assert.equal((await scd.buy('p1', 'p1-spd-1', 'wifi-access')).ok, true);
      assert.equal(hub.offers, 2, `${field}: the bad offer was not held`);
    }
  });
});
