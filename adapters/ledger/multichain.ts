/**
 * Ledger port over MultiChain's JSON-RPC API (multichaind on ECS).
 *
 * Tested against fixtures shaped like MultiChain's documented responses
 * (test/fixtures/multichain), a stateful fake server (test/ledger), and real
 * MultiChain 2.3.3 nodes when OC_NODES_BIN is set (test/real-nodes).
 *
 * API facts relied on (multichain.com/developers/json-rpc-api and the
 * MultiChain source, src/rpc/rpcprotocol.h, rpcstreams.cpp, rpcwallet*.cpp):
 * - Transport: HTTP POST of `{"method","params","id","chain_name"}` with basic
 *   access authentication (rpcuser/rpcpassword from multichain.conf).
 *   A bad password gets HTTP 401 with no JSON body. A JSON-RPC error comes back
 *   as HTTP 500 (404 for -32601 method not found, 400 for -32600) with body
 *   `{"result":null,"error":{"code","message"},"id"}` (JSONErrorReply).
 * - `liststreams (streams="*" verbose=false count start)` -> [{name, createtxid,
 *   streamref, subscribed, ...}].
 * - `create stream <name> false` (false = only addresses with explicit write
 *   permission may publish; the creator has it). An existing name fails with
 *   -705 RPC_DUPLICATE_NAME "Stream or asset with this name already exists".
 * - `subscribe <stream|[streams]> (rescan=true)` -> null.
 * - `publish stream key(s) data (options)` and `publishfrom from-address stream
 *   key(s) data`: keys may be an array (MultiChain 2.0+); JSON data is passed
 *   as `{"json": ...}`. Result: the txid.
 * - `liststreamkeyitems stream key (verbose=false count=10 start=-count
 *   local-ordering=false)` and `liststreamitems stream (verbose=false count=10
 *   start=-count local-ordering=false)`: start is 0-based from the oldest when
 *   >= 0, and items come oldest first.
 * - A non-verbose item is `{publishers[], keys[], (key in 1.0-compatible mode),
 *   offchain, available, data, confirmations, blocktime (only if confirmed),
 *   txid}`. `data` is `{"json":...}`, `{"text":...}`, a hex string, or, when
 *   larger than the maxshowndata runtime parameter, `{txid, vout, format, size}`
 *   to be fetched with `gettxoutdata txid vout`.
 * - Error codes: -28 RPC_IN_WARMUP, -703 RPC_NOT_SUBSCRIBED, -704
 *   RPC_INSUFFICIENT_PERMISSIONS, -705 RPC_DUPLICATE_NAME, -706
 *   RPC_UNCONFIRMED_ENTITY, -708 RPC_ENTITY_NOT_FOUND.
 * - `getinfo` -> {version, chainname, blocks, ...} (used for health).
 * - `getaddresses (verbose=false)` -> the wallet's addresses (the node's own
 *   publishing addresses when no `publishfrom` address is configured).
 * - local-ordering=true orders items by when this node first saw them, so an
 *   item's position never changes once seen (chain order moves unconfirmed
 *   items as blocks arrive): `list` and `listByKeyFrom` use it, since a
 *   follower's or watcher's persisted cursor is a position. `listByKey` keeps chain order, so all nodes agree
 *   which item under a key is first.
 *
 * Several items per transaction (publishmultifrom), and reading them all back
 * by position. Facts from the 2.3.3 release source (commit 3166c3a5, fetched
 * from github.com/MultiChain/multichain) and seen on a real 2.3.3 node:
 * - `publishmultifrom from stream [{keys, data}, ...]` writes one transaction;
 *   more items than the chain's `max-std-op-returns-count` fail with -8
 *   "Number of items exceeds N (max-std-op-returns-count)" (rpcstreams.cpp,
 *   publishmultifrom). The value is a chain parameter (paramlist.h: default 32,
 *   at most 1024), reported by `getblockchainparams` under that name
 *   (rpcmisc.cpp, with upgrades applied).
 * - The chain-order index holds a row per stream item, extra outputs of one
 *   transaction as "extension" rows; the local-ordering (time-received) index of
 *   a STREAM holds ONE row per transaction: wallettxs.cpp adds the
 *   time-received entities without an extension, and wallettxdb.cpp keys a row
 *   by entity and txid. `liststreamitems ... local-ordering=true` therefore
 *   lists a transaction once, as its first item in the stream. The per-KEY
 *   time-received index is filled by IncrementSubKey with the item's
 *   extension, one row per item under the key (wallettxs.cpp), each row's
 *   listing starting at its own output (WRPGetHashAndFirstOutput). Seen on a
 *   second 2.3.3 node for 40 items in two publishmultifrom transactions
 *   (test/real-nodes/multichain.test.ts): liststreamitems local ordering 2,
 *   chain order 40; liststreamkeyitems local ordering 40 under the key all
 *   carry, 20 under a key half of them carry.
 * - `liststreamtxitems stream txid(s) (verbose=false)` (MultiChain 2.0+) lists
 *   every item of the given transactions in that stream, in output order; txids
 *   is one txid, an array of them, or a comma-separated string (ParseStringList
 *   in rpcutils.cpp, which refuses a repeated txid with -8).
 * - verbose=true adds `vout` (the item's output), `time`, `timereceived`,
 *   `blockhash`, `blockheight`, `blockindex`, `valid` (WalletTxToJSON).
 * So `list` and `listByKeyFrom` read a page of local-ordering entries (verbose,
 * for `vout`), fetch the page's transactions with one `liststreamtxitems` per
 * TX_EXPAND_CHUNK transactions, and hand out, at an entry's position, every
 * item of its transaction (under the key, for listByKeyFrom) in output order,
 * from the entry's own output up to the output of the transaction's next entry
 * (per-key rows: each entry then gives its own item; per-transaction rows: the
 * one entry gives them all). When a page ends on a transaction with items
 * left, one look at the next position (count 1) says whether that
 * transaction's next entry follows. Every entry gives at least its own item,
 * positions still count the node's entries, so they never move, and a cursor
 * at `position + 1` after the last item read resumes exactly there, whichever
 * page boundary fell inside a transaction.
 */
