/** The credit bound under concurrent acceptances, releases, defaults and rebalances, on the embedded stand-in. */
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoStore } from '../../adapters/store/dynamo.ts';
import { startDynamo, type LocalDynamo } from '../../local/dynamo.ts';
import { escrowRunArb, runEscrow } from './escrow-property.ts';

describe('credit escrow shards (embedded stand-in)', () => {
  let dynamo: LocalDynamo;
  let store: DynamoStore;
  before(async () => {
    dynamo = await startDynamo();
    store = new DynamoStore(DynamoDBDocumentClient.from(dynamo.client, { marshallOptions: { removeUndefinedValues: true } }), dynamo.tableName, 5_000, { shards: 4 });
  });
  after(() => dynamo.stop());

  test('never more outstanding than the limit, and outstanding = accepted − released, under concurrency', async () => {
    await fc.assert(fc.asyncProperty(escrowRunArb, (run) => runEscrow(store, run)), { numRuns: 8, endOnFailure: true });
  });

  test('the same with the scheduled rebalancer topping the shards up throughout', async () => {
    const withJob = escrowRunArb.map((run) => ({ ...run, topUps: 2 }));
    await fc.assert(fc.asyncProperty(withJob, (run) => runEscrow(store, run)), { numRuns: 4, endOnFailure: true });
  });
});
