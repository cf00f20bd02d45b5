/**
 * Hub key certificates (offers and acceptances signed in process with a key the domain
 * key certified), revocation records and renewal requests, and the policy's revocation rule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BadSignatureError,
  MAX_HUB_KEY_MS,
  MalformedError,
  RevokedError,
  acceptanceOf,
  certifyHubKey,
  createOffer,
  createRenewalRequest,
  createRevocation,
  decide,
  generateKeyPair,
  parseAccepted,
  parseOffer,
  parseRenewalRequest,
  parseRevocation,
  signingKeyOf,
  signBytes,
  verifyAcceptance,
  verifyOffer,
  verifySigned,
  verifySignedBy,
  type AsyncSigner,
  type DecisionContext,
  type HubKeyCertificate,
  type Signed,
} from '../../core/index.ts';
import { DAY, HOUR, NOW, chainOf, makeWorld } from './fixtures.ts';

const w = makeWorld();
const [first] = chainOf(w, 1);
const hub = generateKeyPair();
const cert = certifyHubKey({ domain: 'wifico', key: hub.publicKey, notBefore: NOW - HOUR, notAfter: NOW + DAY }, w.providerDomain.privateKey);

function ctx(overrides: Partial<DecisionContext> = {}): DecisionContext {
  return {
    now: NOW,
    consumerDomainKey: w.consumerDomain.publicKey,
    offer: w.offer,
    providerDomain: 'wifico',
    providerKey: hub.privateKey,
    providerCertificate: cert,
    threshold: 0.4,
    reputation: 0.5,
    creditLimit: 50_000,
    outstanding: 0,
    chainHead: undefined,
    seen: false,
    ...overrides,
  };
}

describe('hub key certificates', () => {
  it('an acceptance signed with a certified hub key verifies against the provider domain key, and survives parsing', () => {
    const d = decide(first!, ctx());
    assert.ok(d.accept);
    assert.deepEqual(d.acceptance.body.certificate, cert);
    const accepted = parseAccepted(JSON.parse(JSON.stringify({ obligation: first, acceptance: d.acceptance })));
    verifyAcceptance(accepted, w.providerDomain.publicKey);
  });

  it('refuses a certificate signed by another key, for another domain, or not valid when the acceptance was made', () => {
    const stranger = generateKeyPair();
    const cases: [string, Signed<HubKeyCertificate>, number][] = [
      ['signed by a stranger', certifyHubKey({ domain: 'wifico', key: hub.publicKey, notBefore: NOW - HOUR, notAfter: NOW + DAY }, stranger.privateKey), NOW],
      ['for another domain', certifyHubKey({ domain: 'other', key: hub.publicKey, notBefore: NOW - HOUR, notAfter: NOW + DAY }, w.providerDomain.privateKey), NOW],
      ['expired', cert, NOW + 2 * DAY],
      ['not yet valid', cert, NOW - 2 * HOUR],
    ];
    for (const [what, c, at] of cases) {
      const acceptance = acceptanceOf(first!, hub.privateKey, at, c);
      assert.throws(() => verifyAcceptance({ obligation: first!, acceptance }, w.providerDomain.publicKey), BadSignatureError, what);
    }
  });

  it('refuses an acceptance signed by another key than the certified one', () => {
    const acceptance = acceptanceOf(first!, generateKeyPair().privateKey, NOW, cert);
    assert.throws(() => verifyAcceptance({ obligation: first!, acceptance }, w.providerDomain.publicKey), BadSignatureError);
  });

  it('offers: a certified hub key signs them, checked at their expiry', () => {
    const input = { offerId: 'o-1', providerDomain: 'wifico', providerDevice: 'ap-7', service: 'wifi-access', price: 1_000, payTo: 'Rpay', consumer: 'acme/meter-1', expiresAt: NOW + HOUR };
    const offer = parseOffer(JSON.parse(JSON.stringify(createOffer({ ...input, certificate: cert }, hub.privateKey))));
    verifyOffer(offer, w.providerDomain.publicKey);
    const late = createOffer({ ...input, expiresAt: NOW + 2 * DAY, certificate: cert }, hub.privateKey);
    assert.throws(() => verifyOffer(late, w.providerDomain.publicKey), BadSignatureError, 'the offer outlives the certificate');
    assert.throws(() => verifyOffer(createOffer(input, hub.privateKey), w.providerDomain.publicKey), BadSignatureError, 'a hub key without its certificate');
  });

  it('a certificate is valid for at most MAX_HUB_KEY_MS', () => {
    assert.throws(
      () => certifyHubKey({ domain: 'wifico', key: hub.publicKey, notBefore: NOW, notAfter: NOW + MAX_HUB_KEY_MS + 1 }, w.providerDomain.privateKey),
      MalformedError,
    );
    assert.equal(signingKeyOf({}, 'wifico', w.providerDomain.publicKey, NOW), w.providerDomain.publicKey, 'no certificate: the domain key');
  });

  it('signs through an asynchronous signer (the Signer port) exactly as with the key in hand', async () => {
    const remote: AsyncSigner = { sign: async (text) => signBytes(w.providerDomain.privateKey, text) };
    const viaPort = await certifyHubKey({ domain: 'wifico', key: hub.publicKey, notBefore: NOW, notAfter: NOW + DAY }, remote);
    assert.ok(verifySigned(viaPort, w.providerDomain.publicKey));
  });
});

describe('revocation records and renewal requests', () => {
  const body = { domain: 'acme', deviceId: 'meter-1', deviceKey: w.device.publicKey, reason: 'key stolen', at: NOW };

  it('a revocation is signed by its domain and round-trips through the parser', () => {
    const r = parseRevocation(JSON.parse(JSON.stringify(createRevocation(body, w.consumerDomain.privateKey))));
    verifySignedBy(r, 'acme', w.consumerDomain.publicKey);
    assert.throws(() => verifySignedBy(r, 'acme', w.providerDomain.publicKey), BadSignatureError);
  });

  it('rejects malformed revocations: unknown fields, another kind, a non-printable reason', () => {
    const r = createRevocation(body, w.consumerDomain.privateKey);
    assert.throws(() => parseRevocation({ ...r, body: { ...r.body, extra: 1 } }), MalformedError);
    assert.throws(() => parseRevocation({ ...r, body: { ...r.body, kind: 'outcome' } }), MalformedError);
    assert.throws(() => parseRevocation({ ...r, body: { ...r.body, reason: 'a\nb' } }), MalformedError);
  });

  it('a renewal request is signed by the device (by = domain/device)', () => {
    const req = parseRenewalRequest(JSON.parse(JSON.stringify(createRenewalRequest({ domain: 'acme', deviceId: 'meter-1', at: NOW }, w.device.privateKey))));
    assert.equal(req.by, 'acme/meter-1');
    assert.ok(verifySigned(req, w.device.publicKey));
  });

  it('decide refuses a revoked device key (final F13), after checking the credential', () => {
    const d = decide(first!, ctx({ revoked: true }));
    assert.equal(d.accept, false);
    if (d.accept) return;
    assert.ok(d.error instanceof RevokedError);
    assert.equal(d.error.code, 'F14_REVOKED');
    assert.equal(d.error.errorClass, 'final');
    assert.ok(decide(first!, ctx({ revoked: false })).accept);
  });
});
