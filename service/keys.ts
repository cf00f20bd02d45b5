/**
 * Signing as a hosted domain. The domain key is reached through the Signer port
 * (KMS on AWS: a network call, and KMS's shared request quota); it signs what is
 * rare: the domain record, credentials, revocations, outcomes, settlement records
 * and hub key certificates. What is per purchase (offers, acceptances) is signed
 * in process with a hub key: an Ed25519 key generated in memory, certified by the
 * domain key for HUB_KEY_TTL_MS and replaced at half-life, never written anywhere.
 * So acceptance makes no KMS call except one per process and domain per half-life.
 */
import { generateKeyPair, type AsyncSigner, type PrivateKeyRef } from '../core/keys.ts';
import { certifyHubKey } from '../core/records.ts';
import type { HubKeyCertificate, Signed } from '../core/types.ts';
import type { Signer } from '../adapters/ports.ts';
import type { HostedDomain } from '../adapters/store/dynamo.ts';
import type { Deps } from './deps.ts';

/** The hosted domain's key, as a signer for core's record builders. */
export function domainSigner(deps: Pick<Deps, 'signer'>, d: Pick<HostedDomain, 'keyId' | 'publicKey'>): AsyncSigner {
  return { sign: (text) => deps.signer.sign({ keyId: d.keyId, publicKey: d.publicKey }, text) };
}

export interface HubKey {
  privateKey: PrivateKeyRef;
  certificate: Signed<HubKeyCertificate>;
}

/** Clock skew allowed before a certificate's start. */
const SKEW_MS = 60_000;

/** Hub keys held by this process, per Signer (one per hub's Deps) and domain key. */
const held = new WeakMap<Signer, Map<string, Promise<HubKey>>>();

/**
 * This process's hub key for `d`, certified by its domain key; a fresh one once the
 * current is half-way through. If the signer cannot certify a fresh one (KMS down or
 * throttled), the current key serves while it remains valid for longer than an offer
 * lives, so a KMS outage does not stop acceptance for up to HUB_KEY_TTL_MS / 2.
 */
export async function hubKeyOf(deps: Pick<Deps, 'signer' | 'now' | 'config'>, d: Pick<HostedDomain, 'domain' | 'keyId' | 'publicKey'>): Promise<HubKey> {
  let mine = held.get(deps.signer);
  if (!mine) held.set(deps.signer, (mine = new Map()));
  const slot = `${d.domain}:${d.keyId}`;
  const ttl = deps.config.hubKeyTtlMs;
  const now = deps.now();
  const current = mine.get(slot);
  const old = current ? await current.catch(() => undefined) : undefined;
  if (old && old.certificate.body.notAfter - now > ttl / 2 && old.certificate.body.notBefore <= now) return old;
  if (current && mine.get(slot) !== current) return hubKeyOf(deps, d); // another caller is replacing it
  const fresh = (async (): Promise<HubKey> => {
    const pair = generateKeyPair('ed25519');
    const certificate = await certifyHubKey(
      { domain: d.domain, key: pair.publicKey, notBefore: now - SKEW_MS, notAfter: now + ttl },
      domainSigner(deps, d),
    );
    return { privateKey: pair.privateKey, certificate };
  })();
  mine.set(slot, fresh);
  try {
    return await fresh;
  } catch (e) {
    const usable = old && old.certificate.body.notAfter - now > deps.config.offerTtlMs && old.certificate.body.notBefore <= now;
    if (mine.get(slot) === fresh) {
      if (usable) mine.set(slot, current!);
      else mine.delete(slot);
    }
    if (usable) return old;
    throw e;
  }
}
