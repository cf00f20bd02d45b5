/**
 * The one argument parser of every command (`npm start`, `npm run device`,
 * `device:keygen`, `soak`, `bench`, `runs`, `admin`), on node's
 * `util.parseArgs` tokens. What it promises a user:
 * - `--help` / `-h` everywhere, printed from the same table that is parsed;
 * - integers and numbers checked against their range (`--consumers 1.5`,
 *   `--port 70000`, `--seed abc` are errors, never rounded or clamped);
 * - an unknown flag is named, with the closest known flag as a hint;
 * - any such mistake is a `UsageError`: `runCli` prints it as ONE line on
 *   stderr, no stack trace, and exits with code 2. Other failures (I/O,
 *   network) are one line `<command> failed: <cause>` and exit code 1.
 *
 * Layering: no import from the embedded cloud or the devices; device code may use it.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** A mistake of the user on the command line (or in a file the command line names): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit code of a user error (as getopt-style tools and node's own parseArgs callers use). */
export const USAGE_EXIT = 2;

interface Common {
  /** One line for --help. */
  help: string;
  /** Placeholder in --help, e.g. `N`, `DIR`. */
  arg?: string;
  short?: string;
}
export type OptionSpec =
  | (Common & { type: 'int'; min?: number; max?: number; default?: number })
  | (Common & { type: 'number'; min?: number; max?: number; default?: number })
  | (Common & { type: 'string'; default?: string; choices?: readonly string[] })
  | (Common & { type: 'boolean' });

export type Options = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'int' | 'number'; default: number }
    ? number
    : S extends { type: 'int' | 'number' }
      ? number | undefined
      : S extends { type: 'string'; default: string }
        ? string
        : string | undefined;

export type Values<O extends Options> = { [K in keyof O]: ValueOf<O[K]> };

export interface CommandSpec<O extends Options> {
  /** How the user types it, e.g. `npm start`, `npm run device`. */
  name: string;
  /** Usage line after the name, e.g. `[-- options]`, `-- <config.json>`. */
  usage: string;
  /** A sentence or two printed above the options. */
  summary: string;
  options: O;
  /** Positional arguments: how many are allowed (default 0), and text for --help. */
  positionals?: { min: number; max: number; help?: string };
  /** Arguments after a `--` are passed through untouched (e.g. runs → npm start) instead of counted as positionals. */
  passThrough?: boolean;
  /** Extra text after the options (examples, notes). */
  epilog?: string;
  /** Said after an unknown option when no known flag is close (e.g. where other options go). */
  unknownHint?: string;
}

export interface Parsed<O extends Options> {
  values: Values<O>;
  positionals: string[];
  /** What followed a `--` when the command passes arguments through. */
  rest: string[];
  /** Whether --help was asked for (parse() has printed it). */
  help: boolean;
}

/** The --help text of a command. */
export function helpText<O extends Options>(spec: CommandSpec<O>): string {
  const rows = Object.entries({ ...spec.options, help: { type: 'boolean', help: 'this help', short: 'h' } as OptionSpec }).map(([name, o]) => {
    const left = `  ${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'boolean' ? '' : ` ${o.arg ?? (o.type === 'string' ? 'VALUE' : 'N')}`}`;
    const range =
      o.type === 'int' || o.type === 'number'
        ? o.min !== undefined && o.max !== undefined
          ? ` (${o.min}..${o.max})`
          : o.min !== undefined
            ? ` (>= ${o.min})`
            : ''
        : o.type === 'string' && o.choices
          ? ` (${o.choices.join(' | ')})`
          : '';
    const def = 'default' in o && o.default !== undefined ? `; default ${o.default}` : '';
    return [left, `${o.help}${range}${def}`] as const;
  });
  const w = Math.min(28, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, r]) => (l.length + 1 > w ? `${l}\n${' '.repeat(w)}${r}` : `${l.padEnd(w)}${r}`));
  return [
    spec.summary,
    '',
    `usage: ${spec.name} ${spec.usage}`.trimEnd(),
    ...(spec.positionals?.help ? [spec.positionals.help] : []),
    '',
    'options:',
    ...lines,
    ...(spec.epilog ? ['', spec.epilog] : []),
  ].join('\n');
}

/** Levenshtein distance (small strings: flag names). */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known name closest to `name`, if it is close enough to be a plausible typo (or a prefix). */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = k.startsWith(name) || name.startsWith(k) ? Math.min(1, distance(name, k)) : distance(name, k);
    if (!best || d < best.d) best = { k, d };
  }
  return best && best.d <= Math.max(1, Math.floor(name.length / 3)) ? best.k : undefined;
}

function numberValue(name: string, o: Extract<OptionSpec, { type: 'int' | 'number' }>, raw: string): number {
  const kind = o.type === 'int' ? 'an integer' : 'a number';
  const range =
    o.min !== undefined && o.max !== undefined ? ` from ${o.min} to ${o.max}` : o.min !== undefined ? ` >= ${o.min}` : o.max !== undefined ? ` <= ${o.max}` : '';
  const n = raw.trim() === '' ? NaN : Number(raw);
  const ok = Number.isFinite(n) && (o.type !== 'int' || Number.isSafeInteger(n)) && (o.min === undefined || n >= o.min) && (o.max === undefined || n <= o.max);
  if (!ok) throw new UsageError(`--${name} must be ${kind}${range} (got ${JSON.stringify(raw)})`);
  return n;
}

/**
 * Parse `argv` (without node and the script) against the command's table.
 * Throws UsageError on any mistake; on --help prints the help and returns `help: true`.
 */
