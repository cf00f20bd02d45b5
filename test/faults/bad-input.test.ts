/**
 * Bad input, from fuzzers and from a hostile device: every decoder and every
 * HTTP handler answers malformed, forged, expired, replayed or out-of-order
 * input with a typed refusal (4xx, `error.code` of the right class), stores
 * nothing, moves no counter, and keeps serving (a valid obligation afterwards
 * is still accepted). Over MQTT, a bad message gets a typed reject on the
 * device's `in/reply`, or (when it cannot even be read) the rule's error action
 * records it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalize, parseCanonical } from '../../core/canonical.ts';
import { MalformedError } from '../../core/errors.ts';
import { generateKeyPair, signBytes } from '../../core/keys.ts';
import { createObligation } from '../../core/obligation.ts';
import {
  createOffer,
  issueCredential,
  newOfferId,
  parseAccepted,
  parseCredential,
  parseDomainRecord,
  parseObligation,
  parseOffer,
} from '../../core/records.ts';
import { idOf } from '../../core/canonical.ts';
import { GENESIS, type Json, type Obligation } from '../../core/types.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { ingestRuleName, topics } from '../../service/topics.ts';
import { domainSigner, hubKeyOf } from '../../service/keys.ts';
import { EnrolBody, OfferBody, RegisterDomainBody, SettleBody } from '../../functions/shared/schemas.ts';
import { enrol, getOffer, offerRequest, registerDomain, sign, submit, type TestDevice } from '../integration/support.ts';
import { assertTypedRefusal, eventually, linkFor, rawPost, snapshot, type Snapshot } from './support.ts';

const CONSUMERS = ['c1', 'c2'];
const PROVIDERS = ['p1', 'p2'];

/** A structurally valid obligation built offline (no cloud), for the pure decoder fuzz. */
function offlineObligation(): Obligation {
  const domain = generateKeyPair();
  const device = generateKeyPair();
  const now = Date.now();
  const credential = issueCredential(
    { domain: 'cx', deviceId: 'dx', deviceKey: device.publicKey, creditLimit: 10_000, notBefore: now - 1, notAfter: now + 60_000 },
    domain.privateKey,
  );
  const provider = generateKeyPair();
  const offer = createOffer(
    {
      offerId: newOfferId(),
      providerDomain: 'px',
      providerDevice: 'sx',
      service: 'wifi-access',
      price: 2_000,
      payTo: 'RaddressX1',
      consumer: 'cx/dx',
      expiresAt: now + 60_000,
    },
    provider.privateKey,
  );
  return createObligation({ credential, deviceKey: device.privateKey, offer: offer.body, seq: 1, prev: GENESIS, issuedAt: now, dueBy: now + 60_000 });
}

/** Every JSON path (as key lists) inside a value. */
function pathsOf(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...prefix, k]));
  return out;
}

function setPath(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  node[path[path.length - 1] as string | number] = value;
  return copy;
}

/** Decoders either return a value or throw MalformedError; nothing else may escape. */
function onlyMalformed(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof MalformedError) return true;
    throw e;
  }
}

