/**
 * Transactions for the embedded DynamoDB stand-in. dynalite 4 has no
 * TransactWriteItems / TransactGetItems (feasibility 3a); the store uses both
 * (adapters/store/dynamo.ts), so this front adds them — the same store code then
 * runs on dynalite, DynamoDB Local and DynamoDB (DESIGN.md: extend the stand-in,
 * never weaken the design).
 *
 * The front is the HTTP server the SDK talks to; dynalite runs behind it and is
 * invoked in-process. Given dynalite's store (withStore), the front runs the item
 * and query operations through dynalite's own validators and actions directly —
 * what dynalite's request handler does after its HTTP and signature-form checks —
 * and applies a transaction's writes with the requests it has already validated
 * (each condition and update expression parsed once, not twice); anything else
 * goes to dynalite's request handler with an in-memory request/response.
 * Every single-item request (GetItem, PutItem, UpdateItem, DeleteItem) and
 * BatchWriteItem takes a lock on its item keys, so a transaction holding the
 * locks of all its items is serialised against every other write and every
 * GetItem of those items. A TransactWriteItems then:
 *   1. validates the request as DynamoDB does (at most 100 actions, no two on one item);
 *   2. takes the locks of all its items (sorted: no deadlock) and reads their current images;
 *   3. evaluates every condition on those images with dynalite's own expression
 *      evaluator; if any fails, it writes nothing and answers
 *      TransactionCanceledException with one CancellationReason per action, in
 *      request order ({Code:'ConditionalCheckFailed', Message:'The conditional
 *      request failed'} or {Code:'None'}; the old item when
 *      ReturnValuesOnConditionCheckFailure is ALL_OLD) — the shape of the
 *      DynamoDB API reference "CancellationReason", checked against DynamoDB
 *      Local in test/dynamodb-local/transactions.test.ts;
 *   4. otherwise applies the writes one by one (still holding the locks); if one
 *      is refused for another reason (e.g. a type error), the ones already
 *      applied are restored from the images of step 2 and the whole request fails.
 * A ClientRequestToken seen in the last 10 minutes with the same request is
 * answered again without re-applying it (API reference, TransactWriteItems:
 * "idempotent for 10 minutes").
 *
 * What differs from DynamoDB, and why it is acceptable here: conflicting
 * transactions wait for the locks instead of being cancelled with
 * TransactionConflict (the store retries both); Query/Scan/BatchGetItem take no
 * locks, which matches DynamoDB's read-committed isolation for them (they may see
 * part of a transaction); consumed capacity of a transaction is reported as
 * 2 units per KB per item, as DynamoDB charges transactional requests.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Attr = Record<string, unknown>;
type Item = Record<string, Attr>;
type Json = Record<string, unknown>;

interface DynaliteValidation {
  types: Json;
  custom?: (data: Json, store: unknown) => string | undefined;
}
interface DynaliteValidations {
  checkTypes(data: Json, types: Json): Json;
  checkValidations(data: Json, types: Json, custom: DynaliteValidation['custom'], store: unknown): void;
}
interface DynaliteDb {
  checkConditional(data: Json, existing: Item | undefined): { body?: Json } | null | undefined;
  itemSize(item: Item): number;
}

/** dynalite's own validators and condition evaluator (pinned dynalite 4.0.0). */
const dyn = {
  validations: require('dynalite/validations') as DynaliteValidations,
  db: require('dynalite/db') as DynaliteDb,
  put: require('dynalite/validations/putItem') as DynaliteValidation,
  update: require('dynalite/validations/updateItem') as DynaliteValidation,
  delete: require('dynalite/validations/deleteItem') as DynaliteValidation,
};

/** dynalite's store behind one server (db.create's result): what its actions read and write. */
export type DynaliteStore = { readonly options: Json };

/**
 * Make a dynalite server with `make` and keep the store it creates (dynalite
 * builds it with db.create inside its factory and does not expose it).
 */
