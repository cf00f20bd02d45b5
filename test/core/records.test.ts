import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BadCredentialError,
  BadSignatureError,
  MAX_SATS,
  MalformedError,
  acceptanceOf,
  createDomainRecord,
  createOffer,
  generateKeyPair,
  issueCredential,
  parseAccepted,
  parseCredential,
  parseDomainRecord,
  parseObligation,
  parseOffer,
  verifyCredential,
  verifyDomainRecord,
  verifyOffer,
} from '../../core/index.ts';
import { DAY, NOW, clone, makeWorld, obligationFor } from './fixtures.ts';

const w = makeWorld();
const ob = obligationFor(w);

/** Assert that `fn` throws MalformedError whose message names `field`. */
function rejectsField(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => e instanceof MalformedError && e.message.includes(field));
}

describe('parseObligation', () => {
  it('accepts a well-formed obligation from the wire', () => {
    assert.deepEqual(parseObligation(clone(ob)), ob);
  });

  const cases: [string, (o: Record<string, any>) => void, string][] = [
    ['a short id', (o) => (o.id = 'abc'), 'obligation.id'],
    ['an upper-case id', (o) => (o.id = o.id.toUpperCase()), 'obligation.id'],
    ['an amount of 0', (o) => (o.body.amount = 0), 'obligation.body.amount'],
    ['an amount over 21e14', (o) => (o.body.amount = MAX_SATS + 1), 'obligation.body.amount'],
    ['a fractional amount', (o) => (o.body.amount = 1.5), 'obligation.body.amount'],
    ['an amount as a string', (o) => (o.body.amount = '1000'), 'obligation.body.amount'],
    ['a domain with a space', (o) => (o.body.consumerDomain = 'ac me'), 'obligation.body.consumerDomain'],
    ['a 65-character device', (o) => (o.body.consumerDevice = 'd'.repeat(65)), 'obligation.body.consumerDevice'],
    ['seq 0', (o) => (o.body.seq = 0), 'obligation.body.seq'],
    ['a bad prev', (o) => (o.body.prev = 'g'.repeat(64)), 'obligation.body.prev'],
    ['version 2', (o) => (o.body.version = 2), 'obligation.body.version'],
    ['a missing field', (o) => delete o.body.payTo, 'obligation.body.payTo'],
    ['an extra field', (o) => (o.body.bonus = 1), 'obligation.body.bonus'],
    ['a negative issuedAt', (o) => (o.body.issuedAt = -1), 'obligation.body.issuedAt'],
    ['a bad credential key alg', (o) => (o.body.credential.body.deviceKey.alg = 'rsa'), 'obligation.body.credential.body.deviceKey.alg'],
    ['a non-base64url sig', (o) => (o.sig = 'a+b/'), 'obligation.sig'],
    ['a body that is an array', (o) => (o.body = []), 'obligation.body'],
  ];
  for (const [name, mutate, field] of cases) {
    it(`rejects ${name}, naming ${field}`, () => {
      const bad = clone(ob) as unknown as Record<string, any>;
      mutate(bad);
      rejectsField(() => parseObligation(bad), field);
    });
  }

  it('rejects non-objects', () => {
    rejectsField(() => parseObligation(null), 'obligation');
    rejectsField(() => parseObligation('x'), 'obligation');
  });
});

describe('domain records', () => {
  const keys = generateKeyPair();
  const record = createDomainRecord({ domain: 'acme', publisher: '1AcmePublisher', operates: ['acme-labs'], createdAt: NOW }, keys);

  it('are self-signed and parse from the wire', () => {
    verifyDomainRecord(parseDomainRecord(clone(record)));
  });

  it('reject a record signed by another key', () => {
    const forged = createDomainRecord({ domain: 'acme', publisher: '1AcmePublisher', createdAt: NOW }, keys);
    const other = generateKeyPair();
    assert.throws(() => verifyDomainRecord({ ...forged, body: { ...forged.body, key: other.publicKey } }), BadSignatureError);
  });

  it('reject a bad operates list', () => {
    const bad = clone(record) as unknown as Record<string, any>;
    bad.body.operates = ['ok', 'not ok'];
    rejectsField(() => parseDomainRecord(bad), 'domainRecord.body.operates[1]');
  });
});

describe('device credentials', () => {
  it('verify with the issuing domain key within their validity', () => {
    verifyCredential(parseCredential(clone(w.credential)), w.consumerDomain.publicKey, NOW);
  });

  it('reject another domain key, or a time outside the validity', () => {
    assert.throws(() => verifyCredential(w.credential, w.providerDomain.publicKey), BadCredentialError);
    assert.throws(() => verifyCredential(w.credential, w.consumerDomain.publicKey, NOW + 400 * DAY), BadCredentialError);
  });

  it('cannot be issued with notAfter before notBefore', () => {
    assert.throws(
      () =>
        issueCredential(
          { domain: 'acme', deviceId: 'x', deviceKey: w.device.publicKey, creditLimit: 1, notBefore: 10, notAfter: 5 },
          w.consumerDomain.privateKey,
        ),
      MalformedError,
    );
  });
});

describe('offers', () => {
  const signed = createOffer(
    { offerId: 'o-1', providerDomain: 'wifico', providerDevice: 'ap-7', service: 'wifi-access', price: 10, payTo: 'Raddr', consumer: 'acme/meter-1', expiresAt: NOW },
    w.providerDomain.privateKey,
  );

  it('verify with the provider domain key and parse from the wire', () => {
    verifyOffer(parseOffer(clone(signed)), w.providerDomain.publicKey);
  });

  it('reject a changed price or another key', () => {
    assert.throws(() => verifyOffer({ ...signed, body: { ...signed.body, price: 1 } }, w.providerDomain.publicKey), BadSignatureError);
    assert.throws(() => verifyOffer(signed, w.consumerDomain.publicKey), BadSignatureError);
  });

  it('reject a bad payTo', () => {
    const bad = clone(signed) as unknown as Record<string, any>;
    bad.body.payTo = 'bc1-not-an-address';
    rejectsField(() => parseOffer(bad), 'offer.body.payTo');
  });
});

describe('parseAccepted', () => {
  it('accepts an obligation with its acceptance', () => {
    const accepted = { obligation: ob, acceptance: acceptanceOf(ob, w.providerDomain.privateKey, NOW) };
    assert.deepEqual(parseAccepted(clone(accepted)), accepted);
  });

  it('rejects an acceptance with a bad obligationId', () => {
    const accepted = clone({ obligation: ob, acceptance: acceptanceOf(ob, w.providerDomain.privateKey, NOW) }) as Record<string, any>;
    accepted.acceptance.body.obligationId = 'nope';
    rejectsField(() => parseAccepted(accepted), 'accepted.acceptance.body.obligationId');
  });
});