import type { Json } from '../../core/types.ts';
import {
  ForbiddenError,
  LedgerMisconfiguredError,
  LedgerRefusedError,
  MalformedError,
  NotFoundError,
  ObligationError,
  UnavailableError,
} from '../../core/errors.ts';
import type { BatchPublishResult, ChainInfo, Ledger, LedgerItem, MembershipChange, PositionedItem, PublishEntry, PublishResult, StreamName } from '../ports.ts';
import { MEMBERSHIP_PERMISSIONS, STREAMS } from '../ports.ts';
import { isJson, isRecord, sortedStringify } from './json.ts';
import { assertKey, checkPublish, checkRange, refusesItem } from './validate.ts';

export interface MultiChainLedgerOptions {
  /** JSON-RPC endpoint, e.g. http://multichain.internal:4798/ */
  url: string;
  user: string;
  password: string;
  chainName: string;
  /** If set, publish with `publishfrom` from this address; otherwise `publish` picks one. */
  publisher?: string;
  /** Retries after the first attempt for transient failures (default 4). */
  retries?: number;
  /** Per-request timeout (default 10 000 ms). */
  timeoutMs?: number;
  /** Backoff base (default 100 ms): delay n is base * 2^n, half of it jittered. */
  backoffBaseMs?: number;
  /** Entries per liststream*items page (default 500; a local-ordering entry of a multi-item transaction hands out all its items). */
  pageSize?: number;
  /**
   * At most this many items per publishmultifrom transaction. By default as many
   * as the chain allows: its `max-std-op-returns-count`, read once with
   * `getblockchainparams` (32 when the node does not say; 32 in a default
   * params.dat of MultiChain 2.3.3). `list` and `listByKeyFrom` read every item
   * of such a transaction back (see the header).
   */
  batchSize?: number;
  /** "Already published?" checks in flight at once during a batch publish (default 4; a node answers HTTP 503 "Work queue depth exceeded" when too many requests are in flight). */
  checkConcurrency?: number;
  fetch?: typeof fetch;
  /** Clock for unconfirmed items that carry no blocktime (epoch ms). */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** MultiChain / Bitcoin Core JSON-RPC error codes used here. */
export const RPC = {
  IN_WARMUP: -28,
  NOT_SUBSCRIBED: -703,
  INSUFFICIENT_PERMISSIONS: -704,
  DUPLICATE_NAME: -705,
  UNCONFIRMED_ENTITY: -706,
  ENTITY_NOT_FOUND: -708,
  /** Seen on a real 2.3.3 node: publishfrom an address whose key is not in this node's wallet. */
  ADDRESS_NOT_FOUND: -709,
  /** Invalid address or key (documented for a publisher not in the wallet). */
  INVALID_ADDRESS_OR_KEY: -5,
  /** Invalid parameter: "Item key is too long", "Transaction too large" (real-nodes.md). */
  INVALID_PARAMETER: -8,
  /** The node's verification rejected the transaction (a ~4 MB item, real-nodes.md). */
  VERIFY_REJECTED: -26,
  /** JSON-RPC invalid request: "Wrong chain name", with HTTP 400 (real-nodes.md). */
  INVALID_REQUEST: -32600,
} as const;

/** The methods that write stream items: their -8/-26 refuse the item(s), their -5 names the publisher. */
const PUBLISH_METHODS = new Set(['publishfrom', 'publishmultifrom']);

/** A failure worth retrying (network, timeout, 5xx without an RPC error, warm-up). */
class TransientError extends Error {}

/** A JSON-RPC error object returned by the node. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly method: string,
  ) {
    super(message);
  }
}

/** An item's keys: `keys`, or the 1.0-compatible `key`. */
function keysOf(raw: Record<string, unknown>): string[] {
  if (Array.isArray(raw.keys)) return raw.keys.filter((k): k is string => typeof k === 'string');
  return typeof raw.key === 'string' ? [raw.key] : [];
}

/** An item's output in its transaction (verbose listings; 0 when not given). */
const voutOf = (raw: Record<string, unknown>): number => (typeof raw.vout === 'number' ? raw.vout : 0);

/** Run `task` over `items`, at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Items per transaction when the node does not report `max-std-op-returns-count` (its default in MultiChain 2.3.3's paramlist.h). */
export const DEFAULT_ITEMS_PER_TX = 32;
/** Transactions per `liststreamtxitems` call when a listing page is expanded (32 items each at most: a bounded reply). */
export const TX_EXPAND_CHUNK = 64;

/** One entry of a local-ordering listing: the transaction it names, and (verbose) the output it shows. */
interface ListedEntry {
  raw: Record<string, unknown>;
  txid: string;
  vout: number | undefined;
}

export class MultiChainLedger implements Ledger {
  private readonly opts: Required<Omit<MultiChainLedgerOptions, 'publisher' | 'batchSize'>> & { publisher: string | undefined; batchSize: number | undefined };
  private readonly auth: string;
  private nextId = 1;
  private closed = false;
  private address: Promise<string> | undefined;
  private perTx: Promise<number> | undefined;

