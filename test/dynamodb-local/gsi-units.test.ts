/**
 * The store bench computes a transaction's index write units from its items' images
 * (bench/store.ts gsiWriteUnits), because DynamoDB Local reports a transaction's index
 * units as if it wrote one item. The rule is checked here against what DynamoDB Local
 * reports for single-item writes, which it bills as DynamoDB does: an item entering an
 * index, leaving it, moving in it, a projected attribute changing, and nothing indexed
 * changing, on the project's table (gsi1/gsi2 INCLUDE status, gsi3 KEYS_ONLY).
 */
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { TABLE_INDEXES } from '../../adapters/table.ts';
import { gsiWriteUnits } from '../../bench/store.ts';
import { onDynamoDbLocal } from './support.ts';

describe('index write units computed from images = DynamoDB Local on single writes', () => {
  const { it, ctx } = onDynamoDbLocal('oc-gsi');
  const doc = () => DynamoDBDocumentClient.from(ctx().client);

  const key = { pk: 'OB#x', sk: 'OB' };
  const image = async () => (await doc().send(new GetCommand({ TableName: ctx().table, Key: key, ConsistentRead: true }))).Item;
  /** Units DynamoDB Local reports per index for one write, and the same computed from the images around it. */
  async function both(write: () => Promise<{ ConsumedCapacity?: { GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }> } }>) {
    const before = await image();
    const out = await write();
    const after = await image();
    const reported = Object.fromEntries(TABLE_INDEXES.map((i) => [i.indexName, out.ConsumedCapacity?.GlobalSecondaryIndexes?.[i.indexName]?.CapacityUnits ?? 0]));
    const computed = Object.fromEntries(TABLE_INDEXES.map((i) => [i.indexName, gsiWriteUnits(before, after, i)]));
    return { reported, computed };
  }
  const update = (expr: string, values?: Record<string, unknown>, names?: Record<string, string>) => () =>
    doc().send(
      new UpdateCommand({
        TableName: ctx().table,
        Key: key,
        UpdateExpression: expr,
        ...(values ? { ExpressionAttributeValues: values } : {}),
        ...(names ? { ExpressionAttributeNames: names } : {}),
        ReturnConsumedCapacity: 'INDEXES',
      }),
    );

  it('entering every index, moving in two, a projected attribute, an unprojected one, leaving one', async () => {
    const steps: [string, () => Promise<never>, Record<string, number>][] = [
      [
        'put: enters gsi1, gsi2, gsi3',
        () =>
          doc().send(
            new PutCommand({
              TableName: ctx().table,
              Item: { ...key, gsi1pk: 'CONS#c#0#o', gsi1sk: 'a', gsi2pk: 'PROV#p#0#o', gsi2sk: 'a', gsi3pk: 'PEND#0', gsi3sk: 'a', status: 'accepted', a: 'x'.repeat(600) },
              ReturnConsumedCapacity: 'INDEXES',
            }),
          ) as never,
        { gsi1: 1, gsi2: 1, gsi3: 1 },
      ],
      ['an unprojected attribute changes', update('SET a = :a', { ':a': 'y'.repeat(600) }) as never, { gsi1: 0, gsi2: 0, gsi3: 0 }],
      ['status (projected on gsi1/gsi2) changes', update('SET #s = :s', { ':s': 'settling' }, { '#s': 'status' }) as never, { gsi1: 1, gsi2: 1, gsi3: 0 }],
      ['leaves gsi3', update('REMOVE gsi3pk, gsi3sk') as never, { gsi1: 0, gsi2: 0, gsi3: 1 }],
      ['gsi1 and gsi2 keys change (closed partitions), re-enters gsi3', update('SET gsi1pk = :c, gsi2pk = :p, gsi3pk = :q, gsi3sk = :k', { ':c': 'CONS#c#0#c', ':p': 'PROV#p#0#c', ':q': 'PEND#1', ':k': 'b' }) as never, { gsi1: 2, gsi2: 2, gsi3: 1 }],
    ];
    for (const [what, write, expected] of steps) {
      const { reported, computed } = await both(write);
      assert.deepEqual(computed, reported, what);
      assert.deepEqual(reported, expected, what);
    }
  });
});
