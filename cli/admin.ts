/**
 * `npm run admin -- <command> …`: the hub's admin operations over its HTTP API.
 * - Against the embedded cloud (`npm start -- --serve`) it talks plainly.
 * - Against AWS (an `…execute-api.<region>.amazonaws.com` URL, or `--aws`) it
 *   signs each request with SigV4 (service execute-api) with the AWS SDK's
 *   default credential chain (`--profile` picks a profile): the admin routes
 *   (functions/routes.ts, `admin: true`) sit behind the IAM authoriser.
 *
 * Exit codes: 0 done (the response body is printed as JSON), 2 a mistake on the
 * command line or a request the API refused as the caller's (4xx), 1 anything
 * else (5xx, network, credentials), always one line on stderr.
 *
 * To add a command: one entry in COMMANDS (its options and the request it makes).
 */
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { describeError, isMain, parse, runCli, UsageError, type CommandSpec, type Options, type Values } from './args.ts';
import type { AwsCredentials } from './sigv4.ts';

/** API Gateway's host names its region: `{id}.execute-api.{region}.amazonaws.com`. */
export function regionOfHost(hostname: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(hostname)?.[1];
}

const GLOBAL = {
  api: { type: 'string', arg: 'URL', help: 'the hub API (npm start prints it); default $OC_API' },
  aws: { type: 'boolean', help: 'sign with SigV4 (automatic for *.execute-api.<region>.amazonaws.com)' },
  region: { type: 'string', arg: 'REGION', help: 'SigV4 region; default from the URL, else $AWS_REGION' },
  profile: { type: 'string', arg: 'NAME', help: 'AWS profile for the credentials; default chain otherwise' },
} as const satisfies Options;

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** Write the response body (or a part of it) to this file too. */
  saveTo?: { file: string; pick?: (body: unknown) => unknown };
}

interface AdminCommand<O extends Options = Options> {
  summary: string;
  /** Positional argument names, all required. */
  args: readonly string[];
  options: O;
  request(args: string[], values: Values<O & typeof GLOBAL>): Promise<Request> | Request;
}

const seg = (s: string) => encodeURIComponent(s);

/** A public key file: `{"deviceKey": {alg, spki}}` (device:keygen's output and device.pub.json) or `{alg, spki}`. */
async function publicKeyFile(path: string): Promise<unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`--key ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? `not JSON (${(e as Error).message})`}`);
  }
  const key = (raw as { deviceKey?: unknown }).deviceKey ?? raw;
  const k = key as { alg?: unknown; spki?: unknown; pkcs8?: unknown };
  if (typeof k.pkcs8 === 'string') throw new UsageError(`--key ${path} is a private key: give the public one (device.pub.json next to it)`);
  if ((k.alg !== 'ed25519' && k.alg !== 'p256') || typeof k.spki !== 'string') {
    throw new UsageError(`--key ${path}: expected {"deviceKey": {"alg": "ed25519"|"p256", "spki": "…"}} as npm run device:keygen writes`);
  }
  return { alg: k.alg, spki: k.spki };
}

