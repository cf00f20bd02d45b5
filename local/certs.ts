/**
 * Device connect tokens, the broker's half: the embedded broker's stand-in for
 * IoT Core's X.509 client-certificate authentication checks the token a device
 * makes with devices/connect-token.ts. Kept apart from local/broker.ts so it can
 * be tested without the broker.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { PublicKeyRef } from '../core/types.ts';
import { connectMessage } from '../devices/connect-token.ts';

export { connectMessage, connectPassword, type DevicePrivateKey } from '../devices/connect-token.ts';

/** Default accepted clock skew between device and broker. */
export const TOKEN_SKEW_MS = 5 * 60_000;

/** Whether `password` is a valid connect token of `thing` under `key`, issued within `skewMs` of `now`. */
export function verifyConnectPassword(
  thing: string,
  password: string,
  key: PublicKeyRef,
  now: number = Date.now(),
  skewMs: number = TOKEN_SKEW_MS,
): boolean {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]+)$/.exec(password);
  if (!m || m[1] === undefined || m[2] === undefined) return false;
  const ts = Number(m[1]);
  if (Math.abs(now - ts) > skewMs) return false;
  let pub: KeyObject;
  try {
    pub = createPublicKey({ key: Buffer.from(key.spki, 'base64url'), format: 'der', type: 'spki' });
  } catch {
    return false;
  }
  const msg = connectMessage(thing, ts);
  const sig = Buffer.from(m[2], 'base64url');
  try {
    return key.alg === 'ed25519'
      ? verify(null, msg, pub, sig)
      : verify('sha256', msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