  constructor(options: MultiChainLedgerOptions) {
    this.opts = {
      retries: 4,
      timeoutMs: 10_000,
      backoffBaseMs: 100,
      pageSize: 500,
      checkConcurrency: 4,
      fetch: globalThis.fetch,
      now: Date.now,
      random: Math.random,
      sleep: sleepMs,
      ...options,
      publisher: options.publisher,
      batchSize: options.batchSize,
    };
    this.auth = `Basic ${Buffer.from(`${options.user}:${options.password}`).toString('base64')}`;
  }

  async ensureStreams(): Promise<void> {
    const listed = await this.call('liststreams', []);
    const present = new Map<string, boolean>();
    if (Array.isArray(listed)) {
      for (const s of listed) if (isRecord(s) && typeof s.name === 'string') present.set(s.name, s.subscribed === true);
    }
    const toSubscribe: string[] = [];
    for (const name of STREAMS) {
      if (!present.has(name)) {
        await this.retrying('create', async () => {
          try {
            await this.rpc('create', ['stream', name, false]);
          } catch (err) {
            // Someone else created it meanwhile: that is what we wanted.
            if (!(err instanceof RpcError && err.code === RPC.DUPLICATE_NAME)) throw err;
          }
        });
      }
      if (present.get(name) !== true) toSubscribe.push(name);
    }
    if (toSubscribe.length > 0) await this.call('subscribe', [toSubscribe]);
  }

  async publish(stream: StreamName, id: string, keys: string[], data: Json): Promise<PublishResult> {
    const checked = checkPublish(id, keys, data);
    const canonical = sortedStringify(checked.data);
    // Check-then-publish, retried as a unit: after a timeout we look again
    // before publishing, so a publish that did land is not written twice.
    // Only our own item with equal content counts: another publisher's item
    // under our id (a squatter, or a race) must not keep ours off the chain.
    return this.retrying('publish', async () => {
      const existing = await this.itemsUnder(stream, id);
      if (existing.length > 0) {
        const own = await this.identity();
        const mine = existing.find((item) => item.publisher === own && sortedStringify(item.data) === canonical);
        if (mine) return { txid: mine.txid, duplicate: true };
      }
      const payload = { json: checked.data };
      const txid = await this.rpc('publishfrom', [await this.identity(), stream, checked.keys, payload]);
      if (typeof txid !== 'string') throw new UnavailableError('MultiChain publish returned no txid', { result: String(txid) });
      return { txid, duplicate: false };
    });
  }

