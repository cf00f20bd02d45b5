/**
 * Hub keys (service/keys.ts): one signer call per process and domain per half-life,
 * a certificate the domain key verifies, a fresh key at half-life, and the current key
 * kept through a signer outage while it outlives an offer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '../../core/errors.ts';
import { generateKeyPair, signBytes, verifySigned } from '../../core/keys.ts';
import type { KeyAlg } from '../../core/types.ts';
import type { Signer, SignerKey } from '../../adapters/ports.ts';
import { hubKeyOf } from '../../service/keys.ts';
import type { Deps } from '../../functions/shared/deps.ts';

const HOUR = 3_600_000;

function world() {
  const domainKey = generateKeyPair('ed25519');
  const state = { calls: 0, down: false, now: Date.UTC(2026, 5, 1) };
  const signer: Signer = {
    defaultAlg: 'ed25519' as KeyAlg,
    createKey: async () => {
      throw new Error('not used');
    },
    sign: async (_key: SignerKey, text: string) => {
      state.calls += 1;
      if (state.down) throw new UnavailableError('key service unavailable: ThrottlingException');
      return signBytes(domainKey.privateKey, text);
    },
    retireKey: async () => {
      throw new Error('not used');
    },
  };
  const deps = { signer, now: () => state.now, config: { hubKeyTtlMs: 24 * HOUR, offerTtlMs: 60_000 } } as unknown as Pick<Deps, 'signer' | 'now' | 'config'>;
  const hosted = { domain: 'wifico', keyId: 'k1', publicKey: domainKey.publicKey };
  return { state, deps, hosted, domainKey };
}

describe('hub keys', () => {
  it('certifies one key per half-life with one signer call, verifiable with the domain key', async () => {
    const { state, deps, hosted, domainKey } = world();
    const [a, b] = await Promise.all([hubKeyOf(deps, hosted), hubKeyOf(deps, hosted)]);
    assert.equal(state.calls, 1, 'concurrent first uses share one certification');
    assert.equal(a, b);
    assert.ok(verifySigned(a.certificate, domainKey.publicKey));
    assert.equal(a.certificate.body.domain, 'wifico');
    state.now += 11 * HOUR;
    assert.equal(await hubKeyOf(deps, hosted), a, 'before half-life: the same key');
    assert.equal(state.calls, 1);
    state.now += 2 * HOUR;
    const c = await hubKeyOf(deps, hosted);
    assert.notEqual(c, a, 'past half-life: a fresh key');
    assert.equal(state.calls, 2);
    assert.ok(c.certificate.body.notAfter > a.certificate.body.notAfter);
  });

  it('keeps the current key through a signer outage while it outlives an offer, then fails retry-class', async () => {
    const { state, deps, hosted } = world();
    const a = await hubKeyOf(deps, hosted);
    state.down = true;
    state.now += 13 * HOUR;
    assert.equal(await hubKeyOf(deps, hosted), a, 'outage: the current key still serves');
    state.now = a.certificate.body.notAfter - 30_000; // less than an offer's life left
    await assert.rejects(hubKeyOf(deps, hosted), UnavailableError);
    state.down = false;
    const b = await hubKeyOf(deps, hosted);
    assert.notEqual(b, a, 'back up: a fresh key');
  });
});
