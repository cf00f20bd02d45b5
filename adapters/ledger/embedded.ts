/**
 * The embedded ledger: an append-only, hash-linked log with MultiChain's
 * stream/key semantics, kept in memory and (optionally) persisted as one JSON
 * line per entry. Used by the embedded cloud and by tests in place of
 * multichaind, which does not run on this machine.
 *
 * - Each entry is `{ seq, stream, keys, data, publisher, time, prev, hash }`,
 *   hash = sha256(sortedStringify(entry without hash)), prev = previous hash
 *   (GENESIS for the first). The txid of an item is its hash.
 * - Streams must be created before use. Creation is itself an entry on the
 *   reserved stream `$create` (keys = [name]), much like MultiChain records a
 *   stream's creation in a transaction, so a restart knows which streams exist.
 * - publish is idempotent by id (first key) for the publisher's own items:
 *   an item with the same id counts as already published only when this
 *   publisher wrote it with canonically equal data (someone else's item under
 *   our id must not hide ours; readers dedupe). Appends are serialized through
 *   a promise chain, so concurrent publishes of one id write once.
 * - A network of nodes (EmbeddedLedgerNetwork) shares one log, the chain:
 *   each node sees its own items at once and the others' after a propagation
 *   delay, in its own arrival order, and can be stopped and restarted (it then
 *   catches up, in order). `list` positions are positions in the node's arrival
 *   order, which never change (MultiChain's `liststreamitems … local-ordering`),
 *   so a follower's cursor is a position; `listByKey` gives the node's items
 *   under a key in chain order (MultiChain's default ordering), so all nodes
 *   agree which is first. The network lives in memory only.
 * - On open the file is replayed and the chain verified. A broken line ends
 *   the open with LedgerCorruptError naming the line; an unterminated last
 *   line (a crash during append) is dropped with a warning and cut off.
 */
import { createHash } from 'node:crypto';
import { appendFile, readFile, truncate } from 'node:fs/promises';
import type { Json } from '../../core/types.ts';
import { GENESIS } from '../../core/types.ts';
import { ForbiddenError, MalformedError, NotFoundError, UnavailableError } from '../../core/errors.ts';
import type { BatchPublishResult, ChainInfo, Ledger, LedgerItem, MembershipChange, PositionedItem, PublishEntry, PublishResult, StreamName } from '../ports.ts';
import { STREAMS } from '../ports.ts';
import { cloneJson, isJson, isRecord, sortedStringify } from './json.ts';
import { assertKey, checkPublish, checkRange, refusesItem } from './validate.ts';

/** Reserved stream that records stream creation. */
export const CREATE_STREAM = '$create';

/** One line of the log. */
export interface LedgerEntry {
  /** 0-based position in the log. */
  seq: number;
  stream: string;
  keys: string[];
  data: Json;
  publisher: string;
  /** Append time, epoch ms. */
  time: number;
  /** Hash of the previous entry, GENESIS for the first. */
  prev: string;
  hash: string;
}

/** The ledger file does not verify (bad JSON, broken hash chain, bad entry). */
export class LedgerCorruptError extends MalformedError {}

export interface EmbeddedLedgerOptions {
  /** JSONL path; undefined keeps the log in memory only. */
  file?: string;
  /** Default publisher address (e.g. the back-end's domain or ledger address). */
  publisher: string;
  /** Clock, epoch ms. */
  now?: () => number;
  /** Where replay warnings go (default console.warn). */
  warn?: (message: string) => void;
}

/** sha256 over the canonical encoding of the entry without `hash`. */
export function entryHash(entry: Omit<LedgerEntry, 'hash'>): string {
  const body: Json = {
    seq: entry.seq,
    stream: entry.stream,
    keys: entry.keys,
    data: entry.data,
    publisher: entry.publisher,
    time: entry.time,
    prev: entry.prev,
  };
  return createHash('sha256').update(sortedStringify(body)).digest('hex');
}