  /**
   * Several items, as many per publishmultifrom transaction as the chain allows
   * (itemsPerTransaction), with `publish`'s semantics entry by entry: the
   * "already ours?" check runs for every entry first (one liststreamkeys for the
   * transaction's ids, then the items of those the node holds, a few at a time), and
   * check-then-publish is retried as a unit, so a batch that landed before a
   * timeout is found, not written twice. A transaction the node refuses for
   * good (-8 too large, -26 rejected) is split: its items go one by one, so only
   * the culprit gets the LedgerRefusedError and the others land.
   */
  async publishBatch(stream: StreamName, entries: readonly PublishEntry[]): Promise<BatchPublishResult[]> {
    const out: (BatchPublishResult | undefined)[] = entries.map(() => undefined);
    const todo: { index: number; keys: string[]; data: Json; canonical: string }[] = [];
    entries.forEach((e, index) => {
      try {
        const checked = checkPublish(e.id, e.keys, e.data);
        todo.push({ index, keys: checked.keys, data: checked.data, canonical: sortedStringify(checked.data) });
      } catch (err) {
        if (!refusesItem(err)) throw err;
        out[index] = { error: err };
      }
    });
    const perTx = todo.length > 1 ? await this.itemsPerTransaction() : 1;
    for (let at = 0; at < todo.length; at += perTx) {
      const chunk = todo.slice(at, at + perTx);
      const refused = await this.retrying('publishmultifrom', async () => {
        const own = await this.identity();
        const open = chunk.filter((t) => out[t.index] === undefined);
        // one liststreamkeys for the whole chunk; only ids the node already holds items under are read whole
        const counts = await this.itemCounts(stream, open.map((t) => t.keys[0] as string));
        const held = open.filter((t) => (counts.get(t.keys[0] as string) ?? 1) > 0);
        await pool(held, this.opts.checkConcurrency, async (t) => {
          const mine = (await this.itemsUnder(stream, t.keys[0] as string)).find((i) => i.publisher === own && sortedStringify(i.data) === t.canonical);
          if (mine) out[t.index] = { txid: mine.txid, duplicate: true };
        });
        // equal content under one id twice in the batch: the later one is a duplicate of the first, as one publish after another
        const fresh: typeof chunk = [];
        const later: typeof chunk = [];
        for (const t of open) {
          if (out[t.index] !== undefined) continue;
          (fresh.some((f) => f.keys[0] === t.keys[0] && f.canonical === t.canonical) ? later : fresh).push(t);
        }
        if (fresh.length === 0) return false;
        let txid: unknown;
        try {
          txid = await this.rpc('publishmultifrom', [own, stream, fresh.map((t) => ({ keys: t.keys, data: { json: t.data } }))]);
        } catch (err) {
          if (err instanceof RpcError && this.typed(err) instanceof LedgerRefusedError) return true;
          throw err;
        }
        if (typeof txid !== 'string') throw new UnavailableError('MultiChain publishmultifrom returned no txid', { result: String(txid) });
        for (const t of fresh) out[t.index] = { txid, duplicate: false };
        for (const t of later) out[t.index] = { txid, duplicate: true };
        return false;
      });
      if (refused) {
        // one by one: the items the node accepts land, the culprit keeps its error
        for (const t of chunk) {
          if (out[t.index] !== undefined) continue;
          const e = entries[t.index] as PublishEntry;
          try {
            out[t.index] = await this.publish(stream, e.id, e.keys, e.data);
          } catch (err) {
            if (!refusesItem(err)) throw err;
            out[t.index] = { error: err };
          }
        }
      }
    }
    return out as BatchPublishResult[];
  }

  /**
   * How many items the node holds under each key (liststreamkeys with an array
   * of keys, one RPC: a real 2.3.3 node answers `items: 0` for a key it has never
   * seen). A key missing from the answer is absent from the map: the caller
   * reads it whole rather than assume it unused.
   */
  private async itemCounts(stream: StreamName, keys: readonly string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const unique = [...new Set(keys)];
    if (unique.length === 0) return counts;
    const answer = await this.rpc('liststreamkeys', [stream, unique, false]);
    if (Array.isArray(answer)) {
      for (const entry of answer) {
        if (isRecord(entry) && typeof entry.key === 'string' && typeof entry.items === 'number') counts.set(entry.key, entry.items);
      }
    }
    return counts;
  }

