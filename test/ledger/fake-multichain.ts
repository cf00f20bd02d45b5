/**
 * A small stateful stand-in for multichaind's stream API, answering with the
 * documented response shapes (see test/fixtures/multichain/README.md):
 * getinfo, getaddresses, validateaddress, liststreams, create, subscribe,
 * publish, publishfrom, publishmultifrom, liststreamkeyitems, liststreamitems,
 * with the errors a real 2.3.3 node was seen to answer (shared/notes/real-nodes.md):
 * HTTP 400 -32600 for a wrong chain name, -709 for a publisher not in the
 * wallet, -8 "Transaction too large", and a `start` above 2^31-1 wrapping. One node: its arrival order is the
 * chain order, so local-ordering=true and false list the same. Enough for the Ledger contract, not a
 * MultiChain emulator (no blocks, no permissions, every item confirmed).
 */
import { createHash } from 'node:crypto';
import { BASIC, CHAIN, startRpcServer, type RpcReply, type RpcRequest, type RpcServer } from './rpc-server.ts';

interface FakeItem {
  txid: string;
  keys: string[];
  publisher: string;
  data: unknown;
  blocktime: number;
}

interface FakeStream {
  name: string;
  createtxid: string;
  subscribed: boolean;
  items: FakeItem[];
}

export const NODE_ADDRESS = '1HGMosmcKEPUnwD2DzNUfQ46HCA9Th4mBZCZEF';

const ok = (result: unknown, id: unknown): RpcReply => ({ status: 200, body: { result, error: null, id } });
const fail = (code: number, message: string, id: unknown): RpcReply => ({
  status: code === -32601 ? 404 : code === -32600 ? 400 : 500,
  body: { result: null, error: { code, message }, id },
});

/** MultiChain's paging: count default 10; start default -count; negative start counts from the end. */
function page<T>(all: T[], countArg: unknown, startArg: unknown): T[] {
  const count = typeof countArg === 'number' ? countArg : 10;
  // the node reads start as a 32-bit signed integer: larger values wrap (seen on 2.3.3)
  let start = typeof startArg === 'number' ? startArg | 0 : -count;
  if (start < 0) start = Math.max(0, all.length + start);
  return all.slice(start, start + count);
}

/** Bytes of item data one transaction may carry here (a real node refuses ~4.5 MB with -8 "Transaction too large"). */
export const FAKE_MAX_TX_BYTES = 100_000;
/** Stream items per transaction (a default params.dat: max-std-op-returns-count = 32). */
export const FAKE_MAX_TX_ITEMS = 32;

export class FakeMultiChain {
  readonly streams = new Map<string, FakeStream>();
  /** Transactions written by publish, publishfrom and publishmultifrom. */
  transactions = 0;
  private counter = 0;
  constructor(private readonly now: () => number = Date.now) {}

  private txid(): string {
    this.counter += 1;
    return createHash('sha256').update(`tx${this.counter}`).digest('hex');
  }

  private itemJson(item: FakeItem): unknown {
    return {
      publishers: [item.publisher],
      keys: item.keys,
      offchain: false,
      available: true,
      data: item.data,
      confirmations: 1,
      blocktime: item.blocktime,
      txid: item.txid,
    };
  }

  private readable(name: unknown, id: unknown): FakeStream | RpcReply {
    const s = typeof name === 'string' ? this.streams.get(name) : undefined;
    if (!s) return fail(-708, `Stream with this name not found: ${String(name)}`, id);
    if (!s.subscribed) return fail(-703, 'Not subscribed to this stream', id);
    return s;
  }

