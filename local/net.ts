/** Loopback listening for the embedded cloud's servers. */
import type { Server } from 'node:net';

/** Listen on 127.0.0.1 (`port` 0 or absent: a free one) and resolve with the bound port. */
export async function listenLoopback(server: Pick<Server, 'once' | 'off' | 'listen' | 'address'>, port = 0, what = 'server'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`${what} has no TCP address`);
  return address.port;
}
