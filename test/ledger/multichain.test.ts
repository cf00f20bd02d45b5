import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MultiChainLedger, type MultiChainLedgerOptions } from '../../adapters/ledger/multichain.ts';
import { ForbiddenError, LedgerMisconfiguredError, LedgerRefusedError, MalformedError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';
import type { LedgerItem, PositionedItem } from '../../adapters/ports.ts';
import { ledgerContract } from './contract.ts';
import { FAKE_MAX_TX_BYTES, NODE_ADDRESS, startFakeMultiChain } from './fake-multichain.ts';
import {
  BASIC,
  CHAIN,
  RPC_PASSWORD,
  RPC_USER,
  fixture,
  startRpcServer,
  withId,
  type RpcReply,
  type RpcServer,
} from './rpc-server.ts';

type TestCtx = { after: (fn: () => Promise<void>) => void };

/** Options for tests: fast backoff, no real sleeping. */
function options(url: string, extra: Partial<MultiChainLedgerOptions> = {}): MultiChainLedgerOptions {
  return {
    url,
    user: RPC_USER,
    password: RPC_PASSWORD,
    chainName: CHAIN,
    backoffBaseMs: 1,
    sleep: async () => {},
    ...extra,
  };
}

ledgerContract('MultiChainLedger (stateful fake node)', async () => {
  const { server } = await startFakeMultiChain();
  return { ledger: new MultiChainLedger(options(server.url, { pageSize: 3 })), cleanup: () => server.close() };
});

/** A server that answers a fixed script of replies, checking each request's method. */
async function scripted(t: TestCtx, steps: { method: string; reply: RpcReply }[]): Promise<RpcServer> {
  let next = 0;
  const server = await startRpcServer((req) => {
    const step = steps[next++];
    if (!step) return { status: 599, raw: `unexpected extra request ${req.method}` };
    if (step.method !== req.method) return { status: 599, raw: `expected ${step.method}, got ${req.method}` };
    return withId(step.reply, req.id);
  });
  t.after(() => server.close());
  return server;
}

const ID = '5b0e1c7f2d4a9e3b6c8f1a0d2e4b6c8a9f1e3d5c7b9a0e2f4d6c8b0a1e3f5d7c';
const serverError: RpcReply = { status: 500, raw: '' };
/** The data of the item in fixtures/liststreamkeyitems.json, with its keys in another order. */
const FIXTURE_DATA = { acceptance: { sig: 'c2ln', by: 'sp.example' }, obligation: { amount: 1500, id: ID } };

/** Every request carried the credentials and the chain name. */
function assertWellFormed(server: RpcServer): void {
  for (const r of server.requests) {
    assert.equal(r.authorization, BASIC, `auth header on ${r.method}`);
    assert.equal(r.chainName, CHAIN, `chain_name on ${r.method}`);
    assert.ok(r.id !== undefined && r.id !== null);
  }
}

describe('MultiChainLedger against documented responses', () => {
  it('ensureStreams creates only missing streams and subscribes to unsubscribed ones', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreams', reply: fixture('liststreams') },
      { method: 'create', reply: fixture('create') },
      { method: 'subscribe', reply: fixture('subscribe') },
    ]);
    await new MultiChainLedger(options(server.url)).ensureStreams();
    assert.deepEqual(
      server.requests.map((r) => [r.method, r.params]),
      [
        ['liststreams', []],
        ['create', ['stream', 'settlements', false]],
        ['subscribe', [['domains', 'settlements']]],
      ],
    );
    assertWellFormed(server);
  });

  it('ensureStreams treats "already exists" (-705) on create as success', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreams', reply: fixture('liststreams') },
      { method: 'create', reply: fixture('create-duplicate') },
      { method: 'subscribe', reply: fixture('subscribe') },
    ]);
    await new MultiChainLedger(options(server.url)).ensureStreams();
    assert.equal(server.requests.length, 3);
  });

  it('publish checks the id key, then publishes id-first keys with {"json": data} from the node\'s own address', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
      { method: 'getaddresses', reply: fixture('getaddresses') },
      { method: 'publishfrom', reply: fixture('publish') },
    ]);
    const data = { obligation: { amount: 1500 } };
    const res = await new MultiChainLedger(options(server.url)).publish('obligations', ID, ['sp.example', ID, 'sc.example'], data);
    assert.deepEqual(res, { txid: 'd86e7a0b5c3f4e2a9b1c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a', duplicate: false });
    assert.deepEqual(server.requests[0]!.params, ['obligations', ID, false, 500, 0, false]);
    assert.deepEqual(server.requests[1]!.params, [false]);
    assert.deepEqual(server.requests[2]!.params, [NODE_ADDRESS, 'obligations', [ID, 'sp.example', 'sc.example'], { json: data }]);
    assertWellFormed(server);
  });

  it('publish uses publishfrom when a publisher address is configured', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
      { method: 'publishfrom', reply: fixture('publish') },
    ]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
    await ledger.publish('domains', 'dom-sp', [], { d: 1 });
    assert.deepEqual(server.requests[1]!.params, [NODE_ADDRESS, 'domains', ['dom-sp'], { json: { d: 1 } }]);
  });

  it('publish of our own item (our address, canonically equal data) is a duplicate and sends no publish', async (t) => {
    const server = await scripted(t, [{ method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') }]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
    const res = await ledger.publish('obligations', ID, ['sp.example'], FIXTURE_DATA);
    assert.deepEqual(res, { txid: 'e4d1b7a29c3f5e8d0a6b4c2e1f9d7a5b3c1e0f8d6a4b2c9e7f5d3a1b0c8e6f4d', duplicate: true });
    assert.deepEqual(server.requests.map((r) => r.method), ['liststreamkeyitems']);
  });

  it('without a configured publisher, "ours" means the node\'s own address (getaddresses, read once)', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') },
      { method: 'getaddresses', reply: fixture('getaddresses') },
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') },
    ]);
    const ledger = new MultiChainLedger(options(server.url));
    assert.equal((await ledger.publish('obligations', ID, [], FIXTURE_DATA)).duplicate, true);
    assert.equal((await ledger.publish('obligations', ID, [], FIXTURE_DATA)).duplicate, true);
    assert.deepEqual(server.requests[1]!.params, [false]);
  });

  it('an item under our id from another address (a squatter) does not stop our publish', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') },
      { method: 'publishfrom', reply: fixture('publish') },
    ]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: '1OtherHubAddressXXXXXXXXXXXXXXXXXX' }));
    const res = await ledger.publish('obligations', ID, ['sp.example'], FIXTURE_DATA);
    assert.equal(res.duplicate, false);
    assert.deepEqual(server.requests.map((r) => r.method), ['liststreamkeyitems', 'publishfrom']);
  });

  it('our own earlier item under the id with other data does not stop the publish either', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') },
      { method: 'publishfrom', reply: fixture('publish') },
    ]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
    assert.equal((await ledger.publish('obligations', ID, [], { ...FIXTURE_DATA, extra: 1 })).duplicate, false);
  });

  it('maps a liststreamkeyitems item: keys, data.json, first publisher, confirmations, blocktime', async (t) => {
    const server = await scripted(t, [{ method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') }]);
    const items = await new MultiChainLedger(options(server.url)).listByKey('obligations', 'sp.example');
    assert.deepEqual(server.requests[0]!.params, ['obligations', 'sp.example', false, 500, 0, false]);
    assert.deepEqual(items, [
      {
        stream: 'obligations',
        keys: [ID, 'sp.example', 'sc.example'],
        data: { obligation: { id: ID, amount: 1500 }, acceptance: { by: 'sp.example', sig: 'c2ln' } },
        txid: 'e4d1b7a29c3f5e8d0a6b4c2e1f9d7a5b3c1e0f8d6a4b2c9e7f5d3a1b0c8e6f4d',
        publisher: '1HGMosmcKEPUnwD2DzNUfQ46HCA9Th4mBZCZEF',
        confirmations: 12,
        time: 1732492861 * 1000,
      },
    ]);
  });

  it('maps liststreamitems: JSON, hex and text data, legacy key, unconfirmed item without blocktime', async (t) => {
    // three transactions of one item each: liststreamtxitems answers the same items
    const server = await scripted(t, [
      { method: 'liststreamitems', reply: fixture('liststreamitems') },
      { method: 'liststreamtxitems', reply: fixture('liststreamitems') },
    ]);
    const items = await new MultiChainLedger(options(server.url, { now: () => 42_000 })).list('domains');
    assert.deepEqual(server.requests[0]!.params, ['domains', true, 500, 0, true], 'local ordering (stable positions), verbose (vout)');
    assert.deepEqual(server.requests[1]!.params, [
      'domains',
      ['0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c', '1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d', '2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e'],
      true,
    ]);
    assert.equal(items.length, 3);
    assert.deepEqual(items.map((i) => i.position), [0, 1, 2]);
    assert.deepEqual(items.map((i) => i.data), [{ domain: 'sc.example', version: 1 }, { domain: 'sp.example' }, 'plain text item']);
    assert.deepEqual(items[1]!.keys, ['legacy-key']);
    assert.equal(items[1]!.publisher, '1HGMosmcKEPUnwD2DzNUfQ46HCA9Th4mBZCZEF');
    assert.equal(items[2]!.confirmations, 0);
    assert.equal(items[2]!.time, 42_000, 'no blocktime yet: the local clock');
    assert.equal(items[0]!.time, 1732490000 * 1000);
  });

  it('fetches data above maxshowndata with gettxoutdata', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamitems', reply: fixture('liststreamitems-large') },
      { method: 'liststreamtxitems', reply: fixture('liststreamitems-large') },
      { method: 'gettxoutdata', reply: fixture('gettxoutdata') },
    ]);
    const [item] = await new MultiChainLedger(options(server.url)).list('settlements', 0, 10);
    assert.deepEqual(server.requests[2]!.params, ['3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f', 0]);
    assert.equal((item!.data as { phase: string }).phase, 'broadcast');
  });

  it('health reads getinfo', async (t) => {
    const server = await scripted(t, [{ method: 'getinfo', reply: fixture('getinfo') }]);
    const h = await new MultiChainLedger(options(server.url)).health();
    assert.equal(h.ok, true);
    assert.match(h.detail, /2\.3\.3.*oc-chain.*1042/);
  });

  it('maps -708 (entity not found) to NotFoundError and -704 (permissions) to ForbiddenError', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamitems', reply: fixture('error-stream-not-found') },
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
      { method: 'publishfrom', reply: fixture('error-insufficient-permissions') },
    ]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
    await assert.rejects(ledger.list('domains'), NotFoundError);
    await assert.rejects(ledger.publish('domains', 'd1', [], 1), ForbiddenError);
    assert.equal(server.requests.length, 3, 'deterministic errors are not retried');
  });
});

