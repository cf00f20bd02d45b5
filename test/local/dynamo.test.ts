import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConditionalCheckFailedException, DescribeTableCommand, ResourceNotFoundException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { localDynamoClient, startDynamo, type LocalDynamo } from '../../local/dynamo.ts';
import { transactionContract } from './transact-contract.ts';

const servers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

/** Send `n` two-item transactions to `table` at once and let the loop turn once: what is under way when a store stops. */
async function transactionsUnderWay(doc: DynamoDBDocumentClient, table: string, n: number): Promise<{ underWay: Promise<unknown>[]; answeredBeforeStop: number }> {
  const underWay = Array.from({ length: n }, (_, i) =>
    doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: table, Item: { pk: `A#${i}`, sk: 'X', i } } },
          { Put: { TableName: table, Item: { pk: `B#${i}`, sk: 'X', i } } },
        ],
      }),
    ),
  );
  let answered = 0;
  for (const p of underWay) p.then(() => (answered += 1), () => undefined);
  await new Promise((r) => setImmediate(r));
  return { underWay, answeredBeforeStop: answered };
}

describe('dynalite with the state table', () => {
  let dynamo: LocalDynamo;
  let doc: DynamoDBDocumentClient;

  before(async () => {
    dynamo = await startDynamo();
    doc = DynamoDBDocumentClient.from(dynamo.client);
  });
  after(() => dynamo.stop());

  test('the table exists, ACTIVE, on demand, with pk/sk and gsi1..gsi3 projecting keys (and status on gsi1/gsi2)', async () => {
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: dynamo.tableName }));
    assert.equal(Table?.TableStatus, 'ACTIVE');
    assert.equal(Table?.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(Table?.KeySchema, [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    const gsis = (Table?.GlobalSecondaryIndexes ?? []).map((g) => [
      g.IndexName,
      g.KeySchema?.map((k) => k.AttributeName),
      g.Projection?.ProjectionType,
      g.Projection?.NonKeyAttributes ?? [],
    ]);
    assert.deepEqual(gsis.sort(), [
      ['gsi1', ['gsi1pk', 'gsi1sk'], 'INCLUDE', ['status']],
      ['gsi2', ['gsi2pk', 'gsi2sk'], 'INCLUDE', ['status']],
      ['gsi3', ['gsi3pk', 'gsi3sk'], 'KEYS_ONLY', []],
    ]);
  });

  test('a put conditional on attribute_not_exists succeeds once and is refused the second time', async () => {
    const put = () =>
      doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'OB#1', sk: 'OB', amount: 5 }, ConditionExpression: 'attribute_not_exists(pk)' }));
    await put();
    await assert.rejects(put(), ConditionalCheckFailedException);
  });

  test('a query on gsi1 returns the consumer domain items in sort key order', async () => {
    for (const [id, at] of [['a', '0002'], ['b', '0001'], ['c', '0003']] as const) {
      await doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: `OB#${id}`, sk: 'OB', gsi1pk: 'CONS#c1', gsi1sk: `${at}#${id}` } }));
    }
    await doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'OB#z', sk: 'OB', gsi1pk: 'CONS#c2', gsi1sk: '0001#z' } }));
    const { Items } = await doc.send(
      new QueryCommand({ TableName: dynamo.tableName, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': 'CONS#c1' } }),
    );
    assert.deepEqual(Items?.map((i) => i.pk), ['OB#b', 'OB#a', 'OB#c']);
  });
});

describe('transactions on the embedded front (dynalite behind local/transact.ts), through the in-process transport', () => {
  let dynamo: LocalDynamo;
  before(async () => {
    dynamo = await startDynamo();
  });
  after(() => dynamo.stop());
  test('the client the hub gets uses the in-process transport', () => {
    assert.ok(dynamo.requestHandler);
    assert.equal(dynamo.client.config.requestHandler, dynamo.requestHandler);
  });
  transactionContract(test, () => ({ client: dynamo.client, table: dynamo.tableName }));
});

describe('transactions on the embedded front, over its HTTP endpoint (other processes)', () => {
  let dynamo: LocalDynamo;
  let http: DynamoDBClient;
  before(async () => {
    dynamo = await startDynamo();
    http = localDynamoClient(dynamo.endpoint);
  });
  after(async () => {
    http.destroy();
    await dynamo.stop();
  });
  transactionContract(test, () => ({ client: http, table: dynamo.tableName }));
});

