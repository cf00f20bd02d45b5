/**
 * Every user-error case of issue 14 ("A user's first hour"), run as the user
 * runs it (a child process per case, through tsx): exit code 2, exactly one
 * line on stderr, nothing on stdout, no stack trace, and the line names the
 * mistake. Also: --help works everywhere (exit 0) and creates nothing; I/O and
 * network failures are one line naming the cause (exit 1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pool, ROOT, run, userErrorProblems, type Ran, type UserErrorCase } from './support.ts';

let dir: string;
let closedPort: number;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oc-user-errors-'));
  closedPort = await freePort(); // nothing listens there
  await writeFile(join(dir, 'plain-file'), 'not a directory\n');
  await writeFile(join(dir, 'not-json.json'), '{ nope');
  // the old doc's local link: privateKeyPath in link, which the parser refuses (now by name)
  await writeFile(
    join(dir, 'old-doc.json'),
    JSON.stringify({
      role: 'scd', domain: 'c1', thing: 'c1-scd-1', api: 'http://127.0.0.1:8080',
      link: { kind: 'local', host: '127.0.0.1', port: 1883, privateKeyPath: 'k.json' },
      devicePrivateKeyPath: 'k.json', credentialPath: 'c.json', buy: { providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access' },
    }),
  );
  await writeFile(join(dir, 'key.json'), JSON.stringify({ alg: 'ed25519', pkcs8: 'MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v_kLx3Xn0SqPwD6mN8dQn7xGqYk6p2y6t2S0e' }));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const START = 'local/start.ts';
const cases = (): UserErrorCase[] => [
  // npm start, as seen in the issue
  { what: 'npm start --consumers -1', script: START, args: ['--consumers', '-1'], says: /--consumers must be an integer from 1/ },
  { what: 'npm start --frobnicate', script: START, args: ['--frobnicate'], says: /unknown option --frobnicate/ },
  { what: 'npm start --seed abc', script: START, args: ['--seed', 'abc'], says: /--seed must be an integer/ },
  { what: 'npm start --port 70000', script: START, args: ['--port', '70000'], says: /--port must be an integer from 1 to 65535/ },
  { what: 'npm start --data <a file>', script: START, args: ['--data', join(dir, 'plain-file')], says: /exists and is not a directory/ },
  { what: 'npm start --consumers 1.5', script: START, args: ['--consumers', '1.5'], says: /--consumers must be an integer/ },
  { what: 'npm start --defaulters 2', script: START, args: ['--defaulters', '2'], says: /--defaulters must be a number from 0 to 1/ },
  { what: 'npm start --data /nonexistent/dir/x', script: START, args: ['--data', join(dir, 'nonexistent', 'dir', 'x')], says: /is not an existing directory/ },
  ...(existsSync('/proc/self')
    ? [{ what: 'npm start --data /proc/nope (used to hang)', script: START, args: ['--data', '/proc/oc-nope'], says: /--data \/proc\/oc-nope: cannot create it/ }]
    : []),
  { what: 'npm start --consumrs 3 (hint)', script: START, args: ['--consumrs', '3'], says: /did you mean --consumers\?/ },
  { what: 'npm start --hubs 2 --serve', script: START, args: ['--hubs', '2', '--serve'], says: /for one hub only/ },
  // npm run device
  { what: 'npm run device (no config)', script: 'devices/main.ts', args: [], says: /missing argument/ },
  { what: 'npm run device -- missing.json', script: 'devices/main.ts', args: [join(dir, 'missing.json')], says: /cannot read device config .*missing\.json: no such file/ },
  { what: 'npm run device -- not-json.json', script: 'devices/main.ts', args: [join(dir, 'not-json.json')], says: /is not valid JSON/ },
  { what: 'npm run device -- <config with link.privateKeyPath>', script: 'devices/main.ts', args: [join(dir, 'old-doc.json')], says: /link: Unrecognized key: "privateKeyPath"/ },
  { what: 'npm run device -- --frobnicate', script: 'devices/main.ts', args: ['--frobnicate'], says: /unknown option --frobnicate/ },
  // keygen, soak, bench, runs
  { what: 'npm run device:keygen (no dir)', script: 'devices/keygen.ts', args: [], says: /missing argument/ },
  { what: 'npm run device:keygen -- d --alg rsa', script: 'devices/keygen.ts', args: [join(dir, 'k'), '--alg', 'rsa'], says: /--alg must be one of ed25519, p256/ },
  { what: 'npm run soak -- --defaulters 5', script: 'soak/run.ts', args: ['--defaulters', '5'], says: /must be fewer than --consumers/ },
  { what: 'npm run soak -- --creditBase 1 (hint)', script: 'soak/run.ts', args: ['--creditBase', '1'], says: /did you mean --credit-base\?/ },
  { what: 'npm run soak -- --out in a missing directory (refused before the soak)', script: 'soak/run.ts', args: ['--out', '/nonexistent-oc-dir/x.json'], says: /--out \/nonexistent-oc-dir\/x.json: its directory/ },
  { what: 'npm run bench -- --frobnicate', script: 'bench/run.ts', args: ['--frobnicate'], says: /unknown option --frobnicate/ },
  { what: 'npm run runs -- --runs 0', script: 'scripts/runs.ts', args: ['--runs', '0'], says: /--runs must be an integer from 1/ },
  { what: 'npm run runs -- --seed 3 (where start options go)', script: 'scripts/runs.ts', args: ['--seed', '3'], says: /npm start options go after a second --/ },
  // admin
  { what: 'npm run admin -- frobnicate', script: 'cli/admin.ts', args: ['frobnicate'], says: /unknown command "frobnicate"; commands: register-domain, enrol/ },
  { what: 'npm run admin -- enrol c1 d1 (no --key)', script: 'cli/admin.ts', args: ['enrol', 'c1', 'd1', '--api', 'http://127.0.0.1:1'], says: /enrol needs --key FILE/ },
  { what: 'npm run admin -- register-domain (no domain)', script: 'cli/admin.ts', args: ['register-domain', '--role', 'consumer'], says: /missing argument/ },
  { what: 'npm run admin -- health --api ftp://x', script: 'cli/admin.ts', args: ['health', '--api', 'ftp://x'], says: /not an http\(s\) URL/ },
  { what: 'npm run admin -- enrol … --key <private key>', script: 'cli/admin.ts', args: ['enrol', 'c1', 'd1', '--key', join(dir, 'key.json'), '--api', 'http://127.0.0.1:1'], says: /is a private key/ },
  // I/O and network failures: one line naming the cause, exit 1
  { what: 'npm run admin -- health against a closed port', script: 'cli/admin.ts', args: ['health', '--api', `http://127.0.0.1:${closedPort}`], says: /failed: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/, code: 1 },
];

describe('user errors: exit 2, one line on stderr, no stack trace (issue 14)', () => {
  let results: { c: UserErrorCase; r: Ran }[] = [];
  before(async () => {
    const all = cases();
    // ~1 s of CPU each (tsx start): four at once
    const ran = await pool(4, all.map((c) => () => run(c.script, c.args, { timeoutMs: 60_000 })));
    results = all.map((c, i) => ({ c, r: ran[i]! }));
  });

  it('every case of the issue and more', () => {
    const bad = userErrorProblems(results.map((x) => x.c), results.map((x) => x.r));
    assert.deepEqual(bad, [], bad.join('\n'));
    assert.ok(results.length >= 25);
  });

  it('the line starts with the command as the user typed it', () => {
    const start = results.find((x) => x.c.what === 'npm start --frobnicate')!;
    assert.match(start.r.stderr, /^npm start: unknown option --frobnicate; see npm start -- --help\n$/);
    const device = results.find((x) => x.c.what === 'npm run device (no config)')!;
    assert.match(device.r.stderr, /^npm run device: /);
  });

  it('no directory is created for a refused --data', () => {
    assert.equal(existsSync(join(dir, 'nonexistent')), false);
    assert.equal(existsSync(join(dir, 'k')), false);
  });
});

describe('--help everywhere: exit 0, usage on stdout, nothing created', () => {
  const scripts = ['local/start.ts', 'devices/main.ts', 'devices/keygen.ts', 'soak/run.ts', 'bench/run.ts', 'scripts/runs.ts', 'cli/admin.ts'];
  it('each command prints its usage for --help', async () => {
    const ran = await pool(4, scripts.map((s) => () => run(s, ['--help'])));
    for (const [i, r] of ran.entries()) {
      assert.equal(r.code, 0, `${scripts[i]}: ${r.stderr}`);
      assert.equal(r.stderr, '', scripts[i]);
      assert.match(r.stdout, /usage: npm (start|run [\w:]+)/, scripts[i]);
    }
    // `npm run device:keygen -- --help` once made a directory named --help holding a key
    assert.equal(existsSync(join(ROOT, '--help')), false);
  });
});
