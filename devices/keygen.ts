/**
 * `npm run device:keygen -- <dir> [ed25519|p256]`: make a device's obligation
 * signing key. Writes <dir>/device.key.json (private, mode 600) and prints the
 * public key as the body of POST /domains/{domain}/devices expects it.
 */
import { mkdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '../core/keys.ts';

const [dir, alg = 'ed25519'] = process.argv.slice(2);
if (!dir || (alg !== 'ed25519' && alg !== 'p256')) {
  console.error('usage: npm run device:keygen -- <dir> [ed25519|p256]');
  process.exit(2);
}
const file = join(dir, 'device.key.json');
const exists = await access(file).then(
  () => true,
  () => false,
);
if (exists) {
  console.error(`${file} exists: refusing to overwrite a device key`);
  process.exit(1);
}
const keys = generateKeyPair(alg);
await mkdir(dir, { recursive: true, mode: 0o700 });
await writeFile(file, JSON.stringify(keys.privateKey), { mode: 0o600 });
console.log(JSON.stringify({ deviceKey: keys.publicKey }));
