/**
 * The embedded stand-in for an API Gateway HTTP API with Lambda proxy
 * integrations (payload format 2.0): a node:http server that turns each request
 * into an APIGatewayProxyEventV2, calls the route's handler, and maps its result
 * back the way API Gateway does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { MalformedError } from '../core/errors.ts';
import { LOCAL_ACCOUNT_ID, lambdaContext } from './lambda.ts';
import { listenLoopback } from './net.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Route {
  method: HttpMethod;
  /** API Gateway route path: literal segments, `{name}` for one segment, `{name+}` (last) for the rest. */
  path: string;
  handler: (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2<object>>;
  /** Function name for the Lambda context; default derived from the route. */
  functionName?: string;
}

export interface HttpFrontOptions {
  /** 0 or absent: a free port. */
  port?: number;
  routes: Route[];
  /** Serve files from `dir` for GET requests under `prefix` (routes win). */
  static?: { dir: string; prefix: string };
  /** Largest accepted request body. Default 1 MB. */
  maxBodyBytes?: number;
  /** API Gateway's `$default` route: what answers a request no route (and no static file) matches. Default a bare 404. */
  fallback?: Pick<Route, 'handler' | 'functionName'>;
  /** Where handler failures are reported. Default console.error. */
  log?: (message: string, error: unknown) => void;
}

export interface HttpFront {
  /** `http://127.0.0.1:{port}` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The API id and stage the local events carry. */
export const LOCAL_API_ID = 'localapi';

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'greedy'; name: string };

interface CompiledRoute {
  route: Route;
  routeKey: string;
  segments: Segment[];
}

const JSON_TYPE = 'application/json';

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function compile(route: Route): CompiledRoute {
  const parts = route.path.split('/').filter((p) => p !== '');
  const segments = parts.map((part, i): Segment => {
    const m = /^\{([A-Za-z0-9_]+)(\+?)\}$/.exec(part);
    if (!m || m[1] === undefined) return { kind: 'literal', value: part };
    if (m[2] === '+') {
      if (i !== parts.length - 1) throw new MalformedError(`greedy parameter must be last: ${route.path}`);
      return { kind: 'greedy', name: m[1] };
    }
    return { kind: 'param', name: m[1] };
  });
  return { route, routeKey: `${route.method} ${route.path}`, segments };
}

/** API Gateway picks the most specific route: literal segments before parameters, greedy paths last. */
function specificity(r: CompiledRoute): number[] {
  const greedy = r.segments.some((s) => s.kind === 'greedy') ? 1 : 0;
  return [greedy, ...r.segments.map((s) => (s.kind === 'literal' ? 0 : s.kind === 'param' ? 1 : 2))];
}

function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  const sa = specificity(a);
  const sb = specificity(b);
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    const d = (sa[i] ?? -1) - (sb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function match(r: CompiledRoute, method: string, rawPath: string): Record<string, string> | undefined {
  if (r.route.method !== method) return undefined;
  const parts = rawPath.split('/').filter((p) => p !== '');
  const params: Record<string, string> = {};
  for (let i = 0; i < r.segments.length; i++) {
    const seg = r.segments[i];
    if (seg === undefined) return undefined;
    if (seg.kind === 'greedy') {
      const rest = parts.slice(i);
      if (rest.length === 0) return undefined;
      params[seg.name] = rest.map(decode).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (seg.value !== part) return undefined;
    } else {
      params[seg.name] = decode(part);
    }
  }
  return parts.length === r.segments.length ? params : undefined;
}

/** `dd/Mon/yyyy:HH:mm:ss +0000`, the format of requestContext.time. */
function apiGatewayTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Media types whose bodies API Gateway hands over as text; anything else is base64-encoded. */
export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return (
    type.startsWith('text/') ||
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/xml' ||
    type.endsWith('+xml') ||
    type === 'application/javascript' ||
    type === 'application/x-www-form-urlencoded'
  );
}

/** Headers as format 2.0 has them: names lowercased, duplicates joined with commas, cookies split out. */
function collectHeaders(req: IncomingMessage): { headers: Record<string, string>; cookies: string[] } {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    if (name === 'cookie') {
      for (const c of value.split(';')) if (c.trim() !== '') cookies.push(c.trim());
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return { headers, cookies };
}

function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (rawQueryString === '') return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQueryString)) out[k] = k in out ? `${out[k]},${v}` : v;
  return out;
}

/** Build the API Gateway HTTP API (format 2.0) event for a request. */
export function buildEvent(
  req: IncomingMessage,
  body: Buffer,
  matched: { routeKey: string; pathParameters: Record<string, string> },
): APIGatewayProxyEventV2 {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQueryString = q < 0 ? '' : url.slice(q + 1);
  const { headers, cookies } = collectHeaders(req);
  const now = Date.now();
  const host = headers.host ?? 'localhost';
  const domainName = host.replace(/:\d+$/, '');
  const text = isTextContentType(headers['content-type']);
  const queryStringParameters = queryParameters(rawQueryString);
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: matched.routeKey,
    rawPath,
    rawQueryString,
    headers,
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: LOCAL_API_ID,
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomBytes(10).toString('base64'),
      routeKey: matched.routeKey,
      stage: '$default',
      time: apiGatewayTime(now),
      timeEpoch: now,
    },
    isBase64Encoded: body.length > 0 && !text,
  };
  if (cookies.length > 0) event.cookies = cookies;
  if (queryStringParameters) event.queryStringParameters = queryStringParameters;
  if (Object.keys(matched.pathParameters).length > 0) event.pathParameters = matched.pathParameters;
  if (body.length > 0) event.body = text ? body.toString('utf8') : body.toString('base64');
  return event;
}

