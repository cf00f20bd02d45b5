/**
 * One middleware chain per event type: HTTP API (payload 2.0), IoT topic
 * rule, schedule. Handlers get validated input and their dependencies and
 * return plain values; the chains turn them (and errors) into replies.
 * Every chain starts with Powertools (observability.ts): the Logger with the
 * invocation's context (keys appended during an invocation are reset after
 * it), the Metrics flush, the Tracer's handler segment.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { z } from 'zod';
import { MalformedError, ObligationError } from '../../core/errors.ts';
import { topicsUnder, type InKind } from '../../service/topics.ts';
import { getDeps, type Deps } from './deps.ts';
import { noRoute, toReply } from './errors.ts';
import { logger, metrics, tracer } from './observability.ts';

/** The Powertools middlewares every chain starts with (their `after`s run last). */
function observed<E, R>(chain: middy.MiddyfiedHandler<E, R>): middy.MiddyfiedHandler<E, R> {
  return chain
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(logMetrics(metrics));
}
import { NoQuery } from './schemas.ts';

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** Caller-supplied text (a key, a path) echoed in an error, cut short: a refusal never carries a client's megabyte back. */
const clip = (s: string, n = 80): string => (s.length > n ? `${s.slice(0, n)}…` : s);

function parse<T>(schema: z.ZodType<T, unknown>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    const where = first && first.path.length > 0 ? `${what}.${first.path.map(String).join('.')}` : what;
    throw new MalformedError(clip(`${clip(where)}: ${first?.message ?? 'invalid'}`, 300), {
      issues: r.error.issues.slice(0, 10).map((i) => ({ path: clip(i.path.map(String).join('.')), message: clip(i.message, 300) })),
    });
  }
  return r.data;
}

/**
 * The request body as JSON, whatever the content type says (a client that
 * sends JSON without `content-type: application/json` is understood, not
 * refused with 415). A body the gateway flags `isBase64Encoded` (it may, for a
 * type it does not take for text, or none) is decoded first. Not JSON →
 * MalformedError (400), never middy's 422.
 */
function jsonBody(event: APIGatewayProxyEventV2): unknown {
  const raw = event.body;
  if (raw === undefined || raw === '') return undefined;
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new MalformedError(`body: not valid JSON (${(e as Error).message.slice(0, 120)})`);
  }
}

export interface HttpInput<B, P, Q> {
  body: B;
  params: P;
  query: Q;
  deps: Deps;
  event: APIGatewayProxyEventV2;
}

export interface HttpResult {
  status?: number;
  body: unknown;
}

/**
 * An HTTP API route: path parameters, query string and JSON body (when `body`
 * is given) validated by their schemas before the handler runs, so a refused
 * request touches nothing. Without a `query` schema the route takes no query
 * parameters (any is a 400 naming it).
 */
export function httpRoute<B = undefined, P = Record<string, never>, Q = Record<string, never>>(
  spec: { body?: z.ZodType<B, unknown>; params?: z.ZodType<P, unknown>; query?: z.ZodType<Q, unknown> },
  fn: (input: HttpInput<B, P, Q>) => Promise<HttpResult>,
) {
  const querySchema = (spec.query ?? NoQuery) as z.ZodType<Q, unknown>;
  return observed(middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>())
    .use({
      onError: (request) => {
        const reply = toReply(request.error);
        request.response = json(reply.statusCode, reply.body, reply.headers);
      },
    })
    .handler(async (event: APIGatewayProxyEventV2, _context: Context) => {
      const params = spec.params ? parse(spec.params, event.pathParameters ?? {}, 'path') : ({} as P);
      const query = parse(querySchema, event.queryStringParameters ?? {}, 'query');
      const body = spec.body ? parse(spec.body, jsonBody(event), 'body') : (undefined as B);
      const deps = await getDeps();
      const out = await fn({ body, params, query, deps, event });
      return json(out.status ?? 200, out.body);
    });
}

/** The event an IoT topic rule delivers: `SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic`. */
export interface RuleEvent {
  domain: string;
  thing: string;
  topic: string;
  [field: string]: unknown;
}

const RuleEventSchema = z.looseObject({ domain: z.string(), thing: z.string(), topic: z.string() });

/**
 * An IoT topic rule action (asynchronous Lambda invoke). Retry-class errors
 * are thrown so Lambda retries the event. A final or temporary error that
 * escapes the handler (e.g. an envelope that fails its schema) will never
 * succeed by retrying: it is answered on the sender's `in/{replyKind}` topic
 * (the broker vouched for the topic's domain and thing) and not thrown.
 */
export function ruleHandler<R>(replyKind: InKind, fn: (event: RuleEvent, deps: Deps) => Promise<R>) {
  return observed(middy<unknown, R | { refused: string }>()).handler(async (raw: unknown, _context: Context) => {
    const deps = await getDeps();
    const event = parse(RuleEventSchema, raw, 'event') as RuleEvent;
    // correlation ids: the broker vouched for the sender's domain and thing
    logger.appendKeys({ domain: event.domain, thing: event.thing, topic: event.topic });
    try {
      return await fn(event, deps);
    } catch (e) {
      if (!(e instanceof ObligationError) || e.errorClass === 'retry') {
        logger.error('rule invocation failed; Lambda retries it, then the on-failure destination keeps it', { error: e as Error });
        throw e;
      }
      logger.info('refused', { code: e.code });
      const requestId = typeof event.requestId === 'string' ? event.requestId.slice(0, 64) : null;
      await deps.notifier.publish(topicsUnder(deps.config.topicRoot).toDevice(event.domain, event.thing, replyKind), {
        requestId,
        accepted: false,
        error: toReply(e).body.error as never,
      });
      return { refused: e.code };
    }
  });
}

/** A scheduled job (EventBridge): logs its summary (Logger, info) and returns it. */
export function scheduledJob<R>(name: string, fn: (deps: Deps, event: unknown) => Promise<R>) {
  return observed(middy<unknown, R>()).handler(async (event: unknown, _context: Context) => {
    const deps = await getDeps();
    const started = Date.now();
    logger.appendKeys({ job: name });
    const result = await fn(deps, event);
    if (deps.config.logJobs) logger.info('job done', { ms: Date.now() - started, result: result as never });
    return result;
  });
}

export { parse };

type AnyHandler = (event: never, context: Context) => Promise<unknown>;

const isHttpEvent = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && (e as { requestContext?: { http?: unknown } }).requestContext?.http !== undefined;

/**
 * One Lambda entry serving several event types (the same function behind an
 * HTTP route and an IoT rule or a schedule): the event's shape picks the chain.
 */
export function byEvent(chains: { http: AnyHandler; other: AnyHandler }) {
  return (event: unknown, context: Context): Promise<unknown> =>
    (isHttpEvent(event) ? chains.http : chains.other)(event as never, context);
}

/**
 * One Lambda entry serving several HTTP routes, picked by the event's route key. A route it
 * does not serve (the API's `$default` route: no route matched) is a typed 404 naming it.
 */
export function byRouteKey(routes: Record<string, AnyHandler>) {
  return (event: { routeKey?: string; rawPath?: string; requestContext?: { http?: { method?: string } } }, context: Context): Promise<unknown> => {
    const route = routes[event.routeKey ?? ''];
    if (route) return route(event as never, context);
    const reply = noRoute(event.requestContext?.http?.method ?? '?', event.rawPath ?? '?');
    return Promise.resolve(json(reply.statusCode, reply.body));
  };
}
