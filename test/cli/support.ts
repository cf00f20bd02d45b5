/** Run the project's commands as a user does (`node --import tsx <script>`), from the repository root. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start a script like its npm script does; the child's cwd is the repository root. */
export function start(script: string, args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--no-warnings', '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run a script to its end (killed after `timeoutMs`). */
export function run(script: string, args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = start(script, args, opts.env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolve when the child's stdout has printed a line matching `re` (reject if it exits first or after `timeoutMs`). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output so far:\n${seen}`)), timeoutMs);
    const onData = (b: Buffer) => {
      seen += b.toString();
      const line = seen.split('\n').find((l) => re.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (seen += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before a line matching ${re}; output:\n${seen}`));
    });
  });
}

/** Stop a child with SIGINT (as Ctrl-C does) and wait for it; SIGKILL after `graceMs`. */
export function interrupt(child: ChildProcess, graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    child.kill('SIGINT');
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Run `jobs` with at most `n` at once, keeping their order in the result. */
export async function pool<T>(n: number, jobs: readonly (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

/** A command run with a user's mistake, and what its one stderr line must say. */
export interface UserErrorCase {
  what: string;
  script: string;
  args: string[];
  env?: Record<string, string>;
  /** What the one stderr line must say. */
  says: RegExp;
  /** The exit code wanted (default 2). */
  code?: number;
}

/** A stack trace, or node's internals, anywhere in a command's stderr. */
export const STACK = /^\s+at .+\(.*\)$|^\s+at [\w./:<>-]+:\d+|node:internal|Error: .*\n\s+at /m;

/**
 * What is wrong with each run of `cases` (in order): an exit code other than the case's (2 by
 * default), other than one line on stderr, a stack trace, anything on stdout, a line that does
 * not say what the case says. Empty when every run held to the rule.
 */
export function userErrorProblems(cases: readonly UserErrorCase[], ran: readonly Ran[]): string[] {
  const bad: string[] = [];
  for (const [i, c] of cases.entries()) {
    const r = ran[i]!;
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    const want = c.code ?? 2;
    const problems = [
      r.code !== want ? `exit ${r.code ?? r.signal} (want ${want})` : '',
      lines.length !== 1 ? `${lines.length} stderr lines` : '',
      STACK.test(r.stderr) ? 'a stack trace' : '',
      r.stdout.trim() !== '' ? `stdout: ${r.stdout.slice(0, 80)}` : '',
      c.says.test(lines[0] ?? '') ? '' : `says ${JSON.stringify(lines[0])}, want ${c.says}`,
    ].filter(Boolean);
    if (problems.length) bad.push(`${c.what}: ${problems.join('; ')}\n    stderr: ${r.stderr.trim().slice(0, 300)}`);
  }
  return bad;
}
