/**
 * Small JSON helpers for the ledger adapters: a sorted-key stringify for
 * hashing (kept local on purpose: core/canonical.ts is owned elsewhere and the
 * ledger's hash chain must not change when that module evolves) and a checker
 * that a value really is plain JSON.
 */
import type { Json } from '../../core/types.ts';
import { MalformedError } from '../../core/errors.ts';

/** Deterministic JSON: object keys sorted by UTF-16 code unit order, no whitespace. */
export function sortedStringify(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedStringify).join(',')}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const v = value[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${sortedStringify(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** True when `value` is plain JSON: null, boolean, finite number, string, arrays and plain objects of those. */
export function isJson(value: unknown, depth = 0): value is Json {
  if (depth > 100) return false;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isJson(v, depth + 1));
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(value as Record<string, unknown>).every((v) => isJson(v, depth + 1));
  }
  return false;
}

/** A deep copy of a JSON value (callers can't mutate what the ledger holds). */
export function cloneJson<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** Narrow `unknown` to a plain object record. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Throw MalformedError unless `value` is plain JSON. */
export function assertJson(value: unknown, what: string): asserts value is Json {
  if (!isJson(value)) throw new MalformedError(`${what} is not plain JSON`);
}
