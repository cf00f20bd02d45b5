/** `npm run device:keygen -- <dir>` as the user runs it: the folder and its missing parents made, the two files, never an overwrite. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, run } from './support.ts';

describe('npm run device:keygen', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-keygen-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('makes <dir> and its missing parents (.fleet/<thing> in a fresh checkout), the private key mode 600, and prints the public one', async () => {
    const target = join(dir, '.fleet', 'home-scd-1');
    const r = await run('devices/keygen.ts', [target]);
    assert.equal(r.code, 0, r.stderr);
    const pub = JSON.parse(await readFile(join(target, 'device.pub.json'), 'utf8')) as { deviceKey: { alg: string } };
    assert.deepEqual(JSON.parse(r.stdout), pub);
    assert.equal(pub.deviceKey.alg, 'ed25519');
    assert.equal((await stat(join(target, 'device.key.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(target)).mode & 0o777, 0o700);
  });

  it('refuses to overwrite a key, and a path under a file, in one line with exit 2', async () => {
    const again = await run('devices/keygen.ts', [join(dir, '.fleet', 'home-scd-1')]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists: refusing to overwrite a device key\n$/);
    await writeFile(join(dir, 'plain'), 'a file\n');
    const under = await run('devices/keygen.ts', [join(dir, 'plain', 'thing')]);
    assert.equal(under.code, 2);
    assert.match(under.stderr, /cannot create it \(ENOTDIR\)\n$/);
    assert.equal(under.stderr.trim().split('\n').length, 1);
  });

  it('refuses a folder it cannot make, under /proc too, at once (node\'s recursive mkdir never returns there)', { skip: process.platform !== 'linux' && 'needs /proc (Linux)' }, async () => {
    const proc = await run('devices/keygen.ts', ['/proc/oc-nope/thing'], { timeoutMs: 15_000 });
    assert.equal(proc.signal, null, 'ended by itself, not killed');
    assert.equal(proc.code, 2);
    assert.match(proc.stderr, /\/proc\/oc-nope\/thing: cannot create it \(ENOENT\)\n$/);
  });

  it("refuses an empty folder argument (an unset shell variable), writing nothing where it runs", async () => {
    const empty = await run('devices/keygen.ts', ['']);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /^npm run device:keygen: an argument is empty: usage: npm run device:keygen -- <dir>/);
    assert.equal(empty.stderr.trim().split('\n').length, 1);
    await assert.rejects(access(join(ROOT, 'device.key.json')), 'no key in the working directory');
  });
});