export function withStore(make: () => Server): { inner: Server; store: DynaliteStore } {
  const db = require('dynalite/db') as { create: (options: Json) => DynaliteStore };
  const create = db.create;
  let store: DynaliteStore | undefined;
  db.create = (options) => (store = create(options));
  try {
    const inner = make();
    if (!store) throw new Error('dynalite created no store');
    return { inner, store };
  } finally {
    db.create = create;
  }
}

type ActionFn = (store: DynaliteStore, data: Json, cb: (err: { statusCode?: number; body?: Json } | null, out?: Json) => void) => void;

/** The operations the front runs on dynalite's actions directly (given its store). */
const DIRECT = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchGetItem', 'BatchWriteItem', 'Query', 'Scan'] as const;
type DirectOp = (typeof DIRECT)[number];
const isDirect = (op: string): op is DirectOp => (DIRECT as readonly string[]).includes(op);
const lowerFirst = (op: string) => op.charAt(0).toLowerCase() + op.slice(1);
const engine = Object.fromEntries(
  DIRECT.map((op) => [
    op,
    { run: require(`dynalite/actions/${lowerFirst(op)}`) as ActionFn, validation: require(`dynalite/validations/${lowerFirst(op)}`) as DynaliteValidation },
  ]),
) as Record<DirectOp, { run: ActionFn; validation: DynaliteValidation }>;

/** dynalite's validation of `data` for `op`, as its request handler runs it: the typed request, or the error to answer. */
function validated(op: DirectOp, data: Json, store: unknown): { typed: Json } | { error: Reply } {
  const v = engine[op].validation;
  try {
    const typed = dyn.validations.checkTypes(data, v.types);
    dyn.validations.checkValidations(typed, v.types, v.custom, store);
    return { typed };
  } catch (e) {
    const err = e as { statusCode?: number; body?: Json };
    if (err.body) return { error: { status: err.statusCode ?? 400, body: err.body } };
    throw e;
  }
}

/** Run a validated request on dynalite's action: its answer, or its API error as a reply (any other error rejects). */
function runTyped(store: DynaliteStore, op: DirectOp, typed: Json): Promise<Reply> {
  return new Promise((resolve, reject) => {
    engine[op].run(store, typed, (err, out) => {
      if (err && err.statusCode) resolve({ status: err.statusCode, body: err.body ?? {} });
      else if (err) reject(err as unknown as Error);
      else resolve({ status: 200, body: out ?? {} });
    });
  });
}

/** Validate and run `data` as dynalite's request handler would, minus HTTP. */
async function runDirect(store: DynaliteStore, op: DirectOp, data: Json): Promise<Reply> {
  const v = validated(op, data, store);
  return 'error' in v ? v.error : runTyped(store, op, v.typed);
}

const MAX_ACTIONS = 100;
const TOKEN_TTL_MS = 10 * 60_000;
const SERVICE = 'com.amazonaws.dynamodb.v20120810';
/** A synthetic signature for in-process calls: dynalite checks only the header's form. */
const AUTH = 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0';

interface Reply {
  status: number;
  body: Json;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
  ) {
    super(String(body.message ?? body.Message ?? body.__type));
  }
}

const validation = (message: string) => new ApiError(400, { __type: `${SERVICE}#ValidationException`, message });

/** One FIFO lock per item key. */
class KeyLocks {
  private readonly held = new Map<string, (() => void)[]>();

  /** Take every key's lock (in sorted order, so two callers never deadlock); returns the release. */
  async lock(keys: readonly string[]): Promise<() => void> {
    const sorted = [...new Set(keys)].sort();
    for (const k of sorted) await this.one(k);
    return () => {
      for (const k of sorted) this.unlock(k);
    };
  }

  private one(key: string): Promise<void> {
    const queue = this.held.get(key);
    if (!queue) {
      this.held.set(key, []);
      return Promise.resolve();
    }
    return new Promise((resolve) => queue.push(resolve));
  }

  private unlock(key: string): void {
    const queue = this.held.get(key);
    const next = queue?.shift();
    if (next) next();
    else this.held.delete(key);
  }
}

