/**
 * The device walkthrough (docs/devices.md), as a user does it from a second
 * terminal: `npm start -- --serve` runs; from outside, `npm run admin`
 * registers domains and enrols devices through the HTTP API (so the embedded
 * broker learns the things), `npm run device:keygen` makes the key, and two
 * hand-started `npm run device` processes, built from the example configs,
 * complete a purchase: the SCD's obligation is accepted and the SPD is granted.
 * Ctrl-C then stops the served system with exit 130 and no failure line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin } from '../../cli/admin.ts';
import { generateKeyPair, verifySigned } from '../../core/keys.ts';
import type { DeviceCredential, PublicKeyRef, Signed } from '../../core/types.ts';
import { interrupt, ROOT, run, start, waitForLine } from '../cli/support.ts';

describe('a hand-started device against npm start -- --serve', () => {
  let served: ChildProcess;
  let servedOut = '';
  let spd: ChildProcess | undefined;
  let spdOut = '';
  let dir: string;
  let api: string;
  let mqttPort: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-hand-device-'));
    // ports left to the system (free ones, bound at once), read back from its serving line
    served = start('local/start.ts', ['--serve', '--consumers', '1', '--devices', '1', '--providers', '1', '--rounds', '1', '--round-ms', '0']);
    served.stdout!.on('data', (b: Buffer) => (servedOut += b.toString()));
    served.stderr!.on('data', (b: Buffer) => (servedOut += b.toString()));
    const line = await waitForLine(served, /^serving /, 240_000);
    const ports = /API (http:\/\/127\.0\.0\.1:\d+), MQTT mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(line);
    assert.ok(ports, line);
    api = ports[1] as string;
    mqttPort = Number(ports[2]);
  });

  after(async () => {
    if (spd) await interrupt(spd);
    if (served) await interrupt(served);
    await rm(dir, { recursive: true, force: true });
  });

  it('register, enrol through the API, and a purchase between two device processes', async () => {
    const quiet = () => undefined;
    assert.equal(await admin(['register-domain', 'home', '--role', 'consumer', '--api', api], quiet), 0);
    assert.equal(await admin(['register-domain', 'shop', '--role', 'provider', '--threshold', '0.4', '--api', api], quiet), 0);

    // the SCD: key by device:keygen, enrolled by the admin CLI (a process of its own, as from a terminal)
    const scdDir = join(dir, 'home-scd-1');
    const keygen = await run('devices/keygen.ts', [scdDir]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const enrol = await run('cli/admin.ts', ['enrol', 'home', 'home-scd-1', '--key', join(scdDir, 'device.pub.json'), '--out', join(scdDir, 'credential.json'), '--api', api]);
    assert.equal(enrol.code, 0, enrol.stderr);

    // the SPD: enrolled too (so the broker accepts it), key made here
    const spdKeys = generateKeyPair();
    await writeFile(join(dir, 'spd.key.json'), JSON.stringify(spdKeys.privateKey));
    await writeFile(join(dir, 'spd.pub.json'), JSON.stringify({ deviceKey: spdKeys.publicKey }));
    assert.equal(await admin(['enrol', 'shop', 'shop-spd-1', '--key', join(dir, 'spd.pub.json'), '--credit-limit', '0', '--api', api], quiet), 0);

    // device configs from the examples: only the address, ports and file paths change
    const example = async (name: string) => JSON.parse(await readFile(join(ROOT, 'devices', name), 'utf8')) as Record<string, unknown>;
    const spdCfg = { ...(await example('example.spd.device.json')), api, link: { kind: 'local', host: '127.0.0.1', port: mqttPort }, devicePrivateKeyPath: join(dir, 'spd.key.json') };
    const scdExample = await example('example.device.json');
    const scdCfg = {
      ...scdExample,
      api,
      link: { kind: 'local', host: '127.0.0.1', port: mqttPort },
      devicePrivateKeyPath: join(scdDir, 'device.key.json'),
      credentialPath: join(scdDir, 'credential.json'),
      chainPath: join(scdDir, 'chain.json'),
      buy: { ...(scdExample.buy as object), providerDomain: 'shop', providerDevice: 'shop-spd-1', count: 1, every: 0 },
    };
    await writeFile(join(dir, 'spd.json'), JSON.stringify(spdCfg));
    await writeFile(join(dir, 'scd.json'), JSON.stringify(scdCfg));

    spd = start('devices/main.ts', [join(dir, 'spd.json')]);
    spd.stdout!.on('data', (b: Buffer) => (spdOut += b.toString()));
    spd.stderr!.on('data', (b: Buffer) => (spdOut += b.toString()));
    await waitForLine(spd, /shop-spd-1: waiting for grants/, 120_000);

    const granted = waitForLine(spd, /^granted wifi-access to home\/home-scd-1 for \d+ sats/, 120_000);
    const scd = await run('devices/main.ts', [join(dir, 'scd.json')], { timeoutMs: 120_000 });
    assert.equal(scd.code, 0, `${scd.stdout}\n${scd.stderr}`);
    assert.match(scd.stdout, /^#1 accepted: \d+ sats, obligation [0-9a-f]{12}… \(seq 1, \d+ ms\)$/m);
    await granted;

    // its domain rotates its key: the next run's purchase is refused F02 with the old credential, the
    // device renews it through its hub's API, buys again, and saves the renewed credential
    const before = await readFile(join(scdDir, 'credential.json'), 'utf8');
    assert.equal(await admin(['rotate-key', 'home', '--api', api], quiet), 0);
    const again = await run('devices/main.ts', [join(dir, 'scd.json')], { timeoutMs: 120_000 });
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /^credential renewed, valid until \d{4}-\d\d-\d\dT.+ \(saved to .+credential\.json\)$/m);
    assert.match(again.stdout, /^#1 accepted: \d+ sats, obligation [0-9a-f]{12}… \(seq 2, \d+ ms\)$/m);
    const renewed = JSON.parse(await readFile(join(scdDir, 'credential.json'), 'utf8')) as Signed<DeviceCredential>;
    assert.notEqual(JSON.stringify(renewed), before.trim());
    let home = '';
    await admin(['domain', 'home', '--api', api], (t) => (home += t));
    assert.ok(verifySigned(renewed, (JSON.parse(home) as { key: PublicKeyRef }).key), 'signed by the domain key in force now');

    // the served hub stored both for the hand-enrolled domain
    let text = '';
    await admin(['obligations', 'home', '--api', api], (t) => (text += t));
    assert.equal((JSON.parse(text) as { obligations: unknown[] }).obligations.length, 2);
  });

  it('Ctrl-C: the device and the served system stop (exit 130) without a failure line', async () => {
    assert.ok(spd);
    const s = await interrupt(spd);
    spd = undefined;
    assert.equal(s.code, 130, spdOut);
    const r = await interrupt(served);
    assert.equal(r.code, 130, servedOut);
    assert.match(servedOut, /stopping…/);
    assert.doesNotMatch(servedOut, /^\s*failed:|npm start failed|Connection has been closed|^\s+at /m);
  });
});

describe('Ctrl-C in the middle of npm start', () => {
  it('stops what runs and exits 130, with no failure line from the work it cut short', async () => {
    const child = start('local/start.ts', ['--consumers', '2', '--devices', '2', '--providers', '1', '--rounds', '20']);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    // mid-run: devices buying, jobs settling and publishing, HTTP calls and MQTT messages in flight
    await waitForLine(child, /round +1\/20/, 240_000);
    const r = await interrupt(child, 60_000);
    assert.equal(r.code, 130, out);
    assert.match(out, /stopping…/);
    assert.doesNotMatch(out, /failed|Connection has been closed|^\s+at /m, out);
  });
});
