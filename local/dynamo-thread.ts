/**
 * The embedded DynamoDB's worker thread (serveFrontInThread in local/dynamo.ts):
 * dynalite and its front run here, on their own event loop; the hub's thread
 * sends each request as a message (local/threads.ts) and gets the front's reply back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveFront, type FrontCall } from './dynamo-front.ts';
import { serveInThread } from './threads.ts';

if (!parentPort) throw new Error('local/dynamo-thread.ts runs only as a worker thread (serveFrontInThread)');
const served = await serveFront(workerData as { path?: string; port?: number });
serveInThread(parentPort, served.endpoint, (m: FrontCall) => served.front(m.headers, m.raw, m.method, m.url), () => served.stop());
