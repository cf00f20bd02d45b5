/**
 * `npm run bench [-- filter]`: runs every suite (or the rows whose name, or suite name, contains
 * `filter`), prints a table and merges the rows into bench/results.json.
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

function previous(): Results['rows'] {
  if (!existsSync(RESULTS)) return [];
  try {
    return (JSON.parse(readFileSync(RESULTS, 'utf8')) as Results).rows ?? [];
  } catch {
    return [];
  }
}

async function main(filter: string | undefined): Promise<void> {
  const rows: Results['rows'] = [];
  const whole = new Set<string>(); // suites run whole: their earlier rows all go (a renamed row must not linger)
  for (const suite of SUITES) {
    const suiteFilter = filter === undefined || suite.name.toLowerCase().includes(filter.toLowerCase()) ? undefined : filter;
    if (suiteFilter === undefined) whole.add(suite.name);
    const started = Date.now();
    process.stderr.write(`running ${suite.name}… `);
    const got = await suite.run(suiteFilter);
    process.stderr.write(`${got.length} rows in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    rows.push(...got.map((r) => ({ suite: suite.name, ...r })));
  }
  console.log(format(rows));
  const fresh = new Set(rows.map((r) => `${r.suite}/${r.name}`));
  const merged = [...previous().filter((r) => !whole.has(r.suite) && !fresh.has(`${r.suite}/${r.name}`)), ...rows];
  const results: Results = { at: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model ?? 'unknown', rows: merged };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  const failed = rows.filter((r) => r.ok === false);
  if (failed.length > 0) console.log(`\n${failed.length} row(s) missed their target: ${failed.map((r) => r.name).join('; ')}`);
}

if (isMain(import.meta.url)) {
  runCli('npm run bench', async () => {
    const { positionals, help } = parse(BENCH, process.argv.slice(2));
    if (help) return 0;
    await main(positionals[0]);
    return 0;
  });
}
