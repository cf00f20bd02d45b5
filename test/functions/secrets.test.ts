/**
 * RPC secrets through Powertools Parameters (functions/shared/secrets.ts):
 * cached for the max age, read again after it, and a client built from them
 * rebuilt when the re-read value differs (rotation). The real
 * @aws-sdk/client-secrets-manager talks to a small GetSecretValue endpoint
 * (AWS JSON 1.1); time moves by node:test's mock timers (Date), not by waiting.
 */
import { after, before, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { listenLoopback } from '../../local/net.ts';
import { rebuiltOnRotation, RpcCredentials, type RpcAuth } from '../../functions/shared/secrets.ts';

const ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:oc-bitcoind-rpc';

describe('RPC credentials with a max age', () => {
  let server: Server;
  let client: SecretsManagerClient;
  let reads = 0;
  let value = { user: 'oc', password: 'first' };

  before(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        assert.equal(req.headers['x-amz-target'], 'secretsmanager.GetSecretValue');
        assert.equal((JSON.parse(text) as { SecretId: string }).SecretId, ARN);
        reads += 1;
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ ARN, Name: 'oc-bitcoind-rpc', SecretString: JSON.stringify(value), VersionId: `v${reads}` }));
      });
    });
    const port = await listenLoopback(server, 0, 'fake Secrets Manager');
    client = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });
  after(async () => {
    mock.timers.reset();
    client?.destroy();
    await new Promise((r) => server?.close(r));
  });
  beforeEach(() => {
    mock.timers.reset();
    mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-12-01T00:00:00Z') });
    reads = 0;
    value = { user: 'oc', password: 'first' };
  });

  const target = { url: 'http://bitcoind:18443', secretArn: ARN };

  it('reads the secret once within the max age, and again after it', async () => {
    const creds = new RpcCredentials(() => client, 300);
    assert.deepEqual(await creds.get(target), { user: 'oc', password: 'first' });
    mock.timers.tick(299_000);
    await creds.get(target);
    assert.equal(reads, 1, 'a cache hit inside the max age');
    value = { user: 'oc', password: 'rotated' };
    mock.timers.tick(2_000);
    assert.deepEqual(await creds.get(target), { user: 'oc', password: 'rotated' });
    assert.equal(reads, 2, 'read again after the max age');
  });

  it('takes plain credentials without reading any secret (embedded cloud)', async () => {
    const creds = new RpcCredentials(() => client, 300);
    assert.deepEqual(await creds.get({ url: 'http://x:1', user: 'u', password: 'p' }), { user: 'u', password: 'p' });
    assert.equal(reads, 0);
  });

  it('refuses a secret without user and password', async () => {
    value = { user: '', password: 'x' };
    await assert.rejects(new RpcCredentials(() => client, 300).get(target), /lacks user\/password/);
  });

  it('rebuilds a client after a rotation, closing the old one; keeps it while the secret is unchanged', async () => {
    const creds = new RpcCredentials(() => client, 60);
    const built: RpcAuth[] = [];
    const closed: RpcAuth[] = [];
    const node = rebuiltOnRotation(
      () => creds.get(target),
      async (auth) => {
        built.push(auth);
        return auth;
      },
      async (c) => {
        closed.push(c);
      },
    );
    const first = await node.get();
    mock.timers.tick(61_000);
    assert.equal(await node.get(), first, 'same secret after a re-read: same client');
    assert.equal(reads, 2);
    value = { user: 'oc', password: 'rotated' };
    assert.equal(await node.get(), first, 'within the max age the rotation is not seen yet');
    mock.timers.tick(61_000);
    const second = await node.get();
    assert.equal(second.password, 'rotated');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(closed, [first]);
    assert.deepEqual(built.map((a) => a.password), ['first', 'rotated']);
    await node.close();
    assert.deepEqual(closed, [first, second]);
  });
});
