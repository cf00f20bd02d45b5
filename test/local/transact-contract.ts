/**
 * What the store relies on from DynamoDB transactions, as one contract run on
 * both stand-ins: the embedded front over dynalite (test/local/dynamo.test.ts)
 * and Amazon's DynamoDB Local (test/dynamodb-local/transactions.test.ts), so the
 * embedded one is held to the shape of the faithful one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactGetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

type It = (name: string, fn: () => Promise<void>) => void;

const uid = () => randomBytes(6).toString('hex');

/** The error's name and its per-action reason codes (undefined when it is not a cancelled transaction). */
async function cancelled(p: Promise<unknown>): Promise<{ name: string; message: string; reasons: { Code?: string; Message?: string; Item?: unknown }[] }> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; CancellationReasons?: { Code?: string; Message?: string; Item?: unknown }[] };
    return { name: err.name, message: err.message, reasons: err.CancellationReasons ?? [] };
  }
  assert.fail('the transaction was not cancelled');
}

export function transactionContract(it: It, ctx: () => { client: DynamoDBClient; table: string }): void {
  const doc = () => DynamoDBDocumentClient.from(ctx().client);
  const get = async (pk: string) => (await doc().send(new GetCommand({ TableName: ctx().table, Key: { pk, sk: 'T' }, ConsistentRead: true }))).Item;

  it('TransactWriteItems applies a Put, an Update and a ConditionCheck together', async () => {
    const [a, b, c] = [uid(), uid(), uid()];
    const T = ctx().table;
    await doc().send(new PutCommand({ TableName: T, Item: { pk: c, sk: 'T', open: true } }));
    await doc().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: T, Item: { pk: a, sk: 'T', n: 1 }, ConditionExpression: 'attribute_not_exists(pk)' } },
          { Update: { TableName: T, Key: { pk: b, sk: 'T' }, UpdateExpression: 'ADD #n :d', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':d': 5 } } },
          { ConditionCheck: { TableName: T, Key: { pk: c, sk: 'T' }, ConditionExpression: '#o = :t', ExpressionAttributeNames: { '#o': 'open' }, ExpressionAttributeValues: { ':t': true } } },
        ],
      }),
    );
    assert.deepEqual(await get(a), { pk: a, sk: 'T', n: 1 });
    assert.deepEqual(await get(b), { pk: b, sk: 'T', n: 5 });
  });

  it('one failed condition cancels every action, with one reason per action in request order', async () => {
    const [a, b] = [uid(), uid()];
    const T = ctx().table;
    await doc().send(new PutCommand({ TableName: T, Item: { pk: a, sk: 'T', n: 1 } }));
    const out = await cancelled(
      doc().send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: { TableName: T, Key: { pk: b, sk: 'T' }, UpdateExpression: 'ADD #n :d', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':d': 1 } } },
            { Put: { TableName: T, Item: { pk: a, sk: 'T', n: 2 }, ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      ),
    );
    assert.equal(out.name, 'TransactionCanceledException');
    assert.deepEqual(
      out.reasons.map((r) => r.Code),
      ['None', 'ConditionalCheckFailed'],
    );
    assert.equal(out.reasons[1]?.Message, 'The conditional request failed');
    assert.match(out.message, /Transaction cancelled, please refer cancellation reasons for specific reasons \[None, ConditionalCheckFailed\]/);
    assert.equal(await get(b), undefined, 'the update before the failed condition was not applied');
    assert.deepEqual(await get(a), { pk: a, sk: 'T', n: 1 });
  });

  it('ReturnValuesOnConditionCheckFailure ALL_OLD puts the current item in its reason', async () => {
    const a = uid();
    const T = ctx().table;
    await doc().send(new PutCommand({ TableName: T, Item: { pk: a, sk: 'T', n: 7 } }));
    const out = await cancelled(
      doc().send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: T,
                Key: { pk: a, sk: 'T' },
                UpdateExpression: 'ADD #n :d',
                ConditionExpression: '#n >= :d',
                ExpressionAttributeNames: { '#n': 'n' },
                ExpressionAttributeValues: { ':d': 10 },
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              },
            },
          ],
        }),
      ),
    );
    assert.deepEqual(out.reasons, [{ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', Item: { pk: { S: a }, sk: { S: 'T' }, n: { N: '7' } } }]);
  });

  it('two actions on one item are refused with a ValidationException', async () => {
    const a = uid();
    const T = ctx().table;
    await assert.rejects(
      doc().send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: T, Item: { pk: a, sk: 'T', n: 1 } } },
            { Update: { TableName: T, Key: { pk: a, sk: 'T' }, UpdateExpression: 'SET #n = :d', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':d': 1 } } },
          ],
        }),
      ),
      (e: unknown) => (e as { name?: string }).name === 'ValidationException',
    );
    assert.equal(await get(a), undefined);
  });

  it('concurrent conditional draws never overdraw: exactly as many succeed as the balance allows', async () => {
    const a = uid();
    const T = ctx().table;
    await doc().send(new PutCommand({ TableName: T, Item: { pk: a, sk: 'T', free: 10 } }));
    const draw = async (i: number): Promise<boolean> => {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await doc().send(
            new TransactWriteCommand({
              TransactItems: [
                { Put: { TableName: T, Item: { pk: `${a}-${i}`, sk: 'T' } } },
                {
                  Update: {
                    TableName: T,
                    Key: { pk: a, sk: 'T' },
                    UpdateExpression: 'ADD #f :m',
                    ConditionExpression: '#f >= :one',
                    ExpressionAttributeNames: { '#f': 'free' },
                    ExpressionAttributeValues: { ':m': -1, ':one': 1 },
                  },
                },
              ],
            }),
          );
          return true;
        } catch (e) {
          const codes = ((e as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map((r) => r.Code);
          if (codes.includes('ConditionalCheckFailed')) return false;
          if (!codes.includes('TransactionConflict')) throw e;
          await new Promise((r) => setTimeout(r, Math.random() * 20));
        }
      }
      throw new Error('kept conflicting');
    };
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => draw(i)));
    assert.equal(results.filter(Boolean).length, 10);
    assert.equal((await get(a))?.free, 0);
    const written = await Promise.all(Array.from({ length: 16 }, (_, i) => get(`${a}-${i}`)));
    assert.equal(written.filter(Boolean).length, 10, 'a refused draw wrote nothing else either');
  });

  it('TransactGetItems reads several items at once, an absent one as an empty response', async () => {
    const a = uid();
    const T = ctx().table;
    await doc().send(new UpdateCommand({ TableName: T, Key: { pk: a, sk: 'T' }, UpdateExpression: 'SET #n = :one', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':one': 1 } }));
    const out = await doc().send(
      new TransactGetCommand({ TransactItems: [{ Get: { TableName: T, Key: { pk: a, sk: 'T' } } }, { Get: { TableName: T, Key: { pk: uid(), sk: 'T' } } }] }),
    );
    assert.deepEqual(out.Responses?.[0]?.Item, { pk: a, sk: 'T', n: 1 });
    assert.equal(out.Responses?.[1]?.Item, undefined);
  });

  it('a ClientRequestToken sent again with the same request is answered again, applied once; with another request it is refused', async () => {
    const a = uid();
    const T = ctx().table;
    const token = `t-${uid()}`;
    const add = (d: number) =>
      new TransactWriteCommand({
        ClientRequestToken: token,
        TransactItems: [{ Update: { TableName: T, Key: { pk: a, sk: 'T' }, UpdateExpression: 'ADD #n :d', ExpressionAttributeNames: { '#n': 'n' }, ExpressionAttributeValues: { ':d': d } } }],
      });
    await doc().send(add(5));
    await doc().send(add(5)); // a retry of the same request: answered, not applied again
    assert.equal((await get(a))?.n, 5);
    await assert.rejects(doc().send(add(6)), (e: Error) => e.name === 'IdempotentParameterMismatchException');
    assert.equal((await get(a))?.n, 5);
  });
}
