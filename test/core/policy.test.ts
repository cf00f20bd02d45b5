import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BadCredentialError,
  BadSignatureError,
  ChainBreakError,
  ExpiredError,
  MalformedError,
  OfferMismatchError,
  OverCreditError,
  ReplayError,
  ReputationTooLowError,
  UnknownDomainError,
  GENESIS,
  createObligation,
  decide,
  generateKeyPair,
  verifyAcceptance,
  type DecisionContext,
  type ErrorClass,
  type Obligation,
  type ObligationError,
} from '../../core/index.ts';
import { DAY, NOW, chainOf, clone, makeOffer, makeWorld } from './fixtures.ts';

const w = makeWorld();
const [first, second] = chainOf(w, 2) as [Obligation, Obligation];

function ctx(overrides: Partial<DecisionContext> = {}): DecisionContext {
  return {
    now: NOW,
    consumerDomainKey: w.consumerDomain.publicKey,
    offer: w.offer,
    providerDomain: 'wifico',
    providerKey: w.providerDomain.privateKey,
    threshold: 0.4,
    reputation: 0.5,
    creditLimit: 50_000,
    outstanding: 0,
    chainHead: undefined,
    seen: false,
    ...overrides,
  };
}

type ErrorType = (abstract new (...args: never[]) => ObligationError) & { code: string };

/** Assert a rejection with this error type and class; returns its details. */
function rejects(ob: Obligation, c: DecisionContext, type: ErrorType, errorClass: ErrorClass): Record<string, unknown> {
  const d = decide(ob, c);
  assert.equal(d.accept, false, `expected ${type.name}`);
  if (d.accept) throw new Error('unreachable');
  assert.ok(d.error instanceof type, `expected ${type.name}, got ${d.error.name}: ${d.error.message}`);
  assert.equal(d.error.code, type.code);
  assert.equal(d.error.errorClass, errorClass);
  return d.error.details ?? {};
}

function accepts(ob: Obligation, c: DecisionContext): void {
  const d = decide(ob, c);
  if (!d.accept) assert.fail(`rejected: ${d.error.name}: ${d.error.message}`);
  assert.equal(d.acceptance.body.obligationId, ob.id);
  assert.equal(d.acceptance.body.acceptedAt, c.now);
  verifyAcceptance({ obligation: ob, acceptance: d.acceptance }, w.providerDomain.publicKey);
}

