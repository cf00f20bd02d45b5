/**
 * The size of a DynamoDB item as DynamoDB counts it for capacity units:
 * attribute names plus values (DynamoDB developer guide, "Item sizes and
 * formats", CapacityUnitCalculations): a string is its UTF-8 length, a number
 * about 1 byte per two significant digits plus 1, a binary its length, a
 * boolean or null 1 byte, and a list or map 3 bytes plus 1 per element plus its
 * elements (a map's element names count too). Values are the JavaScript values
 * lib-dynamodb marshals (undefined attributes are dropped, as the store's
 * client does with removeUndefinedValues).
 */
export function itemSize(item: Record<string, unknown>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    total += Buffer.byteLength(name, 'utf8') + valueSize(value);
  }
  return total;
}

export function valueSize(v: unknown): number {
  if (v === null || typeof v === 'boolean') return 1;
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (typeof v === 'number' || typeof v === 'bigint') return numberSize(v);
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return 3 + v.reduce((t: number, x) => t + 1 + valueSize(x), 0);
  if (v instanceof Set) return [...v].reduce((t: number, x) => t + valueSize(x), 0);
  if (typeof v === 'object') {
    let t = 3;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      t += 1 + Buffer.byteLength(k, 'utf8') + valueSize(x);
    }
    return t;
  }
  return 0;
}

/** A number: its significant digits (leading and trailing zeros trimmed), 1 byte per two, plus 1. */
function numberSize(n: number | bigint): number {
  const digits = String(n).replace(/^-/, '').replace('.', '').replace(/e.*$/i, '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** Write units of one item write of `bytes` (1 per KB, rounded up; at least 1). */
export const writeUnits = (bytes: number): number => Math.max(1, Math.ceil(bytes / 1024));
/** Read units of one strongly consistent read of `bytes` (1 per 4 KB, rounded up; at least 1). */
export const readUnits = (bytes: number): number => Math.max(1, Math.ceil(bytes / 4096));
