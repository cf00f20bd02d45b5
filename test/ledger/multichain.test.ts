import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MultiChainLedger, type MultiChainLedgerOptions } from '../../adapters/ledger/multichain.ts';
import { ForbiddenError, LedgerMisconfiguredError, LedgerRefusedError, MalformedError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';
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
    const server = await scripted(t, [{ method: 'liststreamitems', reply: fixture('liststreamitems') }]);
    const items = await new MultiChainLedger(options(server.url, { now: () => 42_000 })).list('domains');
    assert.deepEqual(server.requests[0]!.params, ['domains', false, 500, 0, true], 'local ordering: stable positions');
    assert.equal(items.length, 3);
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
      { method: 'gettxoutdata', reply: fixture('gettxoutdata') },
    ]);
    const [item] = await new MultiChainLedger(options(server.url)).list('settlements', 0, 10);
    assert.deepEqual(server.requests[1]!.params, ['3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f', 0]);
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
    ]);
    const delays: number[] = [];
    const ledger = new MultiChainLedger(
      options(server.url, { backoffBaseMs: 100, sleep: async (ms) => void delays.push(ms), random: () => 0.5 }),
    );
    assert.equal((await ledger.list('domains')).length, 3);
    assert.equal(server.requests.length, 3);
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
    assert.deepEqual((await ledger.list('obligations')).map((i) => i.data), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      server.requests.map((r) => r.params.slice(2, 4)),
      [[2, 0], [2, 2], [2, 4]],
    );
    server.requests.length = 0;
    assert.deepEqual((await ledger.listByKey('obligations', 'sp.example')).map((i) => i.data), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      server.requests.map((r) => r.params.slice(3, 5)),
      [[2, 0], [2, 2], [2, 4]],
    );
    server.requests.length = 0;
    assert.deepEqual((await ledger.list('obligations', 1, 3)).map((i) => i.data), [1, 2, 3]);
    assert.deepEqual(server.requests.map((r) => r.params.slice(2, 4)), [[2, 1], [1, 3]]);
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

describe('MultiChainLedger.publishBatch on the stateful fake', () => {
  it('by default, one item per transaction (a real node\'s local-ordering list shows one item per transaction)', async (t) => {
    const { fake, server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url));
    await ledger.ensureStreams();
    await ledger.publishBatch('obligations', [entry(1), entry(2), entry(3)]);
    assert.equal(fake.transactions, 3);
  });

  const entry = (n: number, data: Json = { n }) => ({ id: `${n}`.padStart(64, 'b'), keys: [`k:${n % 3}`], data });

  it('with batchSize 32, writes up to 32 items per publishmultifrom transaction (max-std-op-returns-count), checking each id first', async (t) => {
    const { fake, server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { batchSize: 32 }));
    await ledger.ensureStreams();
    const entries = Array.from({ length: 70 }, (_, i) => entry(i));
    const results = await ledger.publishBatch('obligations', entries);
    assert.equal(fake.transactions, 3, '32 + 32 + 6');
    assert.ok(results.every((r) => !('error' in r) && !r.duplicate));
    assert.equal(new Set(results.map((r) => ('error' in r ? '' : r.txid))).size, 3);
    assert.equal((await ledger.list('obligations')).length, 70);
    const methods = server.requests.map((r) => r.method);
    assert.equal(methods.filter((m) => m === 'publishmultifrom').length, 3);
    assert.equal(methods.filter((m) => m === 'liststreamkeyitems').length, 70, 'one "already ours?" check per entry');
    assert.ok(server.requests.filter((r) => r.method === 'publishmultifrom').every((r) => (r.params[2] as unknown[]).length <= 32));
  });

  it('a transaction the node refuses for good is split: the others land, only the too-large item gets LedgerRefusedError', async (t) => {
    const { fake, server } = await startFakeMultiChain();
    t.after(() => server.close());
    const ledger = new MultiChainLedger(options(server.url, { batchSize: 32 }));
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
    const ledger = new MultiChainLedger(options(proxy.url, { batchSize: 32 }));
    await ledger.ensureStreams();
    const results = await ledger.publishBatch('obligations', [entry(1), entry(2)]);
    assert.ok(dropped);
    assert.ok(results.every((r) => !('error' in r) && r.duplicate), JSON.stringify(results));
    assert.equal(fake.transactions, 1);
    assert.equal((await ledger.list('obligations')).length, 2);
  });
});