const COMMANDS: Record<string, AdminCommand> = {
  'register-domain': {
    summary: 'host a domain at this hub: POST /domains',
    args: ['domain'],
    options: {
      role: { type: 'string', choices: ['consumer', 'provider', 'both'], arg: 'ROLE', help: 'what the domain does (required)' },
      threshold: { type: 'number', min: 0, max: 1, arg: 'R', help: 'providers: minimum consumer reputation' },
      alg: { type: 'string', choices: ['ed25519', 'p256'], arg: 'ALG', help: 'domain key algorithm' },
      'no-auto-settle': { type: 'boolean', help: 'consumers: do not settle on the schedule (settle by hand)' },
      price: { type: 'string', arg: 'SERVICE=SATS[,…]', help: 'providers: prices, e.g. wifi-access=1000,charging=2500' },
    },
    request: ([domain], v) => {
      if (v.role === undefined) throw new UsageError('register-domain needs --role consumer|provider|both');
      const prices: Record<string, number> = {};
      for (const item of typeof v.price === 'string' ? v.price.split(',') : []) {
        const m = /^([A-Za-z0-9_.:-]+)=(\d+)$/.exec(item.trim());
        if (!m) throw new UsageError(`--price: expected SERVICE=SATS, got ${JSON.stringify(item)}`);
        prices[m[1]!] = Number(m[2]);
      }
      return {
        method: 'POST',
        path: '/domains',
        body: {
          domain,
          role: v.role,
          ...(v.threshold === undefined ? {} : { threshold: v.threshold }),
          ...(v.alg === undefined ? {} : { alg: v.alg }),
          ...(v['no-auto-settle'] ? { autoSettle: false } : {}),
          ...(Object.keys(prices).length ? { prices } : {}),
        },
      };
    },
  },
  enrol: {
    summary: "enrol a device: its domain signs a credential for its key (POST /domains/{domain}/devices); locally the embedded broker then accepts the thing",
    args: ['domain', 'device'],
    options: {
      key: { type: 'string', arg: 'FILE', help: "the device's public key (device.pub.json from npm run device:keygen) (required)" },
      'credit-limit': { type: 'int', min: 0, max: 2_100_000_000_000_000, default: 100_000, arg: 'SATS', help: 'largest single obligation of the device' },
      'valid-for': { type: 'int', min: 1, max: 10 * 365 * 86_400_000, arg: 'MS', help: "credential lifetime; default and most the hub's CREDENTIAL_TTL_MS (7 days unless set)" },
      out: { type: 'string', arg: 'FILE', help: 'write the credential here (the device config credentialPath)' },
    },
    request: async ([domain, device], v) => {
      if (typeof v.key !== 'string') throw new UsageError('enrol needs --key FILE (the device public key, from npm run device:keygen)');
      return {
        method: 'POST',
        path: `/domains/${seg(domain!)}/devices`,
        body: {
          deviceId: device,
          deviceKey: await publicKeyFile(v.key),
          creditLimit: v['credit-limit'],
          ...(v['valid-for'] === undefined ? {} : { validForMs: v['valid-for'] }),
        },
        ...(typeof v.out === 'string' ? { saveTo: { file: v.out, pick: (b: unknown) => (b as { credential: unknown }).credential } } : {}),
      };
    },
  },
  settle: {
    summary: "settle a consumer domain's pending obligations now: POST /domains/{domain}/settlements",
    args: ['domain'],
    options: { 'max-outputs': { type: 'int', min: 1, max: 1000, arg: 'N', help: 'outputs per transaction at most' } },
    request: ([domain], v) => ({
      method: 'POST',
      path: `/domains/${seg(domain!)}/settlements`,
      body: v['max-outputs'] === undefined ? {} : { maxOutputs: v['max-outputs'] },
    }),
  },
  revoke: {
    summary: "revoke a device's key at every hub (a signed record on the ledger): POST /domains/{domain}/devices/{device}/revocation",
    args: ['domain', 'device'],
    options: { reason: { type: 'string', arg: 'TEXT', help: 'why (printable ASCII, at most 200 characters), kept in the record' } },
    request: ([domain, device], v) => ({
      method: 'POST',
      path: `/domains/${seg(domain!)}/devices/${seg(device!)}/revocation`,
      body: typeof v.reason === 'string' ? { reason: v.reason } : {},
    }),
  },
  'rotate-key': {
    summary: "replace a hosted domain's key (a rotation signed by the current key, on the ledger); its devices then renew their credentials: POST /domains/{domain}/key-rotation",
    args: ['domain'],
    options: {},
    request: ([domain]) => ({ method: 'POST', path: `/domains/${seg(domain!)}/key-rotation`, body: {} }),
  },
  domain: {
    summary: "a domain's record: GET /domains/{domain}",
    args: ['domain'],
    options: {},
    request: ([domain]) => ({ method: 'GET', path: `/domains/${seg(domain!)}` }),
  },
  reputation: {
    summary: "a domain's reputation and credit: GET /domains/{domain}/reputation",
    args: ['domain'],
    options: {},
    request: ([domain]) => ({ method: 'GET', path: `/domains/${seg(domain!)}/reputation` }),
  },
  obligations: {
    summary: "a domain's obligations: GET /domains/{domain}/obligations",
    args: ['domain'],
    options: { status: { type: 'string', arg: 'STATUS', help: 'only these (accepted, settling, fulfilled, defaulted)' } },
    request: ([domain], v) => ({
      method: 'GET',
      path: `/domains/${seg(domain!)}/obligations${typeof v.status === 'string' ? `?status=${seg(v.status)}` : ''}`,
    }),
  },
  health: { summary: 'the hub health: GET /health', args: [], options: {}, request: () => ({ method: 'GET', path: '/health' }) },
};

const NAME = 'npm run admin';

function overview(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    "The hub's admin operations over its HTTP API (plain to the embedded cloud, SigV4-signed to AWS).",
    '',
    `usage: ${NAME} -- <command> [arguments] [options]     (${NAME} -- <command> --help for its options)`,
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(w)}${c.summary}`),
    '',
    'examples:',
    `  ${NAME} -- register-domain home --role consumer --api http://127.0.0.1:8080`,
    `  ${NAME} -- enrol home home-scd-1 --key .fleet/home-scd-1/device.pub.json --out .fleet/home-scd-1/credential.json`,
    `  ${NAME} -- settle c1 --api https://abc123.execute-api.eu-west-1.amazonaws.com`,
  ].join('\n');
}