/** What dynalite (or the front) answers to one request: status, headers (lower-case names) and body text. */
export interface DynamoReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Invoke dynalite's request handler in-process: a request object that emits
 * its body at once (dynalite attaches its `data`/`end` listeners synchronously
 * when the request is emitted) and a response that records what dynalite sets
 * (status, x-amz-crc32, x-amzn-RequestId, content type and length) and resolves
 * on `end`. No socket and no HTTP parser on either side.
 */
function invokeRaw(inner: Server, headers: IncomingHttpHeaders, raw: Buffer | string, method = 'POST', url = '/'): Promise<DynamoReply> {
  return new Promise((resolve, reject) => {
    const req = Object.assign(new EventEmitter(), { method, url, headers });
    const out: Record<string, string> = {};
    const res = {
      statusCode: 200,
      contentType: undefined as string | undefined,
      setHeader(name: string, value: string | number) {
        out[name.toLowerCase()] = String(value);
      },
      end(text?: string) {
        resolve({ status: res.statusCode, headers: out, body: text ?? '' });
      },
    };
    try {
      inner.emit('request', req, res);
      if (raw.length > 0) req.emit('data', typeof raw === 'string' ? Buffer.from(raw) : raw);
      req.emit('end');
    } catch (e) {
      reject(e as Error);
    }
  });
}

const contentTypeOf = (headers: IncomingHttpHeaders | undefined) => String(headers?.['content-type'] ?? '').split(';')[0]?.trim() ?? '';

/**
 * The operation a request may run on dynalite's actions directly: one of DIRECT,
 * POSTed with a JSON content type, a DynamoDB_20120810 target and a signature of
 * AWS4 form (what dynalite's handler checks before validating). Anything else is
 * answered by dynalite's handler itself, errors included.
 */
function directOp(headers: IncomingHttpHeaders, method: string, op: string): DirectOp | undefined {
  const type = contentTypeOf(headers);
  const auth = String(headers.authorization ?? '').trim();
  const ok =
    method === 'POST' &&
    (type === 'application/x-amz-json-1.0' || type === 'application/json') &&
    String(headers['x-amz-target'] ?? '') === `DynamoDB_20120810.${op}` &&
    auth.startsWith('AWS4-') &&
    /Credential=\S/.test(auth) && /Signature=\S/.test(auth) && /SignedHeaders=/.test(auth) &&
    (headers['x-amz-date'] !== undefined || headers.date !== undefined);
  return ok && isDirect(op) ? op : undefined;
}

/** Front requests under way, per dynalite server behind the front, and whether new ones are refused. */
interface Gate {
  closed: boolean;
  pending: number;
  idle: (() => void)[];
}
const gates = new WeakMap<Server, Gate>();

function gateOf(inner: Server): Gate {
  let gate = gates.get(inner);
  if (!gate) gates.set(inner, (gate = { closed: false, pending: 0, idle: [] }));
  return gate;
}

/**
 * Refuse new requests at the front of `inner` (as a closed endpoint would) and
 * wait, at most `timeoutMs`, for those under way to finish, a transaction with
 * all its writes. Closing dynalite's store under a request makes dynalite throw
 * from a LevelDB callback, out of reach of any caller: the process died with
 * "Database is closed", a transaction half applied, and whatever error led to
 * the shutdown was lost.
 */
export async function closeFront(inner: Server, timeoutMs = 5_000): Promise<void> {
  const gate = gateOf(inner);
  gate.closed = true;
  if (gate.pending === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => gate.idle.push(resolve)),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}

/** Invoke dynalite in-process with a JSON body (the front's own single-item calls). */
async function invoke(inner: Server, target: string, body: Json): Promise<Reply> {
  const r = await invokeRaw(
    inner,
    {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `DynamoDB_20120810.${target}`,
      authorization: AUTH,
      'x-amz-date': '20260101T000000Z',
    },
    JSON.stringify(body),
  );
  return { status: r.status, body: r.body ? (JSON.parse(r.body) as Json) : {} };
}

