/**
 * The Signer port's adapters. The KMS adapter runs against a STAND-IN for KMS
 * (test/signer/kms-standin.ts: KMS's JSON wire protocol with node:crypto keys;
 * no KMS emulator is installable here), through the real @aws-sdk/client-kms:
 * what it sends (key spec, usage, tags, policy, message type, algorithm) and
 * that what it answers verifies with core/keys.ts. The local adapter keeps its
 * keys in a file readable by its owner only and finds them again after a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { UnavailableError } from '../../core/errors.ts';
import { verifyBytes } from '../../core/keys.ts';
import { DOMAIN_TAG, KmsSigner, RETIRED_KEY_WINDOW_DAYS, derToP1363 } from '../../adapters/signer/kms.ts';
import { LocalSigner } from '../../adapters/signer/local.ts';
import { startKmsStandIn, type KmsStandIn } from './kms-standin.ts';

describe('KMS signer (against a KMS stand-in)', () => {
  let kms: KmsStandIn;
  let client: KMSClient;
  let signer: KmsSigner;
  const policy = JSON.stringify({ Version: '2012-10-17', Statement: [] });

  before(async () => {
    kms = await startKmsStandIn();
    client = new KMSClient({ region: 'eu-west-1', endpoint: kms.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });
    signer = new KmsSigner(client, { tags: { 'oc:app': 'test-app' }, keyPolicy: policy });
  });
  after(async () => {
    client?.destroy();
    await kms?.stop();
  });

  it('creates one SIGN_VERIFY key per domain, tagged with its domain, with the given key policy', async () => {
    const key = await signer.createKey('acme', 'p256');
    const create = kms.requests.find((r) => r.op === 'CreateKey');
    assert.ok(create);
    assert.equal(create.body.KeySpec, 'ECC_NIST_P256');
    assert.equal(create.body.KeyUsage, 'SIGN_VERIFY');
    assert.equal(create.body.Policy, policy);
    assert.deepEqual(create.body.Tags, [
      { TagKey: DOMAIN_TAG, TagValue: 'acme' },
      { TagKey: 'oc:app', TagValue: 'test-app' },
    ]);
    assert.match(key.keyId, /^arn:aws:kms:/);
    assert.equal(key.publicKey.alg, 'p256');
    const ed = await signer.createKey('acme-ed', 'ed25519');
    assert.equal(kms.requests.filter((r) => r.op === 'CreateKey').at(-1)?.body.KeySpec, 'ECC_NIST_EDWARDS25519');
    assert.equal(ed.publicKey.alg, 'ed25519');
    assert.equal(signer.defaultAlg, 'p256', 'p256 by default: Ed25519 in KMS signs at most 4096 bytes');
  });

  it('P-256: signs a SHA-256 digest (MessageType DIGEST, any size) and answers r||s that core verifies', async () => {
    const key = await signer.createKey('p', 'p256');
    for (const text of ['{"a":1}', 'x'.repeat(10_000)]) {
      const sig = await signer.sign(key, text);
      const sent = kms.requests.filter((r) => r.op === 'Sign').at(-1)?.body;
      assert.equal(sent?.MessageType, 'DIGEST');
      assert.equal(sent?.SigningAlgorithm, 'ECDSA_SHA_256');
      assert.equal(Buffer.from(sig, 'base64url').length, 64);
      assert.equal(verifyBytes(key.publicKey, text, sig), true);
      assert.equal(verifyBytes(key.publicKey, `${text} `, sig), false);
    }
  });

  it('Ed25519: signs the message itself (ED25519_SHA_512, RAW) up to 4096 bytes, and refuses longer texts', async () => {
    const key = await signer.createKey('e', 'ed25519');
    const text = 'y'.repeat(4096);
    const sig = await signer.sign(key, text);
    const sent = kms.requests.filter((r) => r.op === 'Sign').at(-1)?.body;
    assert.equal(sent?.MessageType, 'RAW');
    assert.equal(sent?.SigningAlgorithm, 'ED25519_SHA_512');
    assert.equal(verifyBytes(key.publicKey, text, sig), true);
    await assert.rejects(signer.sign(key, `${text}y`), /4096-byte RAW limit/);
  });

  it('throttling is retry-class (UnavailableError); an unknown key is not', async () => {
    const key = await signer.createKey('t', 'p256');
    kms.throttle(1);
    await assert.rejects(signer.sign(key, 'x'), UnavailableError);
    assert.equal(verifyBytes(key.publicKey, 'x', await signer.sign(key, 'x')), true);
    await assert.rejects(signer.sign({ ...key, keyId: 'arn:aws:kms:eu-west-1:1:key/none' }, 'x'), (e: Error) => !(e instanceof UnavailableError));
  });

  it('retires a key by scheduling its deletion after 30 days: it signs no more (retry-class), and retiring it again does nothing', async () => {
    const key = await signer.createKey('r', 'p256');
    await signer.retireKey(key);
    const scheduled = kms.requests.filter((r) => r.op === 'ScheduleKeyDeletion');
    assert.deepEqual(scheduled.map((r) => r.body), [{ KeyId: key.keyId, PendingWindowInDays: RETIRED_KEY_WINDOW_DAYS }]);
    assert.equal(RETIRED_KEY_WINDOW_DAYS, 30, "KMS's longest waiting period");
    await assert.rejects(signer.sign(key, 'x'), UnavailableError);
    await signer.retireKey(key); // KMSInvalidStateException, then DescribeKey: PendingDeletion
    assert.equal(kms.requests.at(-1)?.op, 'DescribeKey');
    await assert.rejects(signer.retireKey({ ...key, keyId: 'arn:aws:kms:eu-west-1:1:key/none' }), (e: Error) => !(e instanceof UnavailableError));
    const other = await signer.createKey('r2', 'p256');
    kms.throttle(1);
    await assert.rejects(signer.retireKey(other), UnavailableError);
    await signer.retireKey(other);
    await assert.rejects(signer.sign(other, 'x'), UnavailableError);
  });

  it('converts DER signatures with short and sign-padded integers to fixed-size r||s', () => {
    // r = 0x01 (short), s = 0x80 followed by 31 bytes (needs a leading zero in DER)
    const s = Buffer.concat([Buffer.from([0x80]), Buffer.alloc(31, 7)]);
    const der = Buffer.concat([Buffer.from([0x30, 3 + 35, 0x02, 1, 0x01, 0x02, 33, 0x00]), s]);
    const out = derToP1363(der, 32);
    assert.equal(out.length, 64);
    assert.equal(out.subarray(0, 32).toString('hex'), `${'00'.repeat(31)}01`);
    assert.deepEqual(out.subarray(32), s);
    assert.throws(() => derToP1363(Buffer.from([0x31, 0]), 32), /SEQUENCE/);
  });
});

describe('local signer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-signer-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its keys in a file readable by its owner only, and signs with them after a restart', async () => {
    const file = join(dir, 'keys.json');
    const first = await LocalSigner.open(file);
    const key = await first.createKey('acme', 'ed25519');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const again = await LocalSigner.open(file);
    assert.equal(verifyBytes(key.publicKey, 'hello', await again.sign(key, 'hello')), true);
    const other = await (await LocalSigner.open()).createKey('acme', 'ed25519');
    await assert.rejects(again.sign({ keyId: key.keyId, publicKey: other.publicKey }, 'x'), /does not match/);
    await assert.rejects((await LocalSigner.open()).sign(key, 'x'), /no key/);
  });

  it('retires a key: its private half leaves the file, it signs no more (retry-class), after a restart too', async () => {
    const file = join(dir, 'retire.json');
    const signer = await LocalSigner.open(file);
    const [old, kept] = [await signer.createKey('acme', 'ed25519'), await signer.createKey('acme', 'p256')];
    const before = (await readFile(file, 'utf8')).length;
    await signer.retireKey(old);
    await signer.retireKey(old);
    await assert.rejects(signer.sign(old, 'x'), UnavailableError);
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual([stored[old.keyId], typeof stored[kept.keyId]], [null, 'object']);
    assert.ok((await readFile(file, 'utf8')).length < before);
    const again = await LocalSigner.open(file);
    await assert.rejects(again.sign(old, 'x'), UnavailableError);
    assert.equal(verifyBytes(kept.publicKey, 'y', await again.sign(kept, 'y')), true);
  });
});
