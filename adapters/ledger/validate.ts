/**
 * Argument checks shared by both Ledger adapters, so that they reject the
 * same inputs with the same typed errors.
 */
import type { Json } from '../../core/types.ts';
import { LedgerRefusedError, MalformedError, type ObligationError } from '../../core/errors.ts';
import { assertJson } from './json.ts';

/**
 * MultiChain stream keys are 0..256 bytes ("One or more keys between 0 and 256
 * bytes in length", multichain.com/developers/data-streams). We also refuse the
 * empty key: an idempotency id or a domain name must not be empty.
 */
export const MAX_KEY_BYTES = 256;

/** The keys actually written: `id` first, then the others without repeats. */
export function itemKeys(id: string, keys: readonly string[]): string[] {
  const out = [id];
  for (const k of keys) if (!out.includes(k)) out.push(k);
  return out;
}

export function assertKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new MalformedError(`${what} must be a non-empty string`);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new MalformedError(`${what} is longer than ${MAX_KEY_BYTES} bytes`, { bytes: Buffer.byteLength(key, 'utf8') });
  }
}

/** Validate publish arguments; returns the final key list (id first). */
export function checkPublish(id: unknown, keys: unknown, data: unknown): { keys: string[]; data: Json } {
  assertKey(id, 'id');
  if (!Array.isArray(keys)) throw new MalformedError('keys must be an array of strings');
  keys.forEach((k, i) => assertKey(k, `keys[${i}]`));
  assertJson(data, 'data');
  return { keys: itemKeys(id, keys as string[]), data };
}

/**
 * The highest position a list may start at: MultiChain reads liststreamitems'
 * `start` as a 32-bit signed integer, and a larger value wraps (to counting
 * from the end, or 0), seen on a real 2.3.3 node (shared/notes/real-nodes.md).
 * Both adapters refuse it, so the embedded ledger behaves as the real one can.
 */
export const MAX_POSITION = 2 ** 31 - 1;

/** Validate list paging: 0 <= start <= MAX_POSITION and count >= 0, integers (count may be Infinity). */
export function checkRange(start: number, count: number): void {
  if (!Number.isInteger(start) || start < 0) throw new MalformedError('start must be an integer >= 0', { start });
  if (start > MAX_POSITION) throw new MalformedError(`start must be at most ${MAX_POSITION} (2^31-1): MultiChain reads it as a 32-bit integer`, { start, max: MAX_POSITION });
  if (!(count === Infinity || (Number.isInteger(count) && count >= 0))) {
    throw new MalformedError('count must be an integer >= 0', { count });
  }
}

/** An error that refuses one item for good (not the node, the hub or the batch): the item is set aside, the others go on. */
export function refusesItem(err: unknown): err is ObligationError {
  return err instanceof MalformedError || err instanceof LedgerRefusedError;
}
