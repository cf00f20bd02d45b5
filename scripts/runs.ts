/**
 * `npm run runs -- --runs 20 [--load N]`: run the default `npm start`
 * scenario N times, one after another, each in a child process
 * (`node --import tsx local/start.ts --json FILE`), optionally with N
 * CPU-burning worker threads loading the machine meanwhile. Prints per run
 * and in total the two things that must never happen:
 *   - a paying domain ("pays? yes") with a defaulted obligation;
 *   - a double payment: an obligation in more than one broadcast settlement,
 *     or more paid than the fulfilled obligations owed (per consumer domain by
 *     its settlements, and in total by what the providers' wallets received).
 * Exit code 1 if any run shows one, or fails its own checks.
 *
 *   npm run runs -- --runs 5 --load 2 [-- extra npm-start options]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DomainPayments } from '../local/summary.ts';
import { isMain, parse, runCli, UsageError, type CommandSpec, type Options } from '../cli/args.ts';
import { startConfig } from '../local/start.ts';


interface RunSummary {
  ok: boolean;
  open: number;
  seconds: number;
  domains: DomainPayments[];
  providersReceivedSats: number;
  owedFulfilledSats: number;
}

interface RunFigures {
  run: number;
  exit: number | null;
  seconds: number;
  accepted: number;
  fulfilled: number;
  defaulted: number;
  /** Defaulted obligations of domains that pay. */
  payerDefaults: number;
  /** Obligations in more than one broadcast settlement. */
  inSeveral: number;
  /** Sats paid beyond what the fulfilled obligations owed (settlements, per domain, summed). */
  overSettledSats: number;
  /** Sats the providers received beyond what the fulfilled obligations owed. */
  overReceivedSats: number;
  selfChecks: boolean;
}

const RUNS_OPTIONS = {
  runs: { type: 'int', min: 1, max: 10_000, default: 20, arg: 'N', help: 'how many runs' },
  load: { type: 'int', min: 0, max: 64, default: 0, arg: 'WORKERS', help: 'CPU-burning worker threads alongside' },
  keep: { type: 'boolean', help: "keep each run's log and JSON even when all pass" },
} as const satisfies Options;

export const RUNS: CommandSpec<typeof RUNS_OPTIONS> = {
  name: 'npm run runs',
  usage: '-- [--runs N] [--load WORKERS] [--keep] [-- npm-start options]',
  summary: 'Run the default npm start scenario N times, each in a child process, and check for payer defaults and double payments.',
  passThrough: true,
  unknownHint: 'npm start options go after a second --, e.g. npm run runs -- --runs 5 -- --seed 3',
  options: RUNS_OPTIONS,
};

/** Busy threads: each spins until terminated. */
function burners(n: number): Worker[] {
  return Array.from({ length: n }, () => new Worker('let x = 0; for (;;) { x = (x * 1103515245 + 12345) % 2147483648; }', { eval: true }));
}

function runOnce(dir: string, i: number, positionals: readonly string[]): Promise<{ exit: number | null; log: string }> {
  const json = join(dir, `run-${i}.json`);
  const log = join(dir, `run-${i}.log`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-warnings', '--import', 'tsx', 'local/start.ts', '--json', json, ...positionals], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      void writeFile(log, Buffer.concat(out)).then(() => resolve({ exit: code, log }), reject);
    });
  });
}

function figures(run: number, exit: number | null, s: RunSummary | undefined): RunFigures {
  const d = s?.domains ?? [];
  const sum = (f: (x: DomainPayments) => number) => d.reduce((t, x) => t + f(x), 0);
  return {
    run,
    exit,
    seconds: s?.seconds ?? NaN,
    accepted: sum((x) => x.accepted),
    fulfilled: sum((x) => x.fulfilled),
    defaulted: sum((x) => x.defaulted),
    payerDefaults: sum((x) => (x.pays ? x.defaulted : 0)),
    inSeveral: sum((x) => x.inSeveralSettlements),
    overSettledSats: sum((x) => Math.max(0, x.settledSats - x.owedFulfilledSats)),
    overReceivedSats: s ? Math.max(0, s.providersReceivedSats - s.owedFulfilledSats) : NaN,
    selfChecks: s?.ok === true,
  };
}

