/**
 * The embedded stand-in for DynamoDB: dynalite (in memory, or LevelDB on disk)
 * behind a front that adds TransactWriteItems and TransactGetItems
 * (local/transact.ts), with the project's one table (adapters/table.ts)
 * created. The front is served on 127.0.0.1 (for other processes and clients
 * given the endpoint) and, to the hub in this process, through an in-process
 * transport: the SDK client builds, signs and parses every request exactly as
 * over HTTP, only the socket, the HTTP parser and the loopback round trip are
 * skipped (the SDK's `requestHandler` is its documented transport plug-in). dynalite still lacks TTL, PartiQL and Streams
 * (feasibility 3a); the store uses none of them (TTL only deletes expired items).
 */
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
import type { DynamoFront, DynamoReply } from './transact.ts';
import { serveFront, type FrontCall, type ServedFront } from './dynamo-front.ts';
import { startThread } from './threads.ts';

export interface LocalDynamo {
  /** `http://127.0.0.1:{port}` */
  readonly endpoint: string;
  readonly region: string;
  readonly tableName: string;
  /** A client with dummy credentials on the in-process transport; destroyed by stop(). */
  readonly client: DynamoDBClient;
  /** The SDK transport that hands requests to the embedded front in-process (absent for an external endpoint). */
  readonly requestHandler?: InProcessHandler;
  stop(): Promise<void>;
}

export interface DynamoOptions {
  /** Persist to this LevelDB directory; in memory when absent. */
  path?: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** Default `oc-state`. */
  tableName?: string;
  /** Run dynalite and its front in a worker thread (another core) instead of this one. */
  thread?: boolean;
  /** With `thread`: told once if that thread ends unasked (local/threads.ts). */
  lost?: (e: Error) => void;
}

export const DEFAULT_TABLE_NAME = 'oc-state';

/**
 * A DynamoDB client for a local endpoint (dummy credentials: dynalite and DynamoDB Local do not check them);
 * with `requestHandler`, its requests go in-process to the front instead of over HTTP.
 */
export function localDynamoClient(endpoint: string, region: string = LOCAL_REGION, requestHandler?: InProcessHandler): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, ...(requestHandler ? { requestHandler } : {}) });
}

const viewOf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** The parts of the SDK's HttpRequest the transport reads. */
interface SdkRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * An SDK transport (the `requestHandler` of a client: `handle(request)` resolving
 * to `{ response: { statusCode, headers, body } }`, as @smithy/node-http-handler
 * does) that answers from the front in this process. Everything above the
 * transport — serialisation, SigV4 signing, retries, error parsing — is the
 * SDK's own and unchanged. After close(), requests fail as on a closed endpoint.
 */
export class InProcessHandler {
  readonly metadata = { handlerProtocol: 'in-process' };
  private closed = false;

  constructor(private readonly front: DynamoFront) {}

  async handle(request: SdkRequest, options?: { abortSignal?: { aborted?: boolean } }): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: Uint8Array } }> {
    if (this.closed) throw Object.assign(new Error('connect ECONNREFUSED (the embedded DynamoDB is stopped)'), { code: 'ECONNREFUSED' });
    if (options?.abortSignal?.aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
    const body = request.body;
    // the SDK's JSON body is a Uint8Array (a view is taken: no copy, and none of its string methods is called)
    const raw = body === undefined || body === null ? '' : typeof body === 'string' ? body : viewOf(body as Uint8Array);
    const r = await this.front(headers, raw, request.method, request.path);
    return { response: { statusCode: r.status, headers: r.headers, body: Buffer.from(r.body) } };
  }

  /** Part of the SDK's handler interface; nothing to configure. */
  updateHttpClientConfig(): void {}
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  close(): void {
    this.closed = true;
  }

  destroy(): void {}
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

/**
 * The same front in a worker thread of its own (local/dynamo-thread.ts, through
 * local/threads.ts), so that dynalite's work runs on another core than the
 * hub's: requests and replies cross as messages (a JSON body is text both ways).
 * A request in flight when the thread ends fails as on a closed endpoint.
 */
export async function serveFrontInThread(opts: { path?: string; port?: number } = {}, lost?: (e: Error) => void): Promise<ServedFront> {
  const thread = await startThread<string>(
    new URL('./dynamo-thread.ts', import.meta.url),
    opts,
    (why) => Object.assign(new Error(`connect ECONNREFUSED (the embedded DynamoDB thread ${why})`), { code: 'ECONNREFUSED' }),
    lost,
  );
  const front: DynamoFront = async (headers, raw, method, url) =>
    (await thread.call({ headers, raw: typeof raw === 'string' ? raw : raw.toString('utf8'), method, url } satisfies FrontCall)) as DynamoReply;
  return { endpoint: thread.ready, front, stop: () => thread.stop() };
}

/**
 * Start dynalite on 127.0.0.1 and create the state table in it. With `thread`,
 * dynalite and its front run in a worker thread (serveFrontInThread); the hub's
 * client reaches them the same way, through the in-process transport.
 */
export async function startDynamo(opts: DynamoOptions = {}): Promise<LocalDynamo> {
  const where = { ...(opts.path !== undefined ? { path: opts.path } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) };
  const served = opts.thread ? await serveFrontInThread(where, opts.lost) : await serveFront(where);
  const { endpoint } = served;
  const tableName = opts.tableName ?? DEFAULT_TABLE_NAME;
  const requestHandler = new InProcessHandler(served.front);
  const client = localDynamoClient(endpoint, LOCAL_REGION, requestHandler);
  const stop = async (): Promise<void> => {
    client.destroy();
    requestHandler.close();
    await served.stop();
  };
  try {
    await createStateTable(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, region: LOCAL_REGION, tableName, client, requestHandler, stop };
}