/** A transaction action normalised: which table and key it touches, and how to apply it. */
interface Action {
  kind: 'ConditionCheck' | 'Put' | 'Update' | 'Delete';
  table: string;
  key: Item;
  spec: Json;
}

function actionOf(entry: Json, keyNames: (table: string) => Promise<string[]>): Promise<Action> {
  const kinds = (['ConditionCheck', 'Put', 'Update', 'Delete'] as const).filter((k) => entry[k] !== undefined);
  if (kinds.length !== 1) throw validation('TransactItems can only contain one of Check, Put, Update or Delete');
  const kind = kinds[0] as Action['kind'];
  const spec = entry[kind] as Json;
  const table = String(spec.TableName ?? '');
  return keyNames(table).then((names) => {
    const source = (kind === 'Put' ? spec.Item : spec.Key) as Item | undefined;
    if (!source) throw validation(`${kind} has no ${kind === 'Put' ? 'Item' : 'Key'}`);
    const key: Item = {};
    for (const n of names) {
      const v = source[n];
      if (!v) throw validation('The provided key element does not match the schema');
      key[n] = v;
    }
    return { kind, table, key, spec };
  });
}

const lockKey = (table: string, key: Item) => `${table}\u0000${JSON.stringify(Object.keys(key).sort().map((k) => [k, key[k]]))}`;

/** The single-item request that applies an action (a ConditionCheck applies nothing). */
function singleRequest(a: Action): { target: 'PutItem' | 'UpdateItem' | 'DeleteItem'; body: Json; validation: DynaliteValidation } | undefined {
  const { ReturnValuesOnConditionCheckFailure: _r, ...spec } = a.spec;
  if (a.kind === 'Put') return { target: 'PutItem', body: spec, validation: dyn.put };
  if (a.kind === 'Update') return { target: 'UpdateItem', body: spec, validation: dyn.update };
  if (a.kind === 'Delete') return { target: 'DeleteItem', body: spec, validation: dyn.delete };
  return undefined;
}

/** dynalite's parse of a condition (as a DeleteItem/PutItem/UpdateItem would parse it), or a ValidationException. */
function parsed(a: Action, store: unknown): Json {
  const single = singleRequest(a);
  const v = single?.validation ?? dyn.delete;
  const data = single ? { ...single.body } : { TableName: a.table, Key: a.key, ...pick(a.spec, ['ConditionExpression', 'ExpressionAttributeNames', 'ExpressionAttributeValues']) };
  if (a.kind === 'ConditionCheck' && !(data as Json).ConditionExpression) throw validation('ConditionCheck requires a ConditionExpression');
  try {
    const typed = dyn.validations.checkTypes(data, v.types);
    dyn.validations.checkValidations(typed, v.types, v.custom, store);
    return typed;
  } catch (e) {
    const body = (e as { body?: Json }).body;
    if (body) throw new ApiError((e as { statusCode?: number }).statusCode ?? 400, body);
    throw e;
  }
}

