import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BadCredentialError,
  BadSignatureError,
  ChainBreakError,
  ExpiredError,
  GENESIS,
  MAX_CLOCK_SKEW_MS,
  MalformedError,
  ObligationError,
  acceptanceOf,
  createObligation,
  generateKeyPair,
  idOf,
  issueCredential,
  parseObligation,
  signBytes,
  canonicalize,
  verifyAcceptance,
  verifyChain,
  verifyObligation,
  type Obligation,
  type ObligationBody,
} from '../../core/index.ts';
import { DAY, HOUR, NOW, chainOf, clone, makeWorld, obligationFor, type World } from './fixtures.ts';

/** Re-sign a changed body with the device key so only the intended check can fail. */
function resign(w: World, body: ObligationBody, deviceKey = w.device.privateKey): Obligation {
  const text = canonicalize(body);
  return { id: idOf(body), body, sig: signBytes(deviceKey, text) };
}

for (const alg of ['ed25519', 'p256'] as const) {
  describe(`createObligation / verifyObligation (${alg})`, () => {
    const w = makeWorld(alg);
    const ob = obligationFor(w);

    it('takes consumer names from the credential and the sale from the offer', () => {
      const b = ob.body;
      assert.deepEqual(
        [b.consumerDomain, b.consumerDevice, b.providerDomain, b.providerDevice, b.service, b.amount, b.payTo, b.offerId],
        ['acme', 'meter-1', 'wifico', 'ap-7', 'wifi-access', 1_000, 'RwifiPayAddr1', 'offer-1'],
      );
      assert.equal(ob.id, idOf(b));
    });

    it('verifies a well-formed obligation', () => {
      verifyObligation(ob, w.consumerDomain.publicKey, NOW);
    });

    it('MalformedError when the id does not hash the body', () => {
      assert.throws(() => verifyObligation({ ...ob, id: GENESIS }, w.consumerDomain.publicKey, NOW), MalformedError);
    });

    it('BadSignatureError when another key signed the body', () => {
      const other = generateKeyPair(alg);
      assert.throws(() => verifyObligation(resign(w, ob.body, other.privateKey), w.consumerDomain.publicKey, NOW), BadSignatureError);
    });

    it('BadCredentialError when the credential is not signed by the consumer domain', () => {
      assert.throws(() => verifyObligation(ob, w.providerDomain.publicKey, NOW), BadCredentialError);
    });
  });
}

describe('verifyObligation: credential and time rules', () => {
  const w = makeWorld();
  const ob = obligationFor(w);
  const key = w.consumerDomain.publicKey;

  it('BadCredentialError when the credential is of another domain', () => {
    assert.throws(() => verifyObligation(resign(w, { ...ob.body, consumerDomain: 'other' }), key, NOW), BadCredentialError);
  });

  it('BadCredentialError when the credential is of another device', () => {
    assert.throws(() => verifyObligation(resign(w, { ...ob.body, consumerDevice: 'meter-2' }), key, NOW), BadCredentialError);
  });

  it('BadCredentialError when the credential is not valid at issuedAt or now', () => {
    const late = NOW + 400 * DAY;
    assert.throws(() => verifyObligation(resign(w, { ...ob.body, issuedAt: late, dueBy: late + DAY }), key, late), BadCredentialError);
    assert.throws(() => verifyObligation(ob, key, late), BadCredentialError);
  });

  it('BadCredentialError when the amount is above the device limit, accepted at the limit', () => {
    const small = makeWorld('ed25519', 1_000);
    verifyObligation(obligationFor(small), small.consumerDomain.publicKey, NOW);
    const over = resign(small, { ...obligationFor(small).body, amount: 1_001 });
    assert.throws(() => verifyObligation(over, small.consumerDomain.publicKey, NOW), BadCredentialError);
  });

  it('ExpiredError when due before issued', () => {
    assert.throws(() => verifyObligation(resign(w, { ...ob.body, dueBy: ob.body.issuedAt }), key, NOW), ExpiredError);
  });

  it('ExpiredError when issued beyond the clock skew, accepted within it', () => {
    const soon = NOW + MAX_CLOCK_SKEW_MS;
    verifyObligation(resign(w, { ...ob.body, issuedAt: soon, dueBy: soon + DAY }), key, NOW);
    assert.throws(() => verifyObligation(resign(w, { ...ob.body, issuedAt: soon + 1, dueBy: soon + DAY }), key, NOW), ExpiredError);
  });

  it('re-verifies an old record with now = issuedAt after its credential expired', () => {
    const cred = issueCredential(
      { domain: 'acme', deviceId: 'meter-1', deviceKey: w.device.publicKey, creditLimit: 10_000, notBefore: NOW - DAY, notAfter: NOW + HOUR },
      w.consumerDomain.privateKey,
    );
    const old = createObligation({ credential: cred, deviceKey: w.device.privateKey, offer: w.offer, seq: 1, prev: GENESIS, issuedAt: NOW, dueBy: NOW + DAY });
    assert.throws(() => verifyObligation(old, key, NOW + 2 * DAY), BadCredentialError);
    verifyObligation(old, key, old.body.issuedAt);
  });
});

