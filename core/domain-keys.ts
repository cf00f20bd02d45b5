/**
 * A domain's keys over time. Its record (the first valid one on the ledger)
 * names its first key; each key rotation, signed by the key it replaces and
 * published by the domain's hub, names the next. Which key counts:
 *
 * - For what is checked now, from a party that is not the domain's hub (a
 *   device's credential at an offer or acceptance, an offer at a device): the
 *   current key only. A rotation thus cuts off a stolen key at once everywhere
 *   it is known, whatever date the thief writes into what it signs.
 * - For a record read from the ledger (which only the domain's hub can publish
 *   there, service/ledger-records.ts): the key in force at the record's date or
 *   any later one, and a retired key only for what is dated before its
 *   retirement plus `ROTATION_GRACE_MS`. So what was signed before a rotation (a
 *   credential inside an obligation published later) still verifies afterwards;
 *   what is dated before a rotation and signed after it (a settlement made an
 *   hour before, published after) verifies with the new key; and a hub container
 *   that signed with the old key a moment after the rotation (its hosted-domain
 *   cache is a few seconds old) loses nothing. A stolen key, once rotated away,
 *   signs nothing dated later than the grace.
 */
import { BadSignatureError } from './errors.ts';
import { keyFingerprint, sameKey, verifySigned } from './keys.ts';
import { canonicalize } from './canonical.ts';
import type { DomainRecord, KeyRotationBody, PublicKeyRef, Signed } from './types.ts';

export interface DomainKeys {
  record: Signed<DomainRecord>;
  /** Rotations 1..n, in order. */
  rotations: Signed<KeyRotationBody>[];
}

/** How far around a rotation a ledger record dated on the other side still verifies with either key. */
export const ROTATION_GRACE_MS = 10 * 60_000;

/** The key the domain signs with now. */
export function currentKey(keys: DomainKeys): PublicKeyRef {
  return keys.rotations.at(-1)?.body.key ?? keys.record.body.key;
}

/**
 * Is `rotation` the domain's next one? 'next' when it extends the chain, 'known' when
 * it is the rotation already held at its place. BadSignatureError otherwise: another
 * domain's, not the next number, not signed by (or not naming) the current key, not
 * later than the last change, or back to a key the domain had before.
 */
export function checkRotation(keys: DomainKeys, rotation: Signed<KeyRotationBody>): 'next' | 'known' {
  const r = rotation.body;
  const domain = keys.record.body.domain;
  if (r.domain !== domain || rotation.by !== domain) {
    throw new BadSignatureError(`key rotation of ${r.domain} signed by ${rotation.by} is not one of ${domain}`, { domain });
  }
  const held = keys.rotations[r.seq - 1];
  if (held !== undefined) {
    if (canonicalize(held as never) === canonicalize(rotation as never)) return 'known';
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} differs from the one already on the ledger`, { domain, seq: r.seq });
  }
  if (r.seq !== keys.rotations.length + 1) {
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} does not follow rotation ${keys.rotations.length}`, { domain, seq: r.seq });
  }
  const current = currentKey(keys);
  if (r.previous !== keyFingerprint(current)) {
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} does not replace its current key`, { domain, seq: r.seq });
  }
  const since = keys.rotations.at(-1)?.body.at ?? keys.record.body.createdAt;
  if (r.at <= since) {
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} is dated ${r.at}, not after the last change at ${since}`, { domain, seq: r.seq });
  }
  if (sameKey(r.key, keys.record.body.key) || keys.rotations.some((o) => sameKey(o.body.key, r.key))) {
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} goes back to a key the domain had before`, { domain, seq: r.seq });
  }
  if (!verifySigned(rotation, current)) {
    throw new BadSignatureError(`key rotation ${r.seq} of ${domain} is not signed by the key it replaces`, { domain, seq: r.seq });
  }
  return 'next';
}

/** The chain with `rotation` added (checked by checkRotation first). */
export function withRotation(keys: DomainKeys, rotation: Signed<KeyRotationBody>): DomainKeys {
  return checkRotation(keys, rotation) === 'known' ? keys : { record: keys.record, rotations: [...keys.rotations, rotation] };
}

/**
 * The keys that may have signed, for the domain, a ledger record dated `at`: the one in
 * force then first, then every later key (a record is dated when its event happened and
 * signed when it is published, which may be after a rotation: a settlement made an hour
 * before one and published after it), then an earlier key when `at` is within `graceMs`
 * after its retirement. A retired key never signs what is dated later than that.
 */
export function keysAt(keys: DomainKeys, at: number, graceMs = ROTATION_GRACE_MS): PublicKeyRef[] {
  const spans = [keys.record.body.key, ...keys.rotations.map((r) => r.body.key)].map((key, i) => ({
    key,
    from: i === 0 ? -Infinity : keys.rotations[i - 1]!.body.at,
    until: keys.rotations[i]?.body.at ?? Infinity,
  }));
  const inForce = spans.filter((s) => at >= s.from && at < s.until);
  const later = spans.filter((s) => at < s.from);
  const retired = spans.filter((s) => at >= s.until && at < s.until + graceMs);
  return [...inForce, ...later, ...retired].map((s) => s.key);
}

/**
 * Run `check` with each key that may have signed a ledger record dated `at`; the first
 * that passes wins. Throws the in-force key's error when none does.
 */
export function checkDated<T>(keys: DomainKeys, at: number, check: (key: PublicKeyRef) => T): T {
  let first: unknown;
  for (const key of keysAt(keys, at)) {
    try {
      return check(key);
    } catch (e) {
      first ??= e;
    }
  }
  throw first;
}
