/**
 * The embedded stand-in for DynamoDB: dynalite (in memory, or LevelDB on disk)
 * behind a front that adds TransactWriteItems and TransactGetItems
 * (local/transact.ts), on 127.0.0.1, with the project's one table
 * (adapters/table.ts) created. dynalite still lacks TTL, PartiQL and Streams
 * (feasibility 3a); the store uses none of them (TTL only deletes expired items).
 */
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  type AttributeDefinition,
} from '@aws-sdk/client-dynamodb';
import { UnavailableError } from '../core/errors.ts';
import { TABLE_INDEXES, TABLE_KEYS } from '../adapters/table.ts';
import { LOCAL_REGION } from './lambda.ts';
import { transactFront } from './transact.ts';
import { listenLoopback } from './net.ts';

/** dynalite 4 options we use (it ships no types). */
interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}
type Dynalite = (opts: DynaliteOptions) => Server;

const require = createRequire(import.meta.url);

export interface LocalDynamo {
  /** `http://127.0.0.1:{port}` */
  readonly endpoint: string;
  readonly region: string;
  readonly tableName: string;
  /** A client for the endpoint with dummy credentials; destroyed by stop(). */
  readonly client: DynamoDBClient;
  stop(): Promise<void>;
}

export interface DynamoOptions {
  /** Persist to this LevelDB directory; in memory when absent. */
  path?: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** Default `oc-state`. */
  tableName?: string;
}

export const DEFAULT_TABLE_NAME = 'oc-state';

/** A DynamoDB client for a local endpoint (dummy credentials: dynalite and DynamoDB Local do not check them). */
export function localDynamoClient(endpoint: string, region: string = LOCAL_REGION): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

/**
 * Create the project's table (string keys pk/sk, gsi1..gsi3 with the projections of adapters/table.ts,
 * on-demand billing) and wait until it and its indexes are ACTIVE.
 * Idempotent: an existing table is only waited for.
 */
export async function createStateTable(client: DynamoDBClient, tableName: string, timeoutMs = 30_000): Promise<void> {
  const keyNames = [TABLE_KEYS.partitionKey, TABLE_KEYS.sortKey, ...TABLE_INDEXES.flatMap((i) => [i.partitionKey, i.sortKey])];
  const AttributeDefinitions: AttributeDefinition[] = keyNames.map((AttributeName) => ({ AttributeName, AttributeType: 'S' }));
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions,
        KeySchema: [
          { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: TABLE_INDEXES.map((i) => ({
          IndexName: i.indexName,
          KeySchema: [
            { AttributeName: i.partitionKey, KeyType: 'HASH' },
            { AttributeName: i.sortKey, KeyType: 'RANGE' },
          ],
          Projection:
            i.projection === 'INCLUDE' ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...i.include] } : { ProjectionType: i.projection },
        })),
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    if (Date.now() > deadline) throw new UnavailableError(`table ${tableName} not ACTIVE after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Start dynalite on 127.0.0.1 and create the state table in it. */
export async function startDynamo(opts: DynamoOptions = {}): Promise<LocalDynamo> {
  const dynalite = require('dynalite') as Dynalite;
  const dynaliteOptions: DynaliteOptions = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 };
  if (opts.path !== undefined) dynaliteOptions.path = opts.path;
  const inner = dynalite(dynaliteOptions);
  // dynalite is invoked in-process by the front; it listens only so that its close() (which closes LevelDB) works
  await listenLoopback(inner, 0, 'dynalite');
  const server = transactFront(inner);
  const endpoint = `http://127.0.0.1:${await listenLoopback(server, opts.port, 'dynamo front')}`;
  const tableName = opts.tableName ?? DEFAULT_TABLE_NAME;
  const client = localDynamoClient(endpoint);
  const stop = async (): Promise<void> => {
    client.destroy();
    await new Promise<void>((resolve, reject) => {
      server.close((err?: Error) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
    await new Promise<void>((resolve, reject) => {
      // dynalite's close() also closes its LevelDB store once the HTTP server is closed.
      inner.close((err?: Error) => (err ? reject(err) : resolve()));
      inner.closeAllConnections();
    });
  };
  try {
    await createStateTable(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, region: LOCAL_REGION, tableName, client, stop };
}