describe('verifyChain', () => {
  const w = makeWorld();
  const chain = chainOf(w, 6);

  it('accepts consecutive links from GENESIS, and a tail continuing a start link', () => {
    verifyChain(chain);
    verifyChain(chain.slice(2), { seq: 2, id: chain[1]!.id });
    verifyChain([]);
  });

  it('ChainBreakError for a tail without its start link, naming index 0', () => {
    assert.throws(() => verifyChain(chain.slice(2)), (e: unknown) => e instanceof ChainBreakError && e.details?.['index'] === 0);
  });

  it('ChainBreakError when links of two devices are mixed', () => {
    const other = obligationFor({ ...w, credential: issueCredential({ ...w.credential.body, deviceId: 'meter-2' }, w.consumerDomain.privateKey) }, chain[0]);
    assert.throws(() => verifyChain([chain[0]!, other]), ChainBreakError);
  });

  it('ChainBreakError when any link is dropped (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: chain.length - 2 }), (k) => {
        const dropped = chain.filter((_, i) => i !== k);
        assert.throws(() => verifyChain(dropped), (e: unknown) => e instanceof ChainBreakError && e.details?.['index'] === k);
      }),
      { numRuns: 50 },
    );
  });

  it('ChainBreakError when two links are swapped (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: chain.length - 1 }), fc.integer({ min: 0, max: chain.length - 1 }), (i, j) => {
        fc.pre(i !== j);
        const swapped = [...chain];
        [swapped[i], swapped[j]] = [chain[j]!, chain[i]!];
        assert.throws(() => verifyChain(swapped), ChainBreakError);
      }),
      { numRuns: 100 },
    );
  });
});

describe('tamper detection (property)', () => {
  const w = makeWorld();
  const chain = chainOf(w, 3);
  const key = w.consumerDomain.publicKey;
  const HEX = '0123456789abcdef';
  const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

  /** Paths to every string and number leaf of a value. */
  function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
    if (typeof value === 'string' || typeof value === 'number') return [path];
    if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
    if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
    return [];
  }

  /** Change one character of a string leaf (to another of its alphabet), or add a non-zero delta to a number. */
  function mutate(ob: Obligation, path: (string | number)[], pos: number, pick: number): Record<string, unknown> {
    const copy = clone(ob) as unknown as Record<string, unknown>;
    let parent: Record<string | number, unknown> = copy;
    for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
    const last = path.at(-1)!;
    const old = parent[last];
    if (typeof old === 'number') {
      parent[last] = old + 1 + (pick % 1000);
    } else if (typeof old === 'string') {
      const i = pos % old.length;
      const ch = old[i]!;
      const alphabet = HEX.includes(ch) && /^[0-9a-f]{64}$/.test(old) ? HEX : ALNUM;
      const others = alphabet.replace(ch, '');
      parent[last] = old.slice(0, i) + others[pick % others.length]! + old.slice(i + 1);
    }
    return copy;
  }

  /** True when parsing, verifying each link, or verifying the chain rejects the tampered chain. */
  function detected(index: number, tampered: unknown): boolean {
    try {
      const ob = parseObligation(tampered);
      const links = chain.map((o, i) => (i === index ? ob : o));
      for (const link of links) verifyObligation(link, key, NOW);
      verifyChain(links);
      return false;
    } catch (e) {
      if (e instanceof ObligationError) return true;
      throw e;
    }
  }

  const target = fc
    .integer({ min: 0, max: chain.length - 1 })
    .chain((index) => fc.tuple(fc.constant(index), fc.constantFrom(...leaves(chain[index]))));

  it('an untouched copy of any link is not flagged (control)', () => {
    for (const [index, ob] of chain.entries()) assert.equal(detected(index, clone(ob)), false);
  });

  it('any changed character or number in any link is detected', () => {
    fc.assert(
      fc.property(target, fc.nat(), fc.nat(), ([index, path], pos, pick) => {
        assert.equal(detected(index, mutate(chain[index]!, path, pos, pick)), true, `undetected change at ${index}:${path.join('.')}`);
      }),
      { numRuns: 200 },
    );
  });

  it('a changed body is detected even when the attacker recomputes the id', () => {
    const bodyTarget = fc
      .integer({ min: 0, max: chain.length - 1 })
      .chain((index) => fc.tuple(fc.constant(index), fc.constantFrom(...leaves(chain[index]).filter((p) => p[0] === 'body'))));
    fc.assert(
      fc.property(bodyTarget, fc.nat(), fc.nat(), ([index, path], pos, pick) => {
        const tampered = mutate(chain[index]!, path, pos, pick) as unknown as Obligation;
        let rehashed: unknown = tampered;
        try {
          rehashed = { ...tampered, id: idOf(tampered.body) };
        } catch {
          // The change made the body non-canonical: it is detected by parsing.
        }
        assert.equal(detected(index, rehashed), true, `undetected change at ${index}:${path.join('.')}`);
      }),
      { numRuns: 200 },
    );
  });
});

describe('acceptance', () => {
  const w = makeWorld();
  const ob = obligationFor(w);
  const acceptance = acceptanceOf(ob, w.providerDomain.privateKey, NOW);

  it('verifies with the provider domain key', () => {
    assert.equal(acceptance.body.obligationId, ob.id);
    verifyAcceptance({ obligation: ob, acceptance }, w.providerDomain.publicKey);
  });

  it('BadSignatureError with another key', () => {
    assert.throws(() => verifyAcceptance({ obligation: ob, acceptance }, w.consumerDomain.publicKey), BadSignatureError);
  });

  it('MalformedError when paired with another obligation', () => {
    const other = obligationFor(w, ob);
    assert.throws(() => verifyAcceptance({ obligation: other, acceptance }, w.providerDomain.publicKey), MalformedError);
  });
});
