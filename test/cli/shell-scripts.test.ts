/**
 * The operator scripts in scripts/ (provision-fleet.sh, redrive-rule-failures.sh,
 * localstack/deploy.sh) hold to the commands' rule: a user error is one line on
 * stderr and exit code 2, said before any AWS or cdklocal call; --help exits 0.
 * `aws` and `npx` are stand-ins on PATH here that fail loudly (exit 99): no test
 * reaches AWS, and a check that comes too late shows as exit 99.
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pool, ROOT, userErrorProblems, type Ran, type UserErrorCase } from './support.ts';
import { skippable } from '../skippable.ts';

const noBash = spawnSync('bash', ['-c', 'true']).status === 0 ? false : 'no bash: nothing to check';
const { it, before, after } = skippable(noBash);

let bin: string;
let plain: string;
before(async () => {
  bin = await mkdtemp(join(tmpdir(), 'oc-shell-scripts-'));
  for (const tool of ['aws', 'npx', 'cdklocal']) {
    await writeFile(join(bin, tool), `#!/bin/sh\necho "${tool} called: the check came too late" >&2\nexit 99\n`);
    await chmod(join(bin, tool), 0o755);
  }
  plain = join(bin, 'plain-file');
  await writeFile(plain, 'a file\n');
});
after(async () => {
  await rm(bin, { recursive: true, force: true });
});

/** Run a script with bash, the stand-ins first on PATH and none of the variables the scripts read. */
function sh(script: string, args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (/^(OC_|LOCALSTACK_|MULTICHAIN_|BITCOIN_)/.test(k)) delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], {
      cwd: ROOT,
      env: { ...base, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const FLEET = 'scripts/provision-fleet.sh';
const REDRIVE = 'scripts/redrive-rule-failures.sh';
const DEPLOY = 'scripts/localstack/deploy.sh';
const FREE_PLAN_ENV = {
  MULTICHAIN_RPC_URL: 'http://multichain:8570',
  MULTICHAIN_RPC_USER: 'u',
  MULTICHAIN_RPC_PASSWORD: 'p',
  BITCOIN_RPC_URL: 'http://bitcoind:18443',
  BITCOIN_RPC_USER: 'u',
  BITCOIN_RPC_PASSWORD: 'p',
  BITCOIN_READER_USER: 'r',
};
const cases = (): UserErrorCase[] => [
  { what: 'provision-fleet.sh --domain (no value)', script: FLEET, args: ['--domain'], says: /^--domain needs a value; see .* --help$/ },
  { what: 'provision-fleet.sh --domain a --count (no value)', script: FLEET, args: ['--domain', 'a', '--count'], says: /^--count needs a value/ },
  { what: 'provision-fleet.sh --domain a --count 0', script: FLEET, args: ['--domain', 'a', '--count', '0', '--policy', 'p'], says: /^--count must be a whole number from 1 \(got 0\)$/ },
  { what: 'provision-fleet.sh --domain a --out <a file>', script: FLEET, args: ['--domain', 'a', '--policy', 'p', '--out', '<plain>'], says: /^--out .*plain-file: exists and is not a directory$/ },
  { what: 'OC_AWS_ENDPOINT=localhost:4566 provision-fleet.sh', script: FLEET, args: ['--domain', 'a', '--policy', 'p'], env: { OC_AWS_ENDPOINT: 'localhost:4566' }, says: /^OC_AWS_ENDPOINT must be an http\(s\) URL/ },
  { what: 'redrive-rule-failures.sh (no handler)', script: REDRIVE, args: [], says: /^usage: .*redrive-rule-failures\.sh <offer\|accept> \[max-messages\]$/ },
  { what: 'redrive-rule-failures.sh offer 5 extra', script: REDRIVE, args: ['offer', '5', 'extra'], says: /^usage: / },
  { what: 'redrive-rule-failures.sh offer abc', script: REDRIVE, args: ['offer', 'abc'], says: /^max-messages must be a whole number from 1 \(got abc\)/ },
  { what: 'redrive-rule-failures.sh accept 0', script: REDRIVE, args: ['accept', '0'], says: /^max-messages must be a whole number from 1/ },
  { what: 'OC_STAGE=Prod redrive-rule-failures.sh offer', script: REDRIVE, args: ['offer'], env: { OC_STAGE: 'Prod' }, says: /^OC_STAGE: lower-case letters/ },
  // valid calls get through the checks to aws (the stand-in on PATH: exit 99)
  { what: 'OC_STAGE=Prod OC_BACKEND_STACK=my-backend redrive-rule-failures.sh offer (the stack named outright)', script: REDRIVE, args: ['offer'], env: { OC_STAGE: 'Prod', OC_BACKEND_STACK: 'my-backend' }, says: /^aws called/, code: 99 },
  { what: 'provision-fleet.sh --out <an existing directory>', script: FLEET, args: ['--domain', 'a', '--policy', 'p', '--out', '<dir>'], says: /^aws called/, code: 99 },
  { what: 'LOCALSTACK_PLAN=gold deploy.sh', script: DEPLOY, args: [], env: { LOCALSTACK_PLAN: 'gold' }, says: /^LOCALSTACK_PLAN is free or paid \(got gold\)$/ },
  { what: 'deploy.sh (free plan, a variable unset)', script: DEPLOY, args: [], env: FREE_PLAN_ENV, says: /^set BITCOIN_READER_PASSWORD \(see the header of / },
];

describe('scripts/*.sh: user errors are one line and exit 2, before any AWS call', () => {
  it('every case', async () => {
    const all = cases().map((c) => ({ ...c, args: c.args.map((a) => (a === '<plain>' ? plain : a === '<dir>' ? bin : a)) }));
    const ran = await pool(4, all.map((c) => () => sh(c.script, c.args, c.env)));
    const bad = userErrorProblems(all, ran);
    assert.deepEqual(bad, [], bad.join('\n'));
  });

  it('--help prints the header and exits 0, calling nothing', async () => {
    for (const script of [FLEET, REDRIVE, DEPLOY]) {
      for (const flag of ['--help', '-h']) {
        const r = await sh(script, [flag]);
        assert.equal(r.code, 0, `${script} ${flag}: ${r.stderr}`);
        assert.equal(r.stderr, '', `${script} ${flag}`);
        assert.match(r.stdout, /^# /, `${script} ${flag}`);
        assert.doesNotMatch(r.stdout, /^(set |domain=)/m, `${script} ${flag}: only the header`);
      }
    }
  });
});
