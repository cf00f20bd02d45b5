import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { startHttpFront, type HttpFront } from '../../local/http.ts';

/** A raw request, so duplicate headers and exact bodies reach the server as sent. */
function send(
  url: string,
  method: string,
  path: string,
  headers: [string, string][] = [],
  body?: Buffer | string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    // Raw header arrays get no automatic Host header, which HTTP/1.1 requires.
    const flat = [['Host', new URL(url).host] as [string, string], ...headers].flat();
    const { hostname, port } = new URL(url);
    // Host/port/path given apart so the path goes out exactly as written (a URL string would normalise `..`).
    const req = request({ hostname, port, path, method, headers: flat }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP front (API Gateway HTTP API, payload format 2.0)', () => {
  let front: HttpFront;
  let staticDir: string;
  const events: APIGatewayProxyEventV2[] = [];
  const contexts: Context[] = [];
  const logged: string[] = [];

  before(async () => {
    staticDir = await mkdtemp(join(tmpdir(), 'oc-static-'));
    await mkdir(join(staticDir, 'ui'));
    await writeFile(join(staticDir, 'ui', 'index.html'), '<h1>oc</h1>');
    await writeFile(join(staticDir, 'ui', 'app.js'), 'export {}');
    await writeFile(join(staticDir, 'secret.txt'), 'outside the prefix');
    front = await startHttpFront({
      routes: [
        {
          method: 'POST',
          path: '/domains/{domain}/obligations',
          handler: async (event, context) => {
            events.push(event);
            contexts.push(context);
            return { statusCode: 201, headers: { 'x-oc': 'yes' }, cookies: ['a=1', 'b=2'], body: JSON.stringify({ ok: true }) };
          },
        },
        { method: 'GET', path: '/domains/self/reputation', handler: async () => ({ literal: true }) },
        { method: 'GET', path: '/domains/{domain}/reputation', handler: async (e) => ({ domain: e.pathParameters?.domain }) },
        { method: 'GET', path: '/hello', handler: async () => 'hello there' },
        { method: 'GET', path: '/files/{key+}', handler: async (e) => ({ key: e.pathParameters?.key }) },
        { method: 'GET', path: '/boom', handler: async () => { throw new Error('secret detail'); } },
      ],
      static: { dir: join(staticDir, 'ui'), prefix: '/ui/' },
      log: (msg) => logged.push(msg),
    });
  });

  after(async () => {
    await front.stop();
    await rm(staticDir, { recursive: true, force: true });
  });

  test('a request becomes a format 2.0 event with route key, path parameters, query, headers and body', async () => {
    const res = await send(
      front.url,
      'POST',
      '/domains/c%201/obligations?x=1&x=2&y=a%20b',
      [['Content-Type', 'application/json'], ['X-Dup', 'one'], ['X-Dup', 'two'], ['Cookie', 'k1=v1; k2=v2'], ['User-Agent', 'oc-test']],
      '{"amount":1200}',
    );
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-oc'], 'yes');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    assert.deepEqual(JSON.parse(res.body), { ok: true });

    const e = events.at(-1);
    assert.ok(e);
    assert.equal(e.version, '2.0');
    assert.equal(e.routeKey, 'POST /domains/{domain}/obligations');
    assert.equal(e.rawPath, '/domains/c%201/obligations');
    assert.equal(e.rawQueryString, 'x=1&x=2&y=a%20b');
    assert.deepEqual(e.queryStringParameters, { x: '1,2', y: 'a b' });
    assert.deepEqual(e.pathParameters, { domain: 'c 1' });
    assert.equal(e.headers['x-dup'], 'one,two');
    assert.equal(e.headers['content-type'], 'application/json');
    assert.equal(e.headers.cookie, undefined);
    assert.deepEqual(e.cookies, ['k1=v1', 'k2=v2']);
    assert.equal(e.body, '{"amount":1200}');
    assert.equal(e.isBase64Encoded, false);
    assert.equal(e.requestContext.routeKey, e.routeKey);
    assert.equal(e.requestContext.stage, '$default');
    assert.equal(e.requestContext.http.method, 'POST');
    assert.equal(e.requestContext.http.path, '/domains/c%201/obligations');
    assert.equal(e.requestContext.http.protocol, 'HTTP/1.1');
    assert.equal(e.requestContext.http.sourceIp, '127.0.0.1');
    assert.equal(e.requestContext.http.userAgent, 'oc-test');
    assert.match(e.requestContext.time, /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    assert.equal(typeof e.requestContext.timeEpoch, 'number');
    assert.equal(contexts.at(-1)?.getRemainingTimeInMillis() !== undefined, true);
    assert.match(contexts.at(-1)?.awsRequestId ?? '', /^[0-9a-f-]{36}$/);
  });

  test('a binary body arrives base64-encoded; no query or cookies means those fields are absent', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await send(front.url, 'POST', '/domains/p1/obligations', [['Content-Type', 'application/octet-stream']], bytes);
    const e = events.at(-1);
    assert.equal(e?.isBase64Encoded, true);
    assert.equal(e?.body, bytes.toString('base64'));
    assert.equal(e && 'queryStringParameters' in e, false);
    assert.equal(e && 'cookies' in e, false);
  });

  test('a result without statusCode is 200 JSON; literal routes win over parameters; greedy paths', async () => {
    const lit = await send(front.url, 'GET', '/domains/self/reputation');
    assert.equal(lit.status, 200);
    assert.equal(lit.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(lit.body), { literal: true });
    assert.deepEqual(JSON.parse((await send(front.url, 'GET', '/domains/c1/reputation')).body), { domain: 'c1' });
    const hello = await send(front.url, 'GET', '/hello');
    assert.equal(hello.body, 'hello there');
    assert.deepEqual(JSON.parse((await send(front.url, 'GET', '/files/a/b/c.txt')).body), { key: 'a/b/c.txt' });
  });

  test('an unmatched route or method is 404 {"message":"Not Found"}', async () => {
    for (const [method, path] of [['GET', '/nowhere'], ['DELETE', '/hello'], ['GET', '/domains/c1']] as const) {
      const res = await send(front.url, method, path);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.deepEqual(JSON.parse(res.body), { message: 'Not Found' });
    }
  });

  test('a handler that throws gives 500 {"message":"Internal Server Error"} without the error text', async () => {
    const res = await send(front.url, 'GET', '/boom');
    assert.equal(res.status, 500);
    assert.deepEqual(JSON.parse(res.body), { message: 'Internal Server Error' });
    assert.ok(logged.some((m) => m.includes('GET /boom')));
  });

  test('a body over 1 MB is refused with 413 before any handler runs', async () => {
    const before = events.length;
    const res = await send(front.url, 'POST', '/domains/c1/obligations', [['Content-Type', 'application/json']], Buffer.alloc(1024 * 1024 + 1, 0x20));
    assert.equal(res.status, 413);
    assert.deepEqual(JSON.parse(res.body), { message: 'Request Entity Too Large' });
    assert.equal(events.length, before);
  });

  test('static files are served under the prefix with their content type, and nothing outside it', async () => {
    const index = await send(front.url, 'GET', '/ui/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.body, '<h1>oc</h1>');
    assert.equal((await send(front.url, 'GET', '/ui/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await send(front.url, 'GET', '/ui/../secret.txt')).status, 404);
    assert.equal((await send(front.url, 'GET', '/ui/%2e%2e/secret.txt')).status, 404);
  });
});

describe('HTTP front: the $default route', () => {
  test('a request no route or static file matches reaches the fallback with route key $default, method, raw path and body', async () => {
    const seen: APIGatewayProxyEventV2[] = [];
    const front = await startHttpFront({
      routes: [{ method: 'GET', path: '/hello', handler: async () => 'hello there' }],
      fallback: {
        handler: async (event) => {
          seen.push(event);
          return { statusCode: 404, body: JSON.stringify({ error: { code: 'F09_NOT_FOUND' } }) };
        },
      },
    });
    try {
      assert.equal((await send(front.url, 'GET', '/hello')).body, 'hello there', 'a matched route does not reach the fallback');
      assert.equal(seen.length, 0);
      const res = await send(front.url, 'POST', '/hello/./x?q=1', [['content-type', 'application/json']], '{"a":1}');
      assert.equal(res.status, 404);
      assert.deepEqual(JSON.parse(res.body), { error: { code: 'F09_NOT_FOUND' } });
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.routeKey, '$default');
      assert.equal(seen[0]?.requestContext.http.method, 'POST');
      assert.equal(seen[0]?.rawPath, '/hello/./x');
      assert.equal(seen[0]?.body, '{"a":1}');
      assert.equal(seen[0]?.pathParameters, undefined);
    } finally {
      await front.stop();
    }
  });
});
