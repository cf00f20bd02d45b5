/**
 * The Signer of the embedded cloud: domain keys generated with node:crypto and
 * held by this adapter only, in memory or in one key file (mode 0600) under the
 * hub's data folder, never in the table. Same port as the KMS adapter.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, publicKeyOf, sameKey, signBytes, type PrivateKeyRef } from '../../core/keys.ts';
import { UnavailableError } from '../../core/errors.ts';
import type { KeyAlg } from '../../core/types.ts';
import type { Signer, SignerKey } from '../ports.ts';

export class LocalSigner implements Signer {
  readonly defaultAlg: KeyAlg = 'ed25519';

  private constructor(
    /** null: retired (its private half dropped) */
    private readonly keys: Map<string, PrivateKeyRef | null>,
    private readonly file: string | undefined,
  ) {}

  /** Keys kept in `file` (created on first key) when given, else in memory only. */
  static async open(file?: string): Promise<LocalSigner> {
    const keys = new Map<string, PrivateKeyRef | null>();
    if (file) {
      const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (text !== undefined) {
        for (const [id, key] of Object.entries(JSON.parse(text) as Record<string, PrivateKeyRef | null>)) keys.set(id, key);
      }
    }
    return new LocalSigner(keys, file);
  }

  async createKey(domain: string, alg: KeyAlg): Promise<SignerKey> {
    const pair = generateKeyPair(alg);
    const keyId = `local:${domain}:${randomBytes(8).toString('hex')}`;
    this.keys.set(keyId, pair.privateKey);
    await this.save();
    return { keyId, publicKey: pair.publicKey };
  }

  async sign(key: SignerKey, text: string): Promise<string> {
    const priv = this.keys.get(key.keyId);
    // as KMS answers for a key pending deletion: the caller asks again with its domain's new key
    if (priv === null) throw new UnavailableError(`key ${key.keyId} is retired`);
    if (priv === undefined) throw new Error(`signer has no key ${key.keyId}`);
    // the store's public half must be this key's: a mix-up would sign what nobody can verify
    if (!sameKey(publicKeyOf(priv), key.publicKey)) throw new Error(`key ${key.keyId} does not match its public key`);
    return signBytes(priv, text);
  }

  async retireKey(key: SignerKey): Promise<void> {
    if (!this.keys.get(key.keyId)) return;
    this.keys.set(key.keyId, null);
    await this.save();
  }

  /** Atomically rewrite the key file (temporary file, then rename), readable by its owner only. */
  private async save(): Promise<void> {
    if (!this.file) return;
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(Object.fromEntries(this.keys)));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }
}
