/**
 * bcoin 1.0.2's `listtransactions` reads the wallet's history, then each entry's spent
 * coins, without the wallet's lock: when a fee bump reaches the wallet in between, the
 * original is gone and bcoin's own assertion fails (-32603 "null == true"). Seen under
 * load right after a replacement's broadcast. The adapter must neither fail a broadcast
 * the node took nor a lookup for it. A proxy in front of the real bcoin wallet RPC
 * answers listtransactions with that refusal, as bcoin does, for as many calls as armed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import { UnavailableError } from '../../core/errors.ts';
import { bcoinPaymentsOptions, startRegtest, type RegtestNode } from '../../local/bitcoin.ts';

let node: RegtestNode;
let proxy: http.Server;
/** The proxy's own connections upstream, closed in teardown. */
const upstream = new http.Agent({ keepAlive: true });
let payer: BitcoinPayments;
let payee: BitcoinPayments;
/** listtransactions calls still to refuse; and how many were refused. */
const fault = { armed: 0, refused: 0 };

/** The JSON in `b`, or undefined (a REST answer, an empty body). */
function json(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Forward to bcoin's wallet server; a JSON-RPC batch's listtransactions answers -32603 while armed. */
function startProxy(target: { host: string; port: number }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const up = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: upstream }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          let out = Buffer.concat(parts);
          const calls = json(body);
          const results = json(out);
          if (Array.isArray(calls) && Array.isArray(results) && fault.armed > 0) {
            const at = calls.findIndex((c: { method?: unknown }) => c.method === 'listtransactions');
            if (at >= 0 && at < results.length) {
              results[at] = { result: null, error: { code: -32603, message: 'null == true' }, id: (results[at] as { id?: unknown }).id };
              out = Buffer.from(JSON.stringify(results));
              fault.armed -= 1;
              fault.refused += 1;
            }
          }
          const headers = { ...answer.headers, 'content-length': String(out.length) };
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(out);
        });
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  node = await startRegtest({ walletIds: ['race-payer', 'race-payee'] });
  proxy = await startProxy(node.walletRpc);
  const viaProxy = { ...node, walletRpc: { ...node.walletRpc, host: '127.0.0.1', port: (proxy.address() as AddressInfo).port } };
  payer = new BitcoinPayments(bcoinPaymentsOptions(viaProxy, 'race-payer'));
  payee = new BitcoinPayments(bcoinPaymentsOptions(node, 'race-payee'));
  await payer.mine(101);
});

after(async () => {
  await payer?.close();
  await payee?.close();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  upstream.destroy();
  await node?.stop();
});

describe('bcoin wallet: listtransactions refused (-32603) while the wallet takes a replacement', () => {
  it('a broadcast the node took succeeds even when the wallet refuses to list its history meanwhile', async () => {
    const prepared = await payer.prepareSendMany({ [await payee.newAddress()]: 50_000 });
    fault.armed = 10; // every read of the wait after the broadcast, and more
    fault.refused = 0;
    assert.equal(await payer.broadcast(prepared.hex), prepared.txid);
    assert.ok(fault.refused > 0, 'the wait after the broadcast read the history');
    fault.armed = 0;
    assert.equal((await payer.getTransaction(prepared.txid))?.confirmations, 0, 'in the mempool, as the node said');
    await payer.mine(1);
    assert.equal((await payer.getTransaction(prepared.txid))?.confirmations, 1);
  });

  it('a lookup read again after a moment when the wallet refused it once', async () => {
    const prepared = await payer.prepareSendMany({ [await payee.newAddress()]: 60_000 });
    await payer.broadcast(prepared.hex);
    fault.armed = 1;
    fault.refused = 0;
    assert.equal((await payer.getTransaction(prepared.txid))?.confirmations, 0);
    assert.equal(fault.refused, 1);
    fault.armed = 0;
  });

  it('a lookup refused at every read is a typed error, not a wrong answer', async () => {
    const prepared = await payer.prepareSendMany({ [await payee.newAddress()]: 61_000 });
    await payer.broadcast(prepared.hex);
    fault.refused = 0;
    fault.armed = 3;
    await assert.rejects(payer.getTransaction(prepared.txid), (err) => err instanceof UnavailableError && /null == true/.test(err.message));
    assert.equal(fault.refused, 3, 'read three times, then given up');
    fault.armed = 0;
  });
});