describe('decoders under fuzz (pure)', () => {
  const decoders = { parseObligation, parseOffer, parseCredential, parseDomainRecord, parseAccepted };

  it('parse* on arbitrary values: a value or a MalformedError, never another error', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true }), (v) =>
        Object.values(decoders).every((d) => onlyMalformed(() => d(v))),
      ),
      { numRuns: 400 },
    );
  });

  it('a valid obligation with any one field replaced: parses to something canonical, or MalformedError', () => {
    const ob = offlineObligation();
    const paths = pathsOf(ob).filter((p) => p.length > 0);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.oneof(fc.jsonValue(), fc.anything()), (path, value) => {
        const mutated = setPath(ob, path, value);
        try {
          const parsed = parseObligation(mutated);
          canonicalize(parsed.body); // whatever passes must be encodable
          return true;
        } catch (e) {
          if (e instanceof MalformedError) return true;
          throw e;
        }
      }),
      { numRuns: 600 },
    );
  });

  it('parseCanonical: arbitrary text is refused or is exactly its own canonical form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v, null, 1))), (text) => {
        try {
          const v = parseCanonical(text);
          return canonicalize(v) === text;
        } catch (e) {
          if (e instanceof MalformedError) return true;
          throw e;
        }
      }),
      { numRuns: 600 },
    );
  });

  it('parseCanonical ∘ canonicalize is the identity on canonical values; floats, -0, 1e3 and unsafe integers are refused', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        let text: string;
        try {
          text = canonicalize(v);
        } catch (e) {
          if (e instanceof MalformedError) return true; // a float or -0 somewhere
          throw e;
        }
        assert.equal(canonicalize(parseCanonical(text)), text);
        return true;
      }),
      { numRuns: 400 },
    );
    for (const text of ['1.5', '-0', '1e3', '{"a":1e3}', '9007199254740993', '{"b":1,"a":2}', '{"a":1,"a":1}', ' 1', '"\\u0041"']) {
      assert.throws(() => parseCanonical(text), MalformedError, text);
    }
    assert.throws(() => parseCanonical('"x"'.padEnd(70_000, ' ')), MalformedError);
  });
});

