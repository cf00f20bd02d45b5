/**
 * The front's direct path (local/transact.ts: item and query operations run on
 * dynalite's validators and actions, given its store) answers exactly as
 * dynalite's own request handler does: the same requests, sent to two fresh
 * dynalite servers — one behind a front that knows its store, one behind a
 * front that hands every request to dynalite's handler — get the same status
 * and body, successes and errors alike, and leave the same items behind.
 */
import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { transactHandler, withStore, type DynamoFront } from '../../local/transact.ts';
import { listenLoopback } from '../../local/net.ts';

const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (o: object) => Server;

const T = 'direct';
const signed = (op: string) => ({
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': `DynamoDB_20120810.${op}`,
  authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
  'x-amz-date': '20260101T000000Z',
});

const S = (s: string) => ({ S: s });
const N = (n: number) => ({ N: String(n) });

/** Requests in order, each answered by both fronts; most touch what the earlier ones wrote. */
const REQUESTS: [string, object][] = [
  ['PutItem', { TableName: T, Item: { pk: S('a'), sk: S('1'), n: N(1), g: S('x'), gs: S('1') } }],
  ['PutItem', { TableName: T, Item: { pk: S('a'), sk: S('2'), n: N(2), g: S('x'), gs: S('2') }, ReturnValues: 'ALL_OLD' }],
  ['PutItem', { TableName: T, Item: { pk: S('a'), sk: S('1'), n: N(9) }, ConditionExpression: 'attribute_not_exists(pk)' }],
  ['PutItem', { TableName: T, Item: { pk: S('a') } }],
  ['PutItem', { TableName: 'missing', Item: { pk: S('a'), sk: S('1') } }],
  ['PutItem', { TableName: T, Item: { pk: S('b'), sk: S('1') }, ConditionExpression: 'n = :v', ExpressionAttributeValues: { ':v': N(1), ':unused': N(2) } }],
  ['UpdateItem', { TableName: T, Key: { pk: S('a'), sk: S('1') }, UpdateExpression: 'SET n = n + :d, #t = :t', ExpressionAttributeNames: { '#t': 'tag' }, ExpressionAttributeValues: { ':d': N(5), ':t': S('up') }, ReturnValues: 'ALL_NEW' }],
  ['UpdateItem', { TableName: T, Key: { pk: S('a'), sk: S('1') }, UpdateExpression: 'SET n = n +', ExpressionAttributeValues: { ':d': N(5) } }],
  ['UpdateItem', { TableName: T, Key: { pk: S('a'), sk: S('1') }, UpdateExpression: 'SET n = :d', ConditionExpression: 'n < :d', ExpressionAttributeValues: { ':d': N(1) }, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }],
  ['UpdateItem', { TableName: T, Key: { pk: S('a'), sk: S('3') }, UpdateExpression: 'ADD c :one', ExpressionAttributeValues: { ':one': N(1) }, ReturnValues: 'UPDATED_NEW', ReturnConsumedCapacity: 'INDEXES' }],
  ['GetItem', { TableName: T, Key: { pk: S('a'), sk: S('1') }, ProjectionExpression: 'n, #t', ExpressionAttributeNames: { '#t': 'tag' }, ConsistentRead: true }],
  ['GetItem', { TableName: T, Key: { pk: S('a') } }],
  ['GetItem', { TableName: T, Key: { pk: S('zz'), sk: S('1') }, ReturnConsumedCapacity: 'TOTAL' }],
  ['BatchWriteItem', { RequestItems: { [T]: [{ PutRequest: { Item: { pk: S('c'), sk: S('1'), g: S('x'), gs: S('3') } } }, { DeleteRequest: { Key: { pk: S('a'), sk: S('2') } } }] } }],
  ['BatchWriteItem', { RequestItems: { [T]: [] } }],
  ['BatchGetItem', { RequestItems: { [T]: { Keys: [{ pk: S('a'), sk: S('1') }, { pk: S('c'), sk: S('1') }, { pk: S('q'), sk: S('9') }], ConsistentRead: true } } }],
  ['Query', { TableName: T, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': S('a') }, ScanIndexForward: false }],
  ['Query', { TableName: T, IndexName: 'gix', KeyConditionExpression: 'g = :g AND gs > :s', ExpressionAttributeValues: { ':g': S('x'), ':s': S('0') }, Limit: 1 }],
  ['Query', { TableName: T, KeyConditionExpression: 'n = :p', ExpressionAttributeValues: { ':p': N(1) } }],
  ['Scan', { TableName: T, FilterExpression: 'attribute_exists(n)', Select: 'COUNT' }],
  ['Scan', { TableName: T, Limit: 2 }],
  ['DeleteItem', { TableName: T, Key: { pk: S('c'), sk: S('1') }, ConditionExpression: 'attribute_exists(nope)' }],
  ['DeleteItem', { TableName: T, Key: { pk: S('c'), sk: S('1') }, ReturnValues: 'ALL_OLD' }],
  ['Scan', { TableName: T }],
];

/** A reply's body; BatchGetItem's items sorted (DynamoDB returns them in no particular order, nor does dynalite). */
function unordered(op: string, body: string): unknown {
  const out = JSON.parse(body) as { Responses?: Record<string, unknown[]> };
  if (op === 'BatchGetItem' && out.Responses) {
    for (const t of Object.keys(out.Responses)) out.Responses[t] = (out.Responses[t] ?? []).map((i) => JSON.stringify(i)).sort();
  }
  return out;
}

describe('the front on dynalite\'s actions answers as dynalite\'s own handler', () => {
  const servers: Server[] = [];
  let direct: DynamoFront;
  let handler: DynamoFront;

  before(async () => {
    const a = withStore(() => dynalite({ createTableMs: 0 }));
    const b = dynalite({ createTableMs: 0 });
    servers.push(a.inner, b);
    for (const s of servers) await listenLoopback(s, 0, 'dynalite');
    direct = transactHandler(a.inner, { store: a.store });
    handler = transactHandler(b);
    const table = {
      TableName: T,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'g', AttributeType: 'S' },
        { AttributeName: 'gs', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gix',
          KeySchema: [
            { AttributeName: 'g', KeyType: 'HASH' },
            { AttributeName: 'gs', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    };
    for (const front of [direct, handler]) {
      const r = await front(signed('CreateTable'), JSON.stringify(table));
      assert.equal(r.status, 200, r.body);
    }
    await new Promise((r) => setTimeout(r, 50)); // createTableMs 0: ACTIVE on the next turn
  });
  after(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  it('every request gets the same status and body, and the tables end equal', async () => {
    let errors = 0;
    for (const [op, body] of REQUESTS) {
      const [x, y] = [await direct(signed(op), JSON.stringify(body)), await handler(signed(op), JSON.stringify(body))];
      assert.equal(x.status, y.status, `${op} ${JSON.stringify(body)}: ${x.body} vs ${y.body}`);
      assert.deepEqual(unordered(op, x.body), unordered(op, y.body), `${op} ${JSON.stringify(body)}`);
      assert.equal(x.headers['content-type'], y.headers['content-type'], op);
      if (x.status !== 200) errors += 1;
    }
    // an SDK that sends application/json gets application/json back
    const plain = { ...signed('GetItem'), 'content-type': 'application/json' };
    const get = JSON.stringify({ TableName: T, Key: { pk: S('a'), sk: S('1') } });
    const [x, y] = [await direct(plain, get), await handler(plain, get)];
    assert.equal(x.headers['content-type'], 'application/json');
    assert.equal(x.headers['content-type'], y.headers['content-type']);
    assert.equal(x.body, y.body);
    assert.ok(errors >= 8, `the list exercises errors too (${errors})`);
  });

  it('a request not in signed form or not JSON is left to dynalite\'s handler: the same error either way', async () => {
    const unsigned = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem' };
    const cases: [Record<string, string>, string][] = [
      [unsigned, JSON.stringify({ TableName: T, Key: { pk: S('a'), sk: S('1') } })],
      [signed('GetItem'), '{not json'],
      [{ ...signed('GetItem'), 'content-type': 'text/plain' }, '{}'],
      [signed('Frobnicate'), '{}'],
    ];
    for (const [headers, raw] of cases) {
      const [x, y] = [await direct(headers, raw), await handler(headers, raw)];
      assert.equal(x.status, y.status, raw);
      assert.notEqual(x.status, 200);
      assert.equal(x.body, y.body);
    }
  });
});

describe('the front remembers a ClientRequestToken for 10 minutes', () => {
  let inner: Server;
  let front: DynamoFront;
  before(async () => {
    const a = withStore(() => dynalite({ createTableMs: 0 }));
    inner = a.inner;
    await listenLoopback(inner, 0, 'dynalite');
    front = transactHandler(inner, { store: a.store });
    const table = {
      TableName: T,
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    };
    assert.equal((await front(signed('CreateTable'), JSON.stringify(table))).status, 200);
    await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    mock.timers.reset();
    await new Promise((r) => inner.close(r));
  });

  it('then forgets it, and only the tokens that old', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const add = (token: string, d: number) =>
      front(
        signed('TransactWriteItems'),
        JSON.stringify({ ClientRequestToken: token, TransactItems: [{ Update: { TableName: T, Key: { pk: S(token), sk: S('T') }, UpdateExpression: 'ADD n :d', ExpressionAttributeValues: { ':d': N(d) } } }] }),
      );
    const mismatch = async (token: string) => {
      const r = await add(token, 99);
      return r.status === 400 && /IdempotentParameterMismatch/.test(r.body);
    };
    assert.equal((await add('old', 1)).status, 200);
    mock.timers.tick(5 * 60_000);
    assert.equal((await add('young', 1)).status, 200);
    assert.equal(await mismatch('old'), true);
    mock.timers.tick(5 * 60_000 + 1); // 'old' is 10 min + 1 ms old, 'young' 5 min + 1 ms
    assert.equal(await mismatch('young'), true, 'a younger token is still remembered');
    assert.equal((await add('old', 2)).status, 200, 'the old token is forgotten: a new request under it is applied');
  });
});
