/**
 * The compact obligation item (adapters/store/dynamo.ts): what obligationRecord
 * writes, obligationFrom reads back exactly, whatever strings the signed document
 * holds: signatures, keys and hashes go as bytes (format 3) only where they come
 * back the same, anything else stays text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { obligationFrom, obligationRecord, type ObligationItem } from '../../adapters/store/dynamo.ts';
import type { AcceptedObligation } from '../../core/types.ts';

const ED25519_SPKI = (key: Buffer) => Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key]).toString('base64url');

/** Strings of every shape format 3 might mistake: base64url of any length, hex, spki keys, its placeholders, plain text. */
const tricky = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => ED25519_SPKI(Buffer.from(b))),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => ED25519_SPKI(Buffer.from(b)).slice(0, -1) + 'A'),
  fc.constantFrom('\u0000', '\u0001', '\u0002', '0'.repeat(64), 'A'.repeat(43), 'a'.repeat(64), 'ABCDEF'.repeat(11)),
  fc.string(),
);

function item(doc: { sigs: string[]; prev: string; spki: string; service: string }): ObligationItem {
  const id = randomBytes(32).toString('hex');
  const accepted = {
    obligation: {
      body: { version: 1, consumerDomain: 'c1', consumerDevice: 'd1', providerDomain: 'p1', service: doc.service, amount: 5, payTo: 'R-pay', dueBy: 2, prev: doc.prev, credential: { body: { deviceKey: { alg: 'ed25519', spki: doc.spki } }, sig: doc.sigs[0], by: 'c1' } },
      sig: doc.sigs[1],
      id,
    },
    acceptance: { body: { version: 1, providerDomain: 'p1', payTo: 'R-pay', acceptedAt: 1, obligationId: id }, sig: doc.sigs[2], by: 'p1' },
  } as unknown as AcceptedObligation;
  return { id, status: 'accepted', accepted, consumerDomain: 'c1', consumerDevice: 'd1', providerDomain: 'p1', amount: 5, payTo: 'R-pay', acceptedAt: 1, dueBy: 2 };
}

describe('the compact obligation item', () => {
  it('reads back exactly what was written, for any strings in the signed document', () => {
    fc.assert(
      fc.property(fc.record({ sigs: fc.array(tricky, { minLength: 3, maxLength: 3 }), prev: tricky, spki: tricky, service: tricky }), (doc) => {
        const ob = item(doc);
        assert.deepEqual(obligationFrom(obligationRecord(ob)), ob);
      }),
      { numRuns: 500 },
    );
  });

  it('reads back a document parsed from JSON with an own "__proto__" key, as parsed', () => {
    const sig = randomBytes(64).toString('base64url');
    const ob = item({ sigs: [sig, sig, sig], prev: randomBytes(32).toString('hex'), spki: ED25519_SPKI(randomBytes(32)), service: 'wifi-access' });
    const accepted = JSON.parse(JSON.stringify(ob.accepted).replace('{"body"', `{"__proto__":{"sig":"${sig}"},"body"`)) as AcceptedObligation;
    assert.ok(Object.hasOwn(accepted.obligation, '__proto__'));
    const back = obligationFrom(obligationRecord({ ...ob, accepted }));
    assert.ok(Object.hasOwn(back.accepted.obligation, '__proto__'), 'an own key, not a prototype');
    assert.deepEqual(back.accepted, accepted);
  });

  it('keeps signatures, keys and hashes as bytes (format 3): smaller than the same document as compressed text', () => {
    const sig = () => randomBytes(64).toString('base64url');
    const ob = item({ sigs: [sig(), sig(), sig()], prev: randomBytes(32).toString('hex'), spki: ED25519_SPKI(randomBytes(32)), service: 'wifi-access' });
    const a = obligationRecord(ob).a as Uint8Array;
    assert.equal(a[0], 3, 'format 3');
    // the same document with one string no placeholder can stand for: it stays compressed text (format 2)
    const text = obligationRecord({ ...ob, accepted: { ...ob.accepted, extra: '\u0000' } as unknown as AcceptedObligation }).a as Uint8Array;
    assert.equal(text[0], 2, 'format 2 when a string clashes with a placeholder');
    assert.ok(a.byteLength + 15 < text.byteLength, `format 3 ${a.byteLength} B vs format 2 ${text.byteLength} B`);
    assert.deepEqual(obligationFrom(obligationRecord(ob)), ob);
  });
});
