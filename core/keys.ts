/**
 * Keys and signatures through node:crypto only: Ed25519 (default) or ECDSA P-256.
 * Keys travel as base64url DER (SPKI for public, PKCS#8 for private); signatures as base64url.
 * P-256 signatures use the fixed-size r||s form (dsaEncoding 'ieee-p1363', see the
 * node:crypto docs for crypto.sign/verify) so every signature of an algorithm has one length.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize, type JsonLike } from './canonical.ts';
import { MalformedError } from './errors.ts';
import type { KeyAlg, PublicKeyRef, Signed } from './types.ts';

/** A private key held by a back-end or device: algorithm plus base64url PKCS#8 DER. */
export interface PrivateKeyRef {
  alg: KeyAlg;
  pkcs8: string;
}

export interface KeyPair {
  publicKey: PublicKeyRef;
  privateKey: PrivateKeyRef;
}

/** Parsed KeyObjects kept at most; the oldest entry is dropped first. */
export const KEY_CACHE_SIZE = 4096;

const cache = new Map<string, KeyObject>();

function remember(id: string, key: KeyObject): KeyObject {
  if (cache.size >= KEY_CACHE_SIZE) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(id, key);
  return key;
}

function matchesAlg(key: KeyObject, alg: KeyAlg): boolean {
  if (alg === 'ed25519') return key.asymmetricKeyType === 'ed25519';
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** The parsed public key (cached); throws MalformedError if it does not parse or is not of `alg`. */
export function publicKeyObject(ref: PublicKeyRef): KeyObject {
  const id = `pub:${ref.alg}:${ref.spki}`;
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(ref.spki, 'base64url'), format: 'der', type: 'spki' });
  } catch {
    throw new MalformedError('public key does not parse as SPKI DER');
  }
  if (!matchesAlg(key, ref.alg)) throw new MalformedError(`public key is not ${ref.alg}`);
  return remember(id, key);
}

/**
 * The parsed private key of each PrivateKeyRef object seen, with the fields it was parsed from:
 * a device signs with the same ref again and again, and this finds its key without building and
 * hashing the string id below. A ref whose fields changed since is looked up by id again.
 */
const byRef = new WeakMap<PrivateKeyRef, { alg: KeyAlg; pkcs8: string; key: KeyObject }>();

function privateKeyObject(ref: PrivateKeyRef): KeyObject {
  const seen = byRef.get(ref);
  if (seen !== undefined && seen.alg === ref.alg && seen.pkcs8 === ref.pkcs8) return seen.key;
  const key = parsedPrivateKey(ref);
  byRef.set(ref, { alg: ref.alg, pkcs8: ref.pkcs8, key });
  return key;
}

function parsedPrivateKey(ref: PrivateKeyRef): KeyObject {
  const id = `priv:${ref.alg}:${ref.pkcs8}`;
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(ref.pkcs8, 'base64url'), format: 'der', type: 'pkcs8' });
  } catch {
    throw new MalformedError('private key does not parse as PKCS#8 DER');
  }
  if (!matchesAlg(key, ref.alg)) throw new MalformedError(`private key is not ${ref.alg}`);
  return remember(id, key);
}