export function commandSpec(name: string, cmd: AdminCommand): CommandSpec<Options> {
  return {
    name: `${NAME} -- ${name}`,
    usage: `${cmd.args.map((a) => `<${a}>`).join(' ')} [options]`,
    summary: cmd.summary,
    options: { ...cmd.options, ...GLOBAL },
    positionals: { min: cmd.args.length, max: cmd.args.length },
  };
}

export interface Transport {
  aws: boolean;
  region?: string;
  credentials?: () => Promise<AwsCredentials>;
}

/** Send one request; returns the parsed body, or throws (UsageError for a 4xx). */
export async function send(api: string, req: Request, t: Transport): Promise<unknown> {
  const url = new URL(req.path.replace(/^\//, ''), api.endsWith('/') ? api : `${api}/`);
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  let headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (t.aws) {
    // the signer and the credential chain load only for AWS
    const { signRequest } = await import('./sigv4.ts');
    headers = await signRequest({
      method: req.method,
      url,
      headers,
      ...(body === undefined ? {} : { body }),
      region: t.region!,
      credentials: t.credentials!,
    }).catch((e: unknown) => {
      throw new Error(`no AWS credentials to sign with: ${describeError(e)}`);
    });
    delete headers.host; // fetch sets it from the URL (the same value, signed)
  }
  const res = await fetch(url, { method: req.method, headers, ...(body === undefined ? {} : { body }) }).catch((e: unknown) => {
    throw new Error(`cannot reach ${url.origin}: ${describeError((e as { cause?: unknown }).cause ?? e)}`);
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    // not JSON (a gateway's HTML error page): shown as text
  }
  if (res.status >= 400) {
    const e = parsed as { code?: string; message?: string; error?: { code?: string; message?: string } } | undefined;
    const detail = e?.error ?? e;
    const what =
      typeof detail === 'object' && detail !== null && (detail.code || detail.message)
        ? `${detail.code ?? ''}${detail.code && detail.message ? ' ' : ''}${detail.message ?? ''}`
        : String(text).slice(0, 200);
    const line = `${req.method} ${url.pathname} → ${res.status}: ${what}`.replace(/\s*\n\s*/g, ' ');
    if (res.status === 403 && !t.aws) throw new UsageError(`${line} (an AWS API? add --aws)`);
    if (res.status < 500) throw new UsageError(line);
    throw new Error(line);
  }
  return parsed;
}

/** --out must name a new file in an existing directory: checked before the request is made. */
async function checkNewFile(file: string): Promise<void> {
  if (await access(file).then(() => true, () => false)) throw new UsageError(`--out ${file}: exists (not overwritten)`);
  const dir = dirname(resolve(file));
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--out ${file}: ${dir} is not an existing directory`);
}

export async function admin(argv: readonly string[], out: (text: string) => void = console.log): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    out(overview());
    return 0;
  }
  const known = Object.keys(COMMANDS);
  if (name === undefined) throw new UsageError(`missing command; commands: ${known.join(', ')}; see ${NAME} -- --help`);
  const cmd = COMMANDS[name];
  if (!cmd) {
    const close = known.find((k) => k.startsWith(name)) ?? known.find((k) => name.startsWith(k));
    throw new UsageError(`unknown command ${JSON.stringify(name)}${close ? ` (did you mean ${close}?)` : ''}; commands: ${known.join(', ')}`);
  }
  const spec = commandSpec(name, cmd);
  const { values, positionals, help } = parse(spec, rest, out);
  if (help) return 0;
  const v = values as Values<typeof GLOBAL> & Record<string, unknown>;
  const api = v.api ?? process.env.OC_API;
  if (!api) throw new UsageError('--api URL is required (or set OC_API); npm start prints it');
  let host: string;
  try {
    const u = new URL(api);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    host = u.hostname;
  } catch {
    throw new UsageError(`--api ${api}: not an http(s) URL`);
  }
  const aws = v.aws || regionOfHost(host) !== undefined;
  const transport: Transport = { aws };
  if (aws) {
    const region = v.region ?? regionOfHost(host) ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError('--region is required: the API URL names none and AWS_REGION is unset');
    transport.region = region;
    transport.credentials = (await import('./sigv4.ts')).defaultCredentials(v.profile);
  }
  const req = await cmd.request(positionals, v as never);
  if (req.saveTo) await checkNewFile(req.saveTo.file);
  const body = await send(api, req, transport);
  if (req.saveTo) {
    const data = req.saveTo.pick ? req.saveTo.pick(body) : body;
    await writeFile(req.saveTo.file, `${JSON.stringify(data, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
    process.stderr.write(`wrote ${req.saveTo.file}\n`);
  }
  out(JSON.stringify(body, null, 2));
  return 0;
}


if (isMain(import.meta.url)) runCli(NAME, () => admin(process.argv.slice(2)));
