/**
 * The HTTP API's boundary rules, one acceptance and one refusal each, through
 * the embedded cloud's HTTP front: query strings validated (400, never 500),
 * JSON bodies read whatever the content type (400 when not JSON, never 415 or
 * 422), 404 for unknown domains on every domain route, 409 on re-registering a
 * domain with other settings, pages of obligations and domains with `limit`
 * and an opaque `next`, and the ledger recomputation only on its admin route.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { ObligationItem } from '../../adapters/store/dynamo.ts';
import type { AcceptedObligation, ObligationStatus } from '../../core/types.ts';
import { ROUTES } from '../../functions/routes.ts';
import { PAGE } from '../../functions/shared/schemas.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { limitFn } from '../../service/credit.ts';
import { allObligations } from '../../local/pages.ts';
import { assertTypedRefusal, rawPost } from '../faults/support.ts';
import { buy, enrol, getOffer, offerRequest, registerDomain, sign, submit } from './support.ts';
import { generateKeyPair } from '../../core/keys.ts';
import { issueCredential } from '../../core/records.ts';

/** A POST with no content-type header at all (fetch would add text/plain to a string body). */
function postWithoutType(base: string, path: string, body: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Listed {
  id: string;
  status: string;
  acceptedAt: string;
}
interface ListBody {
  count: number;
  obligations: Listed[];
  next: string | null;
}

describe('HTTP API boundary', () => {
  let cloud: LocalCloud;
  /** Ids of the fake obligations of consumer `pc` (to provider `pp`), oldest first. */
  const seeded: string[] = [];

  before(async () => {
    // no live-page history sampler: the purchase tests record every store request a purchase makes
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 }, history: false });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    await registerDomain(cloud, 'pc', 'consumer');
    await registerDomain(cloud, 'pp', 'provider', { threshold: 0.3 });
    // More obligations than a default page, in both partitions (open and closed), straight into the store:
    // the listing reads only the items' keys and fields, not their signatures.
    const statuses: ObligationStatus[] = ['accepted', 'settling', 'fulfilled', 'defaulted'];
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 2 * PAGE.default + 7; i++) {
      const id = createHash('sha256').update(`ob-${i}`).digest('hex');
      const status = statuses[i % 4] as ObligationStatus;
      const item: ObligationItem = {
        id,
        status,
        accepted: {} as AcceptedObligation,
        consumerDomain: 'pc',
        consumerDevice: 'pc-dev',
        providerDomain: 'pp',
        amount: 1_000 + i,
        payTo: 'Rpay',
        // already on the ledger as far as the publish job knows: these exist only to be listed
        ledgerTxid: `fake-${i}`,
        outcomeTxid: `fake-outcome-${i}`,
        // two obligations per millisecond: the id breaks the tie
        acceptedAt: t0 + Math.floor(i / 2),
        dueBy: t0 + 86_400_000,
        ...(status === 'fulfilled' || status === 'defaulted' ? { counted: true, closedAt: t0 + 1000 } : {}),
      };
      assert.equal(await cloud.deps.store.putObligation(item), true);
    }
    const order = await cloud.deps.store.listByConsumer('pc');
    seeded.push(...order.map((o) => o.id));
  });
  after(async () => {
    await cloud?.stop();
  });

  describe('query strings', () => {
    it('a valid status and side filter the listing', async () => {
      const r = await cloud.call<ListBody>('GET', '/domains/pc/obligations?status=defaulted&side=consumer');
      assert.equal(r.status, 200);
      assert.ok(r.body.obligations.length > 0);
      assert.ok(r.body.obligations.every((o) => o.status === 'defaulted'));
      const prov = await cloud.call<ListBody>('GET', '/domains/pp/obligations?side=provider&limit=3');
      assert.equal(prov.status, 200);
      assert.equal(prov.body.count, 3);
    });

    it('?status=bogus and ?side=sideways are 400 F00 naming the parameter (not 500, not ignored)', async () => {
      for (const [q, name] of [['status=bogus', 'query.status'], ['side=sideways', 'query.side'], ['order=up', 'query.order']] as const) {
        const r = await cloud.call<{ error: { message: string } }>('GET', `/domains/pc/obligations?${q}`);
        assertTypedRefusal(r, 'F00_MALFORMED');
        assert.equal(r.status, 400);
        assert.match(r.body.error.message, new RegExp(`^${name.replace('.', '\\.')}`), JSON.stringify(r.body));
      }
    });

    it('an unknown or misspelt parameter is a 400 naming it, on every route', async () => {
      const r = await cloud.call<{ error: { message: string } }>('GET', '/domains/pc/obligations?stauts=accepted');
      assertTypedRefusal(r, 'F00_MALFORMED');
      assert.match(r.body.error.message, /stauts/);
      for (const path of ['/health', '/domains/c1', '/domains/c1/devices/d1/head', '/domains/c1/reputation']) {
        assertTypedRefusal(await cloud.call('GET', `${path}?x=1`), 'F00_MALFORMED');
        assert.equal((await cloud.call('GET', path)).status, 200, path);
      }
    });
  });

  describe('JSON bodies', () => {
    it('JSON without a content-type header (or as text/plain) is read', async () => {
      const plain = await postWithoutType(cloud.api, '/domains', JSON.stringify({ domain: 'c2', role: 'consumer' }));
      assert.equal(plain.status, 201, plain.text);
      const text = await rawPost(cloud, '/domains', JSON.stringify({ domain: 'c3', role: 'consumer' }), 'text/plain');
      assert.equal(text.status, 201, JSON.stringify(text.body));
    });

    it('a body that is not JSON is 400 F00, whatever the content type (never 415 or 422)', async () => {
      for (const type of ['application/json', 'text/plain', 'application/octet-stream']) {
        const r = await rawPost(cloud, '/domains', '{"domain": "c4", ', type);
        assertTypedRefusal(r, 'F00_MALFORMED');
        assert.equal(r.status, 400);
      }
      const none = await postWithoutType(cloud.api, '/domains', 'domain=c4');
      assert.equal(none.status, 400);
      assert.equal((JSON.parse(none.text) as { error: { code: string } }).error.code, 'F00_MALFORMED');
      assert.equal((await cloud.call('GET', '/domains/c4')).status, 404, 'nothing registered');
    });

    it('every POST route refuses a body that is not JSON (400 F00), the ones that take no parameters too', async () => {
      const posts = ROUTES.filter((r) => r.method === 'POST');
      assert.ok(posts.some((r) => r.path.endsWith('/key-rotation')));
      for (const route of posts) {
        const path = route.path.replace('{domain}', 'c1').replace('{device}', 'd1');
        const r = await rawPost(cloud, path, 'not json', 'application/json');
        assert.equal(r.status, 400, `${route.method} ${route.path}: ${JSON.stringify(r.body)}`);
        assertTypedRefusal(r, 'F00_MALFORMED');
      }
    });
  });

  describe('unknown domains', () => {
    it('every route about a domain answers 404 F07 for one with no record (no invented newcomer figures)', async () => {
      const paths = ['/domains/zzz/reputation', '/domains/zzz/obligations', '/domains/zzz/devices/d1/head'];
      for (const path of paths) {
        const r = await cloud.call('GET', path);
        assert.equal(r.status, 404, path);
        assertTypedRefusal(r, 'F07_UNKNOWN_DOMAIN');
      }
      assertTypedRefusal(await cloud.call('GET', '/domains/zzz'), 'F09_NOT_FOUND');
      assertTypedRefusal(await cloud.call('POST', '/domains/zzz/settlements', {}), 'F09_NOT_FOUND');
      // offer requests are signed by the consumer device with the credential its domain issued (service/offers.ts)
      const dev = await enrol(cloud, 'c1', 'c1-api-offers');
      const stranger = generateKeyPair();
      const { version: _v, ...cred } = { ...dev.credential.body, domain: 'zzz', deviceId: 'd1', deviceKey: stranger.publicKey };
      const zzzDev = { ...dev, domain: 'zzz', id: 'd1', keys: stranger, credential: issueCredential(cred, generateKeyPair().privateKey) };
      assertTypedRefusal(await cloud.call('POST', '/offers', offerRequest(zzzDev, 'p1', 'p1-spd-1')), 'F07_UNKNOWN_DOMAIN');
      assertTypedRefusal(await cloud.call('POST', '/offers', offerRequest(dev, 'zzz', 'p1-spd-1')), 'F09_NOT_FOUND');
      const key = { alg: 'ed25519', spki: 'MCowBQYDK2VwAyEA'.padEnd(60, 'A') };
      assertTypedRefusal(await cloud.call('POST', '/domains/zzz/devices', { deviceId: 'd', deviceKey: key, creditLimit: 1 }), 'F09_NOT_FOUND');
    });

    it('a known domain answers 200 on the same routes: a newcomer at 0.5, an empty list, the genesis head', async () => {
      const rep = await cloud.call<{ reputation: number }>('GET', '/domains/c1/reputation');
      assert.equal(rep.status, 200);
      assert.equal(rep.body.reputation, 0.5);
      const list = await cloud.call<ListBody>('GET', '/domains/c1/obligations');
      assert.deepEqual([list.status, list.body.count, list.body.next], [200, 0, null]);
      const head = await cloud.call<{ seq: number }>('GET', '/domains/c1/devices/d1/head');
      assert.deepEqual([head.status, head.body.seq], [200, 0]);
    });
  });

  describe('registering an existing domain', () => {
    it('with the same settings: 200, created false', async () => {
      const r = await cloud.call<{ created: boolean; role: string }>('POST', '/domains', { domain: 'p1', role: 'provider', threshold: 0.3 });
      assert.deepEqual([r.status, r.body.created, r.body.role], [200, false, 'provider']);
    });

    it('with another role or threshold: 409 F13_EXISTS naming them, nothing changed', async () => {
      const r = await cloud.call<{ error: { message: string; details: { conflicts: Record<string, unknown> } } }>('POST', '/domains', {
        domain: 'p1',
        role: 'consumer',
        threshold: 0.9,
      });
      assert.equal(r.status, 409);
      assertTypedRefusal(r, 'F13_EXISTS');
      assert.deepEqual(Object.keys(r.body.error.details.conflicts).sort(), ['role', 'threshold']);
      const hosted = await cloud.call<{ hosted: { role: string; threshold: number } }>('GET', '/domains/p1');
      assert.deepEqual([hosted.body.hosted.role, hosted.body.hosted.threshold], ['provider', 0.3]);
    });
  });

  describe('pagination', () => {
    it('without limit: the default page, then `next` until null; the pages are the whole listing in order, once each', async () => {
      const seen: string[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const r: { status: number; body: ListBody } = await cloud.call<ListBody>(
          'GET',
          `/domains/pc/obligations${next === null ? '' : `?next=${encodeURIComponent(next)}`}`,
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.ok(r.body.count <= PAGE.default);
        if (r.body.next !== null) assert.equal(r.body.count, PAGE.default, 'a page before the last is full');
        seen.push(...r.body.obligations.map((o) => o.id));
        next = r.body.next;
        pages += 1;
      } while (next !== null);
      assert.equal(pages, 3);
      assert.deepEqual(seen, seeded, 'every obligation once, oldest first');
    });

    it('a limit, a status filter and newest-first order page the same way', async () => {
      const filtered = seeded.filter((_, i) => i % 4 === 2).length; // fulfilled ones
      const asc = await allObligations<Listed>(cloud, 'pc', 'status=fulfilled');
      assert.equal(asc.length, filtered);
      assert.ok(asc.every((o) => o.status === 'fulfilled'));
      const desc: string[] = [];
      let next: string | null = null;
      do {
        const q: string = `order=newest&limit=7${next === null ? '' : `&next=${encodeURIComponent(next)}`}`;
        const r: { body: ListBody } = await cloud.call<ListBody>('GET', `/domains/pc/obligations?${q}`);
        desc.push(...r.body.obligations.map((o) => o.id));
        next = r.body.next;
      } while (next !== null);
      assert.deepEqual(desc, [...seeded].reverse());
    });

    it('limit out of range, not an integer, or a forged token: 400 F00', async () => {
      for (const q of ['limit=0', `limit=${PAGE.max + 1}`, 'limit=1.5', 'limit=ten', 'limit=-1', 'next=garbage', `next=${Buffer.from('{"after":"x"}').toString('base64url')}`]) {
        assertTypedRefusal(await cloud.call('GET', `/domains/pc/obligations?${q}`), 'F00_MALFORMED');
      }
      assert.equal((await cloud.call<ListBody>('GET', `/domains/pc/obligations?limit=${PAGE.max}`)).body.count, seeded.length);
    });

    it('GET /domains pages too', async () => {
      const first = await cloud.call<{ domains: { domain: string }[]; next: string | null }>('GET', '/domains?limit=2');
      assert.equal(first.status, 200);
      assert.equal(first.body.domains.length, 2);
      assert.ok(first.body.next);
      const rest = await cloud.call<{ domains: { domain: string }[]; next: string | null }>('GET', `/domains?limit=500&next=${first.body.next}`);
      const all = await cloud.call<{ domains: { domain: string }[] }>('GET', '/domains');
      assert.deepEqual([...first.body.domains, ...rest.body.domains].map((d) => d.domain), all.body.domains.map((d) => d.domain));
      assert.equal(rest.body.next, null);
      assertTypedRefusal(await cloud.call('GET', '/domains?limit=0'), 'F00_MALFORMED');
      assertTypedRefusal(await cloud.call('GET', `/domains?next=${Buffer.from('{"after":"no such name!"}').toString('base64url')}`), 'F00_MALFORMED');
    });
  });

  describe('verifying a reputation against the ledger', () => {
    it('is an admin route (IAM on AWS); the public route refuses ?verify=ledger with 403 naming it', async () => {
      const route = ROUTES.find((r) => r.path === '/domains/{domain}/reputation/verify');
      assert.equal(route?.admin, true);
      assert.equal(ROUTES.find((r) => r.path === '/domains/{domain}/reputation')?.admin, false);
      const r = await cloud.call<{ error: { message: string } }>('GET', '/domains/c1/reputation?verify=ledger');
      assert.equal(r.status, 403);
      assertTypedRefusal(r, 'F08_FORBIDDEN');
      assert.match(r.body.error.message, /reputation\/verify/);
    });

    it('the admin route recomputes from the ledger and agrees with the counters after a real obligation', async () => {
      const dev = await enrol(cloud, 'c1', 'c1-dev-1');
      const { res } = await buy(cloud, dev, 'p1', 'p1-spd-1');
      assert.equal(res.status, 201);
      await cloud.runJob('publish');
      const r = await cloud.call<{ outstanding: number; ledger: { outstanding: number } | null }>('GET', '/domains/c1/reputation/verify');
      assert.equal(r.status, 200);
      assert.ok(r.body.ledger);
      assert.equal(r.body.ledger.outstanding, r.body.outstanding);
      assert.ok(r.body.outstanding > 0);
      assertTypedRefusal(await cloud.call('GET', '/domains/zzz/reputation/verify'), 'F07_UNKNOWN_DOMAIN');
    });
  });

  describe('what a purchase reads and writes (issue 11: round trips, consistency)', () => {
    it('an offer reads the device and revocation eventually; an acceptance is one wave of reads (offer and chain strong, counters, shard and revocation eventual) and one transaction', async () => {
      const dev = await enrol(cloud, 'c1', 'c1-dev-rt');
      assert.equal((await buy(cloud, dev, 'p1', 'p1-spd-1')).res.status, 201); // warm-up: caches, the first grant
      const head = await cloud.deps.store.getChainHead('c1', 'c1-dev-rt');
      const seen: string[][] = [];
      let inFlight = 0;
      let recording = false;
      cloud.deps.store.doc.middlewareStack.add(
        (next, context) => async (args) => {
          if (!recording) return next(args);
          const input = args.input as { Key?: { pk: string }; ConsistentRead?: boolean; RequestItems?: Record<string, { Keys: { pk: string }[]; ConsistentRead?: boolean }>; TransactItems?: unknown[] };
          const batch = Object.values(input.RequestItems ?? {})[0];
          const kinds = (batch ? batch.Keys.map((k) => k.pk) : input.Key ? [input.Key.pk] : []).map((pk) => pk.split('#')[0]).sort().join('+');
          const strong = (batch ? batch.ConsistentRead : input.ConsistentRead) === true;
          const op = String((context as { commandName?: string }).commandName).replace(/Command$/, '');
          if (inFlight === 0) seen.push([]);
          seen[seen.length - 1]?.push(`${op} ${kinds}${op.endsWith('Get') || op.startsWith('Get') || op.startsWith('Batch') ? (strong ? ' strong' : ' eventual') : ''}`);
          inFlight += 1;
          try {
            return await next(args);
          } finally {
            inFlight -= 1;
          }
        },
        { step: 'initialize', name: 'testWaves' },
      );
      try {
        recording = true;
        const offer = await getOffer(cloud, dev, 'p1', 'p1-spd-1');
        const offerWaves = seen.splice(0);
        assert.deepEqual(offerWaves.flat().filter((r) => /DEVICE|REVOKED/.test(r)).sort(), ['GetItem DEVICE eventual', 'GetItem REVOKED eventual']);
        const res = await submit(cloud, dev, sign(dev, offer, { seq: 2, prev: head?.id ?? '' }));
        recording = false;
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.deepEqual(
          seen.map((w) => w.filter((r) => !r.startsWith('GetItem DOM')).sort()),
          [['BatchGetItem CREDIT+REP+REVOKED eventual', 'BatchGetItem DEV+OFFER strong'], ['TransactWriteItems ']],
        );
      } finally {
        recording = false;
        cloud.deps.store.doc.middlewareStack.remove('testWaves');
      }
    });
  });

  describe('the scheduled escrow rebalancer (functions/rebalance.ts as the cloud runs it)', () => {
    it('refreshes a grant that lapses within its window, and leaves a fresh one alone', async () => {
      const now = Date.now();
      // the limit the job computes too (a lower one would look short to it and be topped up)
      const limit = limitFn(cloud.deps.config);
      // granted 200 s ago: its 5 min grant lapses in 100 s, within the job's 150 s window
      await cloud.deps.store.rebalance('rb-old', { limit, now: now - 200_000 });
      await cloud.deps.store.rebalance('rb-new', { limit, now });
      await cloud.runJob('rebalance');
      const old = await cloud.deps.store.creditSnapshot('rb-old');
      assert.ok(old.shards.every((x) => x.until >= now + 250_000), JSON.stringify(old.shards));
      const fresh = await cloud.deps.store.creditSnapshot('rb-new');
      assert.ok(fresh.shards.every((x) => x.until === now + 300_000), JSON.stringify(fresh.shards));
    });
  });
});
