/**
 * The one place where errors become replies. Typed ObligationErrors keep
 * their code and class; other HTTP errors with a 4xx status keep it; anything
 * else is a generic 500 and is logged, never serialised to the caller. A
 * retry-class error (503: a dependency is down) keeps its code but not its
 * message or details, which name hosts, ports, ARNs and raw AWS or RPC
 * messages: those go to the log only.
 */
import { NotFoundError, ObligationError } from '../../core/errors.ts';
import { logger } from './observability.ts';

/** What a caller reads in every retry-class (503) reply, whatever failed. */
export const RETRY_MESSAGE = 'a dependency is unavailable; retry later';

export interface ErrorReply {
  statusCode: number;
  body: { error: { code: string; class: string; message: string; details?: Record<string, unknown> } };
  headers?: Record<string, string>;
}

const STATUS_BY_CODE: Record<string, number> = {
  F04_REPLAY: 409,
  F07_UNKNOWN_DOMAIN: 404,
  F08_FORBIDDEN: 403,
  F09_NOT_FOUND: 404,
  F13_EXISTS: 409,
  F14_REVOKED: 403,
  T01_REPUTATION_TOO_LOW: 403,
  T02_OVER_CREDIT: 402,
};

const STATUS_BY_CLASS = { final: 400, temporary: 409, retry: 503 } as const;

export function toReply(error: unknown, log: (msg: string, e: unknown) => void = defaultLog): ErrorReply {
  if (error instanceof ObligationError) {
    const statusCode = STATUS_BY_CODE[error.code] ?? STATUS_BY_CLASS[error.errorClass];
    if (error.errorClass === 'retry') {
      log('dependency unavailable', error);
      return {
        statusCode,
        body: { error: { code: error.code, class: 'retry', message: RETRY_MESSAGE } },
        headers: { 'retry-after': '1' },
      };
    }
    return { statusCode, body: { error: error.toJSON() } };
  }
  const e = error as { statusCode?: number; expose?: boolean; message?: string } | null;
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 && e.expose !== false) {
    return {
      statusCode: e.statusCode,
      body: { error: { code: `HTTP_${e.statusCode}`, class: 'final', message: e.message ?? 'bad request' } },
    };
  }
  log('unhandled error', error);
  return {
    statusCode: 500,
    body: { error: { code: 'INTERNAL', class: 'retry', message: 'Internal Server Error' } },
  };
}

/** The `$default` route's reply (functions/routes.ts DEFAULT_ROUTE): a typed 404 naming what was asked. */
export function noRoute(method: string, path: string): ErrorReply {
  const clipped = path.length > 120 ? `${path.slice(0, 120)}…` : path;
  return toReply(
    new NotFoundError(`no route ${method} ${clipped}: the API's routes are listed in docs/api.md`, { method: method.slice(0, 16), path: clipped }),
  );
}

function defaultLog(msg: string, e: unknown): void {
  const details = e instanceof ObligationError ? { code: e.code, details: e.details as never } : {};
  logger.error(msg, { ...details, error: e instanceof Error ? e : new Error(String(e)) });
}