/** A fresh key pair of `alg`. */
export function generateKeyPair(alg: KeyAlg = 'ed25519'): KeyPair {
  const pair = alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKey: { alg, spki: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url') },
    privateKey: { alg, pkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url') },
  };
}

/** The public half of a private key. */
export function publicKeyOf(privateKey: PrivateKeyRef): PublicKeyRef {
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' });
  return { alg: privateKey.alg, spki: spki.toString('base64url') };
}

/** True when both refs name the same key. */
export function sameKey(a: PublicKeyRef, b: PublicKeyRef): boolean {
  return a.alg === b.alg && a.spki === b.spki;
}

/** Sign `data` (a string: its UTF-8 bytes); returns base64url. */
export function signBytes(privateKey: PrivateKeyRef, data: string | Buffer): string {
  const key = privateKeyObject(privateKey);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  // Ed25519 takes algorithm null (the key type fixes it); ECDSA hashes with SHA-256.
  const sig =
    privateKey.alg === 'ed25519' ? sign(null, bytes, key) : sign('sha256', bytes, { key, dsaEncoding: 'ieee-p1363' });
  return sig.toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** How many verified signatures verifyBytesOnce remembers (by hash: about 150 B each). */
export const VERIFIED_MEMO_SIZE = 4096;
const verified = new Map<string, true>();

/**
 * verifyBytes for texts shown again and again — a device's credential in each of
 * its obligations, a hub key's certificate in each acceptance: a signature that
 * verified once is remembered (by a hash of key, text and signature; the oldest
 * forgotten past VERIFIED_MEMO_SIZE), so the same credential costs one Ed25519
 * verification per process, not one per obligation. A failure is never
 * remembered: it is checked afresh each time.
 */
export function verifyBytesOnce(publicKey: PublicKeyRef, data: string, sig: string): boolean {
  const id = createHash('sha256').update(`${publicKey.alg}\u0000${publicKey.spki}\u0000${sig}\u0000`).update(data).digest('base64url');
  if (verified.has(id)) return true;
  if (!verifyBytes(publicKey, data, sig)) return false;
  if (verified.size >= VERIFIED_MEMO_SIZE) verified.delete(verified.keys().next().value as string);
  verified.set(id, true);
  return true;
}

/** How many verified signatures are remembered now (tests). */
export const verifiedMemoSize = (): number => verified.size;

/** verifySigned through verifyBytesOnce (see there). */
export function verifySignedOnce<T>(signed: Signed<T>, publicKey: PublicKeyRef): boolean {
  const text = signedText(signed);
  return text !== undefined && verifyBytesOnce(publicKey, text, signed.sig);
}

/** The canonical text a signature of `signed` covers, or undefined when its body has none. */
function signedText<T>(signed: Signed<T>): string | undefined {
  try {
    return canonicalize(signed.body as JsonLike);
  } catch {
    return undefined;
  }
}

/** True iff `sig` is a valid signature of `data` by `publicKey`. Never throws: garbage gives false. */
export function verifyBytes(publicKey: PublicKeyRef, data: string, sig: string): boolean {
  try {
    if (typeof sig !== 'string' || sig.length === 0 || sig.length > 512 || !BASE64URL.test(sig)) return false;
    const sigBytes = Buffer.from(sig, 'base64url');
    // One text per signature: reject non-canonical base64url (stray trailing bits).
    if (sigBytes.toString('base64url') !== sig) return false;
    const key = publicKeyObject(publicKey);
    const bytes = Buffer.from(data, 'utf8');
    return publicKey.alg === 'ed25519'
      ? verify(null, bytes, key, sigBytes)
      : verify('sha256', bytes, { key, dsaEncoding: 'ieee-p1363' }, sigBytes);
  } catch {
    return false;
  }
}

/**
 * A key whose private half is held elsewhere (a KMS key, a local key file), reached
 * through the Signer port: it signs the UTF-8 bytes of `text` and answers in the form
 * verifyBytes checks (base64url; Ed25519 64 bytes, P-256 r||s).
 */
export interface AsyncSigner {
  sign(text: string): Promise<string>;
}

/** True when `key` is a signer reached asynchronously, not a private key in hand. */
export function isAsyncSigner(key: PrivateKeyRef | AsyncSigner): key is AsyncSigner {
  return typeof (key as AsyncSigner).sign === 'function';
}

/** Sign canonical(body). `by` names the signer (a domain, or `domain/device`). */
export function signValue<T extends JsonLike>(body: T, privateKey: PrivateKeyRef, by: string): Signed<T>;
export function signValue<T extends JsonLike>(body: T, signer: AsyncSigner, by: string): Promise<Signed<T>>;
export function signValue<T extends JsonLike>(body: T, key: PrivateKeyRef | AsyncSigner, by: string): Signed<T> | Promise<Signed<T>>;
export function signValue<T extends JsonLike>(body: T, key: PrivateKeyRef | AsyncSigner, by: string): Signed<T> | Promise<Signed<T>> {
  const text = canonicalize(body);
  if (isAsyncSigner(key)) return key.sign(text).then((sig) => ({ body, sig, by }));
  return { body, sig: signBytes(key, text), by };
}

/** A stable name of a public key: sha256 hex of `alg:spki`. */
export function keyFingerprint(key: PublicKeyRef): string {
  return createHash('sha256').update(`${key.alg}:${key.spki}`).digest('hex');
}

/** True iff `signed.sig` is `publicKey`'s signature over canonical(signed.body). Never throws. */
export function verifySigned<T>(signed: Signed<T>, publicKey: PublicKeyRef): boolean {
  const text = signedText(signed);
  return text !== undefined && verifyBytes(publicKey, text, signed.sig);
}
