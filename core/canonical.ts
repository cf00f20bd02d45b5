/**
 * Canonical JSON: one byte string per value, so a value can be hashed and signed.
 *
 * Rules (a subset of RFC 8785 JCS that needs no number formatting):
 * - object keys sorted by UTF-16 code units (JS default string order, as JCS 3.2.3 asks);
 * - no whitespace;
 * - numbers must be safe integers (no floats, NaN, Infinity or -0), so their text is unambiguous;
 * - strings escaped exactly as JSON.stringify does;
 * - only null, booleans, numbers, strings, arrays and plain objects.
 */
import { createHash } from 'node:crypto';
import { MalformedError } from './errors.ts';
import type { Json } from './types.ts';

/** Deepest nesting accepted, so hostile input cannot overflow the stack. */
export const MAX_DEPTH = 32;
/** Default size limit for parseCanonical (bytes of UTF-8). */
export const MAX_CANONICAL_BYTES = 64 * 1024;

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Strings JSON.stringify would copy verbatim between quotes: it escapes only `"`, `\`,
 * control characters below U+0020 and lone surrogates (ES2019 well-formed JSON.stringify).
 * Any surrogate sends the string to the slow path, which is always correct.
 */
const VERBATIM = /^[^\u0000-\u001f"\\\ud800-\udfff]*$/;

function quote(text: string): string {
  return VERBATIM.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** Path of the value being encoded, kept as a stack so it is only rendered on error. */
type PathStack = (string | number)[];

function fail(path: PathStack, message: string): never {
  const where = path.map((step) => (typeof step === 'number' ? `[${step}]` : `.${step}`)).join('');
  throw new MalformedError(`$${where}: ${message}`);
}

function encode(value: unknown, path: PathStack): string {
  if (path.length > MAX_DEPTH) fail(path, `nested deeper than ${MAX_DEPTH}`);
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) fail(path, `numbers must be safe integers (got ${String(value)})`);
      return String(value);
    case 'object': {
      if (value === null) return 'null';
      const sealed = sealedTexts.get(value);
      // where it sits must leave room for its own nesting, as if it were encoded here
      if (sealed !== undefined && path.length + sealed.depth <= MAX_DEPTH) return sealed.text;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          path.push(i);
          out += (i === 0 ? '' : ',') + encode(value[i], path);
          path.pop();
        }
        return `${out}]`;
      }
      if (!isPlainObject(value)) fail(path, 'not a plain object');
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        path.push(key);
        out += `${i === 0 ? '' : ','}${quote(key)}:${encode(record[key], path)}`;
        path.pop();
      }
      return `${out}}`;
    }
    default:
      return fail(path, `${typeof value} is not JSON`);
  }
}

/**
 * Anything canonicalize accepts at compile time. The record types in types.ts are
 * interfaces, which TypeScript does not treat as assignable to Json's index signature,
 * so `object` is admitted here and the rules are enforced at run time.
 */
export type JsonLike = Json | object;

/** The canonical texts of values sealed by sealCanonical (deep-frozen, so a text can never go stale), and how deep they nest. */
const sealedTexts = new WeakMap<object, { text: string; depth: number }>();

/**
 * A deep-frozen copy of `value` whose canonical text is computed once, here, and reused
 * wherever the copy appears inside a value being canonicalized: a device's credential,
 * carried in every obligation it signs, is encoded once per credential, not once per
 * obligation. Throws MalformedError as canonicalize does. Writing to the copy (or to
 * anything in it) throws a TypeError, so its text cannot go stale.
 */
export function sealCanonical<T extends JsonLike>(value: T): T {
  const text = canonicalize(value);
  const copy = structuredClone(value);
  deepFreeze(copy);
  if (typeof copy === 'object' && copy !== null) sealedTexts.set(copy, { text, depth: depthOf(copy) });
  return copy;
}

/** Steps from `value` down to its deepest member (0 for a value with none). */
function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, 1 + depthOf(child));
  return deepest;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

/** The canonical text of a JSON value; throws MalformedError for anything outside the rules above. */
export function canonicalize(value: JsonLike): string {
  return encode(value, []);
}

/**
 * Parse text that must already be canonical. Rejects (MalformedError) input over
 * `maxBytes`, invalid JSON, and anything that is not byte-for-byte its own canonical
 * form: whitespace, unsorted or duplicate keys, floats, exponents, needless escapes.
 */
export function parseCanonical(text: string, maxBytes: number = MAX_CANONICAL_BYTES): Json {
  if (typeof text !== 'string') throw new MalformedError('input is not a string');
  // Cheap bound first: a UTF-16 unit is at least one UTF-8 byte.
  if (text.length > maxBytes || Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new MalformedError(`input larger than ${maxBytes} bytes`);
  }
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    throw new MalformedError('input is not valid JSON');
  }
  // Duplicate keys collapse in JSON.parse, so the re-encoding differs and is caught here.
  if (canonicalize(value) !== text) throw new MalformedError('input is not in canonical form');
  return value;
}

/** Lower-case hex SHA-256 of `data` (a string: its UTF-8 bytes). */
export function sha256Hex(data: string | Buffer): string {
  return (typeof data === 'string' ? createHash('sha256').update(data, 'utf8') : createHash('sha256').update(data)).digest('hex');
}

/** The content id of a value: sha256Hex(canonicalize(body)). */
export function idOf(body: JsonLike): string {
  return sha256Hex(canonicalize(body));
}