describe('decide', () => {
  it('accepts a first obligation of a newcomer within credit, with a signed acceptance', () => {
    accepts(first, ctx());
  });

  it('accepts the next link after the device chain head', () => {
    accepts(second, ctx({ chainHead: { seq: 1, id: first.id } }));
  });

  describe('structure', () => {
    it('rejects a malformed obligation (final)', () => {
      const bad = clone(first) as unknown as Record<string, any>;
      bad.body.amount = '1000';
      rejects(bad as unknown as Obligation, ctx(), MalformedError, 'final');
    });
  });

  describe('consumer domain', () => {
    it('rejects an unknown consumer domain (final)', () => {
      const details = rejects(first, ctx({ consumerDomainKey: undefined }), UnknownDomainError, 'final');
      assert.equal(details['domain'], 'acme');
    });
  });

  describe('signatures and credential', () => {
    it('rejects a credential not signed by the consumer domain (final)', () => {
      rejects(first, ctx({ consumerDomainKey: generateKeyPair().publicKey }), BadCredentialError, 'final');
    });

    it('rejects a bad device signature (final)', () => {
      rejects({ ...first, sig: second.sig }, ctx(), BadSignatureError, 'final');
    });

    it('rejects an id that does not hash the body (final)', () => {
      rejects({ ...first, id: second.id }, ctx(), MalformedError, 'final');
    });
  });

  describe('offer', () => {
    it('rejects when no offer was made (final)', () => {
      rejects(first, ctx({ offer: undefined }), OfferMismatchError, 'final');
    });

    it('rejects a price that differs from the offer, naming the field', () => {
      const details = rejects(first, ctx({ offer: { ...w.offer, price: 900 } }), OfferMismatchError, 'final');
      assert.deepEqual(details['fields'], ['amount']);
    });

    it('rejects an offer made to another device or provider', () => {
      assert.deepEqual(rejects(first, ctx({ offer: { ...w.offer, consumer: 'acme/meter-9' } }), OfferMismatchError, 'final')['fields'], ['consumer']);
      assert.deepEqual(rejects(first, ctx({ providerDomain: 'otherco' }), OfferMismatchError, 'final')['fields'], ['providerDomain']);
      assert.deepEqual(rejects(first, ctx({ offer: { ...w.offer, payTo: 'Rother' } }), OfferMismatchError, 'final')['fields'], ['payTo']);
    });

    it('accepts up to the offer expiry, rejects after it (final)', () => {
      accepts(first, ctx({ now: w.offer.expiresAt }));
      rejects(first, ctx({ now: w.offer.expiresAt + 1 }), ExpiredError, 'final');
    });

    it('rejects an obligation already past due', () => {
      const offer = makeOffer(w.providerDomain, 'offer-1', { expiresAt: NOW + 30 * DAY });
      rejects(first, ctx({ offer, now: NOW + 7 * DAY }), ExpiredError, 'final');
      accepts(first, ctx({ offer, now: NOW + 7 * DAY - 1 }));
    });
  });

  describe('replay', () => {
    it('rejects an id already accepted (final)', () => {
      rejects(first, ctx({ seen: true }), ReplayError, 'final');
    });

    it('rejects a sequence number at or below the chain head (final)', () => {
      const details = rejects(first, ctx({ chainHead: { seq: 1, id: first.id } }), ReplayError, 'final');
      assert.deepEqual(details, { seq: 1, headSeq: 1 });
    });
  });

  describe('chain link', () => {
    it('accepts the next link of the head it knows', () => {
      accepts(second, ctx({ chainHead: { seq: 1, id: first.id } }));
    });

    it('rejects a link whose prev is not the head it follows (final)', () => {
      rejects(second, ctx({ chainHead: { seq: 1, id: second.id } }), ChainBreakError, 'final');
    });

    it('accepts a forward gap: the links between were accepted at other hubs and are not followed here yet', () => {
      accepts(second, ctx());
      accepts(second, ctx({ chainHead: { seq: 0, id: first.id } }));
    });

    it('rejects a first link that does not start at GENESIS and a later link that claims to (final)', () => {
      const link = (seq: number, prev: string) =>
        createObligation({ credential: w.credential, deviceKey: w.device.privateKey, offer: w.offer, seq, prev, issuedAt: NOW, dueBy: NOW + 7 * DAY });
      rejects(link(1, second.id), ctx(), ChainBreakError, 'final');
      rejects(link(2, GENESIS), ctx(), ChainBreakError, 'final');
    });
  });

  describe('reputation', () => {
    it('accepts at the threshold, rejects below it (temporary)', () => {
      accepts(first, ctx({ reputation: 0.4, threshold: 0.4 }));
      const details = rejects(first, ctx({ reputation: 0.39, threshold: 0.4 }), ReputationTooLowError, 'temporary');
      assert.deepEqual(details, { reputation: 0.39, threshold: 0.4 });
    });
  });

  describe('credit', () => {
    it('accepts up to the limit, rejects over it (temporary)', () => {
      accepts(first, ctx({ outstanding: 49_000, creditLimit: 50_000 }));
      const details = rejects(first, ctx({ outstanding: 49_001, creditLimit: 50_000 }), OverCreditError, 'temporary');
      assert.deepEqual(details, { outstanding: 49_001, amount: 1_000, limit: 50_000 });
    });
  });

  describe('order of checks', () => {
    it('reports the earliest failing rule', () => {
      const everythingWrong = ctx({ seen: true, reputation: 0, outstanding: 1e9, offer: undefined });
      rejects(first, { ...everythingWrong, consumerDomainKey: undefined }, UnknownDomainError, 'final');
      rejects(first, everythingWrong, OfferMismatchError, 'final');
      rejects(first, { ...everythingWrong, offer: w.offer }, ReplayError, 'final');
      rejects(first, { ...everythingWrong, offer: w.offer, seen: false, chainHead: { seq: 5, id: second.id } }, ReplayError, 'final');
      rejects(second, { ...everythingWrong, offer: w.offer, seen: false, chainHead: { seq: 1, id: second.id } }, ChainBreakError, 'final');
      rejects(first, { ...everythingWrong, offer: w.offer, seen: false }, ReputationTooLowError, 'temporary');
    });

    it('throws, rather than rejecting the caller, when the provider key is bad', () => {
      assert.throws(() => decide(first, ctx({ providerKey: { alg: 'ed25519', pkcs8: 'garbage' } })), MalformedError);
    });
  });
});


