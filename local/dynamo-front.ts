/**
 * The embedded DynamoDB's engine: dynalite behind the transaction front
 * (local/transact.ts), served on 127.0.0.1. local/dynamo.ts runs it in the hub's
 * thread or, through local/dynamo-thread.ts, in a worker thread of its own; this
 * module loads no AWS SDK, so that thread starts quickly.
 */
import { createRequire } from 'node:module';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { closeFront, frontServer, transactHandler, withStore, type DynamoFront } from './transact.ts';
import { listenLoopback } from './net.ts';

/** dynalite 4 options we use (it ships no types). */
interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}
type Dynalite = (opts: DynaliteOptions) => Server;

const require = createRequire(import.meta.url);

/** The front (dynalite behind local/transact.ts) served on 127.0.0.1: its endpoint, the front itself, and how to stop both. */
export interface ServedFront {
  readonly endpoint: string;
  readonly front: DynamoFront;
  stop(): Promise<void>;
}

/** Start dynalite and its front in this thread, the front also served on 127.0.0.1 (`port`, or a free one). */
export async function serveFront(opts: { path?: string; port?: number } = {}): Promise<ServedFront> {
  const dynalite = require('dynalite') as Dynalite;
  const dynaliteOptions: DynaliteOptions = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 };
  if (opts.path !== undefined) dynaliteOptions.path = opts.path;
  const { inner, store } = withStore(() => dynalite(dynaliteOptions));
  // dynalite is invoked in-process by the front; it listens only so that its close() (which closes LevelDB) works
  await listenLoopback(inner, 0, 'dynalite');
  const front = transactHandler(inner, { store });
  const server = frontServer(front);
  const endpoint = `http://127.0.0.1:${await listenLoopback(server, opts.port, 'dynamo front')}`;
  const stop = async (): Promise<void> => {
    await closeFront(inner);
    await new Promise<void>((resolve, reject) => {
      server.close((err?: Error) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
    await new Promise<void>((resolve, reject) => {
      // dynalite's close() also closes its LevelDB store once the HTTP server is closed.
      inner.close((err?: Error) => (err ? reject(err) : resolve()));
      inner.closeAllConnections();
    });
  };
  return { endpoint, front, stop };
}

/** One request to the front in its thread (local/dynamo-thread.ts): the JSON body as text. */
export interface FrontCall {
  headers: IncomingHttpHeaders;
  raw: string;
  method?: string;
  url?: string;
}
