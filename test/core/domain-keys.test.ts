/**
 * A domain's key chain (core/domain-keys.ts): which rotation may follow, and
 * which key a ledger record dated `at` is checked with.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BadSignatureError } from '../../core/errors.ts';
import { checkDated, checkRotation, currentKey, keysAt, ROTATION_GRACE_MS, withRotation, type DomainKeys } from '../../core/domain-keys.ts';
import { generateKeyPair, keyFingerprint, type KeyPair } from '../../core/keys.ts';
import { createDomainRecord, createKeyRotation, createRevocation, verifySignedBy } from '../../core/records.ts';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

function chain(): { keys: DomainKeys; k0: KeyPair } {
  const k0 = generateKeyPair();
  const record = createDomainRecord({ domain: 'd', publisher: 'hub-d', createdAt: T0 }, k0);
  return { keys: { record, rotations: [] }, k0 };
}

const rotate = (keys: DomainKeys, signer: KeyPair, next: KeyPair, at: number, seq = keys.rotations.length + 1, previous = signer.publicKey) =>
  createKeyRotation({ domain: 'd', seq, key: next.publicKey, previous: keyFingerprint(previous), at }, signer.privateKey);

const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof BadSignatureError && re.test(e.message));

describe('domain key rotation: the chain', () => {
  it('a rotation signed by the current key, naming it, numbered next and dated later extends the chain', () => {
    const { keys, k0 } = chain();
    const k1 = generateKeyPair();
    const r1 = rotate(keys, k0, k1, T0 + HOUR);
    assert.equal(checkRotation(keys, r1), 'next');
    const one = withRotation(keys, r1);
    assert.deepEqual(currentKey(one), k1.publicKey);
    assert.equal(checkRotation(one, r1), 'known', 'the same record again changes nothing');
    assert.equal(withRotation(one, r1), one);
    const k2 = generateKeyPair();
    const two = withRotation(one, rotate(one, k1, k2, T0 + 2 * HOUR));
    assert.deepEqual(currentKey(two), k2.publicKey);
    assert.equal(two.rotations.length, 2);
  });

  it('refuses a rotation signed by another key, even one the domain had before', () => {
    const { keys, k0 } = chain();
    const k1 = generateKeyPair();
    refused(() => checkRotation(keys, rotate(keys, generateKeyPair(), k1, T0 + HOUR, 1, k0.publicKey)), /not signed by the key it replaces/);
    const one = withRotation(keys, rotate(keys, k0, k1, T0 + HOUR));
    // the retired key signs a second rotation: refused (a stolen old key cannot take the domain back)
    refused(() => checkRotation(one, rotate(one, k0, generateKeyPair(), T0 + 2 * HOUR, 2, k1.publicKey)), /not signed by the key it replaces/);
  });

  it('refuses a rotation that does not name the current key, skips a number, repeats one differently, or is not later', () => {
    const { keys, k0 } = chain();
    const k1 = generateKeyPair();
    refused(() => checkRotation(keys, rotate(keys, k0, k1, T0 + HOUR, 1, generateKeyPair().publicKey)), /does not replace its current key/);
    refused(() => checkRotation(keys, rotate(keys, k0, k1, T0 + HOUR, 2)), /does not follow rotation 0/);
    refused(() => checkRotation(keys, rotate(keys, k0, k1, T0)), /not after the last change/);
    const one = withRotation(keys, rotate(keys, k0, k1, T0 + HOUR));
    refused(() => checkRotation(one, rotate(keys, k0, generateKeyPair(), T0 + HOUR)), /differs from the one already on the ledger/);
  });

  it('refuses a rotation back to a key the domain had, or of another domain', () => {
    const { keys, k0 } = chain();
    const k1 = generateKeyPair();
    const one = withRotation(keys, rotate(keys, k0, k1, T0 + HOUR));
    refused(() => checkRotation(one, rotate(one, k1, k0, T0 + 2 * HOUR)), /goes back to a key/);
    const other = createKeyRotation({ domain: 'e', seq: 1, key: k1.publicKey, previous: keyFingerprint(k0.publicKey), at: T0 + HOUR }, k0.privateKey);
    refused(() => checkRotation(keys, other), /is not one of d/);
  });
});

describe('domain key rotation: which key checks a ledger record', () => {
  const { keys, k0 } = chain();
  const k1 = generateKeyPair();
  const k2 = generateKeyPair();
  const at1 = T0 + 10 * HOUR;
  const at2 = T0 + 20 * HOUR;
  const one = withRotation(keys, rotate(keys, k0, k1, at1));
  const two = withRotation(one, rotate(one, k1, k2, at2));

  it('the key in force at the record\'s date first, then later keys, a retired one only within the grace after its rotation', () => {
    assert.deepEqual(keysAt(two, T0), [k0.publicKey, k1.publicKey, k2.publicKey]);
    assert.deepEqual(keysAt(two, at1 - 1), [k0.publicKey, k1.publicKey, k2.publicKey]);
    assert.deepEqual(keysAt(two, at1), [k1.publicKey, k2.publicKey, k0.publicKey]);
    assert.deepEqual(keysAt(two, at1 + ROTATION_GRACE_MS - 1), [k1.publicKey, k2.publicKey, k0.publicKey]);
    assert.deepEqual(keysAt(two, at1 + ROTATION_GRACE_MS), [k1.publicKey, k2.publicKey]);
    assert.deepEqual(keysAt(two, at2 + ROTATION_GRACE_MS - 1), [k2.publicKey, k1.publicKey]);
    assert.deepEqual(keysAt(two, at2 + HOUR), [k2.publicKey]);
    assert.deepEqual(keysAt(keys, at2), [k0.publicKey], 'no rotation: the record\'s key at any date');
  });

  it('a record dated before a rotation verifies with the old key or a later one; one dated after the grace, with the retired key, does not', () => {
    const revocation = (at: number, signer: KeyPair) =>
      createRevocation({ domain: 'd', deviceId: 'x', deviceKey: generateKeyPair().publicKey, reason: '', at }, signer.privateKey);
    const check = (at: number, signer: KeyPair) => {
      const r = revocation(at, signer);
      checkDated(two, at, (key) => verifySignedBy(r, 'd', key));
    };
    check(at1 - HOUR, k0);
    check(at1 + 60_000, k0); // a container that signed a minute after the rotation
    check(at1 + HOUR, k1);
    check(at2 + HOUR, k2);
    check(at1 - HOUR, k1); // a settlement made before the rotation, published (signed) after it
    check(at1 - HOUR, k2);
    refused(() => check(at1 + ROTATION_GRACE_MS + 1, k0), /not signed by d/);
    refused(() => check(at2 + HOUR, k1), /not signed by d/);
    refused(() => check(at2 + HOUR, k0), /not signed by d/);
    refused(() => check(at1 - HOUR, generateKeyPair()), /not signed by d/);
  });
});