interface StreamIndex {
  /** Log positions of the stream's items, in this node's arrival order (`list`: stable positions). */
  items: number[];
  /**
   * key -> log positions this node has, in chain (log) order, like MultiChain's
   * liststreamkeyitems without local ordering: once an item has reached every
   * node, all agree which item under a key is first (readers' "first wins").
   */
  byKey: Map<string, number[]>;
  /** key -> log positions in this node's arrival order (`listByKeyFrom`: stable positions). */
  arrived: Map<string, number[]>;
}

/**
 * One node's view of the log: which entries it has, in the order they arrived,
 * indexed per stream and key. A single-file ledger is one node that has every
 * entry as soon as it is written.
 */
class Node {
  readonly streams = new Map<string, StreamIndex>();
  /** Entries this node has that lie at or beyond `cursor` (its own, written before others' reached it). */
  private readonly ahead = new Set<number>();
  /** Every log entry before this position has arrived here. */
  private cursor = 0;
  available = true;

  constructor(
    private readonly log: Log,
    /** How long others' entries take to reach this node; 0 = at once. */
    readonly delayMs: number,
  ) {}

  /** Take an entry into the indexes (it is already verified and on the log). */
  receive(entry: LedgerEntry): void {
    if (entry.seq === this.cursor) this.cursor += 1;
    else this.ahead.add(entry.seq);
    if (entry.stream === CREATE_STREAM) {
      const name = entry.keys[0];
      if (name !== undefined && !this.streams.has(name)) this.streams.set(name, { items: [], byKey: new Map(), arrived: new Map() });
      return;
    }
    const s = this.streams.get(entry.stream);
    if (!s) return; // verify() rejects this before we get here
    s.items.push(entry.seq);
    for (const key of entry.keys) {
      const arrived = s.arrived.get(key);
      if (arrived) arrived.push(entry.seq);
      else s.arrived.set(key, [entry.seq]);
      const list = s.byKey.get(key);
      if (!list) s.byKey.set(key, [entry.seq]);
      else {
        // usually the last; an own item written before others' earlier ones arrived is not
        let at = list.length;
        while (at > 0 && list[at - 1]! > entry.seq) at -= 1;
        list.splice(at, 0, entry.seq);
      }
    }
  }

  /**
   * Take every entry of the log that has reached this node by now, in log
   * order, stopping at the first that has not (so arrival order is log order
   * for others' entries; with a constant delay that is exact). Called before
   * every read and publish, and only while the node is up: a node that was
   * down catches up here, in order, with everything it missed. Stream
   * creations arrive at once (the streams exist network-wide).
   */
  pull(now: number): void {
    const entries = this.log.entries;
    while (this.cursor < entries.length) {
      const seq = this.cursor;
      if (this.ahead.delete(seq)) {
        this.cursor += 1;
        continue;
      }
      const e = entries[seq]!;
      if (e.stream !== CREATE_STREAM && e.time + this.delayMs > now) break;
      this.receive(e);
    }
  }
}

/** The shared log behind one or more nodes (and their EmbeddedLedger views). */
class Log {
  readonly entries: LedgerEntry[] = [];
  closed = false;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string | undefined,
    readonly now: () => number,
  ) {}

  get lastHash(): string {
    return this.entries.at(-1)?.hash ?? GENESIS;
  }

  /** Run `task` after every earlier task; a failure does not block later ones. */
  serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Wait for queued appends. */
  async drain(): Promise<void> {
    await this.tail;
  }

  /** Build, persist and add a new entry, received at once by its writer `at`. Call only inside serialize(). */
  async append(stream: string, keys: string[], data: Json, publisher: string, at: Node): Promise<LedgerEntry> {
    const draft = { seq: this.entries.length, stream, keys, data, publisher, time: this.now(), prev: this.lastHash };
    const entry: LedgerEntry = { ...draft, hash: entryHash(draft) };
    // One appendFile per entry, line and newline together (no fsync: a crash
    // can lose or cut the last line, which open() repairs).
    if (this.file !== undefined) await appendFile(this.file, `${JSON.stringify(entry)}\n`, 'utf8');
    this.entries.push(entry);
    at.receive(entry);
    return entry;
  }
}

