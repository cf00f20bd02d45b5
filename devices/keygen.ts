/**
 * `npm run device:keygen -- <dir> [--alg ed25519|p256]`: make a device's
 * obligation signing key. Writes <dir>/device.key.json (private, mode 600;
 * <dir> and any missing parent are created, mode 700: `.fleet/<thing>` works in a
 * fresh checkout) and <dir>/device.pub.json
 * (the public key as POST /domains/{domain}/devices expects it, `{"deviceKey": …}`,
 * what `npm run admin -- enrol --key` reads), and prints the latter. Never
 * overwrites a key.
 */
import { access, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair } from '../core/keys.ts';
import { makeDirs } from './atomic-file.ts';
import { isMain, parse, runCli, UsageError, type CommandSpec } from '../cli/args.ts';

export const KEYGEN: CommandSpec<{ alg: { type: 'string'; choices: readonly ['ed25519', 'p256']; default: 'ed25519'; help: string; arg: 'ALG' } }> = {
  name: 'npm run device:keygen',
  usage: '-- <dir> [--alg ed25519|p256]',
  summary: "Make a device's obligation signing key: <dir>/device.key.json (private) and <dir>/device.pub.json (public, for npm run admin -- enrol --key).",
  positionals: { min: 1, max: 1, help: '  <dir>              where the key goes (e.g. .fleet/<thing>)' },
  options: { alg: { type: 'string', choices: ['ed25519', 'p256'], default: 'ed25519', arg: 'ALG', help: 'key algorithm' } },
};

async function main(): Promise<number> {
  const { values, positionals, help } = parse(KEYGEN, process.argv.slice(2));
  if (help) return 0;
  const dir = positionals[0]!;
  const file = join(dir, 'device.key.json');
  if (await access(file).then(() => true, () => false)) throw new UsageError(`${file} exists: refusing to overwrite a device key`);
  const st = await stat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new UsageError(`${dir} exists and is not a directory`);
  if (!st) {
    // a parent that is a file (or cannot be made) is the user's mistake: one line, exit 2
    await makeDirs(dir, 0o700).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`${dir}: cannot create it (${e.code ?? e.message})`);
    });
  }
  const keys = generateKeyPair(values.alg as 'ed25519' | 'p256');
  await writeFile(file, JSON.stringify(keys.privateKey), { mode: 0o600, flag: 'wx' });
  const pub = JSON.stringify({ deviceKey: keys.publicKey });
  await writeFile(join(dir, 'device.pub.json'), `${pub}\n`, { mode: 0o644 });
  console.log(pub);
  return 0;
}

if (isMain(import.meta.url)) runCli('npm run device:keygen', main);