const bad = (f: RunFigures): boolean =>
  f.exit !== 0 || !f.selfChecks || f.payerDefaults !== 0 || f.inSeveral !== 0 || f.overSettledSats !== 0 || f.overReceivedSats !== 0;

const row = (f: RunFigures | (Omit<RunFigures, 'run' | 'exit'> & { run: string; exit: string })) =>
  [
    String(f.run).padStart(5),
    String(f.exit).padStart(4),
    (Number.isNaN(f.seconds) ? '–' : f.seconds.toFixed(1)).padStart(7),
    String(f.accepted).padStart(8),
    String(f.fulfilled).padStart(9),
    String(f.defaulted).padStart(9),
    String(f.payerDefaults).padStart(14),
    String(f.inSeveral).padStart(16),
    String(f.overSettledSats).padStart(12),
    String(f.overReceivedSats).padStart(13),
    (typeof f.selfChecks === 'boolean' ? (f.selfChecks ? 'ok' : 'FAIL') : f.selfChecks).padStart(7),
  ].join('  ');

async function main(): Promise<number> {
  const { values, rest: positionals, help } = parse(RUNS, process.argv.slice(2));
  if (help) return 0;
  const { runs, load } = values;
  // the npm start options after the second --: a mistake is said once, here, not by every run
  if (positionals.some((a) => a === '--json' || a.startsWith('--json='))) throw new UsageError('--json is set by npm run runs (each run writes its own); drop it after --');
  try {
    if (!startConfig(['--json', join(tmpdir(), 'run.json'), ...positionals])) return 0; // -- --help: npm start's options were printed
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`npm start options after --: ${e.message}`);
    throw e;
  }
  const dir = await mkdtemp(join(tmpdir(), 'oc-runs-'));
  const workers = burners(load);
  console.log(`${runs} run(s) of the default npm start scenario${positionals.length ? ` (${positionals.join(' ')})` : ''}, ${load} CPU burner(s) alongside; logs in ${dir}`);
  console.log(
    ['  run', 'exit', '      s', 'accepted', 'fulfilled', 'defaulted', 'payer defaults', 'in 2+ settlements', 'over-settled', 'over-received', ' checks'].join('  '),
  );
  const all: RunFigures[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      const { exit } = await runOnce(dir, i, positionals);
      let summary: RunSummary | undefined;
      try {
        summary = JSON.parse(await readFile(join(dir, `run-${i}.json`), 'utf8')) as RunSummary;
      } catch {
        summary = undefined; // the run died before writing it: counted as failed
      }
      const f = figures(i, exit, summary);
      all.push(f);
      console.log(row(f) + (bad(f) ? `   <- see ${join(dir, `run-${i}.log`)}` : ''));
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const total = (k: keyof RunFigures) => all.reduce((t, f) => t + (f[k] as number), 0);
  console.log(
    row({
      run: 'total',
      exit: String(all.filter((f) => f.exit !== 0).length),
      seconds: total('seconds'),
      accepted: total('accepted'),
      fulfilled: total('fulfilled'),
      defaulted: total('defaulted'),
      payerDefaults: total('payerDefaults'),
      inSeveral: total('inSeveral'),
      overSettledSats: total('overSettledSats'),
      overReceivedSats: total('overReceivedSats'),
      selfChecks: all.every((f) => f.selfChecks),
    }),
  );
  const failed = all.filter(bad).length;
  console.log(
    failed === 0
      ? `all ${runs} run(s): 0 defaults of paying domains, 0 double payments`
      : `${failed} of ${runs} run(s) FAILED (payer defaults ${total('payerDefaults')}, obligations in 2+ settlements ${total('inSeveral')}, over-paid sats ${total('overSettledSats')} / ${total('overReceivedSats')})`,
  );
  if (failed === 0 && !values.keep) await rm(dir, { recursive: true, force: true });
  return failed === 0 ? 0 : 1;
}

if (isMain(import.meta.url)) runCli('npm run runs', main);
