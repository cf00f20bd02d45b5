/**
 * `npm run bench [-- filter]`: runs every suite (or the rows whose name, or suite name, contains
 * `filter`), prints a table and merges the rows into bench/results.json; a suite that fails
 * does not stop the others (exit code 1).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BenchRow, BenchSuite } from './types.ts';
import { isMain, parse, runCli, type CommandSpec } from '../cli/args.ts';

export const BENCH: CommandSpec<Record<string, never>> = {
  name: 'npm run bench',
  usage: '[-- filter]',
  summary: 'Run the benchmarks, print a table and merge the rows into bench/results.json.',
  positionals: { min: 0, max: 1, help: '  filter             only the rows (or suites) whose name contains it; the system and federation suites run only unfiltered' },
  options: {},
};

/** Suites in run order; add new ones here. */
export const SUITES: BenchSuite[] = [
  // loaded when they run, so that a mistake on the command line is reported at once
  { name: 'core', run: async (filter) => (await import('./core.ts')).benchCore(filter) },
  { name: 'keys', run: async (filter) => (filter === undefined ? (await import('./keys.ts')).benchKeys() : []) },
  { name: 'system', run: async (filter) => (filter === undefined ? (await import('./system.ts')).benchSystem() : []) },
  { name: 'system-jobs', run: async (filter) => (filter === undefined ? (await import('./system.ts')).benchSystem({ allJobs: true }) : []) },
  // the same with the embedded DynamoDB and bcoin in the hub's thread, as before they had threads of their own: what the threads give
  { name: 'system-jobs-one-thread', run: async (filter) => (filter === undefined ? (await import('./system.ts')).benchSystem({ allJobs: true, threads: false }) : []) },
  { name: 'federation', run: async (filter) => (filter === undefined ? (await import('./federation.ts')).benchFederation() : []) },
  { name: 'store', run: async (filter) => (filter === undefined ? (await import('./store.ts')).benchStore() : []) },
  // IoT Core billed messages per purchase, counted at the embedded broker (`npm run bench -- iot` runs it alone)
  { name: 'iot', run: async (filter) => (filter === undefined ? (await import('./iot.ts')).benchIot() : []) },
  // a real MultiChain node from OC_NODES_BIN (the row says skipped, and why, without it)
  { name: 'ledger', run: async (filter) => (filter === undefined ? (await import('./ledger.ts')).benchLedger() : []) },
];

const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));

interface Results {
  at: string;
  node: string;
  cpu: string;
  rows: (BenchRow & { suite: string })[];
}

function format(rows: readonly (BenchRow & { suite: string })[]): string {
  const head = ['suite', 'name', 'value', 'unit', 'ratio', 'target', 'ok'];
  const body = rows.map((r) => [
    r.suite,
    r.name,
    r.value.toLocaleString('en-US'),
    r.unit,
    r.ratio === undefined ? '' : `${r.ratio}x`,
    r.target ?? '',
    r.ok === undefined ? '' : r.ok ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function previous(file: string): Results['rows'] {
  if (!existsSync(file)) return [];
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as Results).rows ?? [];
  } catch {
    return [];
  }
}

/**
 * Run `suites` (filtered as the command line says), print the table of their rows and
 * merge them into `resultsFile`. A suite that fails is reported in one line and the
 * others still run: the table and the results keep every row measured (a failed
 * suite's earlier rows stay in the results). The exit code: 1 when a suite failed.
 */
export async function runBench(
  suites: readonly BenchSuite[],
  filter: string | undefined,
  io: { resultsFile: string; out: (line: string) => void; progress: (text: string) => void } = {
    resultsFile: RESULTS,
    out: (line) => console.log(line),
    progress: (text) => process.stderr.write(text),
  },
): Promise<number> {
  const rows: Results['rows'] = [];
  const whole = new Set<string>(); // suites run whole: their earlier rows all go (a renamed row must not linger)
  const failures: string[] = [];
  for (const suite of suites) {
    const suiteFilter = filter === undefined || suite.name.toLowerCase().includes(filter.toLowerCase()) ? undefined : filter;
    const started = Date.now();
    io.progress(`running ${suite.name}… `);
    let got: BenchRow[];
    try {
      got = await suite.run(suiteFilter);
    } catch (e) {
      const message = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
      io.progress(`FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s: ${message}\n`);
      failures.push(`${suite.name}: ${message}`);
      continue;
    }
    if (suiteFilter === undefined) whole.add(suite.name);
    io.progress(`${got.length} rows in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    rows.push(...got.map((r) => ({ suite: suite.name, ...r })));
  }
  io.out(format(rows));
  const fresh = new Set(rows.map((r) => `${r.suite}/${r.name}`));
  const merged = [...previous(io.resultsFile).filter((r) => !whole.has(r.suite) && !fresh.has(`${r.suite}/${r.name}`)), ...rows];
  const results: Results = { at: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model ?? 'unknown', rows: merged };
  writeFileSync(io.resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  const failed = rows.filter((r) => r.ok === false);
  if (failed.length > 0) io.out(`\n${failed.length} row(s) missed their target: ${failed.map((r) => r.name).join('; ')}`);
  if (failures.length > 0) io.out(`\n${failures.length} suite(s) failed (their rows are missing above): ${failures.join('; ')}`);
  return failures.length > 0 ? 1 : 0;
}

if (isMain(import.meta.url)) {
  runCli('npm run bench', async () => {
    const { positionals, help } = parse(BENCH, process.argv.slice(2));
    if (help) return 0;
    return runBench(SUITES, positionals[0]);
  });
}
