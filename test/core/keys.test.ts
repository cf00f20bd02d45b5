import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generateKeyPair,
  publicKeyOf,
  sameKey,
  signBytes,
  signValue,
  verifyBytes,
  verifyBytesOnce,
  verifiedMemoSize,
  verifySigned,
  VERIFIED_MEMO_SIZE,
  type KeyAlg,
} from '../../core/index.ts';

for (const alg of ['ed25519', 'p256'] as const satisfies readonly KeyAlg[]) {
  describe(`keys (${alg})`, () => {
    const a = generateKeyPair(alg);
    const b = generateKeyPair(alg);

    it('verifies its own signature', () => {
      const sig = signBytes(a.privateKey, 'hello');
      assert.equal(verifyBytes(a.publicKey, 'hello', sig), true);
    });

    it('rejects other data, another key, and a flipped signature', () => {
      const sig = signBytes(a.privateKey, 'hello');
      assert.equal(verifyBytes(a.publicKey, 'hellO', sig), false);
      assert.equal(verifyBytes(b.publicKey, 'hello', sig), false);
      const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
      assert.equal(verifyBytes(a.publicKey, 'hello', flipped), false);
    });

    it('signatures have one fixed size (P-256 in IEEE P1363 r||s form)', () => {
      const bytes = Buffer.from(signBytes(a.privateKey, 'x'), 'base64url');
      assert.equal(bytes.length, 64);
    });

    it('returns false, never throws, on garbage', () => {
      const sig = signBytes(a.privateKey, 'hello');
      assert.equal(verifyBytes(a.publicKey, 'hello', ''), false);
      assert.equal(verifyBytes(a.publicKey, 'hello', '!!!not base64!!!'), false);
      assert.equal(verifyBytes({ alg, spki: 'AAAA' }, 'hello', sig), false);
      assert.equal(verifyBytes({ alg, spki: '' }, 'hello', sig), false);
      assert.equal(verifyBytes(a.publicKey, 'hello', 'A'.repeat(5000)), false);
    });

    it('rejects a non-canonical base64url spelling of a valid signature', () => {
      const sig = signBytes(a.privateKey, 'hello');
      // 64 bytes = 86 base64url characters; the last one carries 4 unused bits.
      const last = sig.at(-1) ?? '';
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const twin = alphabet[alphabet.indexOf(last) ^ 1] ?? last;
      const variant = sig.slice(0, -1) + twin;
      assert.deepEqual(Buffer.from(variant, 'base64url'), Buffer.from(sig, 'base64url'));
      assert.equal(verifyBytes(a.publicKey, 'hello', variant), false);
    });

    it('signValue/verifySigned cover the canonical body', () => {
      const signed = signValue({ b: 2, a: 1 }, a.privateKey, 'acme');
      assert.equal(signed.by, 'acme');
      assert.equal(verifySigned(signed, a.publicKey), true);
      assert.equal(verifySigned({ ...signed, body: { a: 1, b: 3 } }, a.publicKey), false);
      assert.equal(verifySigned({ ...signed, body: { a: 1.5, b: 2 } }, a.publicKey), false);
      assert.equal(verifySigned(signed, b.publicKey), false);
    });

    it('derives the public key from the private key', () => {
      assert.equal(sameKey(publicKeyOf(a.privateKey), a.publicKey), true);
    });
  });
}

describe('keys across algorithms', () => {
  it('does not accept a key labelled with the wrong algorithm', () => {
    const ed = generateKeyPair('ed25519');
    const sig = signBytes(ed.privateKey, 'x');
    assert.equal(verifyBytes({ alg: 'p256', spki: ed.publicKey.spki }, 'x', sig), false);
    assert.throws(() => signBytes({ alg: 'p256', pkcs8: ed.privateKey.pkcs8 }, 'x'));
  });
});

describe('signBytes with a key ref it has seen', () => {
  it('signs with what the ref holds now: a ref changed since its last use signs with its new key', () => {
    for (const alg of ['ed25519', 'p256'] as const) {
      const a = generateKeyPair(alg);
      const b = generateKeyPair(alg);
      const ref = { ...a.privateKey };
      assert.equal(verifyBytes(a.publicKey, 'text', signBytes(ref, 'text')), true);
      ref.pkcs8 = b.privateKey.pkcs8;
      const sig = signBytes(ref, 'text');
      assert.equal(verifyBytes(b.publicKey, 'text', sig), true, alg);
      assert.equal(verifyBytes(a.publicKey, 'text', sig), false, alg);
    }
  });
});

describe('verifyBytesOnce (a memo of verified signatures)', () => {
  const a = generateKeyPair('ed25519');
  const b = generateKeyPair('ed25519');

  it('answers as verifyBytes, before and after a signature is remembered', () => {
    const text = `credential ${Math.random()}`;
    const sig = signBytes(a.privateKey, text);
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    for (let round = 0; round < 2; round++) {
      assert.equal(verifyBytesOnce(a.publicKey, text, sig), true);
      // the same signature over another text, by another key, or altered, still fails
      assert.equal(verifyBytesOnce(a.publicKey, `${text}!`, sig), false);
      assert.equal(verifyBytesOnce(b.publicKey, text, sig), false);
      assert.equal(verifyBytesOnce(a.publicKey, text, flipped), false);
    }
  });

  it('remembers successes only, and at most VERIFIED_MEMO_SIZE of them', () => {
    const before = verifiedMemoSize();
    const text = `once ${Math.random()}`;
    const sig = signBytes(a.privateKey, text);
    assert.equal(verifyBytesOnce(a.publicKey, `${text}?`, sig), false);
    assert.equal(verifiedMemoSize(), before, 'a failure is not remembered');
    verifyBytesOnce(a.publicKey, text, sig);
    verifyBytesOnce(a.publicKey, text, sig);
    assert.equal(verifiedMemoSize(), Math.min(before + 1, VERIFIED_MEMO_SIZE));
    for (let i = 0; i <= VERIFIED_MEMO_SIZE; i++) {
      const t = `fill ${i}`;
      verifyBytesOnce(a.publicKey, t, signBytes(a.privateKey, t));
    }
    assert.equal(verifiedMemoSize(), VERIFIED_MEMO_SIZE);
    assert.equal(verifyBytesOnce(a.publicKey, text, sig), true, 'forgotten, then verified again');
  });
});