export function parse<O extends Options>(spec: CommandSpec<O>, argv: readonly string[], out: (text: string) => void = console.log): Parsed<O> {
  const options = { ...spec.options, help: { type: 'boolean', help: '', short: 'h' } as OptionSpec };
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(options)) config[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}) };
  // strict: false so that every mistake is ours to word (and `--consumers -1` is a range error, not "ambiguous")
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const names = Object.keys(options);
  const raw: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const rest: string[] = [];
  let terminated = false;
  const see = `see ${spec.name} -- --help`;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') {
      terminated = true;
      continue;
    }
    if (t.kind === 'positional') {
      if (terminated && spec.passThrough) rest.push(t.value);
      else positionals.push(t.value);
      continue;
    }
    const o = options[t.name];
    if (!o) {
      const hint = closest(t.name, names);
      throw new UsageError(`unknown option ${t.rawName}${hint ? ` (did you mean --${hint}?)` : spec.unknownHint ? ` (${spec.unknownHint})` : ''}; ${see}`);
    }
    if (o.type === 'boolean') {
      if (t.inlineValue) throw new UsageError(`--${t.name} takes no value (got ${t.rawName}=${t.value ?? ''})`);
      raw[t.name] = true;
      continue;
    }
    const v = t.value;
    if (v === undefined || (!t.inlineValue && v.startsWith('--') && names.includes(v.slice(2).split('=')[0] ?? ''))) {
      throw new UsageError(`--${t.name} needs a value (${o.arg ?? (o.type === 'string' ? 'VALUE' : 'N')}); ${see}`);
    }
    if (t.name in raw) throw new UsageError(`--${t.name} is given twice`);
    raw[t.name] = v;
  }
  if (raw.help === true) {
    out(helpText(spec));
    return { values: {} as Values<O>, positionals, rest, help: true };
  }
  const p = spec.positionals ?? { min: 0, max: 0 };
  if (positionals.length > p.max) {
    const extra = positionals[p.max] ?? '';
    throw new UsageError(
      extra.startsWith('-') ? `unknown option ${extra}; ${see}` : `unexpected argument ${JSON.stringify(extra)}; ${see}`,
    );
  }
  if (positionals.length < p.min) throw new UsageError(`missing argument: usage: ${spec.name} ${spec.usage}`);
  // `keygen ''` (an unset shell variable) names no place: refused, like an empty option value
  if (positionals.includes('')) throw new UsageError(`an argument is empty: usage: ${spec.name} ${spec.usage}`);
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const r = raw[name];
    if (o.type === 'boolean') values[name] = r === true;
    else if (r === undefined) values[name] = o.default;
    else if (typeof r !== 'string') throw new UsageError(`--${name} needs a value`);
    else if (o.type === 'string') {
      // `--data ''` (an unset shell variable) is a missing value, not a path or URL to use or ignore
      if (r === '') throw new UsageError(`--${name} needs a value (${o.arg ?? 'VALUE'}); ${see}`);
      if (o.choices && !o.choices.includes(r)) throw new UsageError(`--${name} must be one of ${o.choices.join(', ')} (got ${JSON.stringify(r)})`);
      values[name] = r;
    } else values[name] = numberValue(name, o, r);
  }
  return { values: values as Values<O>, positionals, rest, help: false };
}

/** One line describing a failure: its message (or, for aws-crt errors without one, its error name) and causes. */
export function describeError(e: unknown): string {
  if (e === undefined || e === null) return 'unknown error';
  if (typeof e !== 'object') return String(e);
  const err = e as { message?: unknown; error_name?: unknown; code?: unknown; cause?: unknown };
  let msg = typeof err.message === 'string' && err.message.trim() !== '' && err.message !== 'undefined' ? err.message : '';
  if (typeof err.error_name === 'string' && !msg.includes(err.error_name)) msg = msg ? `${msg} (${err.error_name})` : err.error_name;
  if (!msg) msg = typeof err.code === 'string' ? err.code : String(e);
  if (err.cause !== undefined && err.cause !== e) {
    const cause = describeError(err.cause);
    if (!msg.includes(cause)) msg = `${msg}: ${cause}`;
  }
  return msg.replace(/\s*\n\s*/g, ' ');
}

/**
 * Run a command's main: a UsageError → one line on stderr, exit 2; any other
 * failure → one line `<name> failed: <cause>`, exit 1; otherwise exit with
 * the code main returns (or process.exitCode). `exit: true` ends the process
 * when main returns (aws-crt and bcoin can keep it alive after their close).
 */
export function runCli(name: string, main: () => Promise<number | void>, opts: { exit?: boolean } = {}): void {
  main().then(
    (code) => {
      if (typeof code === 'number') process.exitCode = code;
      if (opts.exit) process.exit(process.exitCode ?? 0);
    },
    (e: unknown) => {
      if (e instanceof UsageError) {
        // one line even when the message quotes a file's text (JSON.parse's does)
        process.stderr.write(`${name}: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
        process.exit(USAGE_EXIT);
      }
      process.stderr.write(`${name} failed: ${describeError(e)}\n`);
      process.exit(1);
    },
  );
}

/**
 * Ctrl-C: the first SIGINT runs `stop` once (and marks the run as stopping, so
 * failures of work cut short are not reported as errors); the process then
 * exits with 130. A second Ctrl-C exits at once.
 */
export function onInterrupt(stop: () => Promise<void>, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): { readonly stopping: boolean } {
  const state = { stopping: false };
  const handler = () => {
    if (state.stopping) process.exit(130);
    state.stopping = true;
    say('\nstopping… (Ctrl-C again to quit at once)');
    stop().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return state;
}

/** Whether the module with this `import.meta.url` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl === pathToFileURL(script).href;
}
