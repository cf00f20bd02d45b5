/**
 * The admin CLI (cli/admin.ts): SigV4 against AWS's published test-suite
 * vectors, a signed request as the server receives it, and the plain mode
 * against the embedded cloud (register, enrol → the broker knows the thing,
 * settle, reads, a 4xx as a user error, revoke, rotate-key).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, regionOfHost } from '../../cli/admin.ts';
import { signRequest } from '../../cli/sigv4.ts';
import { UsageError } from '../../cli/args.ts';
import { generateKeyPair } from '../../core/keys.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';

// AWS Signature Version 4 test suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
// credentials, date, region and service of every vector, and the published signatures
const SUITE = {
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  signingDate: new Date('2015-08-30T12:36:00Z'),
  region: 'us-east-1',
  service: 'service',
};
const SCOPE = 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=';

describe('SigV4 (cli/sigv4.ts) against AWS test-suite vectors', () => {
  it('get-vanilla: GET / with no body', async () => {
    const h = await signRequest({ ...SUITE, method: 'GET', url: new URL('https://example.amazonaws.com/') });
    assert.equal(h['x-amz-date'], '20150830T123600Z');
    assert.equal(h.authorization, `${SCOPE}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31`);
  });

  it('post-vanilla: POST / with no body', async () => {
    const h = await signRequest({ ...SUITE, method: 'POST', url: new URL('https://example.amazonaws.com/') });
    assert.equal(h.authorization, `${SCOPE}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b`);
  });

  it('a session token is sent and signed', async () => {
    const h = await signRequest({ ...SUITE, credentials: { ...SUITE.credentials, sessionToken: 'tok' }, method: 'GET', url: new URL('https://example.amazonaws.com/') });
    assert.equal(h['x-amz-security-token'], 'tok');
    assert.match(h.authorization!, /SignedHeaders=host;x-amz-date;x-amz-security-token,/);
  });

  it('reads the region from an API Gateway host', () => {
    assert.equal(regionOfHost('abc123.execute-api.eu-west-1.amazonaws.com'), 'eu-west-1');
    assert.equal(regionOfHost('127.0.0.1'), undefined);
  });
});

describe('npm run admin -- … with --aws: the request the API receives is the one signed', () => {
  let server: Server;
  let seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string } | undefined;
  const saved = { ...process.env };
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        seen = { method: req.method!, url: req.url!, headers: req.headers, body };
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // the default credential chain starts with the environment
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
  });
  after(async () => {
    process.env = saved;
    await new Promise((r) => server.close(r));
  });

  it('settle: POST with a JSON body, SigV4 for execute-api in the given region', async () => {
    const api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const out: string[] = [];
    assert.equal(await admin(['settle', 'c1', '--max-outputs', '5', '--api', api, '--aws', '--region', 'eu-west-1'], (t) => out.push(t)), 0);
    assert.ok(seen);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/domains/c1/settlements');
    assert.equal(seen.body, '{"maxOutputs":5}');
    const auth = String(seen.headers.authorization);
    assert.match(auth, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$/);
    // recompute from what arrived: same method, host, path, body and date → the same signature
    const amz = String(seen.headers['x-amz-date']);
    const date = new Date(`${amz.slice(0, 4)}-${amz.slice(4, 6)}-${amz.slice(6, 8)}T${amz.slice(9, 11)}:${amz.slice(11, 13)}:${amz.slice(13, 15)}Z`);
    const again = await signRequest({
      method: seen.method,
      url: new URL(seen.url, `http://${seen.headers.host}`),
      headers: { 'content-type': String(seen.headers['content-type']) },
      body: seen.body,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      signingDate: date,
    });
    assert.equal(auth, again.authorization);
    assert.deepEqual(JSON.parse(out.join('')), { ok: true });
  });

  it('a plain request (no --aws, not an AWS host) carries no signature', async () => {
    const api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    await admin(['health', '--api', api], () => undefined);
    assert.equal(seen?.headers.authorization, undefined);
  });
});

describe('npm run admin -- … plain, against the embedded cloud', () => {
  let cloud: LocalCloud;
  let dir: string;
  const run = async (...argv: string[]): Promise<unknown> => {
    let text = '';
    const code = await admin([...argv, '--api', cloud.api], (t) => (text += t));
    assert.equal(code, 0);
    return JSON.parse(text) as unknown;
  };
  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    dir = await mkdtemp(join(tmpdir(), 'oc-admin-'));
  });
  after(async () => {
    await cloud.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('register-domain hosts a consumer and a provider with prices', async () => {
    assert.deepEqual(((await run('register-domain', 'home', '--role', 'consumer', '--no-auto-settle')) as { domain: string }).domain, 'home');
    await run('register-domain', 'shop', '--role', 'provider', '--threshold', '0.4', '--price', 'wifi-access=1500');
    const shop = (await run('domain', 'shop')) as { record: { body: { domain: string } } };
    assert.equal(shop.record.body.domain, 'shop');
  });

  it('enrol signs a credential for the public key, writes it, and the embedded broker then knows the thing', async () => {
    const keys = generateKeyPair();
    await writeFile(join(dir, 'device.pub.json'), JSON.stringify({ deviceKey: keys.publicKey }));
    assert.equal(cloud.things.get('home-scd-1'), undefined);
    const out = join(dir, 'credential.json');
    const r = (await run('enrol', 'home', 'home-scd-1', '--key', join(dir, 'device.pub.json'), '--credit-limit', '5000', '--out', out)) as {
      credential: { body: { deviceId: string; creditLimit: number } };
    };
    assert.equal(r.credential.body.deviceId, 'home-scd-1');
    assert.equal(r.credential.body.creditLimit, 5000);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), r.credential);
    assert.deepEqual(cloud.things.get('home-scd-1'), { domain: 'home', key: keys.publicKey });
  });

  it('a refused enrolment registers no thing, and a 4xx is a user error naming the status and code', async () => {
    await writeFile(join(dir, 'other.pub.json'), JSON.stringify({ deviceKey: generateKeyPair().publicKey }));
    await assert.rejects(
      admin(['enrol', 'nowhere', 'ghost-1', '--key', join(dir, 'other.pub.json'), '--api', cloud.api], () => undefined),
      (e: unknown) => e instanceof UsageError && /POST \/domains\/nowhere\/devices → 404: F09_NOT_FOUND/.test(e.message),
    );
    assert.equal(cloud.things.get('ghost-1'), undefined);
  });

  it('settle, reputation and obligations answer', async () => {
    await run('settle', 'home');
    const rep = (await run('reputation', 'home')) as { reputation: number };
    assert.equal(rep.reputation, 0.5);
    assert.deepEqual(((await run('obligations', 'home')) as { obligations: unknown[] }).obligations, []);
  });

  it('revoke publishes a signed revocation of the enrolled key, with its reason', async () => {
    const r = (await run('revoke', 'home', 'home-scd-1', '--reason', 'lost')) as { revocation: { body: { deviceId: string; reason: string }; by: string } };
    assert.equal(r.revocation.body.deviceId, 'home-scd-1');
    assert.equal(r.revocation.body.reason, 'lost');
    assert.equal(r.revocation.by, 'home');
  });

  it('rotate-key replaces the domain key: the domain then shows the rotation and its new key', async () => {
    const before = (await run('domain', 'shop')) as { key: unknown; record: { body: { key: unknown } } };
    assert.deepEqual(before.key, before.record.body.key);
    const r = (await run('rotate-key', 'shop')) as { rotation: { body: { seq: number; key: unknown }; by: string } };
    assert.equal(r.rotation.body.seq, 1);
    const after = (await run('domain', 'shop')) as { key: unknown; record: { body: { key: unknown } }; rotations: unknown[] };
    assert.deepEqual(after.key, r.rotation.body.key);
    assert.notDeepEqual(after.key, after.record.body.key);
    assert.equal(after.rotations.length, 1);
  });
});