describe('the in-process transport', () => {
  let dynamo: LocalDynamo;
  let doc: DynamoDBDocumentClient;
  before(async () => {
    dynamo = await startDynamo();
    doc = DynamoDBDocumentClient.from(dynamo.client);
  });
  after(() => dynamo.stop());

  test('an item written over HTTP is read in-process and the other way round (one store behind both)', async () => {
    const http = DynamoDBDocumentClient.from(localDynamoClient(dynamo.endpoint));
    try {
      await http.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'X#1', sk: 'A', n: 1 } }));
      assert.equal((await doc.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: 'X#1', sk: 'A' } }))).Item?.n, 1);
      await doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'X#2', sk: 'A', n: 2 } }));
      assert.equal((await http.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: 'X#2', sk: 'A' } }))).Item?.n, 2);
    } finally {
      http.destroy();
    }
  });

  test('errors come back as the SDK typed exceptions: a failed condition, an unknown table, a malformed expression', async () => {
    const put = () =>
      doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'X#3', sk: 'A' }, ConditionExpression: 'attribute_not_exists(pk)' }));
    await put();
    await assert.rejects(put(), ConditionalCheckFailedException);
    await assert.rejects(doc.send(new GetCommand({ TableName: 'no-such-table', Key: { pk: 'a', sk: 'b' } })), ResourceNotFoundException);
    await assert.rejects(
      doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'X#4', sk: 'A' }, ConditionExpression: 'attribute_not_exists(' })),
      (e: Error) => e.name === 'ValidationException',
    );
  });

  test('an update returns the new image (ReturnValues ALL_NEW) as over HTTP', async () => {
    await doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'X#5', sk: 'A', n: 1 } }));
    const out = await doc.send(
      new UpdateCommand({ TableName: dynamo.tableName, Key: { pk: 'X#5', sk: 'A' }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': 2 }, ReturnValues: 'ALL_NEW' }),
    );
    assert.equal(out.Attributes?.n, 3);
  });

  test('a transaction asked for its consumed capacity is charged on the new image: 2 units per KB', async () => {
    const out = await doc.send(
      new TransactWriteCommand({
        TransactItems: [{ Put: { TableName: dynamo.tableName, Item: { pk: 'X#6', sk: 'A', blob: 'x'.repeat(3000) } } }],
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    assert.equal(out.ConsumedCapacity?.[0]?.CapacityUnits, 6, 'a new 3 KB item: 2 × 3 units');
  });

  test('after stop, a request through the transport fails instead of reaching a closed store', async () => {
    const own = await startDynamo();
    const client = DynamoDBDocumentClient.from(own.client);
    const again = DynamoDBDocumentClient.from(localDynamoClient(own.endpoint, undefined, own.requestHandler));
    await own.stop();
    await assert.rejects(again.send(new GetCommand({ TableName: own.tableName, Key: { pk: 'a', sk: 'b' } })), /ECONNREFUSED|stopped/);
    void client;
  });
});

describe('dynalite lifecycle', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-dynalite-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('stopped with requests under way: each is answered before its store closes, later ones are refused, nothing throws', async () => {
    const dynamo = await startDynamo({ tableName: 'oc-stop' });
    const doc = DynamoDBDocumentClient.from(dynamo.client);
    const N = 300;
    const { underWay, answeredBeforeStop } = await transactionsUnderWay(doc, 'oc-stop', N);
    // closed under them, dynalite's store made every one of them throw "Database is closed" from a
    // storage callback, out of any caller's reach: the process died
    await dynamo.stop();
    const outcomes = await Promise.allSettled(underWay);
    assert.ok(answeredBeforeStop < N, `they were under way when it stopped (${answeredBeforeStop} answered before)`);
    assert.deepEqual(outcomes.filter((o) => o.status !== 'fulfilled'), [], 'each under way was answered');
    await assert.rejects(doc.send(new GetCommand({ TableName: 'oc-stop', Key: { pk: 'A#0', sk: 'X' } })), 'refused once stopped');
  });

  test('on disk, data survives a restart, and stop leaves no server handle behind', async () => {
    const baseline = servers();
    const first = await startDynamo({ path: join(dir, 'ldb'), tableName: 'oc-test' });
    assert.equal(servers(), baseline + 2, 'the transaction front and dynalite behind it');
    await DynamoDBDocumentClient.from(first.client).send(new PutCommand({ TableName: 'oc-test', Item: { pk: 'REP#c1', sk: 'COUNTERS', n: 3 } }));
    await first.stop();
    assert.equal(servers(), baseline);
    await assert.rejects(fetch(`${first.endpoint}/`));

    const second = await startDynamo({ path: join(dir, 'ldb'), tableName: 'oc-test' });
    try {
      const { Item } = await DynamoDBDocumentClient.from(second.client).send(new GetCommand({ TableName: 'oc-test', Key: { pk: 'REP#c1', sk: 'COUNTERS' } }));
      assert.equal(Item?.n, 3);
    } finally {
      await second.stop();
    }
  });
});

