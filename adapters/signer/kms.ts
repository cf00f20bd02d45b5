/**
 * The Signer on AWS KMS: one asymmetric SIGN_VERIFY key per hosted domain,
 * created at registration, tagged with its domain; the private half never
 * leaves KMS. Signatures come back in the form core/keys.ts verifies:
 *
 * - ed25519 (KeySpec ECC_NIST_EDWARDS25519): SigningAlgorithm ED25519_SHA_512,
 *   which "requires MessageType:RAW" and is pure EdDSA over the message itself
 *   (ED25519_PH_SHA_512 is the pre-hashed HashEdDSA variant, which node:crypto's
 *   Ed25519 verify does not check, so it is not used). A RAW message is at most
 *   4096 bytes (KMS Sign API reference), so larger texts cannot be signed with
 *   an Ed25519 KMS key: this adapter's default is therefore p256.
 * - p256 (KeySpec ECC_NIST_P256): ECDSA_SHA_256 over a SHA-256 digest computed
 *   here (MessageType DIGEST, any message size). KMS answers a DER-encoded
 *   ECDSA signature; it is converted to the fixed-size r||s form (ieee-p1363).
 *
 * Throttling and transport failures become UnavailableError (retry-class).
 */
import { createHash } from 'node:crypto';
import { CreateKeyCommand, DescribeKeyCommand, GetPublicKeyCommand, ScheduleKeyDeletionCommand, SignCommand, type KMSClient, type Tag } from '@aws-sdk/client-kms';
import { UnavailableError } from '../../core/errors.ts';
import type { KeyAlg } from '../../core/types.ts';
import type { Signer, SignerKey } from '../ports.ts';

/** The tag every domain key carries; IAM conditions on it (lib/constructs/handlers.ts). */
export const DOMAIN_TAG = 'oc:domain';
/**
 * The waiting period of a retired key's deletion: KMS's longest (ScheduleKeyDeletion takes
 * 7 to 30 days), so an operator has a month to cancel it; IAM allows no other (handlers.ts).
 */
export const RETIRED_KEY_WINDOW_DAYS = 30;
/** Largest RAW message KMS signs (Sign API: "Messages can be 0-4096 bytes"). */
export const KMS_RAW_MESSAGE_MAX = 4096;

const KEY_SPEC: Record<KeyAlg, 'ECC_NIST_EDWARDS25519' | 'ECC_NIST_P256'> = {
  ed25519: 'ECC_NIST_EDWARDS25519',
  p256: 'ECC_NIST_P256',
};

export interface KmsSignerOptions {
  /** Tags added to every key besides `oc:domain` (e.g. `oc:app`, which IAM conditions on). */
  tags?: Record<string, string>;
  /** The key policy of every new key (JSON); KMS's default key policy when absent. */
  keyPolicy?: string;
}

/** Errors that say "try again later", by SDK error name. */
const TRANSIENT = new Set([
  'ThrottlingException',
  'DependencyTimeoutException',
  'KMSInternalException',
  'KMSInvalidStateException',
  'TimeoutError',
  'RequestTimeout',
]);

export class KmsSigner implements Signer {
  readonly defaultAlg: KeyAlg = 'p256';

  constructor(
    private readonly kms: KMSClient,
    private readonly opts: KmsSignerOptions = {},
  ) {}

