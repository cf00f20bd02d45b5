/**
 * `npm start -- --data DIR` (and `--json FILE`): check the path before anything starts.
 * - DIR exists: it must be a directory we can read and write;
 * - DIR does not exist: it is created (one level, like `mkdir DIR`) when its
 *   parent is an existing directory, and the run says so; a missing parent is
 *   refused (a typo in a long path must not silently grow a tree).
 * Every refusal is a UsageError (one line, exit 2). mkdir is never recursive
 * here: node's recursive mkdir loops forever on a path under /proc (Node 22:
 * `mkdir('/proc/nope', {recursive: true})` never returns), which is how
 * `--data /proc/nope` used to hang.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../cli/args.ts';

const reason = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/** Returns whether the directory was created. */
export async function prepareDataDir(dir: string, flag = '--data'): Promise<{ created: boolean }> {
  const full = resolve(dir);
  const st = await stat(full).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new UsageError(`${flag} ${dir}: cannot read it (${reason(e)})`);
  });
  if (st) {
    if (!st.isDirectory()) throw new UsageError(`${flag} ${dir}: exists and is not a directory`);
    await access(full, constants.R_OK | constants.W_OK | constants.X_OK).catch((e: unknown) => {
      throw new UsageError(`${flag} ${dir}: not readable and writable (${reason(e)})`);
    });
    return { created: false };
  }
  const parent = dirname(full);
  const pst = await stat(parent).catch(() => undefined);
  if (!pst?.isDirectory()) throw new UsageError(`${flag} ${dir}: its parent ${parent} is not an existing directory (create it first)`);
  await mkdir(full, { mode: 0o700 }).catch((e: unknown) => {
    throw new UsageError(`${flag} ${dir}: cannot create it (${reason(e)})`);
  });
  return { created: true };
}

/**
 * `--json FILE`: a file written when the run ends. Its directory must exist and be writable
 * (or be `willCreate`, the --data directory the run makes first), and FILE must not be a
 * directory, or the run would fail only at its end.
 */
export async function checkOutputFile(file: string, flag: string, willCreate?: string): Promise<void> {
  const full = resolve(file);
  const st = await stat(full).catch(() => undefined);
  if (st?.isDirectory()) throw new UsageError(`${flag} ${file}: is a directory`);
  const parent = dirname(full);
  if (willCreate !== undefined && resolve(willCreate) === parent) return; // prepareDataDir checks it
  const pst = await stat(parent).catch(() => undefined);
  if (!pst?.isDirectory()) throw new UsageError(`${flag} ${file}: its directory ${parent} is not an existing directory`);
  await access(st ? full : parent, constants.W_OK).catch((e: unknown) => {
    throw new UsageError(`${flag} ${file}: not writable (${reason(e)})`);
  });
}