describe('MultiChainLedger faults', () => {
  it('retries a 500 with jittered backoff, then succeeds', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamitems', reply: serverError },
      { method: 'liststreamitems', reply: serverError },
      { method: 'liststreamitems', reply: fixture('liststreamitems') },
      { method: 'liststreamtxitems', reply: fixture('liststreamitems') },
    ]);
    const delays: number[] = [];
    const ledger = new MultiChainLedger(
      options(server.url, { backoffBaseMs: 100, sleep: async (ms) => void delays.push(ms), random: () => 0.5 }),
    );
    assert.equal((await ledger.list('domains')).length, 3);
    assert.equal(server.requests.length, 4);
    assert.deepEqual(delays, [75, 150]);
  });

  it('health makes a single attempt and reports a failure instead of throwing', async (t) => {
    const server = await scripted(t, [{ method: 'getinfo', reply: serverError }]);
    const h = await new MultiChainLedger(options(server.url)).health();
    assert.equal(h.ok, false);
    assert.match(h.detail, /HTTP 500/);
    assert.equal(server.requests.length, 1);
  });

  it('backs off exponentially within [cap/2, cap] and gives up with UnavailableError', async (t) => {
    const server = await scripted(t, Array.from({ length: 5 }, () => ({ method: 'liststreamitems', reply: serverError })));
    const delays: number[] = [];
    let r = 0;
    const randoms = [0, 0.999, 0.5, 0.25];
    const ledger = new MultiChainLedger(
      options(server.url, { retries: 4, backoffBaseMs: 100, sleep: async (ms) => void delays.push(ms), random: () => randoms[r++]! }),
    );
    await assert.rejects(ledger.list('domains'), (err: unknown) => {
      assert.ok(err instanceof UnavailableError);
      assert.match(err.message, /after 5 attempts/);
      return true;
    });
    assert.equal(server.requests.length, 5);
    assert.equal(delays.length, 4);
    [100, 200, 400, 800].forEach((cap, i) => {
      assert.ok(delays[i]! >= cap / 2 && delays[i]! <= cap, `delay ${i} = ${delays[i]} within [${cap / 2}, ${cap}]`);
    });
  });

  it('retries while the node warms up (-28)', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamitems', reply: fixture('error-warmup') },
      { method: 'liststreamitems', reply: fixture('liststreamitems') },
      { method: 'liststreamtxitems', reply: fixture('liststreamitems') },
    ]);
    assert.equal((await new MultiChainLedger(options(server.url)).list('domains')).length, 3);
  });

  it('after a failed publish, looks for the id again before publishing', async (t) => {
    const server = await scripted(t, [
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
      { method: 'publishfrom', reply: serverError },
      { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems') },
    ]);
    const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
    const res = await ledger.publish('obligations', ID, [], FIXTURE_DATA);
    assert.equal(res.duplicate, true, 'the first publish had landed: no second write');
    assert.deepEqual(server.requests.map((r) => r.method), ['liststreamkeyitems', 'publishfrom', 'liststreamkeyitems']);
  });

  it('a rejected password is a ForbiddenError, not retried', async (t) => {
    const server = await scripted(t, [{ method: 'liststreamitems', reply: { status: 401, raw: '' } }]);
    await assert.rejects(new MultiChainLedger(options(server.url)).list('domains'), ForbiddenError);
    assert.equal(server.requests.length, 1);
  });

  it('the stateful node refuses a wrong password', async (t) => {
    const { server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { password: 'wrong' }));
    await assert.rejects(ledger.ensureStreams(), ForbiddenError);
    assert.equal((await ledger.health()).ok, false);
  });

  it('a node that is down (connection refused) gives UnavailableError after the retries', async (t) => {
    const server = await startRpcServer(() => ({ status: 200, body: { result: null, error: null, id: 1 } }));
    const url = server.url;
    await server.close();
    let sleeps = 0;
    const ledger = new MultiChainLedger(options(url, { retries: 2, sleep: async () => void sleeps++ }));
    t.after(() => ledger.close());
    await assert.rejects(ledger.publish('obligations', ID, [], 1), UnavailableError);
    assert.equal(sleeps, 2);
    const h = await ledger.health();
    assert.equal(h.ok, false);
    assert.match(h.detail, /ECONNREFUSED|fetch failed/);
  });

  it('a node that never answers times out and is reported unavailable', async (t) => {
    const server = await startRpcServer(() => new Promise<RpcReply>(() => {}));
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { retries: 1, timeoutMs: 50 }));
    await assert.rejects(ledger.list('domains'), UnavailableError);
    assert.equal(server.requests.length, 2);
  });

  it('pages liststreamitems and liststreamkeyitems by pageSize', async (t) => {
    const { server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { pageSize: 2 }));
    await ledger.ensureStreams();
    for (let i = 0; i < 5; i += 1) await ledger.publish('obligations', `id-${i}`, ['sp.example'], i);
    server.requests.length = 0;
    const listings = () => server.requests.filter((r) => r.method !== 'liststreamtxitems');
    assert.deepEqual((await ledger.list('obligations')).map((i) => i.data), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      listings().map((r) => r.params.slice(2, 4)),
      [[2, 0], [2, 2], [2, 4]],
    );
    assert.deepEqual(server.requests.map((r) => r.method), ['liststreamitems', 'liststreamtxitems', 'liststreamitems', 'liststreamtxitems', 'liststreamitems', 'liststreamtxitems'], 'one expansion per page');
    server.requests.length = 0;
    assert.deepEqual((await ledger.listByKey('obligations', 'sp.example')).map((i) => i.data), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      server.requests.map((r) => r.params.slice(3, 5)),
      [[2, 0], [2, 2], [2, 4]],
    );
    server.requests.length = 0;
    assert.deepEqual((await ledger.list('obligations', 1, 3)).map((i) => i.data), [1, 2, 3]);
    assert.deepEqual(listings().map((r) => r.params.slice(2, 4)), [[2, 1], [1, 3]]);
  });
});