/** Check one parsed line against its position and predecessor; returns a reason or null. */
function entryProblem(value: unknown, seq: number, prev: string, streams: ReadonlySet<string>): string | null {
  if (!isRecord(value)) return 'not a JSON object';
  const { stream, keys, data, publisher, time, hash } = value;
  if (value.seq !== seq) return `seq is ${String(value.seq)}, expected ${seq}`;
  if (typeof stream !== 'string' || stream.length === 0) return 'bad stream';
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string')) return 'bad keys';
  if (!isJson(data)) return 'bad data';
  if (typeof publisher !== 'string') return 'bad publisher';
  if (typeof time !== 'number' || !Number.isFinite(time)) return 'bad time';
  if (value.prev !== prev) return 'prev does not link to the previous entry';
  if (typeof hash !== 'string') return 'bad hash';
  const expected = entryHash({ seq, stream, keys: keys as string[], data, publisher, time, prev });
  if (hash !== expected) return 'hash does not match the entry';
  if (stream !== CREATE_STREAM && !streams.has(stream)) return `stream "${stream}" was never created`;
  if (Object.keys(value).length !== 8) return 'unexpected fields';
  return null;
}

/** Parse and verify the whole file; returns the good entries and where they end. */
function replay(
  text: string,
  file: string,
): { entries: LedgerEntry[]; goodBytes: number; droppedTail: boolean; needsNewline: boolean } {
  const entries: LedgerEntry[] = [];
  const streams = new Set<string>();
  let offset = 0;
  let prev = GENESIS;
  let lineNo = 0;
  while (offset < text.length) {
    lineNo += 1;
    const nl = text.indexOf('\n', offset);
    const terminated = nl !== -1;
    const line = terminated ? text.slice(offset, nl) : text.slice(offset);
    const next = terminated ? nl + 1 : text.length;
    let parsed: unknown;
    let problem: string | null;
    try {
      parsed = JSON.parse(line);
      problem = entryProblem(parsed, entries.length, prev, streams);
    } catch {
      problem = 'not valid JSON';
    }
    if (problem !== null) {
      // An unterminated last line is a torn append from a crash: drop it.
      if (!terminated) return { entries, goodBytes: Buffer.byteLength(text.slice(0, offset), 'utf8'), droppedTail: true, needsNewline: false };
      throw new LedgerCorruptError(`ledger file ${file} line ${lineNo}: ${problem}`, { file, line: lineNo, reason: problem });
    }
    const entry = parsed as LedgerEntry;
    if (entry.stream === CREATE_STREAM && entry.keys[0] !== undefined) streams.add(entry.keys[0]);
    entries.push(entry);
    prev = entry.hash;
    offset = next;
    if (!terminated) return { entries, goodBytes: Buffer.byteLength(text, 'utf8'), droppedTail: false, needsNewline: true };
  }
  return { entries, goodBytes: Buffer.byteLength(text, 'utf8'), droppedTail: false, needsNewline: false };
}

/**
 * Ledger port over the embedded log, as seen from one node. Several back-ends
 * may share one node; `withPublisher` gives each its own publishing address.
 */
export class EmbeddedLedger implements Ledger {
  private constructor(
    private readonly log: Log,
    private readonly node: Node,
    /** Address this view publishes with. */
    readonly publisher: string,
    private readonly owner: boolean,
  ) {}

  /** A node of a network (EmbeddedLedgerNetwork.node). */
  static onNode(network: { log: Log; node: Node }, publisher: string): EmbeddedLedger {
    return new EmbeddedLedger(network.log, network.node, publisher, false);
  }