interface HttpReply {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

const message = (statusCode: number, text: string): HttpReply => ({
  statusCode,
  headers: { 'content-type': JSON_TYPE },
  body: Buffer.from(JSON.stringify({ message: text })),
});

function isStructured(result: object): result is APIGatewayProxyStructuredResultV2 {
  return 'statusCode' in result;
}

/**
 * Map a handler's result as API Gateway does for format 2.0: a structured result is used as
 * given; anything else (valid JSON without statusCode) becomes 200, application/json, the
 * result as body (a string as is, an object serialised).
 */
export function mapResult(result: APIGatewayProxyResultV2<object> | undefined): HttpReply {
  if (result === undefined || result === null) return { statusCode: 200, headers: { 'content-type': JSON_TYPE }, body: Buffer.alloc(0) };
  if (typeof result === 'string') return { statusCode: 200, headers: { 'content-type': JSON_TYPE }, body: Buffer.from(result) };
  if (!isStructured(result)) return { statusCode: 200, headers: { 'content-type': JSON_TYPE }, body: Buffer.from(JSON.stringify(result)) };
  const status = result.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    return message(500, 'Internal Server Error');
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (result.cookies && result.cookies.length > 0) headers['set-cookie'] = result.cookies;
  const raw = result.body ?? '';
  return { statusCode: status, headers, body: result.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw) };
}

function send(res: ServerResponse, reply: HttpReply, headOnly = false): void {
  res.writeHead(reply.statusCode, { ...reply.headers, 'content-length': String(reply.body.length) });
  res.end(headOnly ? undefined : reply.body);
}

class BodyTooLarge extends MalformedError {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) return reject(new BodyTooLarge('request body too large'));
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        reject(new BodyTooLarge('request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolveBody(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

async function serveStatic(dir: string, prefix: string, rawPath: string): Promise<HttpReply | undefined> {
  if (!rawPath.startsWith(prefix)) return undefined;
  const root = resolve(dir);
  let rel = decode(rawPath.slice(prefix.length));
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  const file = resolve(root, `.${sep}${rel}`);
  if (file !== root && !file.startsWith(root + sep)) return undefined; // no escaping the directory
  try {
    const info = await stat(file);
    if (!info.isFile()) return undefined;
    const type = STATIC_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    return { statusCode: 200, headers: { 'content-type': type }, body: await readFile(file) };
  } catch {
    return undefined;
  }
}

/** Start the embedded HTTP API on 127.0.0.1. */
export async function startHttpFront(opts: HttpFrontOptions): Promise<HttpFront> {
  const routes = opts.routes.map(compile).sort(compareRoutes);
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  const log = opts.log ?? ((msg: string, error: unknown) => console.error(msg, error));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';

    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        send(res, message(413, 'Request Entity Too Large'));
        req.resume(); // drain what the client still sends
        return;
      }
      throw error;
    }

    /** A handler's reply to the event of route `routeKey`; a generic 500 when it throws (logged, never sent). */
    const invoke = async (handler: Route['handler'], routeKey: string, pathParameters: Record<string, string>, name: string): Promise<HttpReply> => {
      try {
        return mapResult(await handler(buildEvent(req, body, { routeKey, pathParameters }), lambdaContext(name)));
      } catch (error) {
        log(`handler for ${routeKey} failed`, error);
        return message(500, 'Internal Server Error');
      }
    };

    for (const r of routes) {
      const pathParameters = match(r, method, rawPath);
      if (!pathParameters) continue;
      const name = r.route.functionName ?? `${r.route.method}-${r.route.path}`.replace(/[^A-Za-z0-9_-]+/g, '-');
      return send(res, await invoke(r.route.handler, r.routeKey, pathParameters, name));
    }

    if (opts.static && (method === 'GET' || method === 'HEAD')) {
      const file = await serveStatic(opts.static.dir, opts.static.prefix, rawPath);
      if (file) return send(res, file, method === 'HEAD');
    }
    if (opts.fallback) return send(res, await invoke(opts.fallback.handler, '$default', {}, opts.fallback.functionName ?? 'default'));
    send(res, message(404, 'Not Found'));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log('http front failed', error);
      if (!res.headersSent) send(res, message(500, 'Internal Server Error'));
      else res.destroy();
    });
  });
  const port = await listenLoopback(server, opts.port, 'http front');

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolveStop) => {
        server.close(() => resolveStop());
        server.closeAllConnections();
      }),
  };
}
