/**
 * More user errors, found by an audit of every command after issue 14: each is
 * run as the user runs it and must end with exit code 2 and exactly one line on
 * stderr, no stack trace, nothing on stdout, before any long work starts.
 * - a message quoting a file's text (JSON.parse's "not a dir\n" is not valid JSON) is still one line;
 * - an empty option value (`--data ''`, an unset shell variable) is a missing value, not ignored;
 * - `npm start --json FILE` where FILE cannot be written: refused at once, not after the run;
 * - `npm start --multichain URL` of a node that does not answer: refused at once, as --bitcoind is;
 * - LEDGER_KIND=multichain with --hubs: refused, as BITCOIND_RPC_URL with --hubs is;
 * - `npm run runs -- -- <bad npm start options>`: said once, not by every run;
 * - `npm run admin` without a command;
 * - `npm run device` with a device key that does not parse, or IoT Core files that are not PEM.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../core/keys.ts';
import { parse, UsageError, type CommandSpec } from '../../cli/args.ts';
import { freePort, pool, run, userErrorProblems, type Ran, type UserErrorCase } from './support.ts';

let dir: string;
let closedPort: number;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oc-user-errors-more-'));
  closedPort = await freePort(); // nothing listens there
  await writeFile(join(dir, 'plain-text'), 'not a dir\nnor JSON\n');
  await mkdir(join(dir, 'a-dir'));
  const keys = generateKeyPair();
  await writeFile(join(dir, 'key.json'), JSON.stringify(keys.privateKey));
  await writeFile(join(dir, 'garbage-key.json'), JSON.stringify({ alg: 'ed25519', pkcs8: 'abc' }));
  await writeFile(join(dir, 'cert.pem'), 'not a certificate\n');
  await writeFile(join(dir, 'private.key'), 'not a key\n');
  const spd = (key: string, link: unknown) => ({ role: 'spd', domain: 'p1', thing: 'p1-spd-1', api: `http://127.0.0.1:${closedPort}`, link, devicePrivateKeyPath: key });
  await writeFile(join(dir, 'garbage-key.device.json'), JSON.stringify(spd(join(dir, 'garbage-key.json'), { kind: 'local', host: '127.0.0.1', port: closedPort })));
  await writeFile(
    join(dir, 'not-pem.device.json'),
    JSON.stringify(spd(join(dir, 'key.json'), { kind: 'iot-core', endpoint: 'x-ats.iot.eu-west-1.amazonaws.com', certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'private.key') })),
  );
  await writeFile(
    join(dir, 'cert-dir.device.json'),
    JSON.stringify(spd(join(dir, 'key.json'), { kind: 'iot-core', endpoint: 'x-ats.iot.eu-west-1.amazonaws.com', certPath: join(dir, 'a-dir'), keyPath: join(dir, 'private.key') })),
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const START = 'local/start.ts';
const cases = (): UserErrorCase[] => [
  // a message quoting a file's text: one line
  { what: 'npm run device -- <a text file>', script: 'devices/main.ts', args: [join(dir, 'plain-text')], says: /is not valid JSON: .*"not a dir/ },
  { what: 'npm run admin -- enrol … --key <a text file>', script: 'cli/admin.ts', args: ['enrol', 'c1', 'd1', '--key', join(dir, 'plain-text'), '--api', `http://127.0.0.1:${closedPort}`], says: /--key .*: not JSON/ },
  // an empty value
  { what: "npm start -- --data ''", script: START, args: ['--data', ''], says: /--data needs a value \(DIR\)/ },
  { what: "npm run admin -- health --api ''", script: 'cli/admin.ts', args: ['health', '--api', ''], says: /--api needs a value \(URL\)/ },
  // npm start --json: checked before the run
  { what: 'npm start -- --json <missing dir>/x.json', script: START, args: ['--json', join(dir, 'missing', 'x.json')], says: /--json .*x\.json: its directory .*missing is not an existing directory/ },
  { what: 'npm start -- --json <a directory>', script: START, args: ['--json', join(dir, 'a-dir')], says: /--json .*a-dir: is a directory/ },
  {
    what: 'npm start -- --data <new dir> --json <missing dir>/x.json (refused before the data directory is made)',
    script: START,
    args: ['--data', join(dir, 'new-data'), '--json', join(dir, 'missing', 'x.json')],
    says: /--json .*x\.json: its directory .*missing is not an existing directory/,
  },
  // npm start --multichain: the node must answer first
  {
    what: 'npm start -- --multichain <nothing there>',
    script: START,
    args: ['--multichain', `http://u:p@127.0.0.1:${closedPort}/chain`],
    says: /--multichain: node http:\/\/127\.0\.0\.1:\d+\/ chain chain: .*ECONNREFUSED/,
  },
  {
    what: 'LEDGER_KIND=multichain MULTICHAIN_RPC_URL=<nothing there> npm start',
    script: START,
    args: [],
    env: { LEDGER_KIND: 'multichain', MULTICHAIN_RPC_URL: `http://u:p@127.0.0.1:${closedPort}/chain` },
    says: /--multichain: node .*ECONNREFUSED/,
  },
  {
    what: 'LEDGER_KIND=multichain npm start -- --hubs 2',
    script: START,
    args: ['--hubs', '2'],
    env: { LEDGER_KIND: 'multichain', MULTICHAIN_RPC_URL: `http://u:p@127.0.0.1:${closedPort}/chain` },
    says: /LEDGER_KIND=multichain\) are for one hub only/,
  },
  // npm run runs: the npm start options after the second --
  { what: 'npm run runs -- --runs 1 -- --hubs 0', script: 'scripts/runs.ts', args: ['--runs', '1', '--', '--hubs', '0'], says: /npm start options after --: --hubs must be an integer from 1 to 16/ },
  { what: 'npm run runs -- --runs 1 -- --frobnicate', script: 'scripts/runs.ts', args: ['--runs', '1', '--', '--frobnicate'], says: /npm start options after --: unknown option --frobnicate/ },
  { what: 'npm run runs -- --runs 1 -- --json x', script: 'scripts/runs.ts', args: ['--runs', '1', '--', '--json', 'x'], says: /--json is set by npm run runs/ },
  // npm run admin without a command
  { what: 'npm run admin (no command)', script: 'cli/admin.ts', args: [], says: /^npm run admin: missing command; commands: register-domain, enrol, .*; see npm run admin -- --help$/ },
  // npm run device: files named by the config
  { what: 'npm run device -- <config whose key does not parse>', script: 'devices/main.ts', args: [join(dir, 'garbage-key.device.json')], says: /device key .*garbage-key\.json: private key does not parse as PKCS#8 DER/ },
  { what: 'npm run device -- <IoT Core config, files not PEM>', script: 'devices/main.ts', args: [join(dir, 'not-pem.device.json')], says: /device config .*not-pem\.device\.json: link\.certPath, keyPath or caPath: cannot load them/ },
  { what: 'npm run device -- <IoT Core config, certPath a directory>', script: 'devices/main.ts', args: [join(dir, 'cert-dir.device.json')], says: /device config .*cert-dir\.device\.json: link\.certPath, keyPath or caPath: cannot load them/ },
];

describe('more user errors: exit 2, one line on stderr, at once', () => {
  let results: { c: UserErrorCase; r: Ran }[] = [];
  before(async () => {
    const all = cases();
    // without the checks some of these would run a whole scenario: 60 s at most each
    const ran = await pool(4, all.map((c) => () => run(c.script, c.args, { timeoutMs: 60_000, ...(c.env ? { env: c.env } : {}) })));
    results = all.map((c, i) => ({ c, r: ran[i]! }));
  });

  it('every case', () => {
    const bad = userErrorProblems(results.map((x) => x.c), results.map((x) => x.r));
    assert.deepEqual(bad, [], bad.join('\n'));
  });

  it('a refused run made no --data directory', () => {
    assert.equal(existsSync(join(dir, 'new-data')), false);
  });

  it('npm run runs -- -- --help prints npm start\'s options (exit 0)', async () => {
    const r = await run('scripts/runs.ts', ['--', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage: npm start/);
  });
});

describe('cli/args: an empty value', () => {
  const SPEC: CommandSpec<{ data: { type: 'string'; arg: 'DIR'; help: string } }> = {
    name: 'cmd',
    usage: '[-- options]',
    summary: 'a command',
    options: { data: { type: 'string', arg: 'DIR', help: 'a dir' } },
  };
  it('is refused as a missing value, in either spelling', () => {
    for (const argv of [['--data', ''], ['--data=']]) {
      assert.throws(() => parse(SPEC, argv, () => undefined), (e: unknown) => e instanceof UsageError && /^--data needs a value \(DIR\); see cmd -- --help$/.test(e.message));
    }
  });
});