describe('MultiChainLedger: final errors an operator must see (not the retryable UnavailableError)', () => {
  const rpcError = (code: number, message: string, status = 500): RpcReply => ({ status, body: { result: null, error: { code, message }, id: 1 } });

  it('a wrong chain name (HTTP 400, -32600) is LedgerMisconfiguredError, tried once, and health says so', async (t) => {
    const { server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { chainName: 'not-this-chain' }));
    await assert.rejects(ledger.list('domains'), (e: unknown) => e instanceof LedgerMisconfiguredError && e.errorClass === 'final' && (e.details as { rpcCode?: number }).rpcCode === -32600);
    assert.equal(server.requests.length, 1, 'not retried');
    const h = await ledger.health();
    assert.equal(h.ok, false);
    assert.match(h.detail, /^F16_LEDGER_MISCONFIGURED: .*wrong chain/i);
  });

  for (const [code, message] of [
    [-5, 'Invalid address'],
    [-709, 'Private key for from-address is not found in this wallet'],
  ] as const) {
    it(`a publisher not in the wallet (${code} on publishfrom) is LedgerMisconfiguredError, not retried`, async (t) => {
      const server = await scripted(t, [
        { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
        { method: 'publishfrom', reply: rpcError(code, message) },
      ]);
      const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
      await assert.rejects(ledger.publish('domains', 'd1', [], 1), LedgerMisconfiguredError);
      assert.equal(server.requests.length, 2);
    });
  }

  it('health reports a configured publisher that is not this node\'s own', async (t) => {
    const { server } = await startFakeMultiChain();
    t.after(() => server.close());
    assert.equal((await new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS })).health()).ok, true);
    const h = await new MultiChainLedger(options(server.url, { publisher: '1OtherHubAddressXXXXXXXXXXXXXXXXXX' })).health();
    assert.equal(h.ok, false);
    assert.match(h.detail, /^F16_LEDGER_MISCONFIGURED: publisher 1OtherHub\S+ is not an address of this node's wallet/);
  });

  for (const [code, message] of [
    [-8, 'Transaction too large'],
    [-26, 'Rejected'],
  ] as const) {
    it(`a too-large item (${code} on publishfrom) is LedgerRefusedError for that item, not retried`, async (t) => {
      const server = await scripted(t, [
        { method: 'liststreamkeyitems', reply: fixture('liststreamkeyitems-empty') },
        { method: 'publishfrom', reply: rpcError(code, message) },
      ]);
      const ledger = new MultiChainLedger(options(server.url, { publisher: NODE_ADDRESS }));
      await assert.rejects(ledger.publish('domains', 'd1', [], 1), (e: unknown) => e instanceof LedgerRefusedError && e.errorClass === 'final');
      assert.equal(server.requests.length, 2);
    });
  }

  it('-8 on a read is a caller\'s mistake (MalformedError), not a refused item', async (t) => {
    const server = await scripted(t, [{ method: 'liststreamitems', reply: rpcError(-8, 'Invalid parameter') }]);
    await assert.rejects(new MultiChainLedger(options(server.url)).list('domains'), MalformedError);
  });
});

