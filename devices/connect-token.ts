/**
 * The device's half of the embedded broker's authentication (local/certs.ts
 * verifies it): the stand-in for IoT Core's X.509 client certificates. A device
 * proves it holds the private key registered for its thing by signing
 * `oc-connect:{thing}:{ts}`; the MQTT password is `${ts}.${sig}`. Device code
 * needs only this, never the embedded cloud.
 */
import { createPrivateKey, sign } from 'node:crypto';
import type { KeyAlg } from '../core/types.ts';

/** A device private key as the device holds it: base64url PKCS#8 DER. */
export interface DevicePrivateKey {
  alg: KeyAlg;
  pkcs8: string;
}

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