  handle(req: RpcRequest): RpcReply {
    if (req.authorization !== BASIC) return { status: 401, raw: '' };
    const { id, params: p } = req;
    if (req.chainName !== CHAIN) return fail(-32600, 'wrong chain_name', id);
    switch (req.method) {
      case 'getinfo':
        return ok({ version: '2.3.3', chainname: CHAIN, protocol: 'multichain', blocks: this.counter, errors: '' }, id);
      case 'getaddresses':
        return ok([NODE_ADDRESS], id);
      case 'liststreams':
        return ok(
          [...this.streams.values()].map((s) => ({
            name: s.name,
            createtxid: s.createtxid,
            streamref: `1-${s.name.length}-1`,
            restrict: { write: true, read: false, onchain: false, offchain: false },
            details: {},
            subscribed: s.subscribed,
            synchronized: s.subscribed,
            items: s.items.length,
            confirmed: s.items.length,
            keys: new Set(s.items.flatMap((i) => i.keys)).size,
            publishers: new Set(s.items.map((i) => i.publisher)).size,
          })),
          id,
        );
      case 'create': {
        const [type, name, open] = p;
        if (type !== 'stream' || typeof name !== 'string' || typeof open !== 'boolean') return fail(-8, 'Invalid parameters', id);
        if (this.streams.has(name)) return fail(-705, 'Stream or asset with this name already exists', id);
        const createtxid = this.txid();
        this.streams.set(name, { name, createtxid, subscribed: false, items: [] });
        return ok(createtxid, id);
      }
      case 'subscribe': {
        const names = Array.isArray(p[0]) ? p[0] : [p[0]];
        for (const n of names) if (typeof n !== 'string' || !this.streams.has(n)) return fail(-708, `Stream with this name not found: ${String(n)}`, id);
        for (const n of names) this.streams.get(n as string)!.subscribed = true;
        return ok(null, id);
      }
      case 'validateaddress':
        return ok({ isvalid: typeof p[0] === 'string', address: p[0], ismine: p[0] === NODE_ADDRESS }, id);
      case 'publish':
      case 'publishfrom':
      case 'publishmultifrom': {
        const [from, stream, ...rest] = req.method === 'publish' ? [NODE_ADDRESS, ...p] : p;
        if (from !== NODE_ADDRESS) return fail(-709, 'Private key for from-address is not found in this wallet', id);
        const s = typeof stream === 'string' ? this.streams.get(stream) : undefined;
        if (!s) return fail(-708, `Stream with this name not found: ${String(stream)}`, id);
        const items = req.method === 'publishmultifrom' ? (Array.isArray(rest[0]) ? rest[0] : []) : [{ keys: rest[0], data: rest[1] }];
        if (items.length === 0 || items.length > FAKE_MAX_TX_ITEMS) return fail(-26, 'Rejected: too many stream items', id);
        const written: FakeItem[] = [];
        let bytes = 0;
        const txid = this.txid();
        for (const it of items as { keys?: unknown; data?: unknown; for?: unknown }[]) {
          const keys = it.keys;
          const data = it.data;
          const keyList = Array.isArray(keys) ? keys : [keys];
          if (!keyList.every((k) => typeof k === 'string')) return fail(-8, 'Invalid keys', id);
          if (typeof data !== 'object' || data === null || !('json' in data)) return fail(-8, 'Expected {"json": ...}', id);
          bytes += JSON.stringify(data).length;
          written.push({ txid, keys: keyList as string[], publisher: String(from), data, blocktime: Math.floor(this.now() / 1000) });
        }
        if (bytes > FAKE_MAX_TX_BYTES) return fail(-8, 'Transaction too large', id);
        s.items.push(...written);
        this.transactions += 1;
        return ok(txid, id);
      }
      case 'liststreamkeyitems': {
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        const matching = s.items.filter((i) => i.keys.includes(String(p[1])));
        return ok(page(matching, p[3], p[4]).map((i) => this.itemJson(i)), id);
      }
      case 'liststreamitems': {
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        return ok(page(s.items, p[2], p[3]).map((i) => this.itemJson(i)), id);
      }
      default:
        return fail(-32601, 'Method not found', id);
    }
  }
}

/** Start a fake node on 127.0.0.1:0. */
export async function startFakeMultiChain(now?: () => number): Promise<{ fake: FakeMultiChain; server: RpcServer }> {
  const fake = new FakeMultiChain(now);
  const server = await startRpcServer((req) => fake.handle(req));
  return { fake, server };
}
