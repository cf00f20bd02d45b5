/**
 * A device's files (its chain head, its credential, a simulated device's key) are
 * replaced whole: a temporary file next to the target, flushed, then renamed over
 * it, so a crash leaves the old or the new content, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: make `dir` and its missing parents (`mode` for each one made), one level
 * at a time. Node's own recursive mkdir never returns for a path under /proc (Node 22:
 * `mkdir('/proc/x', {recursive: true})` loops), so a user's mistyped path hung; here
 * it fails at once with the first level's error (ENOENT there).
 */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  // '' resolves to the working directory: an unset shell variable, not a place to write keys
  if (dir === '') throw Object.assign(new Error('no folder given'), { code: 'ENOENT' });
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = await stat(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    await mkdir(d, { mode }).catch(async (e: NodeJS.ErrnoException) => {
      // made meanwhile by another writer: fine if it is a folder (not a file, not a dangling link)
      if (e.code !== 'EEXIST' || !(await stat(d).then((st) => st.isDirectory(), () => false))) throw e;
    });
  }
}

/** Write `text` to `file` atomically (its folder made if missing); `mode` for a new file (e.g. 0o600 for secrets). */
export async function writeFileAtomic(file: string, text: string, mode?: number): Promise<void> {
  await makeDirs(dirname(file));
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
