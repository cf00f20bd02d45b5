/**
 * A small stateful stand-in for multichaind's stream API, answering with the
 * documented response shapes (see test/fixtures/multichain/README.md):
 * getinfo, getaddresses, validateaddress, getblockchainparams, liststreams,
 * create, subscribe, publish, publishfrom, publishmultifrom,
 * liststreamkeyitems, liststreamitems, liststreamtxitems, with the errors a
 * real 2.3.3 node was seen to answer (shared/notes/real-nodes.md): HTTP 400
 * -32600 for a wrong chain name, -709 for a publisher not in the wallet, -8
 * "Transaction too large", -8 for more items than max-std-op-returns-count,
 * and a `start` above 2^31-1 wrapping.
 *
 * One node: its arrival order is the chain order. Chain order
 * (local-ordering=false) lists every item; local ordering lists what a real
 * 2.3.3 node lists (adapters/ledger/multichain.ts header): by stream, ONE
 * entry per transaction (its first item in the stream), and by key one entry
 * per item under the key (`keyEntries: 'item'`, the default) or, to check a
 * reader that must not depend on it, one per transaction (`'tx'`). Verbose
 * listings add `vout` and `time`. Enough for the Ledger contract, not a
 * MultiChain emulator (no blocks, no permissions, every item confirmed).
 */
import { createHash } from 'node:crypto';
import { BASIC, CHAIN, startRpcServer, type RpcReply, type RpcRequest, type RpcServer } from './rpc-server.ts';

interface FakeItem {
  txid: string;
  /** The item's output in its transaction. */
  vout: number;
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

export interface FakeMultiChainOptions {
  now?: () => number;
  /** The chain's max-std-op-returns-count (default FAKE_MAX_TX_ITEMS); null: getblockchainparams does not report it. */
  maxTxItems?: number | null;
  /** Local-ordering listing by key: one entry per item under the key (default, as the 2.3.3 source indexes it) or per transaction. */
  keyEntries?: 'item' | 'tx';
}

export class FakeMultiChain {
  readonly streams = new Map<string, FakeStream>();
  /** Transactions written by publish, publishfrom and publishmultifrom. */
  transactions = 0;
  private counter = 0;
  private readonly now: () => number;
  private readonly maxTxItems: number | null;
  private readonly keyEntries: 'item' | 'tx';
  constructor(o: FakeMultiChainOptions = {}) {
    this.now = o.now ?? Date.now;
    this.maxTxItems = o.maxTxItems === undefined ? FAKE_MAX_TX_ITEMS : o.maxTxItems;
    this.keyEntries = o.keyEntries ?? 'item';
  }

  private txid(): string {
    this.counter += 1;
    return createHash('sha256').update(`tx${this.counter}`).digest('hex');
  }

  private itemJson(item: FakeItem, verbose: unknown): unknown {
    return {
      publishers: [item.publisher],
      keys: item.keys,
      offchain: false,
      available: true,
      data: item.data,
      confirmations: 1,
      blocktime: item.blocktime,
      txid: item.txid,
      ...(verbose === true ? { vout: item.vout, valid: true, time: item.blocktime, timereceived: item.blocktime } : {}),
    };
  }

  /** What a local-ordering listing shows of `items`: a transaction once (its first item), or every item. */
  private static perTransaction(items: FakeItem[]): FakeItem[] {
    const seen = new Set<string>();
    return items.filter((i) => !seen.has(i.txid) && seen.add(i.txid));
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
      case 'getblockchainparams':
        return ok(
          {
            'chain-protocol': 'multichain',
            'chain-description': CHAIN,
            'protocol-version': 20013,
            ...(this.maxTxItems === null ? {} : { 'max-std-op-returns-count': this.maxTxItems }),
          },
          id,
        );
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
        const max = this.maxTxItems ?? FAKE_MAX_TX_ITEMS;
        if (items.length > max) return fail(-8, `Number of items exceeds ${max} (max-std-op-returns-count)`, id);
        if (items.length === 0) return fail(-8, 'Items should be non-empty array', id);
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
          written.push({ txid, vout: written.length, keys: keyList as string[], publisher: String(from), data, blocktime: Math.floor(this.now() / 1000) });
        }
        if (bytes > FAKE_MAX_TX_BYTES) return fail(-8, 'Transaction too large', id);
        s.items.push(...written);
        this.transactions += 1;
        return ok(txid, id);
      }
      case 'liststreamkeys': {
        // what a real 2.3.3 node answered (shared/notes/real-nodes.md): per asked key {key, items, confirmed}, items 0 for an unseen key; null for []
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        const asked = Array.isArray(p[1]) ? p[1] : p[1] === undefined || p[1] === '*' ? [...new Set(s.items.flatMap((i) => i.keys))] : [p[1]];
        if (!asked.every((k) => typeof k === 'string')) return fail(-8, 'Invalid keys', id);
        if (asked.length === 0) return ok(null, id);
        return ok(
          asked.map((key) => {
            const items = s.items.filter((i) => i.keys.includes(key as string)).length;
            return { key, items, confirmed: items };
          }),
          id,
        );
      }
      case 'liststreamkeyitems': {
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        const matching = s.items.filter((i) => i.keys.includes(String(p[1])));
        const listed = p[5] === true && this.keyEntries === 'tx' ? FakeMultiChain.perTransaction(matching) : matching;
        return ok(page(listed, p[3], p[4]).map((i) => this.itemJson(i, p[2])), id);
      }
      case 'liststreamitems': {
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        const listed = p[4] === true ? FakeMultiChain.perTransaction(s.items) : s.items;
        return ok(page(listed, p[2], p[3]).map((i) => this.itemJson(i, p[1])), id);
      }
      case 'liststreamtxitems': {
        const s = this.readable(p[0], id);
        if (!(s instanceof Object && 'items' in s)) return s;
        const txids = Array.isArray(p[1]) ? p[1] : typeof p[1] === 'string' ? p[1].split(',') : undefined;
        if (!txids || !txids.every((t) => typeof t === 'string')) return fail(-8, 'Invalid value, expected array of strings', id);
        if (new Set(txids).size !== txids.length) return fail(-8, 'Invalid parameter, duplicate value', id);
        return ok(txids.flatMap((t) => s.items.filter((i) => i.txid === t).map((i) => this.itemJson(i, p[2]))), id);
      }
      default:
        return fail(-32601, 'Method not found', id);
    }
  }
}

/** Start a fake node on 127.0.0.1:0. */
export async function startFakeMultiChain(options: FakeMultiChainOptions = {}): Promise<{ fake: FakeMultiChain; server: RpcServer }> {
  const fake = new FakeMultiChain(options);
  const server = await startRpcServer((req) => fake.handle(req));
  return { fake, server };
}
