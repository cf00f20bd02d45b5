/**
 * The embedded regtest node's worker thread (startRegtestInThread in
 * local/bitcoin.ts): bcoin runs here, on its own event loop, serving its RPC
 * on loopback as in the hub's thread; the node's other calls arrive as messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveRegtest, startRegtest, type StartRegtestOptions } from './bitcoin.ts';

if (!parentPort) throw new Error('local/bitcoin-thread.ts runs only as a worker thread (startRegtestInThread)');
const opts = workerData as StartRegtestOptions;
// a Buffer crosses threads as a plain Uint8Array
const node = await startRegtest(opts.walletSeed ? { ...opts, walletSeed: Buffer.from(opts.walletSeed) } : opts);
serveRegtest(node, parentPort);
