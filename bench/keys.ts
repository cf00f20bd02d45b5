/**
 * What signing an acceptance costs, by where the key is: the in-memory hub key
 * that acceptances are signed with (certified by the domain key, service/keys.ts),
 * the Signer port with a local key, and the KMS adapter through the real
 * @aws-sdk/client-kms to a KMS STAND-IN over loopback HTTP (test/signer/kms-standin.ts).
 * The last is a lower bound for KMS: the SDK's request signing and HTTP with no
 * network; AWS KMS adds an in-region round trip and counts against the account's
 * shared cryptographic request quota, which is why acceptances do not call it.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { canonicalize } from '../core/canonical.ts';
import { generateKeyPair, signBytes } from '../core/keys.ts';
import type { AcceptanceBody } from '../core/types.ts';
import { KmsSigner } from '../adapters/signer/kms.ts';
import { LocalSigner } from '../adapters/signer/local.ts';
import type { Signer, SignerKey } from '../adapters/ports.ts';
import { startKmsStandIn } from '../test/signer/kms-standin.ts';
import type { BenchRow } from './types.ts';

const ACCEPTANCE: AcceptanceBody = {
  version: 1,
  obligationId: 'a'.repeat(64),
  providerDomain: 'wifico',
  payTo: 'bcrt1qexampleexampleexampleexampleexample0',
  acceptedAt: Date.UTC(2026, 5, 1),
};
const TEXT = canonicalize(ACCEPTANCE);

async function perOp(fn: () => unknown, minMs = 600): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up
  let n = 0;
  const started = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs * 1e6) {
    await fn();
    n += 1;
    elapsed = Number(process.hrtime.bigint() - started);
  }
  return elapsed / n / 1000; // µs
}

const round = (x: number): number => Number(x.toFixed(x < 10 ? 1 : 0));

export async function benchKeys(): Promise<BenchRow[]> {
  const hub = generateKeyPair('ed25519');
  const inMemory = await perOp(() => signBytes(hub.privateKey, TEXT));

  const local: Signer = await LocalSigner.open();
  const localKey = await local.createKey('wifico', 'ed25519');
  const viaPort = await perOp(() => local.sign(localKey, TEXT));

  const kms = await startKmsStandIn();
  const client = new KMSClient({ region: 'eu-west-1', endpoint: kms.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  try {
    const signer = new KmsSigner(client);
    const key: SignerKey = await signer.createKey('wifico', 'ed25519');
    const overKms = await perOp(() => signer.sign(key, TEXT));
    return [
      { name: 'acceptance signature, in-memory hub key (Ed25519; what accept does)', value: round(inMemory), unit: 'µs/op', ratio: 1 },
      { name: 'acceptance signature, Signer port with a local key', value: round(viaPort), unit: 'µs/op', ratio: round(viaPort / inMemory) },
      {
        name: 'acceptance signature, KMS adapter to a loopback KMS stand-in (lower bound of KMS)',
        value: round(overKms),
        unit: 'µs/op',
        ratio: round(overKms / inMemory),
      },
    ];
  } finally {
    client.destroy();
    await kms.stop();
  }
}