  /**
   * Items per publishmultifrom transaction: the chain's `max-std-op-returns-count`
   * (getblockchainparams, read once), at most the batchSize option; 32 when the
   * node answers without it or refuses the call. A node that cannot be reached
   * fails the batch (UnavailableError), as the publish would.
   */
  async itemsPerTransaction(): Promise<number> {
    this.perTx ??= this.retrying('getblockchainparams', async () => {
      let chain = DEFAULT_ITEMS_PER_TX;
      try {
        const params = await this.rpc('getblockchainparams', []);
        const n = isRecord(params) ? params['max-std-op-returns-count'] : undefined;
        if (typeof n === 'number' && Number.isInteger(n) && n >= 1) chain = n;
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
      }
      return Math.max(1, Math.min(chain, this.opts.batchSize ?? chain));
    });
    return this.perTx.catch((e: unknown) => {
      this.perTx = undefined;
      throw e;
    });
  }

  /** Every item under `key` (single attempts: the caller retries the whole check). */
  private async itemsUnder(stream: StreamName, key: string): Promise<LedgerItem[]> {
    const out: LedgerItem[] = [];
    for (let at = 0; ; at += this.opts.pageSize) {
      const page = await this.rpc('liststreamkeyitems', [stream, key, false, this.opts.pageSize, at, false]);
      if (!Array.isArray(page)) throw new UnavailableError('MultiChain liststreamkeyitems returned no array');
      for (const raw of page) out.push(await this.toItem(stream, raw));
      if (page.length < this.opts.pageSize) return out;
    }
  }

  async listByKey(stream: StreamName, key: string): Promise<LedgerItem[]> {
    assertKey(key);
    return this.paged(stream, Infinity, 0, (count, start) => ['liststreamkeyitems', [stream, key, false, count, start, false]]);
  }

  async listByKeyFrom(stream: StreamName, key: string, start: number, count = Infinity): Promise<PositionedItem[]> {
    assertKey(key);
    checkRange(start, count);
    return this.positioned(stream, key, count, start, (n, s) => ['liststreamkeyitems', [stream, key, true, n, s, true]]);
  }

  async list(stream: StreamName, start = 0, count = Infinity): Promise<PositionedItem[]> {
    checkRange(start, count);
    return this.positioned(stream, undefined, count, start, (n, s) => ['liststreamitems', [stream, true, n, s, true]]);
  }

  /** The configured publisher, else the node's first wallet address; every publish goes out from it. */
  async identity(): Promise<string> {
    this.address ??= this.opts.publisher
      ? Promise.resolve(this.opts.publisher)
      : this.retrying('getaddresses', async () => {
          const addresses = await this.rpc('getaddresses', [false]);
          const first = Array.isArray(addresses) ? addresses[0] : undefined;
          if (typeof first !== 'string') throw new UnavailableError('MultiChain node has no address');
          return first;
        });
    return this.address.catch((e: unknown) => {
      this.address = undefined;
      throw e;
    });
  }