describe('the embedded DynamoDB in a worker thread (startDynamo({ thread: true }), another core than the hub)', () => {
  let dir: string;
  let dynamo: LocalDynamo;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-dynalite-thread-'));
    dynamo = await startDynamo({ thread: true });
  });
  after(async () => {
    await dynamo.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('the hub reaches it through the in-process transport, and the table is the project table', async () => {
    assert.equal(dynamo.client.config.requestHandler, dynamo.requestHandler);
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: dynamo.tableName }));
    assert.deepEqual((Table?.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName).sort(), ['gsi1', 'gsi2', 'gsi3']);
  });
  transactionContract(test, () => ({ client: dynamo.client, table: dynamo.tableName }));

  test('one store behind the transport and the HTTP endpoint the thread serves', async () => {
    const doc = DynamoDBDocumentClient.from(dynamo.client);
    const http = DynamoDBDocumentClient.from(localDynamoClient(dynamo.endpoint));
    try {
      await http.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'T#1', sk: 'A', n: 1 } }));
      assert.equal((await doc.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: 'T#1', sk: 'A' } }))).Item?.n, 1);
      await assert.rejects(
        doc.send(new PutCommand({ TableName: dynamo.tableName, Item: { pk: 'T#1', sk: 'A' }, ConditionExpression: 'attribute_not_exists(pk)' })),
        ConditionalCheckFailedException,
      );
    } finally {
      http.destroy();
    }
  });

  test('stopped with requests under way: each is answered, later ones are refused, the thread ends', async () => {
    const own = await startDynamo({ thread: true, tableName: 'oc-stop' });
    const doc = DynamoDBDocumentClient.from(own.client);
    const N = 300;
    const { underWay, answeredBeforeStop } = await transactionsUnderWay(doc, 'oc-stop', N);
    const ports = (): number => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    const portsWhileRunning = ports();
    await own.stop();
    const outcomes = await Promise.allSettled(underWay);
    assert.ok(answeredBeforeStop < N, `they were under way when it stopped (${answeredBeforeStop} answered before)`);
    assert.deepEqual(outcomes.filter((o) => o.status !== 'fulfilled'), [], 'each under way was answered');
    await assert.rejects(doc.send(new GetCommand({ TableName: 'oc-stop', Key: { pk: 'A#0', sk: 'X' } })), /ECONNREFUSED|stopped/);
    await assert.rejects(fetch(`${own.endpoint}/`), 'its HTTP endpoint is closed');
    assert.equal(ports(), portsWhileRunning - 1, 'the thread ended: its message port is gone');
  });

  test('on disk, data survives a restart in a new thread', async () => {
    const first = await startDynamo({ thread: true, path: join(dir, 'ldb'), tableName: 'oc-test' });
    await DynamoDBDocumentClient.from(first.client).send(new PutCommand({ TableName: 'oc-test', Item: { pk: 'REP#c1', sk: 'COUNTERS', n: 7 } }));
    await first.stop();
    const second = await startDynamo({ thread: true, path: join(dir, 'ldb'), tableName: 'oc-test' });
    try {
      const { Item } = await DynamoDBDocumentClient.from(second.client).send(new GetCommand({ TableName: 'oc-test', Key: { pk: 'REP#c1', sk: 'COUNTERS' } }));
      assert.equal(Item?.n, 7);
    } finally {
      await second.stop();
    }
  });
});
