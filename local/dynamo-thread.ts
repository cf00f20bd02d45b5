/**
 * The embedded DynamoDB's worker thread (serveFrontInThread in local/dynamo.ts):
 * dynalite and its front run here, on their own event loop; the hub's thread
 * sends each request as a message and gets the front's reply back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveFront, type ThreadMessage, type ThreadRequest } from './dynamo-front.ts';

const port = parentPort;
if (!port) throw new Error('local/dynamo-thread.ts runs only as a worker thread (serveFrontInThread)');
const served = await serveFront(workerData as { path?: string; port?: number });
const post = (m: ThreadMessage): void => port.postMessage(m);
port.on('message', (m: ThreadRequest) => {
  if (m.kind === 'stop') {
    void served.stop().finally(() => {
      post({ kind: 'stopped' });
      port.close();
    });
    return;
  }
  served.front(m.headers, m.raw, m.method, m.url).then(
    (reply) => post({ kind: 'reply', id: m.id, reply }),
    (e: unknown) => post({ kind: 'reply', id: m.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
post({ kind: 'ready', endpoint: served.endpoint });