function pick(o: Json, keys: string[]): Json {
  const out: Json = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

const units = (item: Item | undefined, size: (i: Item) => number) => Math.max(1, Math.ceil((item ? size(item) : 0) / 1024));

/**
 * The front: serves the DynamoDB API from `inner` (a dynalite server, invoked
 * in-process) and adds TransactWriteItems and TransactGetItems. Reached over
 * HTTP (transactFront) or in-process by the SDK (local/dynamo.ts's transport).
 */
export function transactHandler(inner: Server, opts: { maxItemSizeKb?: number; store?: DynaliteStore } = {}): DynamoFront {
  const locks = new KeyLocks();
  const keySchemas = new Map<string, string[]>();
  const tokens = new Map<string, { at: number; hash: string; reply: Reply }>();
  // dynalite's validators read only options.maxItemSize from the store
  const engineStore = opts.store;
  const store = engineStore ?? { options: { maxItemSize: (opts.maxItemSizeKb ?? 400) * 1024 } };
  const gate = gateOf(inner);

  /** One request of the front's own, on dynalite's actions when its store is known; an ApiError unless it succeeded. */
  const call = async (target: string, body: Json): Promise<Json> => {
    const r = engineStore && isDirect(target) ? await runDirect(engineStore, target, body) : await invoke(inner, target, body);
    if (r.status !== 200) throw new ApiError(r.status, r.body);
    return r.body;
  };

  const keyNames = async (table: string): Promise<string[]> => {
    const hit = keySchemas.get(table);
    if (hit) return hit;
    const out = await call('DescribeTable', { TableName: table });
    const schema = ((out.Table as Json | undefined)?.KeySchema ?? []) as { AttributeName: string }[];
    const names = schema.map((k) => k.AttributeName);
    keySchemas.set(table, names);
    return names;
  };

  const getItem = async (table: string, key: Item): Promise<Item | undefined> =>
    (await call('GetItem', { TableName: table, Key: key, ConsistentRead: true })).Item as Item | undefined;

  async function transactWrite(body: Json): Promise<Reply> {
    const entries = (body.TransactItems ?? []) as Json[];
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_ACTIONS) {
      throw validation(`1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${MAX_ACTIONS}`);
    }
    const token = typeof body.ClientRequestToken === 'string' ? body.ClientRequestToken : undefined;
    const hash = createHash('sha256').update(JSON.stringify(entries)).digest('hex');
    const now = Date.now();
    // tokens are kept in the order they came, so the expired ones are the first: each request
    // forgets those and stops at the first one still fresh (SDK v3 sends a token with every
    // TransactWriteItems: a scan of all of them made each transaction slower the longer it ran)
    for (const [t, v] of tokens) {
      if (now - v.at <= TOKEN_TTL_MS) break;
      tokens.delete(t);
    }
    if (token) {
      const seen = tokens.get(token);
      if (seen && seen.hash === hash) return seen.reply;
      if (seen) throw new ApiError(400, { __type: `${SERVICE}#IdempotentParameterMismatchException`, message: 'ClientRequestToken was reused with a different request' });
    }
    const actions = await Promise.all(entries.map((e) => actionOf(e, keyNames)));
    const keys = actions.map((a) => lockKey(a.table, a.key));
    if (new Set(keys).size !== keys.length) throw validation('Transaction request cannot include multiple operations on one item');
    const requests = actions.map((a) => parsed(a, store));
    const release = await locks.lock(keys);
    try {
      const images = await Promise.all(actions.map((a) => getItem(a.table, a.key)));
      const reasons = actions.map((a, i) => {
        const failed = dyn.db.checkConditional(requests[i] as Json, images[i]);
        if (!failed) return { Code: 'None' };
        const old = a.spec.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && images[i] ? { Item: images[i] } : {};
        return { ...old, Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' };
      });
      if (reasons.some((r) => r.Code !== 'None')) {
        throw new ApiError(400, {
          __type: `${SERVICE}#TransactionCanceledException`,
          Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
          CancellationReasons: reasons,
        });
      }
      const applied: number[] = [];
      try {
        for (const [i, a] of actions.entries()) {
          const single = singleRequest(a);
          if (!single) continue;
          if (engineStore) {
            // the request validated above (its expressions parsed once), applied by dynalite's action
            const r = await runTyped(engineStore, single.target, requests[i] as Json);
            if (r.status !== 200) throw new ApiError(r.status, r.body);
          } else {
            await call(single.target, single.body);
          }
          applied.push(i);
        }
      } catch (e) {
        for (const i of applied.reverse()) {
          const a = actions[i] as Action;
          const before = images[i];
          await (before ? call('PutItem', { TableName: a.table, Item: before }) : call('DeleteItem', { TableName: a.table, Key: a.key }));
        }
        throw e;
      }
      // the new images are read only to size the consumed capacity, when the caller asked for it
      const wantsCapacity = body.ReturnConsumedCapacity === 'TOTAL' || body.ReturnConsumedCapacity === 'INDEXES';
      const after = wantsCapacity
        ? await Promise.all(actions.map((a) => (a.kind === 'ConditionCheck' || a.kind === 'Delete' ? undefined : getItem(a.table, a.key))))
        : [];
      const reply: Reply = { status: 200, body: capacity(body, actions, images, after) };
      if (token) tokens.set(token, { at: now, hash, reply });
      return reply;
    } finally {
      release();
    }
  }

  /** DynamoDB charges a transactional write 2 units per KB of the larger image, per item. */
  function capacity(body: Json, actions: Action[], before: (Item | undefined)[], after: (Item | undefined)[]): Json {
    if (body.ReturnConsumedCapacity !== 'TOTAL' && body.ReturnConsumedCapacity !== 'INDEXES') return {};
    const perTable = new Map<string, number>();
    actions.forEach((a, i) => {
      const u = 2 * Math.max(units(before[i], dyn.db.itemSize), units(after[i], dyn.db.itemSize));
      perTable.set(a.table, (perTable.get(a.table) ?? 0) + u);
    });
    return {
      ConsumedCapacity: [...perTable].map(([TableName, CapacityUnits]) => ({
        TableName,
        CapacityUnits,
        WriteCapacityUnits: CapacityUnits,
        ...(body.ReturnConsumedCapacity === 'INDEXES' ? { Table: { CapacityUnits, WriteCapacityUnits: CapacityUnits } } : {}),
      })),
    };
  }

  async function transactGet(body: Json): Promise<Reply> {
    const entries = (body.TransactItems ?? []) as Json[];
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_ACTIONS) {
      throw validation(`Member must have length less than or equal to ${MAX_ACTIONS}`);
    }
    const gets = await Promise.all(
      entries.map(async (e) => {
        const g = e.Get as Json | undefined;
        if (!g) throw validation('TransactGetItems accepts only Get');
        const names = await keyNames(String(g.TableName ?? ''));
        const key: Item = {};
        for (const n of names) key[n] = (g.Key as Item)[n] as Attr;
        return { spec: g, table: String(g.TableName), key };
      }),
    );
    const keys = gets.map((g) => lockKey(g.table, g.key));
    if (new Set(keys).size !== keys.length) throw validation('Transaction request cannot include multiple operations on one item');
    const release = await locks.lock(keys);
    try {
      const out = await Promise.all(gets.map((g) => call('GetItem', { ...g.spec, ConsistentRead: true })));
      const Responses = out.map((o) => (o.Item ? { Item: o.Item } : {}));
      if (body.ReturnConsumedCapacity !== 'TOTAL' && body.ReturnConsumedCapacity !== 'INDEXES') return { status: 200, body: { Responses } };
      const table = gets[0]?.table ?? '';
      const cu = out.reduce((s, o) => s + 2 * Math.ceil(Math.max(1, o.Item ? dyn.db.itemSize(o.Item as Item) : 0) / 4096), 0);
      return { status: 200, body: { Responses, ConsumedCapacity: [{ TableName: table, CapacityUnits: cu, ReadCapacityUnits: cu }] } };
    } finally {
      release();
    }
  }

  /** Item keys a plain request writes or reads singly: those take the item locks. */
  async function lockedKeys(target: string, data: Json): Promise<string[]> {
    const table = String(data.TableName ?? '');
    if (target === 'GetItem' || target === 'UpdateItem' || target === 'DeleteItem') {
      return [lockKey(table, await keyOf(table, data.Key as Item))];
    }
    if (target === 'PutItem') return [lockKey(table, await keyOf(table, data.Item as Item))];
    if (target === 'BatchWriteItem') {
      const out: string[] = [];
      for (const [t, reqs] of Object.entries((data.RequestItems ?? {}) as Record<string, Json[]>)) {
        for (const r of reqs) {
          const src = ((r.PutRequest as Json | undefined)?.Item ?? (r.DeleteRequest as Json | undefined)?.Key) as Item | undefined;
          if (src) out.push(lockKey(t, await keyOf(t, src)));
        }
      }
      return out;
    }
    return [];
  }

  async function keyOf(table: string, source: Item | undefined): Promise<Item> {
    const key: Item = {};
    if (!source) return key;
    let names: string[];
    try {
      names = await keyNames(table);
    } catch {
      return key; // unknown table: dynalite answers ResourceNotFoundException itself
    }
    for (const n of names) if (source[n]) key[n] = source[n];
    return key;
  }

  /** The answer as dynalite sends it: JSON in the request's content type (application/json, else application/x-amz-json-1.0). */
  const reply = (r: Reply, request?: IncomingHttpHeaders): DynamoReply => {
    const body = JSON.stringify(r.body);
    const type = contentTypeOf(request) === 'application/json' ? 'application/json' : 'application/x-amz-json-1.0';
    return { status: r.status, headers: { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) }, body };
  };

  /** One request, counted while under way (closeFront waits for it); refused once the front is closed. */
  async function handle(headers: IncomingHttpHeaders, raw: Buffer | string, method = 'POST', url = '/'): Promise<DynamoReply> {
    if (gate.closed) throw Object.assign(new Error('connect ECONNREFUSED (the embedded DynamoDB is stopped)'), { code: 'ECONNREFUSED' });
    gate.pending += 1;
    try {
      return await serve(headers, raw, method, url);
    } finally {
      gate.pending -= 1;
      if (gate.pending === 0) for (const wake of gate.idle.splice(0)) wake();
    }
  }

  /** One DynamoDB API request (headers with lower-case names, the raw JSON body) to its answer. */
  async function serve(headers: IncomingHttpHeaders, raw: Buffer | string, method: string, url: string): Promise<DynamoReply> {
    const target = String(headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const text = typeof raw === 'string' ? raw : raw.toString();
    if (target !== 'TransactWriteItems' && target !== 'TransactGetItems') {
      let data: Json;
      try {
        data = JSON.parse(text || '{}') as Json;
      } catch {
        return invokeRaw(inner, headers, raw, method, url); // dynalite answers SerializationException
      }
      let keys: string[];
      try {
        keys = await lockedKeys(target, data);
      } catch {
        keys = [];
      }
      const op = typeof data === 'object' && data !== null && !Array.isArray(data) ? directOp(headers, method, target) : undefined;
      const answer = (): Promise<DynamoReply> =>
        engineStore && op ? runDirect(engineStore, op, data).then((r) => reply(r, headers)) : invokeRaw(inner, headers, raw, method, url);
      if (keys.length === 0) return answer();
      const release = await locks.lock(keys);
      try {
        return await answer();
      } finally {
        release();
      }
    }
    let body: Json;
    try {
      body = JSON.parse(text) as Json;
    } catch {
      return reply({ status: 400, body: { __type: 'com.amazon.coral.service#SerializationException' } });
    }
    try {
      return reply(await (target === 'TransactWriteItems' ? transactWrite(body) : transactGet(body)));
    } catch (e) {
      if (e instanceof ApiError) return reply({ status: e.status, body: e.body });
      return reply({ status: 500, body: { __type: `${SERVICE}#InternalServerError`, message: String((e as Error).message ?? e) } });
    }
  }

  return handle;
}

/** Answers DynamoDB API requests from dynalite, with TransactWriteItems and TransactGetItems added (see the top of this file). */
export type DynamoFront = (headers: IncomingHttpHeaders, raw: Buffer | string, method?: string, url?: string) => Promise<DynamoReply>;

/** The front as an HTTP server (the endpoint other processes and the CLI reach). */
export function transactFront(inner: Server, opts: { maxItemSizeKb?: number; store?: DynaliteStore } = {}): Server {
  return frontServer(transactHandler(inner, opts));
}

/** Serve `front` over HTTP. */
export function frontServer(front: DynamoFront): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      front(req.headers, Buffer.concat(chunks), req.method, req.url).then(
        (r) => {
          res.statusCode = r.status;
          for (const [k, v] of Object.entries(r.headers)) res.setHeader(k, v);
          res.end(r.body);
        },
        (e: unknown) => {
          res.statusCode = 500;
          res.end(JSON.stringify({ __type: `${SERVICE}#InternalServerError`, message: String((e as Error)?.message ?? e) }));
        },
      );
    });
  });
}
