/**
 * Device connect tokens: the embedded broker's stand-in for IoT Core's X.509
 * client-certificate authentication. A device proves it holds the private key
 * registered for its thing by signing `oc-connect:{thing}:{ts}`; the MQTT
 * password is `${ts}.${sig}`. Kept apart from local/broker.ts so device code can
 * make tokens without loading the broker.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { KeyAlg, PublicKeyRef } from '../core/types.ts';

/** A device private key as the device holds it: base64url PKCS#8 DER. */
export interface DevicePrivateKey {
  alg: KeyAlg;
  pkcs8: string;
}

/** Default accepted clock skew between device and broker. */
export const TOKEN_SKEW_MS = 5 * 60_000;

/** The bytes a device signs to connect. */
export function connectMessage(thing: string, ts: number): Buffer {
  return Buffer.from(`oc-connect:${thing}:${ts}`, 'utf8');
}

/**
 * The MQTT password a device presents: `${ts}.${sig}`, sig = base64url signature of
 * `oc-connect:${thing}:${ts}` by the device key (Ed25519, or P-256 ECDSA/SHA-256 in IEEE P1363 form).
 */
export function connectPassword(thing: string, privateKey: DevicePrivateKey, now: number = Date.now()): string {
  const key = createPrivateKey({ key: Buffer.from(privateKey.pkcs8, 'base64url'), format: 'der', type: 'pkcs8' });
  const msg = connectMessage(thing, now);
  const sig =
    privateKey.alg === 'ed25519'
      ? sign(null, msg, key) // Ed25519 takes no digest name (node:crypto docs: algorithm null)
      : sign('sha256', msg, { key, dsaEncoding: 'ieee-p1363' });
  return `${now}.${sig.toString('base64url')}`;
}

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