describe('bad input through the embedded cloud', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'c2', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'p2', 'provider', { threshold: 0.3, prices: { big: 60_000 } });
    dev = await enrol(cloud, 'c1', 'c1-dev-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  const state = () => snapshot(cloud, CONSUMERS, PROVIDERS);
  const unchanged = async (before: Snapshot, what: string) => assert.deepEqual(await state(), before, `${what} changed the state`);

  /** Submit an obligation that must be refused with `code`, leaving no trace. */
  async function refused(ob: unknown, code: string | RegExp, what: string) {
    const before = await state();
    const res = await cloud.call('POST', '/obligations', { obligation: ob });
    assertTypedRefusal(res, code);
    await unchanged(before, what);
    return res;
  }

  it('every HTTP handler refuses fuzzed bodies and parameters with a typed 4xx and stores nothing', async () => {
    const before = await state();
    const domainsBefore = (await cloud.call<{ count: number }>('GET', '/domains')).body.count;
    const invalidFor = (schema: { safeParse(v: unknown): { success: boolean } }) =>
      fc.anything().filter((v) => !schema.safeParse(v).success && v !== undefined);
    const routes: { path: string; body: fc.Arbitrary<unknown> }[] = [
      { path: '/domains', body: invalidFor(RegisterDomainBody) },
      { path: '/domains/c1/devices', body: invalidFor(EnrolBody) },
      { path: '/offers', body: invalidFor(OfferBody) },
      { path: '/obligations', body: fc.oneof(fc.anything(), fc.anything().map((o) => ({ obligation: o }))) },
      { path: '/domains/c1/settlements', body: invalidFor(SettleBody) },
    ];
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(route.body, async (body) => {
          const text = JSON.stringify(body) ?? 'null';
          const res = await rawPost(cloud, route.path, text);
          assertTypedRefusal(res);
        }),
        { numRuns: 40 },
      );
      // text that is not JSON at all, or JSON cut short (an empty body is no body: a settlement with defaults)
      await fc.assert(
        fc.asyncProperty(fc.string({ minLength: 1, maxLength: 200 }).filter((s) => {
          try {
            JSON.parse(s);
            return false;
          } catch {
            return true;
          }
        }), async (text) => assertTypedRefusal(await rawPost(cloud, route.path, text))),
        { numRuns: 20 },
      );
    }
    // path parameters that are not names
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 80 }).filter((s) => !/^[A-Za-z0-9_-]{1,64}$/.test(s)), async (name) => {
        const p = encodeURIComponent(name);
        for (const path of [`/domains/${p}/reputation`, `/domains/${p}/obligations`]) {
          const res = await cloud.call('GET', path);
          assertTypedRefusal(res);
        }
        assertTypedRefusal(await cloud.call('POST', `/domains/${p}/settlements`, {}));
      }),
      { numRuns: 30 },
    );
    await unchanged(before, 'fuzzing');
    assert.equal((await cloud.call<{ count: number }>('GET', '/domains')).body.count, domainsBefore, 'no domain was created');
  });

  it('a request no route matches (unknown path, wrong method, dot segments a client resolved) is a typed 404 naming it', async () => {
    const before = await state();
    // fetch resolves `.` and `..`: /domains/./settlements arrives as /domains/settlements, /domains/../x as /x
    for (const [method, path, arrives] of [
      ['POST', '/domains/./settlements', '/domains/settlements'],
      ['GET', '/domains/../reputation', '/reputation'],
      ['GET', '/nowhere', '/nowhere'],
      ['DELETE', '/obligations', '/obligations'],
      ['GET', '/obligations', '/obligations'],
    ] as const) {
      const reply = await fetch(`${cloud.api}${path}`, { method });
      const res = { status: reply.status, body: (await reply.json()) as { error: { message: string; details: { method: string; path: string } } } };
      assertTypedRefusal(res, 'F09_NOT_FOUND');
      assert.equal(res.status, 404);
      assert.deepEqual(res.body.error.details, { method, path: arrives }, `${method} ${path}`);
      assert.match(res.body.error.message, /^no route /);
    }
    await unchanged(before, 'unmatched routes');
  });

  it('malformed JSON, wrong types and oversized bodies: typed refusals, nothing stored', async () => {
    const before = await state();
    assertTypedRefusal(await rawPost(cloud, '/obligations', '{"obligation": {'));
    assertTypedRefusal(await rawPost(cloud, '/obligations', '{"obligation": {}}', 'text/plain'));
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const ob = sign(dev, offer);
    const wrong: [string, unknown][] = [
      ['amount as a string', { ...ob, body: { ...ob.body, amount: String(ob.body.amount) } }],
      ['seq as a string', { ...ob, body: { ...ob.body, seq: '1' } }],
      ['body as an array', { ...ob, body: [ob.body] }],
      ['null credential', { ...ob, body: { ...ob.body, credential: null } }],
      ['an extra field', { ...ob, extra: true }],
      ['a 200 kB service name', { ...ob, body: { ...ob.body, service: 'x'.repeat(200_000) } }],
    ];
    for (const [what, bad] of wrong) await refused(bad, 'F00_MALFORMED', what);
    // over the HTTP front's body limit (1 MB, like API Gateway's 10 MB): 413 before any handler runs
    const big = await rawPost(cloud, '/obligations', JSON.stringify({ obligation: ob, pad: 'x'.repeat(2 * 1024 * 1024) }));
    assert.equal(big.status, 413);
    await unchanged(before, 'malformed input');
    // and the very obligation, sent properly, is accepted
    assert.equal((await submit(cloud, dev, ob)).status, 201);
  });

  it('non-canonical and overflowing numbers are refused; another spelling of the same number is the same obligation', async () => {
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const ob = sign(dev, offer);
    const text = JSON.stringify({ obligation: ob });
    const amount = `"amount":${ob.body.amount}`;
    assert.ok(text.includes(amount));
    const before = await state();
    for (const spelled of ['2000.5', '-0', '1e400', '-2000', '2100000000000001', '9007199254740993', '0']) {
      assertTypedRefusal(await rawPost(cloud, '/obligations', text.replace(amount, `"amount":${spelled}`)), 'F00_MALFORMED');
    }
    // 1e3 is a different amount than signed: the id no longer matches the body
    assertTypedRefusal(await rawPost(cloud, '/obligations', text.replace(amount, '"amount":1e3')), 'F00_MALFORMED');
    assertTypedRefusal(await rawPost(cloud, '/obligations', text.replace(`"seq":${ob.body.seq}`, `"seq":${ob.body.seq}.5`)), 'F00_MALFORMED');
    await unchanged(before, 'non-canonical numbers');
    // The transport JSON need not be canonical: identity is the canonical body. 2e3 spells 2000,
    // so it is this obligation, and it cannot become a second one.
    assert.equal(ob.body.amount, 2_000);
    const first = await rawPost(cloud, '/obligations', text.replace(amount, '"amount":2e3'));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    dev.head = { seq: ob.body.seq, id: ob.id };
    const again = await cloud.call<{ duplicate: boolean; obligationId: string }>('POST', '/obligations', { obligation: ob });
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.obligationId, ob.id);
  });

  it('forged signatures: a flipped signature byte or a body changed after signing is refused', async () => {
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const ob = sign(dev, offer);
    const sig = Buffer.from(ob.sig, 'base64url');
    sig[7] = (sig[7] ?? 0) ^ 0x01;
    await refused({ ...ob, sig: sig.toString('base64url') }, 'F01_BAD_SIGNATURE', 'flipped signature');
    // the body changed, the id left as signed: the id no longer names the body
    await refused({ ...ob, body: { ...ob.body, dueBy: ob.body.dueBy + 1 } }, 'F00_MALFORMED', 'tampered body');
    // the body changed and the id recomputed: the device signature does not cover it
    const body = { ...ob.body, dueBy: ob.body.dueBy + 1 };
    await refused({ ...ob, id: idOf(body), body }, 'F01_BAD_SIGNATURE', 'tampered body, new id');
    // a tampered credential (its limit raised) no longer verifies against the domain key
    const credBody = { ...ob.body.credential.body, creditLimit: ob.body.credential.body.creditLimit + 1 };
    const b2 = { ...ob.body, credential: { ...ob.body.credential, body: credBody } };
    await refused({ id: idOf(b2), body: b2, sig: signBytes(dev.keys.privateKey, canonicalize(b2)) }, 'F02_BAD_CREDENTIAL', 'tampered credential');
    assert.equal((await submit(cloud, dev, ob)).status, 201, 'the genuine one is still accepted');
  });

  it('wrong credential domain and expired credential are refused as F02', async () => {
    const other = await enrol(cloud, 'c2', 'c2-dev-1');
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    // a c2 credential presented for c1
    const own = sign(other, offer);
    const body = { ...own.body, consumerDomain: 'c1', consumerDevice: dev.id };
    await refused({ id: idOf(body), body, sig: signBytes(other.keys.privateKey, canonicalize(body)) }, 'F02_BAD_CREDENTIAL', 'credential of another domain');
    // a credential that claims c1 but is signed by c2's key
    const c2 = await cloud.deps.store.getHostedDomain('c2');
    assert.ok(c2);
    const now = Date.now();
    const forged = await issueCredential(
      { domain: 'c1', deviceId: dev.id, deviceKey: dev.keys.publicKey, creditLimit: 1_000_000, notBefore: now - 1000, notAfter: now + 60_000 },
      domainSigner(cloud.deps, c2),
    );
    await refused(sign({ ...dev, credential: forged }, offer), 'F02_BAD_CREDENTIAL', 'credential signed by another domain');
    // an expired credential
    const r = await cloud.call<{ credential: TestDevice['credential'] }>('POST', `/domains/c1/devices`, {
      deviceId: 'c1-short',
      deviceKey: dev.keys.publicKey,
      creditLimit: 1_000_000,
      validForMs: 1,
    });
    assert.equal(r.status, 201);
    await new Promise((res) => setTimeout(res, 5));
    const shortDev: TestDevice = { ...dev, id: 'c1-short', credential: r.body.credential, head: { seq: 0, id: GENESIS } };
    // refused already when it asks for an offer over HTTP (service/offers.ts checks the credential)...
    const asked = await cloud.call<{ error: { code: string } }>('POST', '/offers', offerRequest(shortDev, 'p1', 'p1-spd-1'));
    assert.equal(asked.body.error.code, 'F02_BAD_CREDENTIAL', 'expired credential asking for an offer');
    // ...and at acceptance, with an offer it got some other way (over MQTT, or before it expired)
    const p1 = await cloud.deps.store.getHostedDomain('p1');
    assert.ok(p1?.payTo);
    const shortOffer = createOffer(
      { offerId: newOfferId(), providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access', price: 2_000, payTo: p1.payTo, consumer: 'c1/c1-short', expiresAt: Date.now() + 60_000, certificate: (await hubKeyOf(cloud.deps, p1)).certificate },
      (await hubKeyOf(cloud.deps, p1)).privateKey,
    );
    await cloud.deps.store.putOffer(shortOffer);
    await refused(sign(shortDev, shortOffer), 'F02_BAD_CREDENTIAL', 'expired credential');
  });

  it('an expired offer and an obligation already past due are refused as F03', async () => {
    const p1 = await cloud.deps.store.getHostedDomain('p1');
    assert.ok(p1?.payTo);
    const now = Date.now();
    const stale = createOffer(
      {
        offerId: newOfferId(),
        providerDomain: 'p1',
        providerDevice: 'p1-spd-1',
        service: 'wifi-access',
        price: 2_000,
        payTo: p1.payTo,
        consumer: `c1/${dev.id}`,
        expiresAt: now - 1_000,
        certificate: (await hubKeyOf(cloud.deps, p1)).certificate,
      },
      // the SPB's own signature: a hub key certified by the domain key, as makeOffer signs
      (await hubKeyOf(cloud.deps, p1)).privateKey,
    );
    await cloud.deps.store.putOffer(stale); // the SPB's own record of an offer it made earlier
    await refused(sign(dev, stale, { now: now - 5_000 }), 'F03_EXPIRED', 'expired offer');
    const fresh = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    await refused(sign(dev, fresh, { now: now - 10_000, dueInMs: 5_000 }), 'F03_EXPIRED', 'past due');
  });

  it('replays are refused as F04: the same seq under another id, and a reused offer', async () => {
    const o1 = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const o2 = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const a = sign(dev, o1);
    const b = sign(dev, o2); // same seq and prev as a, another offer: another id
    assert.notEqual(a.id, b.id);
    assert.equal((await submit(cloud, dev, a)).status, 201);
    const res = await refused(b, 'F04_REPLAY', 'same seq, other id');
    assert.equal(res.status, 409);
    // the offer of `a` again, under a new obligation (later dueBy) continuing the chain
    await refused(sign(dev, o1, { dueInMs: 120_000 }), 'F04_REPLAY', 'reused offer');
  });

  it('reordered chain links: n+2 first is a forward gap (links accepted at other hubs look the same), so n+1 then is a replay; a wrong prev is F05', async () => {
    const o2 = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const o3 = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const o4 = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const next = sign(dev, o2);
    const after = sign(dev, o3, { seq: next.body.seq + 1, prev: next.id });
    assert.equal((await submit(cloud, dev, after)).status, 201);
    await refused(next, 'F04_REPLAY', 'a link below the head');
    const wrongPrev = sign(dev, o4, { seq: after.body.seq + 1, prev: next.id });
    await refused(wrongPrev, 'F05_CHAIN_BREAK', 'a link that does not follow the head');
  });

  it('amount overflow and unsafe integers are malformed; over the device cap is F02; over the domain credit is T02', async () => {
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const ob = sign(dev, offer);
    for (const amount of [2_100_000_000_000_001, 2 ** 53 + 2, Number.MAX_VALUE, Infinity]) {
      const body = { ...ob.body, amount };
      await refused({ ...ob, body }, 'F00_MALFORMED', `amount ${amount}`);
    }
    // the per-device cap of the credential
    const small = await enrol(cloud, 'c1', 'c1-small', 1_000);
    await refused(sign(small, await getOffer(cloud, small, 'p1', 'p1-spd-1')), 'F02_BAD_CREDENTIAL', 'over device cap');
    // the domain's credit limit (base 50 000 sats for a newcomer)
    const res = await refused(sign(dev, await getOffer(cloud, dev, 'p2', 'p2-spd-1', 'big')), 'T02_OVER_CREDIT', 'over credit');
    assert.equal(res.status, 402);
  });

  it('keeps serving: a valid obligation after all of the above is accepted and counted once', async () => {
    const before = await state();
    const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
    const ob = sign(dev, offer);
    assert.equal((await submit(cloud, dev, ob)).status, 201);
    const afterState = await state();
    assert.equal(afterState.byConsumer['c1'], (before.byConsumer['c1'] ?? 0) + 1);
    assert.equal(afterState.counters['c1']?.outstanding, (before.counters['c1']?.outstanding ?? 0) + ob.body.amount);
  });

  it('over MQTT: a malformed obligation gets a typed reject on in/reply; an unreadable payload reaches the error action; nothing stored', async (t) => {
    const mdev = await enrol(cloud, 'c1', 'c1-mqtt-1');
    const link = linkFor(cloud, mdev);
    t.after(() => link.close());
    const replies: { requestId?: string; accepted?: boolean; error?: { code: string; class: string } }[] = [];
    link.onMessage((topic, payload) => {
      if (topic.endsWith('/in/reply')) replies.push(payload as (typeof replies)[number]);
    });
    await link.connect();
    await link.subscribe(topics.inbox('c1', mdev.id), 1);
    const before = await state();
    const out = topics.ingest('c1', mdev.id, 'obligation');

    const cases: [string, Json][] = [
      ['m-empty', {}],
      ['m-types', { id: 'zz', body: { amount: '2000' }, sig: 1 }],
      ['m-float', { ...(JSON.parse(JSON.stringify(sign(mdev, await getOffer(cloud, mdev, 'p1', 'p1-spd-1')))) as { body: Record<string, Json> }), sig: '!!' }],
    ];
    for (const [requestId, obligation] of cases) await link.publish(out, { requestId, obligation }, 1);
    const got = await eventually(() => (replies.length >= cases.length ? replies : undefined));
    for (const [requestId] of cases) {
      const r = got.find((x) => x.requestId === requestId);
      assert.ok(r, `a reply to ${requestId}`);
      assert.equal(r.accepted, false);
      assert.equal(r.error?.code, 'F00_MALFORMED');
      assert.equal(r.error?.class, 'final');
    }

    // an envelope that fails its own schema is refused once, not retried by "Lambda"
    const retriesBefore = cloud.broker.stats.ruleRetries;
    await link.publish(out, { requestId: 'r'.repeat(100), obligation: {} }, 1); // requestId over 64 characters
    const envelope = await eventually(() => replies.find((x) => x.requestId === 'r'.repeat(64)));
    assert.equal(envelope.error?.code, 'F00_MALFORMED');
    await cloud.broker.settled();
    assert.equal(cloud.broker.stats.ruleRetries, retriesBefore, 'a final refusal is not retried');

    const errorsBefore = cloud.broker.ruleErrors.length;
    await link.publish(out, 'not an object', 1); // the SDK link JSON-encodes: a JSON string, not an object
    const failure = await eventually(() => cloud.broker.ruleErrors.slice(errorsBefore).find((f) => f.rule === ingestRuleName('oc', 'obligation')));
    assert.match(failure.error, /unparsable payload/);
    assert.equal(failure.attempts, 0);
    await cloud.broker.settled();
    await unchanged(before, 'malformed MQTT messages');
  });
});
