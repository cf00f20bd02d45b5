/**
 * A thin JSON-RPC caller over the `bitcoin-core` client (v5): retries
 * transport failures with backoff and turns them into UnavailableError; keeps
 * the server's own answers (negative JSON-RPC codes) as RpcRejection for the
 * adapter to map.
 *
 * bitcoin-core@5 takes `host` as a base URL (default 'http://localhost:8332',
 * src/index.js), sends wallet methods to /wallet/<wallet> when `wallet` is set
 * (methods.js `features.multiwallet`), and answers a batch (an array of
 * {method, parameters}) with an array whose failed entries are Error objects.
 */
import Client from 'bitcoin-core';
import { UnavailableError } from '../../core/errors.ts';

/** Where and how to reach one JSON-RPC server. */
export interface RpcEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
}

export interface RpcCall {
  method: string;
  params: unknown[];
}

/** The server answered with a JSON-RPC error: the call arrived and was refused. */
export class RpcRejection extends Error {
  constructor(
    readonly method: string,
    readonly rpcCode: number,
    message: string,
  ) {
    super(`${method}: ${message} (${rpcCode})`);
    this.name = 'RpcRejection';
  }
}

export interface RpcOptions {
  /** Request timeout, ms (default 10 000). */
  timeoutMs?: number;
  /** Extra attempts after a transport failure (default 2). */
  retries?: number;
  /** First backoff delay, doubled each retry (default 100 ms). */
  retryDelayMs?: number;
}

/** Node-level codes of a connection that failed or timed out (request@2 and node:net). */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** bitcoind is starting (-28 RPC_IN_WARMUP): try again shortly. */
const RPC_IN_WARMUP = -28;

type Failure = { kind: 'transport'; retry: boolean; detail: string } | { kind: 'rejection'; error: RpcRejection };

function classify(method: string, err: unknown): Failure {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (typeof e?.code === 'string') {
    return { kind: 'transport', retry: TRANSPORT_CODES.has(e.code), detail: `${e.code} ${message}` };
  }
  if (typeof e?.code === 'number') {
    // Non-JSON HTTP answers reach us as their status code (bitcoin-core parser.js).
    if (e.code >= 500) return { kind: 'transport', retry: true, detail: `HTTP ${e.code} ${message}` };
    if (e.code >= 400) return { kind: 'transport', retry: false, detail: `HTTP ${e.code} ${message}` };
    if (e.code === RPC_IN_WARMUP) return { kind: 'transport', retry: true, detail: message };
    return { kind: 'rejection', error: new RpcRejection(method, e.code, message) };
  }
  return { kind: 'transport', retry: false, detail: message };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One JSON-RPC server, optionally bound to a bitcoind wallet (/wallet/<name>). */
export class RpcCaller {
  private readonly client: Client;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(
    readonly endpoint: RpcEndpoint,
    options: RpcOptions & { wallet?: string } = {},
  ) {
    this.client = new Client({
      host: `http://${endpoint.host}:${endpoint.port}`,
      username: endpoint.username,
      password: endpoint.password,
      timeout: options.timeoutMs ?? 10_000,
      ...(options.wallet === undefined ? {} : { wallet: options.wallet }),
    });
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  /** Call one method; throws RpcRejection or UnavailableError. */
  async call<T>(method: string, ...params: unknown[]): Promise<T> {
    return (await this.attempt(method, () => this.client.command(method, ...params))) as T;
  }

  /**
   * Send several calls in one HTTP request (a JSON-RPC batch), executed in
   * order by the server. Returns every result in order; the first failed call
   * throws.
   */
  async batchAll(calls: RpcCall[]): Promise<unknown[]> {
    const label = calls.map((c) => c.method).join('+');
    const results = (await this.attempt(label, () =>
      this.client.command(calls.map((c) => ({ method: c.method, parameters: c.params }))),
    )) as unknown[];
    for (const [i, result] of results.entries()) {
      if (result instanceof Error) {
        const failure = classify(calls[i]?.method ?? label, result);
        if (failure.kind === 'rejection') throw failure.error;
        throw new UnavailableError(`bitcoin RPC ${label} failed: ${failure.detail}`);
      }
    }
    return results;
  }

  private async attempt(label: string, send: () => Promise<unknown>): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        const failure = classify(label, err);
        if (failure.kind === 'rejection') throw failure.error;
        if (!failure.retry || attempt >= this.retries) {
          throw new UnavailableError(`bitcoin RPC ${label} failed: ${failure.detail}`, {
            host: this.endpoint.host,
            port: this.endpoint.port,
            attempts: attempt + 1,
          });
        }
        await sleep(this.retryDelayMs * 2 ** attempt);
      }
    }
  }
}
