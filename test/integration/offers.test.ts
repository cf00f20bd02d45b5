/**
 * POST /offers is not open: the request must be signed by the consumer
 * device's enrolled key and come with the credential its domain issued for
 * that key (service/offers.ts: verifyOfferRequest). One acceptance and one
 * refusal per rule, through the HTTP front of the embedded cloud.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, signValue } from '../../core/keys.ts';
import { issueCredential } from '../../core/records.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { enrol, ensureProviderDevice, offerRequest, registerDomain, type TestDevice } from './support.ts';

describe('POST /offers: device-signed requests only', () => {
  let cloud: LocalCloud;
  let scd: TestDevice;
  let other: TestDevice;
  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    scd = await enrol(cloud, 'c1', 'c1-scd-1');
    other = await enrol(cloud, 'c1', 'c1-scd-2');
    await ensureProviderDevice(cloud, 'p1', 'p1-spd-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  const post = (body: unknown) => cloud.call<{ offer?: { body: { consumer: string } }; error?: { code: string } }>('POST', '/offers', body);

  it('makes an offer for the device that signed the request', async () => {
    const r = await post(offerRequest(scd, 'p1', 'p1-spd-1'));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.offer?.body.consumer, 'c1/c1-scd-1');
  });

  it('refuses the old unsigned request', async () => {
    const r = await post({ consumerDomain: 'c1', consumerDevice: scd.id, providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'F00_MALFORMED');
  });

  it('refuses a forged request: signed by a key that is not the device\'s, with its real credential', async () => {
    const forged = offerRequest({ ...scd, keys: generateKeyPair() }, 'p1', 'p1-spd-1');
    const r = await post(forged);
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'F01_BAD_SIGNATURE');
  });

  it('refuses a request changed after it was signed', async () => {
    const body = offerRequest(scd, 'p1', 'p1-spd-1');
    body.request.body.service = 'premium';
    const r = await post(body);
    assert.equal(r.body.error?.code, 'F01_BAD_SIGNATURE');
  });

  it('refuses a request for one device signed by another enrolled device', async () => {
    const body = offerRequest(other, 'p1', 'p1-spd-1');
    const r = await post({ ...body, request: { ...body.request, body: { ...body.request.body, consumerDevice: scd.id } } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.code, 'F08_FORBIDDEN');
  });

  it('refuses a credential that the consumer domain did not issue', async () => {
    const mallory = generateKeyPair();
    const selfIssued = issueCredential(
      { domain: 'c1', deviceId: 'c1-scd-1', deviceKey: mallory.publicKey, creditLimit: 1, notBefore: 0, notAfter: Date.now() + 60_000 },
      generateKeyPair().privateKey,
    );
    const r = await post(offerRequest({ ...scd, keys: mallory, credential: selfIssued }, 'p1', 'p1-spd-1'));
    assert.equal(r.body.error?.code, 'F02_BAD_CREDENTIAL');
  });

  it('refuses a stale request (older than the offer TTL), so a captured one cannot be replayed for long', async () => {
    const r = await post(offerRequest(scd, 'p1', 'p1-spd-1', 'wifi-access', Date.now() - 5 * 60_000));
    assert.equal(r.body.error?.code, 'F03_EXPIRED');
  });

  it('refuses a consumer domain with no record on the ledger', async () => {
    const keys = generateKeyPair();
    const body = { requestId: 'x', consumerDomain: 'nowhere', consumerDevice: 'd', providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access', issuedAt: Date.now() };
    const credential = issueCredential(
      { domain: 'nowhere', deviceId: 'd', deviceKey: keys.publicKey, creditLimit: 1, notBefore: 0, notAfter: Date.now() + 60_000 },
      generateKeyPair().privateKey,
    );
    const r = await post({ request: signValue(body, keys.privateKey, 'nowhere/d'), credential });
    assert.equal(r.body.error?.code, 'F07_UNKNOWN_DOMAIN');
  });
});
