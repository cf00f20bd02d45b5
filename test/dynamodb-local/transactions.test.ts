/** The transaction contract (test/local/transact-contract.ts) on DynamoDB Local, the reference for the embedded front. */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createStateTable, localDynamoClient } from '../../local/dynamo.ts';
import { findDynamoDbLocalJar, findJava, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { transactionContract } from '../local/transact-contract.ts';
import { skippable } from '../skippable.ts';

const java = await findJava();
const jar = await findDynamoDbLocalJar();
const skip = !java ? 'java is not on PATH' : !jar ? 'DynamoDBLocal.jar is not installed' : false;
const { it, before, after } = skippable(skip);

describe('transactions on DynamoDB Local', () => {
  let ddb: DynamoDbLocal;
  let client: DynamoDBClient;
  const table = `oc-tx-${randomBytes(4).toString('hex')}`;
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
  transactionContract(it, () => ({ client, table }));
});