const entry = (n: number, data: Json = { n }) => ({ id: `${n}`.padStart(64, 'b'), keys: [`k:${n % 3}`], data });

describe('MultiChainLedger.publishBatch on the stateful fake', () => {
  it('by default, as many items per transaction as the chain allows: max-std-op-returns-count from getblockchainparams, read once', async (t) => {
    const { fake, server } = await startFakeMultiChain({ maxTxItems: 8 });
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url));
    await ledger.ensureStreams();
    await ledger.publishBatch('obligations', Array.from({ length: 20 }, (_, i) => entry(i)));
    await ledger.publishBatch('obligations', Array.from({ length: 3 }, (_, i) => entry(100 + i)));
    assert.equal(fake.transactions, 4, '8 + 8 + 4, then 3');
    const sent = server.requests.filter((r) => r.method === 'publishmultifrom').map((r) => (r.params[2] as unknown[]).length);
    assert.deepEqual(sent, [8, 8, 4, 3]);
    assert.equal(server.requests.filter((r) => r.method === 'getblockchainparams').length, 1);
    assert.equal(await ledger.itemsPerTransaction(), 8);
  });

  it('32 per transaction when the node does not report max-std-op-returns-count; the batchSize option only lowers it', async (t) => {
    const { fake, server } = await startFakeMultiChain({ maxTxItems: null });
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url));
    await ledger.ensureStreams();
    await ledger.publishBatch('obligations', Array.from({ length: 40 }, (_, i) => entry(i)));
    assert.equal(fake.transactions, 2, '32 + 8');
    assert.equal(await new MultiChainLedger(options(server.url, { batchSize: 5 })).itemsPerTransaction(), 5);
    const { server: small } = await startFakeMultiChain({ maxTxItems: 4 });
    t.after(() => small.close());
    assert.equal(await new MultiChainLedger(options(small.url, { batchSize: 32 })).itemsPerTransaction(), 4, 'never more than the chain allows');
  });

  it('writes up to 32 items per publishmultifrom transaction (a default chain\'s max-std-op-returns-count), checking the ids first: one liststreamkeys per transaction, items read only for ids the node holds', async (t) => {
    const { fake, server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url));
    await ledger.ensureStreams();
    const entries = Array.from({ length: 70 }, (_, i) => entry(i));
    const results = await ledger.publishBatch('obligations', entries);
    assert.equal(fake.transactions, 3, '32 + 32 + 6');
    assert.ok(results.every((r) => !('error' in r) && !r.duplicate));
    assert.equal(new Set(results.map((r) => ('error' in r ? '' : r.txid))).size, 3);
    assert.equal((await ledger.list('obligations')).length, 70);
    const methods = server.requests.map((r) => r.method);
    assert.equal(methods.filter((m) => m === 'publishmultifrom').length, 3);
    assert.equal(methods.filter((m) => m === 'liststreamkeys').length, 3, 'one "already ours?" count per transaction');
    assert.equal(methods.filter((m) => m === 'liststreamkeyitems').length, 0, 'no id was on the node: none read whole');
    assert.ok(server.requests.filter((r) => r.method === 'publishmultifrom').every((r) => (r.params[2] as unknown[]).length <= 32));
    // the same batch again (a run that stopped after publishing, before marking): every id is held, read, found ours
    server.requests.length = 0;
    const again = await ledger.publishBatch('obligations', entries);
    assert.ok(again.every((r, i) => !('error' in r) && r.duplicate && r.txid === (results[i] as { txid: string }).txid));
    assert.equal(fake.transactions, 3, 'nothing written twice');
    assert.equal(server.requests.filter((r) => r.method === 'liststreamkeyitems').length, 70);
  });

  it('a transaction the node refuses for good is split: the others land, only the too-large item gets LedgerRefusedError', async (t) => {
    const { fake, server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url));
    await ledger.ensureStreams();
    const entries = [entry(1), entry(2, { blob: 'x'.repeat(FAKE_MAX_TX_BYTES) }), entry(3)];
    const results = await ledger.publishBatch('obligations', entries);
    assert.deepEqual(
      results.map((r) => ('error' in r ? r.error.code : 'published')),
      ['published', 'F15_LEDGER_REFUSED', 'published'],
    );
    assert.ok('error' in results[1]! && results[1].error instanceof LedgerRefusedError);
    assert.deepEqual((await ledger.list('obligations')).map((i) => i.data), [{ n: 1 }, { n: 3 }]);
    assert.equal(fake.transactions, 2);
  });

  it('a misconfigured hub fails the whole batch with LedgerMisconfiguredError (nothing is parked for it)', async (t) => {
    const { server } = await startFakeMultiChain();
    t.after(() => server.close());
    const good = new MultiChainLedger(options(server.url));
    await good.ensureStreams();
    const foreign = new MultiChainLedger(options(server.url, { publisher: '1OtherHubAddressXXXXXXXXXXXXXXXXXX' }));
    await assert.rejects(foreign.publishBatch('obligations', [entry(1), entry(2)]), LedgerMisconfiguredError);
  });

  it('after a failed publishmultifrom that had landed, the retry finds the items: duplicates, no second write', async (t) => {
    const { fake, server: node } = await startFakeMultiChain();
    t.after(() => node.close());
    // a proxy that answers 500 to the first publishmultifrom after forwarding it (it landed, the answer was lost)
    let dropped = false;
    const proxy = await startRpcServer(async (req) => {
      const res = await fetch(node.url, {
        method: 'POST',
        headers: { authorization: req.authorization ?? '', 'content-type': 'application/json' },
        body: JSON.stringify({ method: req.method, params: req.params, id: req.id, chain_name: req.chainName }),
      });
      const body = (await res.json()) as RpcReply['body'];
      if (req.method === 'publishmultifrom' && !dropped) {
        dropped = true;
        return { status: 500, raw: '' };
      }
      return { status: res.status, body };
    });
    t.after(() => proxy.close());
    const ledger = new MultiChainLedger(options(proxy.url));
    await ledger.ensureStreams();
    const results = await ledger.publishBatch('obligations', [entry(1), entry(2)]);
    assert.ok(dropped);
    assert.ok(results.every((r) => !('error' in r) && r.duplicate), JSON.stringify(results));
    assert.equal(fake.transactions, 1);
    assert.equal((await ledger.list('obligations')).length, 2);
  });

  it('an id missing from the liststreamkeys answer is read whole, not taken as unused', async (t) => {
    const { fake, server: node } = await startFakeMultiChain();
    t.after(() => node.close());
    // a node whose liststreamkeys leaves out the first key asked for
    const proxy = await startRpcServer(async (req) => {
      const res = await fetch(node.url, {
        method: 'POST',
        headers: { authorization: req.authorization ?? '', 'content-type': 'application/json' },
        body: JSON.stringify({ method: req.method, params: req.params, id: req.id, chain_name: req.chainName }),
      });
      const body = (await res.json()) as { result?: unknown };
      if (req.method === 'liststreamkeys' && Array.isArray(body.result)) return { status: res.status, body: { ...body, result: body.result.slice(1) } };
      return { status: res.status, body };
    });
    t.after(() => proxy.close());
    const ledger = new MultiChainLedger(options(proxy.url));
    await ledger.ensureStreams();
    const first = await ledger.publishBatch('obligations', [entry(1), entry(2)]);
    const again = await ledger.publishBatch('obligations', [entry(1), entry(2)]);
    assert.ok(again.every((r, i) => !('error' in r) && r.duplicate && r.txid === (first[i] as { txid: string }).txid), JSON.stringify(again));
    assert.equal(fake.transactions, 1, 'nothing written twice');
  });
});

