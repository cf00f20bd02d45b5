/**
 * A STAND-IN for AWS KMS, for the KMS adapter's tests: a tiny node:http server
 * speaking KMS's wire protocol (AWS JSON 1.1: POST /, `X-Amz-Target:
 * TrentService.<Operation>`, blobs as base64, errors as `{"__type", "message"}`)
 * for CreateKey, GetPublicKey, Sign, ScheduleKeyDeletion and DescribeKey, with keys made by node:crypto. No local
 * KMS is installable here (local-kms is a Go binary, not on npm). It enforces
 * what the KMS API reference documents for these calls and this project relies
 * on: KeyUsage SIGN_VERIFY, ED25519_SHA_512 only with MessageType RAW, RAW
 * messages of at most 4096 bytes, DIGEST of the algorithm's hash length, DER
 * ECDSA signatures; a deletion's waiting period of 7 to 30 days (30 when absent),
 * after which the key is PendingDeletion: GetPublicKey, Sign and ScheduleKeyDeletion
 * answer KMSInvalidStateException, DescribeKey its state. It is not KMS: no IAM, no key policy evaluation, no quotas.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, createHash, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface StoredKey {
  spec: 'ECC_NIST_EDWARDS25519' | 'ECC_NIST_P256';
  privateKey: KeyObject;
  tags: { TagKey: string; TagValue: string }[];
  policy?: string;
  description?: string;
  state: 'Enabled' | 'PendingDeletion';
  deletionDate?: number;
}

export interface KmsStandIn {
  endpoint: string;
  keys: Map<string, StoredKey>;
  /** Every request, by operation: what the adapter sent. */
  requests: { op: string; body: Record<string, unknown> }[];
  /** Answer the next n requests with ThrottlingException. */
  throttle(n: number): void;
  stop(): Promise<void>;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startKmsStandIn(): Promise<KmsStandIn> {
  const keys = new Map<string, StoredKey>();
  const requests: KmsStandIn['requests'] = [];
  let throttled = 0;
  const region = 'eu-west-1';
  const account = '123456789012';

  const ops: Record<string, (b: Record<string, unknown>) => Record<string, unknown>> = {
    CreateKey(b) {
      if (b.KeyUsage !== 'SIGN_VERIFY') throw new KmsError('ValidationException', 'this stand-in makes SIGN_VERIFY keys only');
      const spec = b.KeySpec;
      let privateKey: KeyObject;
      if (spec === 'ECC_NIST_EDWARDS25519') privateKey = generateKeyPairSync('ed25519').privateKey;
      else if (spec === 'ECC_NIST_P256') privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      else throw new KmsError('ValidationException', `unsupported KeySpec ${String(spec)}`);
      const id = randomUUID();
      keys.set(id, {
        spec,
        privateKey,
        tags: (b.Tags as StoredKey['tags'] | undefined) ?? [],
        state: 'Enabled',
        ...(typeof b.Policy === 'string' ? { policy: b.Policy } : {}),
        ...(typeof b.Description === 'string' ? { description: b.Description } : {}),
      });
      return { KeyMetadata: { KeyId: id, Arn: `arn:aws:kms:${region}:${account}:key/${id}`, KeySpec: spec, KeyUsage: 'SIGN_VERIFY', Enabled: true } };
    },
    GetPublicKey(b) {
      const [id, key] = usable(b.KeyId);
      return {
        KeyId: `arn:aws:kms:${region}:${account}:key/${id}`,
        KeySpec: key.spec,
        KeyUsage: 'SIGN_VERIFY',
        PublicKey: createPublicKey(key.privateKey).export({ format: 'der', type: 'spki' }).toString('base64'),
        SigningAlgorithms: key.spec === 'ECC_NIST_P256' ? ['ECDSA_SHA_256'] : ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
      };
    },
    Sign(b) {
      const [id, key] = usable(b.KeyId);
      const message = Buffer.from(String(b.Message ?? ''), 'base64');
      const type = b.MessageType ?? 'RAW';
      if (type === 'RAW' && message.length > 4096) throw new KmsError('ValidationException', 'Message must be at most 4096 bytes');
      let signature: Buffer;
      if (key.spec === 'ECC_NIST_EDWARDS25519') {
        if (b.SigningAlgorithm !== 'ED25519_SHA_512') throw new KmsError('InvalidKeyUsageException', 'this stand-in signs ED25519_SHA_512 only');
        if (type !== 'RAW') throw new KmsError('ValidationException', 'ED25519_SHA_512 requires MessageType RAW');
        signature = sign(null, message, key.privateKey);
      } else {
        if (b.SigningAlgorithm !== 'ECDSA_SHA_256') throw new KmsError('InvalidKeyUsageException', 'ECC_NIST_P256 keys sign with ECDSA_SHA_256');
        const digest = type === 'DIGEST' ? message : createHash('sha256').update(message).digest();
        if (digest.length !== 32) throw new KmsError('ValidationException', 'a DIGEST must be 32 bytes for ECDSA_SHA_256');
        signature = ecdsaP256Der(key.privateKey, digest);
      }
      return { KeyId: `arn:aws:kms:${region}:${account}:key/${id}`, SigningAlgorithm: b.SigningAlgorithm, Signature: signature.toString('base64') };
    },
    ScheduleKeyDeletion(b) {
      const [id, key] = usable(b.KeyId);
      const days = b.PendingWindowInDays ?? 30;
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
        throw new KmsError('ValidationException', 'PendingWindowInDays must be between 7 and 30');
      }
      key.state = 'PendingDeletion';
      key.deletionDate = Date.now() / 1000 + days * 86_400;
      return { KeyId: arn(id), KeyState: key.state, DeletionDate: key.deletionDate, PendingWindowInDays: days };
    },
    DescribeKey(b) {
      const [id, key] = find(b.KeyId);
      const deletion = key.deletionDate === undefined ? {} : { DeletionDate: key.deletionDate };
      return { KeyMetadata: { KeyId: id, Arn: arn(id), KeySpec: key.spec, KeyUsage: 'SIGN_VERIFY', KeyState: key.state, Enabled: key.state === 'Enabled', ...deletion } };
    },
  };

  /** A key in a state that allows cryptographic operations (KMS: "Key state: effect on your KMS key"). */
  function usable(keyId: unknown): [string, StoredKey] {
    const [id, key] = find(keyId);
    if (key.state !== 'Enabled') throw new KmsError('KMSInvalidStateException', `${arn(id)} is pending deletion.`);
    return [id, key];
  }
  const arn = (id: string) => `arn:aws:kms:${region}:${account}:key/${id}`;

  function find(keyId: unknown): [string, StoredKey] {
    const id = String(keyId ?? '').split('/').pop() ?? '';
    const key = keys.get(id);
    if (!key) throw new KmsError('NotFoundException', `Key '${String(keyId)}' does not exist`);
    return [id, key];
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').replace(/^TrentService\./, '');
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(body));
      };
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        requests.push({ op, body });
        if (throttled > 0) {
          throttled -= 1;
          throw new KmsError('ThrottlingException', 'Rate exceeded');
        }
        const handler = ops[op];
        if (!handler) throw new KmsError('UnknownOperationException', `unsupported operation ${op}`);
        reply(200, handler(body));
      } catch (e) {
        const err = e instanceof KmsError ? e : new KmsError('KMSInternalException', String(e));
        reply(400, { __type: err.type, message: err.message });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    keys,
    requests,
    throttle: (n) => {
      throttled = n;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// ---- raw ECDSA over a given digest (node:crypto always hashes its input) ----

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const G: Point = [
  0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
];
type Point = [bigint, bigint] | null;

const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
function pow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}
const inv = (a: bigint, m: bigint) => pow(a, m - 2n, m);

function add(p: Point, q: Point): Point {
  if (p === null) return q;
  if (q === null) return p;
  const [x1, y1] = p;
  const [x2, y2] = q;
  if (x1 === x2 && mod(y1 + y2, P) === 0n) return null;
  const l = x1 === x2 && y1 === y2 ? mod((3n * x1 * x1 + A) * inv(2n * y1, P), P) : mod((y2 - y1) * inv(x2 - x1, P), P);
  const x3 = mod(l * l - x1 - x2, P);
  return [x3, mod(l * (x1 - x3) - y1, P)];
}

function mul(k: bigint, p: Point): Point {
  let r: Point = null;
  let q = p;
  while (k > 0n) {
    if (k & 1n) r = add(r, q);
    q = add(q, q);
    k >>= 1n;
  }
  return r;
}

const big = (b: Buffer) => BigInt(`0x${b.toString('hex') || '0'}`);

function derInteger(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

/** ECDSA P-256 signature (DER, as KMS answers) of a 32-byte digest, not hashed again. */
export function ecdsaP256Der(privateKey: KeyObject, digest: Buffer): Buffer {
  const jwk = privateKey.export({ format: 'jwk' });
  const d = big(Buffer.from(String(jwk.d), 'base64url'));
  const z = big(digest);
  for (;;) {
    const k = mod(big(randomBytes(32)), N);
    if (k === 0n) continue;
    const R = mul(k, G);
    if (R === null) continue;
    const r = mod(R[0], N);
    const s = mod(inv(k, N) * (z + r * d), N);
    if (r === 0n || s === 0n) continue;
    const body = Buffer.concat([derInteger(r), derInteger(s)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }
}
