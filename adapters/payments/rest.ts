/**
 * A bare JSON-over-HTTP call for the few bcoin wallet-server REST routes that
 * have no JSON-RPC equivalent (wallet creation, transaction creation without
 * broadcast). Basic auth with the API key as password, as bcoin's wallet
 * server expects. One connection per call (`agent: false`): nothing stays open.
 */
import http from 'node:http';
import { UnavailableError } from '../../core/errors.ts';
import type { RpcEndpoint } from './rpc.ts';

export interface RestAnswer {
  status: number;
  body: unknown;
  /** bweb error bodies are {error: {type, message}}; empty strings otherwise. */
  errorType: string;
  errorMessage: string;
}

export async function restCall(
  endpoint: RpcEndpoint,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<RestAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const auth = Buffer.from(`${endpoint.username}:${endpoint.password}`).toString('base64');
  const text = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: endpoint.host,
        port: endpoint.port,
        method,
        path,
        agent: false,
        timeout: timeoutMs,
        headers: {
          authorization: `Basic ${auth}`,
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  }).catch((err: unknown) => {
    throw new UnavailableError(`bcoin wallet ${method} ${path} failed: ${(err as Error).message}`, {
      host: endpoint.host,
      port: endpoint.port,
    });
  });
  let parsed: unknown = null;
  try {
    parsed = text.text === '' ? null : JSON.parse(text.text);
  } catch {
    parsed = text.text;
  }
  const error = (parsed as { error?: { type?: unknown; message?: unknown } } | null)?.error;
  return {
    status: text.status,
    body: parsed,
    errorType: typeof error?.type === 'string' ? error.type : '',
    errorMessage: typeof error?.message === 'string' ? error.message : '',
  };
}