/**
 * A follower's and a watcher's reads (list, listByKeyFrom) by position over
 * multi-item transactions: the fake's local-ordering listing shows a
 * transaction once by stream (as a real 2.3.3 node does), so a reader that
 * does not expand it loses items.
 */
describe('MultiChainLedger: reading multi-item transactions back by position', () => {
  /** a1, then b0..b4 in one transaction, then c1, then d0..d2 in one transaction; keys: id, p:x|p:y, c:z. */
  async function written(t: TestCtx, keyEntries: 'item' | 'tx' = 'item', pageSize = 2) {
    const { fake, server } = await startFakeMultiChain({ keyEntries });
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { pageSize }));
    await ledger.ensureStreams();
    const one = (name: string, i: number) => ({ id: name.padStart(64, 'd'), keys: [i % 2 === 0 ? 'p:x' : 'p:y', 'c:z'], data: { name } as Json });
    await ledger.publish('obligations', one('a1', 0).id, one('a1', 0).keys, one('a1', 0).data);
    await ledger.publishBatch('obligations', [0, 1, 2, 3, 4].map((i) => one(`b${i}`, i)));
    await ledger.publish('obligations', one('c1', 1).id, one('c1', 1).keys, one('c1', 1).data);
    await ledger.publishBatch('obligations', [0, 1, 2].map((i) => one(`d${i}`, i)));
    assert.equal(fake.transactions, 4);
    return { ledger, server };
  }
  const names = (items: readonly LedgerItem[]) => items.map((i) => (i.data as { name: string }).name);
  const ALL = ['a1', 'b0', 'b1', 'b2', 'b3', 'b4', 'c1', 'd0', 'd1', 'd2'];
  /** A follower's loop: read `count` positions from the cursor, resume after the last item's position. */
  async function follow(read: (start: number, count: number) => Promise<PositionedItem[]>, count: number): Promise<PositionedItem[]> {
    const seen: PositionedItem[] = [];
    for (let cursor = 0, rounds = 0; rounds < 50; rounds += 1) {
      const items = await read(cursor, count);
      const last = items.at(-1);
      if (!last) return seen;
      seen.push(...items);
      cursor = last.position + 1;
    }
    throw new Error('the cursor did not reach the end');
  }

  it('the node lists a transaction once by local ordering (what makes expansion necessary)', async (t) => {
    const { server } = await written(t);
    const raw = async (local: boolean) => {
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { authorization: BASIC, 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'liststreamitems', params: ['obligations', false, 100, 0, local], id: 1, chain_name: CHAIN }),
      });
      return ((await res.json()) as { result: unknown[] }).result.length;
    };
    assert.deepEqual([await raw(true), await raw(false)], [4, 10]);
  });

  it('list hands out every item of every transaction once, in output order, at its transaction\'s position', async (t) => {
    const { ledger } = await written(t);
    const all = await ledger.list('obligations');
    assert.deepEqual(names(all), ALL);
    assert.deepEqual(all.map((i) => i.position), [0, 1, 1, 1, 1, 1, 2, 3, 3, 3], 'positions count the node\'s entries: they never move');
    assert.deepEqual(names(await ledger.list('obligations', 1, 1)), ['b0', 'b1', 'b2', 'b3', 'b4']);
    assert.deepEqual(names(await ledger.list('obligations', 2)), ['c1', 'd0', 'd1', 'd2']);
    assert.deepEqual(await ledger.list('obligations', 4), []);
  });

  for (const pageSize of [1, 2, 3, 500]) {
    it(`a follower's cursor reads every item exactly once, whatever the page (pageSize ${pageSize}, 1 to 3 positions a read)`, async (t) => {
      const { ledger } = await written(t, 'item', pageSize);
      for (const count of [1, 2, 3]) assert.deepEqual(names(await follow((s, c) => ledger.list('obligations', s, c), count)), ALL, `count ${count}`);
    });
  }

  for (const keyEntries of ['item', 'tx'] as const) {
    it(`listByKeyFrom hands out every item under the key once, with the key listed per ${keyEntries}`, async (t) => {
      for (const pageSize of [1, 2, 500]) {
        const { ledger } = await written(t, keyEntries, pageSize);
        for (const count of [1, 2, 3]) {
          const read = (key: string) => follow((s, c) => ledger.listByKeyFrom('obligations', key, s, c), count);
          assert.deepEqual(names(await read('c:z')), ALL, `c:z, pageSize ${pageSize}, count ${count}`);
          assert.deepEqual(names(await read('p:x')), ['a1', 'b0', 'b2', 'b4', 'd0', 'd2'], `p:x, pageSize ${pageSize}, count ${count}`);
          assert.deepEqual(names(await read('p:y')), ['b1', 'b3', 'c1', 'd1'], `p:y, pageSize ${pageSize}, count ${count}`);
          assert.deepEqual(names(await read('d1'.padStart(64, 'd'))), ['d1'], 'an id key: its one item of the transaction');
        }
        const all = await ledger.listByKeyFrom('obligations', 'c:z', 0);
        assert.deepEqual(all.map((i) => i.position), keyEntries === 'item' ? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] : [0, 1, 1, 1, 1, 1, 2, 3, 3, 3]);
      }
    });
  }

  it('a watcher re-reading one waiting position gets that position\'s items', async (t) => {
    const { ledger } = await written(t, 'tx');
    assert.deepEqual(names(await ledger.listByKeyFrom('obligations', 'p:x', 1, 1)), ['b0', 'b2', 'b4']);
  });
});
