/**
 * A tiny JSON-RPC server on 127.0.0.1:0 for the MultiChain adapter tests. It
 * records every request (method, params, chain_name, auth header) and answers
 * with whatever the handler returns: a fixture, or a stateful fake's reply.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

export interface RpcRequest {
  method: string;
  params: unknown[];
  chainName: unknown;
  id: unknown;
  authorization: string | undefined;
}

/** One HTTP reply: status and JSON body (or raw text). */
export interface RpcReply {
  status: number;
  body?: unknown;
  raw?: string;
}

export interface RpcServer {
  url: string;
  requests: RpcRequest[];
  close(): Promise<void>;
}

export const RPC_USER = 'multichainrpc';
export const RPC_PASSWORD = 'test-password';
export const CHAIN = 'oc-chain';
export const BASIC = `Basic ${Buffer.from(`${RPC_USER}:${RPC_PASSWORD}`).toString('base64')}`;

/** Load test/fixtures/multichain/<name>.json as an RpcReply. */
export function fixture(name: string): RpcReply {
  const url = new URL(`../fixtures/multichain/${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as RpcReply;
}

/** The same reply with the request's id echoed, as multichaind does. */
export function withId(reply: RpcReply, id: unknown): RpcReply {
  if (typeof reply.body === 'object' && reply.body !== null && !Array.isArray(reply.body)) {
    return { ...reply, body: { ...(reply.body as Record<string, unknown>), id } };
  }
  return reply;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startRpcServer(handler: (req: RpcRequest) => RpcReply | Promise<RpcReply>): Promise<RpcServer> {
  const requests: RpcRequest[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const text = await readBody(req);
      const body = JSON.parse(text) as { method: string; params?: unknown[]; chain_name?: unknown; id?: unknown };
      const request: RpcRequest = {
        method: body.method,
        params: body.params ?? [],
        chainName: body.chain_name,
        id: body.id,
        authorization: req.headers.authorization,
      };
      requests.push(request);
      const reply = await handler(request);
      const payload = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(payload);
    })().catch((err: unknown) => {
      res.writeHead(599);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
