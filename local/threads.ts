/**
 * A stand-in in a worker thread of its own, answering the hub's thread by
 * message: what the embedded DynamoDB (local/dynamo.ts) and the bcoin regtest
 * node (local/bitcoin.ts) use to run on the other core. The hub's thread sends
 * `{ kind: 'call', id, body }`; the thread answers each with a result or a
 * failure, after first announcing itself ready with what the hub needs to know
 * (an endpoint, RPC addresses). A call in flight when the thread ends, and any
 * call after, fails with the error `ended` makes.
 */
import { Worker, type MessagePort } from 'node:worker_threads';
import { UnavailableError } from '../core/errors.ts';

type ToThread = { kind: 'call'; id: number; body: unknown } | { kind: 'stop' };
type FromThread =
  | { kind: 'ready'; value: unknown }
  | { kind: 'stopped' }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'failed'; id: number; message: string; unavailable: boolean };

export interface ThreadLink<Ready> {
  /** What the thread announced once started. */
  readonly ready: Ready;
  /** One request; resolves to the thread's answer (a failure there is an Error here, an UnavailableError if it was one). */
  call(body: unknown): Promise<unknown>;
  /** Ask the thread to stop its stand-in, then end it. */
  stop(): Promise<void>;
}

/**
 * Start the worker `entry` (a module that calls serveInThread) with `data`;
 * resolves once it is ready. `lost` hears, once, of a thread that ended after it
 * was ready without being asked to stop (an uncaught error in it): what the
 * hub should tell its user, since every later call will fail.
 */
export async function startThread<Ready>(entry: URL, data: unknown, ended: (why: string) => Error, lost?: (e: Error) => void): Promise<ThreadLink<Ready>> {
  const worker = new Worker(entry, { workerData: data });
  // only a running thread's end is a loss: one that fails to start rejects startThread, one asked to stop is not lost
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let gone: Error | undefined;
  let stopped: (() => void) | undefined;
  let ready: ((v: unknown) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  const started = new Promise<unknown>((resolve, reject) => ((ready = resolve), (failed = reject)));
  const end = (e: Error): void => {
    if (gone === undefined && phase === 'running') lost?.(e);
    gone ??= e;
    for (const w of waiting.values()) w.reject(gone);
    waiting.clear();
    failed?.(gone);
  };
  worker.on('message', (m: FromThread) => {
    if (m.kind === 'ready') ready?.(m.value);
    else if (m.kind === 'stopped') stopped?.();
    else {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.kind === 'result') w?.resolve(m.value);
      else w?.reject(m.unavailable ? new UnavailableError(m.message) : new Error(m.message));
    }
  });
  worker.on('error', (e) => end(ended(`failed: ${e.message}`)));
  worker.on('exit', () => end(ended('is stopped')));
  const value = (await started) as Ready;
  phase = 'running';
  let next = 0;
  const send = (m: ToThread): void => worker.postMessage(m);
  return {
    ready: value,
    call: (body) =>
      new Promise((resolve, reject) => {
        if (gone) return reject(gone);
        const id = next++;
        waiting.set(id, { resolve, reject });
        send({ kind: 'call', id, body });
      }),
    async stop() {
      phase = 'stopping';
      if (!gone) {
        await new Promise<void>((resolve) => {
          stopped = resolve;
          worker.once('exit', () => resolve());
          send({ kind: 'stop' });
        });
      }
      await worker.terminate();
    },
  };
}

/** In the worker: announce `ready`, answer each call with `handle`, and on stop run `stop` and end. */
export function serveInThread<Body>(port: MessagePort, ready: unknown, handle: (body: Body) => Promise<unknown>, stop: () => Promise<void>): void {
  const post = (m: FromThread): void => port.postMessage(m);
  port.on('message', (m: ToThread) => {
    if (m.kind === 'stop') {
      void stop().finally(() => {
        post({ kind: 'stopped' });
        port.close();
      });
      return;
    }
    handle(m.body as Body).then(
      (value) => post({ kind: 'result', id: m.id, value }),
      (e: unknown) => post({ kind: 'failed', id: m.id, message: e instanceof Error ? e.message : String(e), unavailable: e instanceof UnavailableError }),
    );
  });
  post({ kind: 'ready', value: ready });
}

/** A hub's `lost` report for the stand-in `what`: one line through `log`, since every later request to it fails. */
export function lostThread(what: string, log: (message: string, error: unknown) => void): (e: Error) => void {
  return (e) => log(`${what} stopped unexpectedly; the hub's requests to it will fail`, e);
}
