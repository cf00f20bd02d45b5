/**
 * A device's files (its chain head, its credential, a simulated device's key) are
 * replaced whole: a temporary file next to the target, flushed, then renamed over
 * it, so a crash leaves the old or the new content, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Write `text` to `file` atomically (its folder made if missing); `mode` for a new file (e.g. 0o600 for secrets). */
export async function writeFileAtomic(file: string, text: string, mode?: number): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
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
