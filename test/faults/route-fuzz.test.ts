/**
 * Every route of the HTTP API (functions/routes.ts) under fuzz, through the
 * embedded cloud's HTTP front as a hostile client would call it: random and
 * hostile path parameters, query strings (known keys with bad values, unknown
 * keys, repeated keys, forged page tokens) and bodies (any JSON, a valid body
 * with one field replaced, text that is not JSON, any content type or none).
 *
 * For every request: no 5xx; every 4xx carries the typed error shape
 * `{ error: { code, class, message } }` with the class its code stands for;
 * and a refused request changes nothing: the whole table (a Scan) and every
 * ledger stream are as they were.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import fc from 'fast-check';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { generateKeyPair } from '../../core/keys.ts';
import type { Obligation } from '../../core/types.ts';
import { ROUTES, type RouteSpec } from '../../functions/routes.ts';
import { pageToken } from '../../functions/shared/schemas.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { enrol, getOffer, registerDomain, sign, type TestDevice } from '../integration/support.ts';
import { classOf } from './support.ts';

/** Requests per route (each property run is one request). */
const RUNS = 30;

interface Reply {
  status: number;
  text: string;
}

/** A raw HTTP request: the path goes out byte for byte (no URL normalisation, unlike fetch). */
function send(base: string, method: string, path: string, body?: string, contentType?: string): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ERROR_CODE = /^([FTR][0-9]{2}_[A-Z0-9_]+|HTTP_4[0-9]{2})$/;

/** No 5xx; a 4xx has exactly the typed error shape. */
function assertShape(what: string, r: Reply): void {
  assert.ok(r.status >= 200 && r.status < 500, `${what} → ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status < 400) return;
  let body: unknown;
  try {
    body = JSON.parse(r.text);
  } catch {
    assert.fail(`${what} → ${r.status} with a body that is not JSON: ${r.text.slice(0, 200)}`);
  }
  const e = (body as { error?: Record<string, unknown> }).error;
  assert.ok(e && typeof e === 'object', `${what} → ${r.status} without { error }: ${r.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(body as object), ['error'], `${what}: only { error } at the top`);
  assert.match(String(e.code), ERROR_CODE, `${what}: error.code`);
  assert.equal(e.class, classOf(String(e.code)), `${what}: error.class of ${String(e.code)}`);
  assert.equal(typeof e.message, 'string', `${what}: error.message`);
  assert.ok(String(e.message).length > 0 && String(e.message).length <= 400, `${what}: a short message`);
  assert.ok(r.text.length < 8_000, `${what}: a refusal echoes no megabytes back (${r.text.length} bytes)`);
}

// ---- generators ---------------------------------------------------------------

const hostileText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', ' ', '-1', '0', '1.5', '1e3', 'NaN', 'Infinity', 'null', 'true', '[]', '{}', '%', '%00', '\u0000', '..', '.', '__proto__', 'constructor', 'x'.repeat(3000)),
);

/** A path parameter: a real name, an unknown but well-formed one, or anything (non-empty: an empty segment matches no route). */
const pathParam = (real: string[]) =>
  fc.oneof(
    // mostly real names, so requests get past the path and exercise the query and the body
    { arbitrary: fc.constantFrom(...real), weight: 4 },
    { arbitrary: fc.constantFrom('zzz', 'a'.repeat(64), 'a'.repeat(65), '..', '.', '%2F', 'c1%00'), weight: 1 },
    { arbitrary: hostileText.filter((s) => s.length > 0).map(encodeURIComponent), weight: 1 },
  );

/** Each route's query keys with good and bad values, so the fuzz also mixes valid parts with bad ones. */
const KNOWN_QUERY: Record<string, Record<string, { good: string[]; bad: string[] }>> = {
  'GET /domains/{domain}/obligations': {
    side: { good: ['consumer', 'provider'], bad: ['sideways', 'Consumer', ''] },
    status: { good: ['accepted', 'settling', 'fulfilled', 'defaulted'], bad: ['bogus', 'ACCEPTED', ''] },
    order: { good: ['oldest', 'newest'], bad: ['random', 'desc'] },
    limit: { good: ['1', '50', '500'], bad: ['501', '0', '-1', '1.5', '99999999999', '1e2', ' 5'] },
    next: {
      good: [pageToken.encode('000000000000001#abc'), pageToken.encode(`999999999999999#${'f'.repeat(64)}`)],
      bad: [pageToken.encode('not-a-position'), 'garbage', '', Buffer.from('{"after":1}').toString('base64url')],
    },
  },
  'GET /domains': {
    limit: { good: ['1', '2', '500'], bad: ['501', '0', 'ten'] },
    next: { good: [pageToken.encode('c1'), pageToken.encode('a')], bad: [pageToken.encode('bad name!'), '%%%', ''] },
  },
  'GET /domains/{domain}/reputation': { verify: { good: [], bad: ['ledger', 'yes', ''] } },
};

function queryString(route: string): fc.Arbitrary<string> {
  const known = KNOWN_QUERY[route] ?? {};
  const keys = Object.keys(known);
  const good = (k: string) => known[k]?.good ?? [];
  // a valid query: some of the route's keys, each once, with good values
  const valid = fc.subarray(keys.filter((k) => good(k).length > 0)).chain((ks) =>
    ks.length === 0 ? fc.constant<[string, string][]>([]) : fc.tuple(...ks.map((k) => fc.tuple(fc.constant(k), fc.constantFrom(...good(k))))),
  );
  // anything goes: the route's keys with good, bad or hostile values (repeats allowed), and strangers
  const pair = fc.oneof(
    ...(keys.length > 0
      ? [
          {
            arbitrary: fc.constantFrom(...keys).chain((k) => {
              const listed = [...good(k), ...(known[k]?.bad ?? [])];
              return fc.tuple(fc.constant(k), fc.oneof({ arbitrary: fc.constantFrom(...listed), weight: 3 }, { arbitrary: hostileText, weight: 1 }));
            }),
            weight: 4,
          },
        ]
      : []),
    { arbitrary: fc.tuple(hostileText, hostileText), weight: 1 },
  );
  const mixed = fc.array(pair, { maxLength: 3 });
  return fc.oneof(valid, mixed).map((pairs) => (pairs.length === 0 ? '' : `?${new URLSearchParams(pairs).toString()}`));
}