  /** Open (and replay) the ledger; with no `file` it lives in memory only. */
  static async open(opts: EmbeddedLedgerOptions): Promise<EmbeddedLedger> {
    const log = new Log(opts.file, opts.now ?? Date.now);
    const node = new Node(log, 0);
    const warn = opts.warn ?? ((m: string) => console.warn(m));
    if (opts.file !== undefined) {
      let text = '';
      try {
        text = await readFile(opts.file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const result = replay(text, opts.file);
      if (result.droppedTail) {
        warn(`embedded ledger: dropped a torn last line in ${opts.file} (kept ${result.entries.length} entries)`);
        await truncate(opts.file, result.goodBytes);
      } else if (result.needsNewline) {
        await appendFile(opts.file, '\n', 'utf8');
      }
      for (const entry of result.entries) {
        log.entries.push(entry);
        node.receive(entry);
      }
    }
    return new EmbeddedLedger(log, node, opts.publisher, true);
  }

  /** A view of the same node that publishes as `address`. Closing a view does not close the log. */
  withPublisher(address: string): EmbeddedLedger {
    return new EmbeddedLedger(this.log, this.node, address, false);
  }

  /**
   * Take this node down (false) or bring it back (true) (fault tests): while
   * down every data call throws UnavailableError and nothing reaches it; back
   * up, it catches up in order with what it missed.
   */
  setAvailable(up: boolean): void {
    this.node.available = up;
  }

  /** Whether this node is up. */
  get available(): boolean {
    return this.node.available;
  }

  /** Number of entries in the log (stream creations included). */
  size(): number {
    return this.log.entries.length;
  }

  /** Recheck the whole in-memory chain; throws LedgerCorruptError on the first bad entry. */
  verify(): void {
    const streams = new Set<string>();
    let prev = GENESIS;
    this.log.entries.forEach((entry, i) => {
      const problem = entryProblem(entry, i, prev, streams);
      if (problem !== null) throw new LedgerCorruptError(`ledger entry ${i}: ${problem}`, { seq: i, reason: problem });
      if (entry.stream === CREATE_STREAM && entry.keys[0] !== undefined) streams.add(entry.keys[0]);
      prev = entry.hash;
    });
  }

  /** A copy of every entry, oldest first (for audits and tests). */
  entries(): LedgerEntry[] {
    return this.log.entries.map((e) => ({ ...e, keys: [...e.keys], data: cloneJson(e.data) }));
  }

  async ensureStreams(): Promise<void> {
    this.guard();
    await this.log.serialize(async () => {
      this.node.pull(this.log.now());
      for (const name of STREAMS) {
        if (!this.node.streams.has(name)) await this.log.append(CREATE_STREAM, [name], null, this.publisher, this.node);
      }
    });
  }

  async publish(stream: StreamName, id: string, keys: string[], data: Json): Promise<PublishResult> {
    this.guard();
    const checked = checkPublish(id, keys, data);
    const copy = cloneJson(checked.data);
    return this.log.serialize(async () => {
      this.guard();
      const s = this.stream(stream);
      // Already published only if we wrote this very content under this id; an
      // item of another publisher (or other content) under our id is not ours.
      const canonical = sortedStringify(copy);
      const mine = (s.byKey.get(id) ?? [])
        .map((p) => this.log.entries[p]!)
        .find((e) => e.publisher === this.publisher && sortedStringify(e.data) === canonical);
      if (mine) return { txid: mine.hash, duplicate: true };
      const entry = await this.log.append(stream, checked.keys, copy, this.publisher, this.node);
      return { txid: entry.hash, duplicate: false };
    });
  }

  /** One `publish` after another: the semantics MultiChainLedger's publishmultifrom batches keep. */
  async publishBatch(stream: StreamName, entries: readonly PublishEntry[]): Promise<BatchPublishResult[]> {
    const out: BatchPublishResult[] = [];
    for (const e of entries) {
      try {
        out.push(await this.publish(stream, e.id, e.keys, e.data));
      } catch (err) {
        // refused for good (malformed): this entry only; anything else stops the batch
        if (refusesItem(err)) out.push({ error: err });
        else throw err;
      }
    }
    return out;
  }

  async listByKey(stream: StreamName, key: string): Promise<LedgerItem[]> {
    this.guard();
    assertKey(key);
    const positions = this.stream(stream).byKey.get(key) ?? [];
    return positions.map((p) => this.item(stream, p));
  }

  async listByKeyFrom(stream: StreamName, key: string, start: number, count = Infinity): Promise<PositionedItem[]> {
    this.guard();
    assertKey(key);
    checkRange(start, count);
    const positions = this.stream(stream).arrived.get(key) ?? [];
    const end = count === Infinity ? positions.length : Math.min(positions.length, start + count);
    return positions.slice(start, end).map((p, i) => ({ ...this.item(stream, p), position: start + i }));
  }

  async list(stream: StreamName, start = 0, count = Infinity): Promise<PositionedItem[]> {
    this.guard();
    checkRange(start, count);
    const items = this.stream(stream).items;
    const end = count === Infinity ? items.length : Math.min(items.length, start + count);
    return items.slice(start, end).map((p, i) => ({ ...this.item(stream, p), position: start + i }));
  }

  async identity(): Promise<string> {
    return this.publisher;
  }

  /** Nobody joins the embedded ledger: it has no permissions to grant or revoke. */
  async setMembership(): Promise<MembershipChange[]> {
    throw new ForbiddenError('the embedded ledger has no chain to join: membership is granted on a MultiChain admin node');
  }

  /** The embedded ledger has no chain to join: one log, open to every publisher of this process. */
  async chainInfo(): Promise<ChainInfo> {
    this.guard();
    return {
      kind: 'embedded',
      chainName: 'embedded',
      address: this.publisher,
      permissions: ['connect', 'receive', 'send', ...STREAMS.map((s) => `${s}.write`)].sort(),
      node: { version: 'embedded', protocolVersion: 0, blocks: this.log.entries.length, connections: 0 },
      params: {},
    };
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    if (this.log.closed) return { ok: false, detail: 'embedded ledger closed' };
    if (!this.node.available) return { ok: false, detail: 'embedded ledger marked unavailable' };
    this.node.pull(this.log.now());
    const where = this.log.file ?? 'memory';
    return { ok: true, detail: `embedded ledger (${where}): ${this.log.entries.length} entries, head ${this.log.lastHash.slice(0, 12)}` };
  }

  /** Wait for pending appends, then refuse further calls. A view's close only drains. */
  async close(): Promise<void> {
    await this.log.drain();
    if (this.owner) this.log.closed = true;
  }

  /** Refuse calls while closed or down; otherwise take what has reached this node by now. */
  private guard(): void {
    if (this.log.closed) throw new UnavailableError('embedded ledger is closed');
    if (!this.node.available) throw new UnavailableError('embedded ledger is unavailable');
    this.node.pull(this.log.now());
  }

  private stream(name: string): StreamIndex {
    const s = name === CREATE_STREAM ? undefined : this.node.streams.get(name);
    if (!s) throw new NotFoundError(`stream "${name}" does not exist`, { stream: name });
    return s;
  }

  private item(stream: StreamName, pos: number): LedgerItem {
    const e = this.log.entries[pos]!;
    return {
      stream,
      keys: [...e.keys],
      data: cloneJson(e.data),
      txid: e.hash,
      publisher: e.publisher,
      confirmations: 1,
      time: e.time,
    };
  }
}

export interface EmbeddedLedgerNetworkOptions {
  /** How long an entry takes to reach the other nodes (default 0). A node may override it. */
  delayMs?: number;
  /** Clock, epoch ms (entry times and arrival). */
  now?: () => number;
}

/**
 * Several ledger nodes of one shared chain, in memory, as the hubs of a
 * federation see a MultiChain network: each node publishes with its own
 * address, sees its own items at once and the others' after the propagation
 * delay, in its own arrival order, and can be stopped (setAvailable(false) on
 * its ledger) and restarted. The chain itself is one hash-linked log: every
 * node ends with the same items, possibly in a different order.
 */
export class EmbeddedLedgerNetwork {
  private readonly log: Log;
  private readonly nodes: EmbeddedLedger[] = [];

  constructor(private readonly opts: EmbeddedLedgerNetworkOptions = {}) {
    this.log = new Log(undefined, opts.now ?? Date.now);
  }

  /** A new node publishing as `publisher`; it receives the chain from the start. */
  node(publisher: string, opts: { delayMs?: number } = {}): EmbeddedLedger {
    const node = new Node(this.log, opts.delayMs ?? this.opts.delayMs ?? 0);
    const ledger = EmbeddedLedger.onNode({ log: this.log, node }, publisher);
    this.nodes.push(ledger);
    return ledger;
  }

  /** Number of entries on the chain (stream creations included). */
  size(): number {
    return this.log.entries.length;
  }

  /** Wait for queued appends, then refuse further calls on every node. */
  async close(): Promise<void> {
    await this.log.drain();
    this.log.closed = true;
  }
}