  async createKey(domain: string, alg: KeyAlg): Promise<SignerKey> {
    const tags: Tag[] = [{ TagKey: DOMAIN_TAG, TagValue: domain }];
    for (const [TagKey, TagValue] of Object.entries(this.opts.tags ?? {})) tags.push({ TagKey, TagValue });
    const created = await this.call(() =>
      this.kms.send(
        new CreateKeyCommand({
          KeySpec: KEY_SPEC[alg],
          KeyUsage: 'SIGN_VERIFY',
          Description: `obligation-chain domain key of ${domain}`,
          Tags: tags,
          ...(this.opts.keyPolicy ? { Policy: this.opts.keyPolicy } : {}),
        }),
      ),
    );
    const keyId = created.KeyMetadata?.Arn ?? created.KeyMetadata?.KeyId;
    if (!keyId) throw new Error('KMS CreateKey answered without a key id');
    const pub = await this.call(() => this.kms.send(new GetPublicKeyCommand({ KeyId: keyId })));
    if (!pub.PublicKey || pub.KeySpec !== KEY_SPEC[alg]) {
      throw new Error(`KMS key ${keyId} is ${pub.KeySpec ?? 'without a public key'}, not ${KEY_SPEC[alg]}`);
    }
    return { keyId, publicKey: { alg, spki: Buffer.from(pub.PublicKey).toString('base64url') } };
  }

  async sign(key: SignerKey, text: string): Promise<string> {
    const message = Buffer.from(text, 'utf8');
    if (key.publicKey.alg === 'ed25519') {
      if (message.length > KMS_RAW_MESSAGE_MAX) {
        throw new Error(`a ${message.length}-byte text exceeds KMS's ${KMS_RAW_MESSAGE_MAX}-byte RAW limit for Ed25519 keys; use a p256 domain key`);
      }
      const out = await this.call(() =>
        this.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' })),
      );
      if (!out.Signature || out.Signature.length !== 64) throw new Error('KMS answered no 64-byte Ed25519 signature');
      return Buffer.from(out.Signature).toString('base64url');
    }
    const digest = createHash('sha256').update(message).digest();
    const out = await this.call(() =>
      this.kms.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    if (!out.Signature) throw new Error('KMS answered no signature');
    return derToP1363(Buffer.from(out.Signature), 32).toString('base64url');
  }

  async retireKey(key: SignerKey): Promise<void> {
    try {
      // the key state becomes PendingDeletion: no cryptographic operation until CancelKeyDeletion
      await this.kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: RETIRED_KEY_WINDOW_DAYS }));
    } catch (e) {
      // a key already pending deletion answers KMSInvalidStateException: retired before, done
      if ((e as { name?: string } | null)?.name !== 'KMSInvalidStateException') throw unavailable(e) ?? e;
      const state = (await this.call(() => this.kms.send(new DescribeKeyCommand({ KeyId: key.keyId })))).KeyMetadata?.KeyState;
      if (state !== 'PendingDeletion') throw new UnavailableError(`key ${key.keyId} cannot be retired in state ${state ?? 'unknown'}`);
    }
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw unavailable(e) ?? e;
    }
  }
}

/** A throttled, failing or unreachable KMS as UnavailableError (retry-class); anything else undefined. */
function unavailable(e: unknown): UnavailableError | undefined {
  const name = (e as { name?: string } | null)?.name ?? 'Error';
  const code = (e as { code?: string } | null)?.code;
  if (TRANSIENT.has(name) || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT') {
    return new UnavailableError(`key service unavailable: ${name}`);
  }
  return undefined;
}

/** An ECDSA signature from DER (SEQUENCE { INTEGER r, INTEGER s }) to fixed-size r||s. */
export function derToP1363(der: Buffer, size: number): Buffer {
  let at = 0;
  const byte = (): number => {
    const b = der[at++];
    if (b === undefined) throw new Error('truncated DER signature');
    return b;
  };
  const length = (): number => {
    const first = byte();
    if (first < 0x80) return first;
    let n = 0;
    for (let i = 0; i < (first & 0x7f); i++) n = (n << 8) | byte();
    return n;
  };
  if (byte() !== 0x30) throw new Error('DER signature is not a SEQUENCE');
  length();
  const integer = (): Buffer => {
    if (byte() !== 0x02) throw new Error('DER signature part is not an INTEGER');
    const len = length();
    let value = der.subarray(at, at + len);
    at += len;
    while (value.length > size && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new Error('DER signature part is too long');
    return Buffer.concat([Buffer.alloc(size - value.length), value]);
  };
  const r = integer();
  const s = integer();
  return Buffer.concat([r, s]);
}