  /**
   * The chain and this hub's place on it, from the node itself (seen on a real
   * 2.3.3 node): `getinfo` (version, protocolversion, nodeaddress
   * `chain@host:port`, blocks, connections), `getblockchainparams` (the
   * parameters a joining node fetches: chain-protocol, protocol-version,
   * default-network-port, anyone-can-*, genesis-hash, chain-params-hash, …),
   * and the publishing address's permissions: `listpermissions * <address>`
   * gives the global ones, `listpermissions <stream>.* <address>` a stream's
   * (a stream not created yet answers -708: none). A revoked permission is no
   * longer listed.
   */
  async chainInfo(): Promise<ChainInfo> {
    const [info, params, address] = await Promise.all([this.call('getinfo', []), this.call('getblockchainparams', []), this.identity()]);
    if (!isRecord(info) || !isRecord(params)) throw new UnavailableError('MultiChain getinfo or getblockchainparams returned no object');
    const types = (listed: unknown): string[] =>
      Array.isArray(listed) ? listed.flatMap((p) => (isRecord(p) && p.address === address && typeof p.type === 'string' ? [p.type] : [])) : [];
    const permissions = types(await this.call('listpermissions', ['*', address]));
    for (const stream of STREAMS) {
      try {
        permissions.push(...types(await this.call('listpermissions', [`${stream}.*`, address])).map((t) => `${stream}.${t}`));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    const primitive = Object.entries(params).filter((e): e is [string, string | number | boolean] => ['string', 'number', 'boolean'].includes(typeof e[1]));
    return {
      kind: 'multichain',
      chainName: typeof info.chainname === 'string' ? info.chainname : this.opts.chainName,
      address,
      permissions: [...new Set(permissions)].sort(),
      node: {
        version: String(info.version),
        protocolVersion: Number(info.protocolversion),
        blocks: Number(info.blocks),
        connections: Number(info.connections),
        ...(typeof info.nodeaddress === 'string' ? { nodeAddress: info.nodeaddress } : {}),
      },
      params: Object.fromEntries(primitive),
    };
  }

  /**
   * What containers/multichain/grant.sh does, by RPC: `grant|revoke <address>
   * <permission>`, one permission kind per call (`s1.write,s2.write` in one
   * call fails with -708, and global and stream permissions cannot be mixed:
   * shared/notes/real-nodes.md), stream writes revoked before connect. A node
   * without admin permission answers with an error mapped like any other
   * (-704: F08_FORBIDDEN). Each call answers the transaction's id.
   */
  async setMembership(address: string, action: 'grant' | 'revoke'): Promise<MembershipChange[]> {
    const order = action === 'grant' ? MEMBERSHIP_PERMISSIONS : [...MEMBERSHIP_PERMISSIONS.slice(1), ...MEMBERSHIP_PERMISSIONS.slice(0, 1)];
    const changes: MembershipChange[] = [];
    for (const permission of order) {
      const txid = await this.call(action, [address, permission]);
      if (typeof txid !== 'string') throw new UnavailableError(`MultiChain ${action} ${permission} answered no transaction id`);
      changes.push({ permission, txid });
    }
    return changes;
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    try {
      const info = await this.rpc('getinfo', []);
      if (!isRecord(info)) return { ok: false, detail: 'getinfo returned no object' };
      if (this.opts.publisher) {
        // a configured publisher must be this node's own: its key signs every item (otherwise -709 on every publish)
        const v = await this.rpc('validateaddress', [this.opts.publisher]);
        if (!isRecord(v) || v.ismine !== true) {
          const e = new LedgerMisconfiguredError(`publisher ${this.opts.publisher} is not an address of this node's wallet`);
          return { ok: false, detail: `${e.code}: ${e.message}` };
        }
      }
      return {
        ok: true,
        detail: `multichain ${String(info.version)} chain ${String(info.chainname)} blocks ${String(info.blocks)}`,
      };
    } catch (err) {
      const e = this.typed(err);
      return { ok: false, detail: `${e.code}: ${e.message}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Read pages of `pageSize` until `count` items or a short page. */
  private async paged(
    stream: StreamName,
    count: number,
    start: number,
    request: (count: number, start: number) => [string, Json[]],
  ): Promise<LedgerItem[]> {
    const out: LedgerItem[] = [];
    let at = start;
    while (out.length < count) {
      const want = Math.min(this.opts.pageSize, count - out.length);
      const [method, params] = request(want, at);
      const page = await this.call(method, params);
      if (!Array.isArray(page)) throw new UnavailableError(`MultiChain ${method} returned no array`);
      for (const raw of page) out.push(await this.toItem(stream, raw));
      if (page.length < want) break;
      at += page.length;
    }
    return out;
  }

  /**
   * Read `count` local-ordering positions from `start`, page by page, and hand
   * out at each position every item of its transaction (under `key`, if
   * given), in output order: see the header for why.
   */
  private async positioned(
    stream: StreamName,
    key: string | undefined,
    count: number,
    start: number,
    request: (count: number, start: number) => [string, Json[]],
  ): Promise<PositionedItem[]> {
    const out: PositionedItem[] = [];
    let at = start;
    while (at - start < count) {
      const want = Math.min(this.opts.pageSize, count - (at - start));
      const [method, params] = request(want, at);
      const page = await this.call(method, params);
      if (!Array.isArray(page)) throw new UnavailableError(`MultiChain ${method} returned no array`);
      const entries = page.map((raw): ListedEntry => {
        if (!isRecord(raw) || typeof raw.txid !== 'string') throw new MalformedError('MultiChain stream item without txid');
        return { raw, txid: raw.txid, vout: typeof raw.vout === 'number' ? raw.vout : undefined };
      });
      const byTx = await this.transactionItems(stream, entries.map((e) => e.txid));
      for (const [i, entry] of entries.entries()) {
        const position = at + i;
        const items = (byTx.get(entry.txid) ?? []).filter((raw) => key === undefined || keysOf(raw).includes(key));
        if (items.length === 0) {
          // the node listed it but gave none of its transaction's items: the entry as it is
          out.push({ ...(await this.toItem(stream, entry.raw)), position });
          continue;
        }
        // without vout (not verbose), the transaction's first entry in the page carries all of it
        if (entry.vout === undefined && entries.slice(0, i).some((e) => e.txid === entry.txid)) continue;
        // this entry's items: from its own output up to the next entry of the same transaction
        const from = entry.vout ?? voutOf(items[0] as Record<string, unknown>);
        let until = Infinity;
        for (const e of entries) if (e.txid === entry.txid && e.vout !== undefined && e.vout > from) until = Math.min(until, e.vout);
        if (i === entries.length - 1 && page.length === want && until === Infinity && items.some((raw) => voutOf(raw) > from)) {
          // the page (or the range asked for) ends inside the transaction: does its next entry follow?
          const [m, p] = request(1, at + page.length);
          const peek = await this.call(m, p);
          const next: unknown = Array.isArray(peek) ? peek[0] : undefined;
          if (isRecord(next) && next.txid === entry.txid && typeof next.vout === 'number' && next.vout > from) until = next.vout;
        }
        const mine = items.filter((raw) => voutOf(raw) >= from && voutOf(raw) < until);
        // never less than the entry itself: a cursor must be able to pass every position
        for (const raw of mine.length > 0 ? mine : [entry.raw]) out.push({ ...(await this.toItem(stream, raw)), position });
      }
      if (page.length < want) break;
      at += page.length;
    }
    return out;
  }

  /** Every item of these transactions in this stream, by txid, in output order (liststreamtxitems, verbose). */
  private async transactionItems(stream: StreamName, txids: readonly string[]): Promise<Map<string, Record<string, unknown>[]>> {
    const distinct = [...new Set(txids)];
    const byTx = new Map<string, Record<string, unknown>[]>();
    for (let i = 0; i < distinct.length; i += TX_EXPAND_CHUNK) {
      const listed = await this.call('liststreamtxitems', [stream, distinct.slice(i, i + TX_EXPAND_CHUNK), true]);
      if (!Array.isArray(listed)) throw new UnavailableError('MultiChain liststreamtxitems returned no array');
      for (const raw of listed) {
        if (!isRecord(raw) || typeof raw.txid !== 'string') throw new MalformedError('MultiChain stream item without txid');
        const items = byTx.get(raw.txid) ?? [];
        items.push(raw);
        byTx.set(raw.txid, items);
      }
    }
    for (const items of byTx.values()) items.sort((a, b) => voutOf(a) - voutOf(b));
    return byTx;
  }

  /** Map one documented stream item to a LedgerItem. */
  private async toItem(stream: StreamName, raw: unknown): Promise<LedgerItem> {
    if (!isRecord(raw) || typeof raw.txid !== 'string') throw new MalformedError('MultiChain stream item without txid');
    const keys = keysOf(raw);
    const publishers = Array.isArray(raw.publishers) ? raw.publishers : [];
    const seconds = typeof raw.blocktime === 'number' ? raw.blocktime : typeof raw.time === 'number' ? raw.time : undefined;
    return {
      stream,
      keys,
      data: await this.decodeData(raw.data, 0),
      txid: raw.txid,
      publisher: typeof publishers[0] === 'string' ? publishers[0] : '',
      confirmations: typeof raw.confirmations === 'number' ? raw.confirmations : 0,
      time: seconds === undefined ? this.opts.now() : seconds * 1000,
    };
  }

  private async decodeData(data: unknown, depth: number): Promise<Json> {
    if (isRecord(data)) {
      if ('json' in data && isJson(data.json)) return data.json;
      if (typeof data.text === 'string') return data.text;
      // Larger than maxshowndata: fetch it (documented: gettxoutdata txid vout).
      if (typeof data.txid === 'string' && typeof data.vout === 'number' && depth === 0) {
        return this.decodeData(await this.call('gettxoutdata', [data.txid, data.vout]), 1);
      }
      throw new MalformedError('MultiChain item data in an unknown form');
    }
    if (typeof data === 'string') {
      // Raw hex (not written by this adapter): JSON text if it parses, else the hex itself.
      if (/^(?:[0-9a-fA-F]{2})*$/.test(data)) {
        try {
          const parsed: unknown = JSON.parse(Buffer.from(data, 'hex').toString('utf8'));
          if (isJson(parsed)) return parsed;
        } catch {
          /* not JSON */
        }
      }
      return data;
    }
    if (data === null || data === undefined) return null;
    throw new MalformedError('MultiChain item data in an unknown form');
  }

  /** One RPC with retries for transient failures, mapped to typed errors. */
  private call(method: string, params: Json[]): Promise<unknown> {
    return this.retrying(method, () => this.rpc(method, params));
  }

  /** Retry `task` on TransientError with exponential backoff and jitter; map every error to a typed one. */
  private async retrying<T>(what: string, task: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let attempt = 0; attempt <= this.opts.retries; attempt += 1) {
      if (attempt > 0) {
        const cap = this.opts.backoffBaseMs * 2 ** (attempt - 1);
        await this.opts.sleep(cap / 2 + this.opts.random() * (cap / 2));
      }
      try {
        return await task();
      } catch (err) {
        if (!(err instanceof TransientError)) throw this.typed(err);
        last = err;
      }
    }
    const reason = last instanceof Error ? last.message : String(last);
    throw new UnavailableError(`MultiChain ${what} failed after ${this.opts.retries + 1} attempts: ${reason}`, {
      method: what,
      attempts: this.opts.retries + 1,
    });
  }

  /** Map RPC and other errors to core/errors.ts classes. */
  private typed(err: unknown): ObligationError {
    if (err instanceof ObligationError) return err;
    if (err instanceof RpcError) {
      const details = { rpcCode: err.code, method: err.method };
      const publishing = PUBLISH_METHODS.has(err.method);
      switch (err.code) {
        case RPC.ENTITY_NOT_FOUND:
        case RPC.NOT_SUBSCRIBED:
          return new NotFoundError(`MultiChain ${err.method}: ${err.message}`, details);
        case RPC.INSUFFICIENT_PERMISSIONS:
          return new ForbiddenError(`MultiChain ${err.method}: ${err.message}`, details);
        // A misconfigured hub: final, for an operator to fix (never a silent retry).
        case RPC.INVALID_REQUEST: // "Wrong chain name"
        case RPC.ADDRESS_NOT_FOUND: // the publisher's key is not in this node's wallet (a real 2.3.3 node)
          return new LedgerMisconfiguredError(`MultiChain ${err.method}: ${err.message}`, details);
        case RPC.INVALID_ADDRESS_OR_KEY:
          return publishing
            ? new LedgerMisconfiguredError(`MultiChain ${err.method}: ${err.message}`, details)
            : new NotFoundError(`MultiChain ${err.method}: ${err.message}`, details);
        // This item (or this transaction's items) refused for good: too large, rejected.
        case RPC.INVALID_PARAMETER:
          return publishing ? new LedgerRefusedError(`MultiChain ${err.method}: ${err.message}`, details) : new MalformedError(`MultiChain ${err.method}: ${err.message}`, details);
        case RPC.VERIFY_REJECTED:
          return new LedgerRefusedError(`MultiChain ${err.method}: ${err.message}`, details);
        default:
          return new UnavailableError(`MultiChain ${err.method}: ${err.message}`, details);
      }
    }
    if (err instanceof TransientError) return new UnavailableError(err.message);
    return new UnavailableError(`MultiChain call failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** A single JSON-RPC request. Throws TransientError, RpcError or ForbiddenError. */
  private async rpc(method: string, params: Json[]): Promise<unknown> {
    if (this.closed) throw new UnavailableError('MultiChain ledger is closed');
    const body = JSON.stringify({ method, params, id: this.nextId++, chain_name: this.opts.chainName });
    let res: Response;
    let text: string;
    try {
      res = await this.opts.fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: this.auth },
        body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new TransientError(`${method}: ${cause}`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new ForbiddenError(`MultiChain rejected the RPC credentials (HTTP ${res.status})`, { status: res.status });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (isRecord(parsed) && isRecord(parsed.error)) {
      const code = typeof parsed.error.code === 'number' ? parsed.error.code : 0;
      const message = typeof parsed.error.message === 'string' ? parsed.error.message : 'unknown error';
      if (code === RPC.IN_WARMUP || code === RPC.UNCONFIRMED_ENTITY) throw new TransientError(`${method}: ${message} (${code})`);
      throw new RpcError(code, message, method);
    }
    if (res.status >= 500) throw new TransientError(`${method}: HTTP ${res.status}`);
    if (!res.ok || !isRecord(parsed) || !('result' in parsed)) {
      throw new UnavailableError(`MultiChain ${method}: unexpected HTTP ${res.status} response`, { status: res.status });
    }
    return parsed.result;
  }
}