/** Every JSON path (as key lists) inside a value. */
function pathsOf(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...prefix, k]));
  return out;
}

function setPath(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
  return copy;
}

/** A valid body with one field (at any depth) replaced by anything, removed, or the body as is. */
function mutated(valid: unknown): fc.Arbitrary<string> {
  const paths = pathsOf(valid);
  return fc.tuple(fc.constantFrom(...paths), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined))).map(([p, v]) =>
    JSON.stringify(setPath(valid, p, v)) ?? 'null',
  );
}

const notJson = fc.oneof(
  fc.string({ minLength: 1, maxLength: 100 }).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
  fc.constantFrom('{', '{"domain":', '[1,2', '\u0000', 'domain=c1&role=consumer', '<xml/>', '{"a":1}{"b":2}'),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'image/png',
);

// ---- the state a refused request must leave as it was ----------------------

async function state(cloud: LocalCloud): Promise<string> {
  const items: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await cloud.dynamo.client.send(
      new ScanCommand({ TableName: cloud.dynamo.tableName, ConsistentRead: true, ExclusiveStartKey: start as never }),
    );
    for (const i of out.Items ?? []) items.push(JSON.stringify(Object.entries(i).sort(([a], [b]) => (a < b ? -1 : 1))));
    start = out.LastEvaluatedKey;
  } while (start);
  const streams = await Promise.all((['domains', 'obligations', 'settlements'] as const).map(async (s) => (await cloud.deps.ledger.list(s)).length));
  return JSON.stringify({ items: items.sort(), streams });
}

describe('every HTTP route under fuzz: no 5xx, typed 4xx, a refusal changes nothing', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;
  let obligation: Obligation;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    dev = await enrol(cloud, 'c1', 'c1-dev-1');
    obligation = sign(dev, await getOffer(cloud, dev, 'p1', 'p1-spd-1'));
  });
  after(async () => {
    await cloud?.stop();
  });

  /** A valid body per POST route: the fuzz mutates it one field at a time. */
  const validBody = (route: RouteSpec): unknown => {
    switch (route.path) {
      case '/domains':
        return { domain: 'p1', role: 'provider', threshold: 0.3, prices: { 'wifi-access': 2_000 }, autoSettle: true };
      case '/domains/{domain}/devices':
        return { deviceId: 'c1-dev-9', deviceKey: generateKeyPair().publicKey, creditLimit: 1_000, validForMs: 60_000 };
      case '/offers':
        return { requestId: 'r1', consumerDomain: 'c1', consumerDevice: 'c1-dev-1', providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access' };
      case '/obligations':
        return { obligation };
      case '/domains/{domain}/settlements':
        return { maxOutputs: 10 };
      case '/chain/members':
        return { address: '1Abc'.repeat(8), action: 'grant' };
      default:
        return {};
    }
  };

  it('lists every route of functions/routes.ts (a new route must be fuzzed too)', () => {
    const keys = ROUTES.map((r) => `${r.method} ${r.path}`);
    assert.ok(keys.length >= 12, `routes: ${keys.join(', ')}`);
    // every query key a route documents is fuzzed with its good and bad values
    for (const k of Object.keys(KNOWN_QUERY)) assert.ok(keys.includes(k), `${k} is a route`);
  });

  // The settle route first: the obligation route may accept a (mutated but valid) obligation, leaving something to pay.
  const ordered = [...ROUTES].sort((a, b) => Number(a.path === '/obligations') - Number(b.path === '/obligations'));
  for (const route of ordered) {
    const key = `${route.method} ${route.path}`;
    it(key, async () => {
      const names = ['c1', 'p1', 'c1-dev-1', 'p1-spd-1'];
      const path = fc.tuple(pathParam(names), pathParam(names)).map(([a, b]) => route.path.replace('{domain}', a).replace('{device}', b));
      const body =
        route.method === 'GET'
          ? fc.constant(undefined)
          : fc.oneof({ arbitrary: mutated(validBody(route)), weight: 3 }, { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), weight: 1 }, { arbitrary: notJson, weight: 1 }, { arbitrary: fc.constant(''), weight: 1 });
      let refused = 0;
      // the state as the last request left it: a refusal must leave it so, an accepted request may move it
      let current = await state(cloud);
      await fc.assert(
        fc.asyncProperty(path, queryString(key), body, contentType, async (p, q, b, type) => {
          const what = `${route.method} ${p}${q} ${b === undefined ? '' : `body ${b.slice(0, 120)}`} (${type ?? 'no content-type'})`;
          const r = await send(cloud.api, route.method, `${p}${q}`, b, b === undefined ? undefined : type);
          assertShape(what, r);
          const after = await state(cloud);
          if (r.status >= 400) {
            refused += 1;
            assert.equal(after, current, `${what} → ${r.status} changed the state`);
          }
          current = after;
        }),
        { numRuns: RUNS },
      );
      assert.ok(refused > 0, `${key}: the fuzz reached refusals`);
    });
  }
});
