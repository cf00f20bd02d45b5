/**
 * Lambda runtime stand-ins for the embedded cloud: a plausible invocation
 * Context, and asynchronous invocation with Lambda's retry semantics.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'aws-lambda';

/** Account and region the embedded cloud pretends to run in. */
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_REGION = 'us-east-1';

export interface LambdaContextOptions {
  /** Configured function timeout; drives getRemainingTimeInMillis. Default 30 s. */
  timeoutMs?: number;
  memoryMB?: number;
}

/** A fresh invocation Context for `functionName`, with a new awsRequestId. */
export function lambdaContext(functionName: string, opts: LambdaContextOptions = {}): Context {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const noop = (): void => {};
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(opts.memoryMB ?? 256),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${requestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: noop,
    fail: noop,
    succeed: noop,
  };
}

/** A handler as invoked asynchronously; rule handlers that ignore the context fit too. */
export type AsyncHandler<E> = (event: E, context: Context) => Promise<unknown>;

export interface InvokeAsyncOptions {
  /** Further attempts after the first failure. Lambda's default for async invocation is 2. */
  retries?: number;
  /** Wait before retry n (1-based) is backoffMs[n-1], or the last entry. Real Lambda waits ~1 min then ~2 min; we keep the shape, not the length. */
  backoffMs?: readonly number[];
  /** Function name for the Context. */
  functionName?: string;
  /** Told about each failed attempt (for logs and counters). */
  onAttemptFailed?: (error: unknown, attempt: number) => void;
}

export type InvokeOutcome =
  | { ok: true; result: unknown; attempts: number }
  | { ok: false; error: unknown; attempts: number };

/**
 * Invoke `handler` the way Lambda runs an asynchronous (Event) invocation:
 * on error it is retried up to `retries` more times, each attempt with a fresh Context.
 * AWS docs (invocation-async-error-handling): "If the function returns an error, by default
 * Lambda attempts to run it two more times, with a one-minute wait between the first two
 * attempts, and two minutes between the second and third" (MaximumRetryAttempts 0..2).
 * Locally the waits are milliseconds.
 * Never rejects: the outcome says whether it finally succeeded, so the caller can
 * run an on-failure destination / error action.
 */
export async function invokeAsync<E>(
  handler: AsyncHandler<E>,
  event: E,
  opts: InvokeAsyncOptions = {},
): Promise<InvokeOutcome> {
  const retries = opts.retries ?? 2;
  const backoff = opts.backoffMs ?? [50, 100];
  const name = opts.functionName ?? 'local-function';
  let lastError: unknown;
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    if (attempt > 1) {
      const wait = backoff[Math.min(attempt - 2, backoff.length - 1)] ?? 0;
      if (wait > 0) await sleep(wait);
    }
    try {
      const result = await handler(event, lambdaContext(name));
      return { ok: true, result, attempts: attempt };
    } catch (error) {
      lastError = error;
      opts.onAttemptFailed?.(error, attempt);
    }
  }
  return { ok: false, error: lastError, attempts: retries + 1 };
}

/** The message of an unknown thrown value, for error records (never the raw error). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
