/** Starting and stopping DynamoDB Local (local/dynamodb-local.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { UnavailableError } from '../../core/errors.ts';
import { localDynamoClient } from '../../local/dynamo.ts';
import { findDynamoDbLocalJar, findJava, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { listenLoopback } from '../../local/net.ts';
import { skippable } from '../skippable.ts';

const java = await findJava();
const jar = await findDynamoDbLocalJar();
const skip = !java ? 'java is not on PATH' : !jar ? 'DynamoDBLocal.jar is not installed' : false;
/** Tests that run DynamoDB Local: each skips with the reason (and is counted as skipped) without java or the jar. */
const withJar = skippable(skip);

describe('finding DynamoDB Local', () => {
  it('gives undefined (callers skip) when java is not on the search path', async () => {
    assert.equal(await findJava('/nonexistent-dir'), undefined);
    assert.equal(await startDynamoDbLocal({ searchPath: '/nonexistent-dir' }), undefined);
  });
});

describe('running DynamoDB Local', () => {
  withJar.it('answers on a loopback endpoint, and after stop() nothing listens there any more', async () => {
    const ddb = await startDynamoDbLocal();
    assert.ok(ddb);
    try {
      assert.match(ddb.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      const client = localDynamoClient(ddb.endpoint);
      try {
        const out = await client.send(new ListTablesCommand({}));
        assert.deepEqual(out.TableNames, []);
      } finally {
        client.destroy();
      }
    } finally {
      await ddb.stop();
    }
    await assert.rejects(fetch(ddb.endpoint), 'the java process has exited');
    await ddb.stop(); // a second stop is harmless
  });

  withJar.it('fails with its output, and leaves nothing running, when the port is taken', async (t) => {
    // a squatter that accepts and drops connections, so the port never answers ListTables
    const squatter = createServer((socket) => socket.destroy());
    const port = await listenLoopback(squatter, 0, 'squatter');
    t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    await assert.rejects(startDynamoDbLocal({ port, readyTimeoutMs: 20_000 }), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.match(e.message, /java exited/);
      assert.equal(typeof e.details?.output, 'string');
      assert.match(String(e.details?.output), /address already in use|BindException/i);
      return true;
    });
  });
});
