/**
 * Domain key rotation across two hubs that share only the chain:
 *   hub 1 hosts consumer c1 and provider p1; hub 2 hosts provider p2.
 * - a rotation (POST /domains/{d}/key-rotation) cuts off credentials of the replaced key
 *   at the domain's own hub at once and at another hub after one follower run; renewed
 *   credentials buy everywhere;
 * - obligations accepted with the old key's credentials and published after the
 *   rotation still verify at every hub; records signed with the new key verify too;
 * - forged rotations (another key, the retired key, another node) are skipped and counted;
 * - the device SDK renews on a credential refusal and re-reads a provider's rotated key;
 * - another process of a hub, with its own cache, takes the new key at its first credential;
 * - a rotation interrupted by a ledger outage finishes, with the same record, when asked again.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, keyFingerprint, sameKey, verifySigned } from '../../core/keys.ts';
import { createKeyRotation, createRenewalRequest, createRevocation, createSettlementRecord } from '../../core/records.ts';
import type { DeviceCredential, Json, KeyRotationBody, PublicKeyRef, SettlementRecord, Signed } from '../../core/types.ts';
import { ConsumerDevice } from '../../devices/scd.ts';
import { LocalSigner } from '../../adapters/signer/local.ts';
import type { Deps } from '../../functions/shared/deps.ts';
import { UnavailableError } from '../../core/errors.ts';
import type { Federation } from '../../local/federation.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import type { HostedDomain } from '../../adapters/store/dynamo.ts';
import { currentKey as currentKeyOf, type DomainKeys } from '../../core/domain-keys.ts';
import { DomainDirectory, domainKey, rotationKey } from '../../service/directory.ts';
import { domainSigner } from '../../service/keys.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import { buy, enrol, ensureProviderDevice, follow, idleLink, offerRequest, registerDomain, sign, sleep, submit, type TestDevice, twoHubs } from './support.ts';

const DELAY = 30;
type ErrorBody = { error?: { code: string; message: string } };

async function attempt(cloud: LocalCloud, dev: TestDevice, providerDomain: string, providerDevice: string) {
  await ensureProviderDevice(cloud, providerDomain, providerDevice);
  const offered = await cloud.call<{ offer: Parameters<typeof sign>[1] } & ErrorBody>('POST', '/offers', offerRequest(dev, providerDomain, providerDevice));
  if (offered.status !== 201) return { stage: 'offer', code: offered.body.error?.code, status: offered.status };
  const r = await submit(cloud, dev, sign(dev, offered.body.offer));
  if (r.status === 201) dev.head = { seq: dev.head.seq + 1, id: (r.body as { obligationId: string }).obligationId };
  return { stage: 'accept', code: (r.body as ErrorBody).error?.code, status: r.status };
}

describe('domain key rotation across hubs', () => {
  let fed: Federation;
  let hub1: LocalCloud;
  let hub2: LocalCloud;
  /** c1 as hosted before its first rotation: the key it retires. */
  let c1Before: HostedDomain;
  /** A copy of hub 1's key file taken before any rotation, as a thief would have it: still signs with c1's old key. */
  let stolen: (d: HostedDomain) => ReturnType<typeof domainSigner>;
  let dir: string;
  const propagate = () => sleep(DELAY * 4);
  const rotate = (hub: LocalCloud, d: string) => hub.call<{ rotation: Signed<KeyRotationBody> } & ErrorBody>('POST', `/domains/${d}/key-rotation`, {});
  const renew = async (dev: TestDevice) => {
    const r = await hub1.call<{ credential: Signed<DeviceCredential> }>('POST', `/domains/${dev.domain}/devices/${dev.id}/renewal`, {
      request: createRenewalRequest({ domain: dev.domain, deviceId: dev.id, at: Date.now() }, dev.keys.privateKey),
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    dev.credential = r.body.credential;
  };
  const keyOf = async (hub: LocalCloud, d: string) => (await hub.call<{ key: PublicKeyRef; rotations: unknown[] }>('GET', `/domains/${d}`)).body;
  /** A new consumer domain at hub 1 whose rotation a ledger outage cut short: hosted before and after, and the rotation begun. */
  const cutShort = async (d: string) => {
    await registerDomain(hub1, d, 'consumer');
    await propagate();
    const before = (await hub1.deps.store.getHostedDomain(d))!;
    fed.stopHubLedger(0);
    try {
      const failed = await rotate(hub1, d);
      assert.equal(failed.status, 503, JSON.stringify(failed.body));
    } finally {
      fed.restartHubLedger(0);
    }
    const half = (await hub1.deps.store.getHostedDomain(d))!;
    return { before, half, begun: half.rotating! };
  };
  /** A new consumer domain at hub 1 (hosted as registered), and a rotation of it asked while `part` of hub 1 throws `error`. */
  const rotateFailing = async <K extends 'store' | 'signer'>(d: string, part: K, method: keyof Deps[K], error: Error) => {
    await registerDomain(hub1, d, 'consumer');
    await propagate();
    const before = (await hub1.deps.store.getHostedDomain(d))!;
    const target = hub1.deps[part] as unknown as Record<string, unknown>;
    const real = target[method as string];
    target[method as string] = async () => {
      throw error;
    };
    try {
      return { before, answer: await rotate(hub1, d) };
    } finally {
      target[method as string] = real;
    }
  };
  /** Run `work` with hub 1's clock `ms` ahead. */
  const ahead = async <T>(ms: number, work: () => Promise<T>): Promise<T> => {
    const realNow = hub1.deps.now;
    hub1.deps.now = () => Date.now() + ms;
    try {
      return await work();
    } finally {
      hub1.deps.now = realNow;
    }
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-rotation-'));
    const keyFile = join(dir, 'hub1-keys.json');
    ({ fed, hub1, hub2 } = await twoHubs(DELAY, async (h1) => {
      h1.deps.signer = await LocalSigner.open(keyFile);
    }));
    c1Before = (await hub1.deps.store.getHostedDomain('c1'))!;
    await copyFile(keyFile, join(dir, 'stolen.json'));
    const thief = await LocalSigner.open(join(dir, 'stolen.json'));
    stolen = (d) => domainSigner({ signer: thief }, d);
  });
  after(async () => {
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('cuts off the replaced key at home at once and elsewhere after one follower run; renewed credentials buy; old records stay valid', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-a');
    assert.equal((await buy(hub2, dev, 'p2', 'p2-spd-1')).res.status, 201, 'accepted before the rotation, published after it');

    const rotated = await rotate(hub1, 'c1');
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    const r = rotated.body.rotation;
    assert.equal(r.body.seq, 1);
    assert.equal(r.body.previous, keyFingerprint(c1Before.publicKey));
    assert.ok(verifySigned(r, c1Before.publicKey), 'signed by the key it replaces');
    const hosted = (await hub1.deps.store.getHostedDomain('c1'))!;
    assert.ok(sameKey(hosted.publicKey, r.body.key) && hosted.keyId !== c1Before.keyId && hosted.rotating === undefined);
    assert.deepEqual((await keyOf(hub1, 'c1')).key, r.body.key);
    // the replaced key is retired in the hub's signer: it signs nothing more there
    assert.equal((rotated.body as unknown as { retired: boolean }).retired, true);
    await assert.rejects(domainSigner(hub1.deps, c1Before).sign('x'), UnavailableError);

    // at home: the old credential gets no offer
    assert.deepEqual(await attempt(hub1, dev, 'p1', 'p1-spd-1'), { stage: 'offer', code: 'F02_BAD_CREDENTIAL', status: 400 });
    // hub 2 has not followed yet: the window is one follower interval
    assert.equal((await attempt(hub2, dev, 'p2', 'p2-spd-1')).status, 201);
    const early = (await hub2.call<{ offer: Parameters<typeof sign>[1] }>('POST', '/offers', offerRequest(dev, 'p2', 'p2-spd-1'))).body.offer;
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.rotations, 1, JSON.stringify(followed));
    assert.equal(followed.invalid, 0, JSON.stringify(followed));
    assert.deepEqual((await keyOf(hub2, 'c1')).key, r.body.key);
    assert.deepEqual(await attempt(hub2, dev, 'p2', 'p2-spd-1'), { stage: 'offer', code: 'F02_BAD_CREDENTIAL', status: 400 });
    // an obligation signed with the old credential on an offer it got before is refused at acceptance too
    const late = await submit(hub2, dev, sign(dev, early));
    assert.equal((late.body as ErrorBody).error?.code, 'F02_BAD_CREDENTIAL', JSON.stringify(late.body));

    // renewed (signed by the new key): buys at both hubs
    await renew(dev);
    assert.ok(verifySigned(dev.credential, r.body.key));
    assert.equal((await attempt(hub1, dev, 'p1', 'p1-spd-1')).status, 201);
    assert.equal((await attempt(hub2, dev, 'p2', 'p2-spd-1')).status, 201);

    // hub 2 publishes the three (two with the old credential); hub 1 verifies and learns all three
    await hub2.runJob('publish');
    await propagate();
    const learnt = await follow(hub1);
    assert.equal(learnt.obligations, 3, JSON.stringify(learnt));
    assert.equal(learnt.invalid, 0, JSON.stringify(learnt));

    // a record the new key signs (a revocation) verifies at hub 2
    const victim = await enrol(hub1, 'c1', 'c1-lost');
    assert.equal((await hub1.call('POST', `/domains/c1/devices/${victim.id}/revocation`, { reason: 'lost' })).status, 201);
    await propagate();
    const after = await follow(hub2);
    assert.equal(after.revocations, 1, JSON.stringify(after));
    assert.equal(after.invalid, 0, JSON.stringify(after));
  });

  it('skips and counts forged rotations: another key, the retired key, another node; a repeat changes nothing', async () => {
    const before = await keyOf(hub2, 'c1');
    const current = (await hub1.deps.store.getHostedDomain('c1'))!;
    const seq = before.rotations.length + 1;
    const next = generateKeyPair().publicKey;
    const body = { domain: 'c1', seq, key: next, previous: keyFingerprint(current.publicKey), at: Date.now() };
    const publish = (from: { publish: typeof fed.ledgers[0]['publish'] }, r: Signed<KeyRotationBody>) =>
      from.publish('domains', rotationKey('c1', r.body.seq), [domainKey('c1')], r as unknown as Json);
    // from c1's own hub node: signed by a stranger, then by the retired key
    await publish(fed.ledgers[0]!, createKeyRotation(body, generateKeyPair().privateKey));
    await publish(fed.ledgers[0]!, await createKeyRotation(body, stolen(c1Before)));
    // signed by c1's current key, but from a node that is not c1's hub
    await publish(fed.network.node('rogue-hub'), await createKeyRotation(body, domainSigner(hub1.deps, current)));
    // the genuine rotation 1 again, from c1's hub: already known (the ledger keeps one copy)
    const first = (await hub1.deps.directory.keys('c1'))!.rotations[0]!;
    await publish(fed.ledgers[0]!, first);
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.invalid, 3, JSON.stringify(followed));
    assert.equal(followed.rotations, 0, JSON.stringify(followed));
    assert.deepEqual(await keyOf(hub2, 'c1'), before);
    const dev = await enrol(hub1, 'c1', 'c1-after-forgeries');
    assert.equal((await attempt(hub2, dev, 'p2', 'p2-spd-1')).status, 201, 'the current key still counts');
    // and a revocation signed by the retired key, long after its rotation, from c1's hub node: refused
    const late = await createRevocation(
      { domain: 'c1', deviceId: dev.id, deviceKey: dev.keys.publicKey, reason: 'forged', at: Date.now() + 3_600_000 },
      stolen(c1Before),
    );
    await fed.ledgers[0]!.publish('domains', ledgerKeys.revocation('c1', dev.id, keyFingerprint(dev.keys.publicKey)), [], late as unknown as Json);
    await propagate();
    const again = await follow(hub2);
    assert.equal(again.revocations, 0, JSON.stringify(again));
    assert.equal(again.invalid, 1, JSON.stringify(again));
  });

  it('a settlement dated before a rotation and signed after it with the new key counts elsewhere; the retired key signs nothing dated after the grace', async () => {
    const keys = (await hub1.deps.directory.keys('c1'))!;
    const rotatedAt = keys.rotations.at(-1)!.body.at;
    const current = (await hub1.deps.store.getHostedDomain('c1'))!;
    const hex = () => Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
    const record = (at: number): SettlementRecord => ({
      version: 1,
      settlementId: hex(),
      consumerDomain: 'c1',
      phase: 'confirmed',
      txid: hex(),
      outputs: [{ payTo: 'bcrt1qprovider', providerDomain: 'p1', amount: 1000, obligationIds: [hex()] }],
      at,
    });
    const publish = async (r: Signed<SettlementRecord>) =>
      fed.ledgers[0]!.publish('settlements', ledgerKeys.settlement(r.body.settlementId, r.body.phase), [ledgerKeys.consumer('c1')], r as unknown as Json);
    // made an hour before the rotation, confirmed (and signed) after it: the current key
    await publish(await createSettlementRecord(record(rotatedAt - 3_600_000), domainSigner(hub1.deps, current)));
    await propagate();
    const counted = await follow(hub2);
    assert.equal(counted.settlements, 1, JSON.stringify(counted));
    assert.equal(counted.invalid, 0, JSON.stringify(counted));
    // the retired key, dated an hour after the rotation: refused
    await publish(await createSettlementRecord(record(rotatedAt + 3_600_000), stolen(c1Before)));
    await propagate();
    const refused = await follow(hub2);
    assert.equal(refused.settlements, 0, JSON.stringify(refused));
    assert.equal(refused.invalid, 1, JSON.stringify(refused));
  });

  it('the device SDK renews on a credential refusal and re-reads a provider key that rotated', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-sdk');
    const link = idleLink(dev.id);
    let reads = 0;
    const cache = new Map<string, PublicKeyRef>();
    const scd = new ConsumerDevice({
      domain: 'c1',
      deviceId: dev.id,
      privateKey: dev.keys.privateKey,
      credential: dev.credential,
      link,
      providerApi: (d) => (d === 'p2' ? hub2.api : undefined),
      providerKey: async (d, fresh) => {
        const hit = cache.get(d);
        if (hit && !fresh) return hit;
        reads += 1;
        const key = (await keyOf(hub1, d)).key;
        cache.set(d, key);
        return key;
      },
      renewal: { api: hub1.api },
      attempts: 1,
    });
    try {
      await ensureProviderDevice(hub2, 'p2', 'p2-spd-1');
      const first = await scd.buy('p2', 'p2-spd-1', 'wifi-access');
      assert.ok(first.ok, JSON.stringify(first));
      assert.equal(reads, 1);

      // the provider rotates; once hub 1 follows, the device's cached key is stale
      assert.equal((await rotate(hub2, 'p2')).status, 201);
      await propagate();
      assert.equal((await follow(hub1)).rotations, 1);
      const second = await scd.buy('p2', 'p2-spd-1', 'wifi-access');
      assert.ok(second.ok, JSON.stringify(second));
      assert.equal(reads, 2, 'read once more, afresh');

      // the consumer rotates; once hub 2 follows, the device's credential is refused, it renews and buys
      const old = scd.credential;
      assert.equal((await rotate(hub1, 'c1')).status, 201);
      await propagate();
      assert.equal((await follow(hub2)).rotations, 1);
      const third = await scd.buy('p2', 'p2-spd-1', 'wifi-access');
      assert.ok(third.ok, JSON.stringify(third));
      assert.notEqual(scd.credential, old, 'renewed');
      assert.ok(verifySigned(scd.credential, (await keyOf(hub1, 'c1')).key));
    } finally {
      await scd.close();
    }
  });

  it('another process of a hub (its own cache) takes the new key at the first credential of it, and a forgery costs no extra read', async () => {
    let reads = 0;
    const store = hub2.deps.store;
    const other = new DomainDirectory(hub2.deps.ledger, {
      getDomainKeys: (d) => ((reads += 1), store.getDomainKeys(d)),
      putDomainRecord: (r) => store.putDomainRecord(r),
      addKeyRotation: (r) => store.addKeyRotation(r),
    });
    const dev = await enrol(hub1, 'c1', 'c1-container');
    const old = (await other.keys('c1'))!;
    assert.ok(await other.currentKey('c1', dev.credential));
    assert.equal((await rotate(hub1, 'c1')).status, 201);
    await propagate();
    assert.equal((await follow(hub2)).rotations, 1); // hub 2's store and its follower's process know; `other` does not yet
    await renew(dev);
    await sleep(1_000);
    const readsBefore = reads;
    const now = await other.currentKey('c1', dev.credential);
    assert.ok(now && verifySigned(dev.credential, now) && !sameKey(now, currentKeyOf(old)), 'the new key, read again');
    assert.equal(reads, readsBefore + 1);
    const forged = { ...dev.credential, sig: dev.credential.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) };
    await other.currentKey('c1', forged);
    await other.currentKey('c1', forged);
    assert.equal(reads, readsBefore + 1, 'a signature that fails right after a read does not read again');

    // a process whose store has never heard of c1 reads its record and rotations from the ledger,
    // skipping the forged ones published under the same key
    const mem = new Map<string, DomainKeys>();
    const cold = new DomainDirectory(hub2.deps.ledger, {
      getDomainKeys: async (d) => mem.get(d),
      putDomainRecord: async (r) => !mem.has(r.body.domain) && Boolean(mem.set(r.body.domain, { record: r, rotations: [] })),
      addKeyRotation: async (r) => {
        const k = mem.get(r.body.domain);
        if (!k || k.rotations.length !== r.body.seq - 1) return false;
        mem.set(r.body.domain, { record: k.record, rotations: [...k.rotations, r] });
        return true;
      },
    });
    const fromLedger = (await cold.keys('c1'))!;
    assert.deepEqual(fromLedger, (await hub1.deps.directory.keys('c1'))!);
    assert.equal(fromLedger.rotations.length, 3, 'every rotation of c1, none of the forged');
  });

  it('a rotation cut short by a ledger outage keeps the old key and finishes, with the same record, when asked again', async () => {
    const { before, half } = await cutShort('c9');
    await follow(hub2);
    assert.equal(half.keyId, before.keyId, 'still signs with the old key');
    assert.ok(half.rotating, 'the begun rotation is recorded');
    const dev = await enrol(hub1, 'c9', 'c9-a');
    assert.ok(verifySigned(dev.credential, before.publicKey));

    const done = await rotate(hub1, 'c9');
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual(done.body.rotation, half.rotating!.rotation, 'the same record, not a second rotation');
    const after = (await hub1.deps.store.getHostedDomain('c9'))!;
    assert.ok(sameKey(after.publicKey, half.rotating!.publicKey) && after.rotating === undefined);
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.rotations, 1, JSON.stringify(followed));
    assert.equal(followed.invalid, 0);
    assert.equal((await rotate(hub1, 'c9')).body.rotation.body.seq, 2, 'a later rotation is the next one');
  });

  it('a rotation cut short after the old key was retired (the store failed) finishes when asked again; meanwhile the old key signs nothing', async () => {
    const { before, answer: failed } = await rotateFailing('c5', 'store', 'finishKeyRotation', new UnavailableError('store down'));
    const store = hub1.deps.store;
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    const half = (await store.getHostedDomain('c5'))!;
    assert.ok(half.keyId === before.keyId && half.rotating, 'begun, not finished');
    await assert.rejects(domainSigner(hub1.deps, before).sign('x'), UnavailableError, 'retired already');
    const enrolling = await hub1.call<ErrorBody>('POST', '/domains/c5/devices', { deviceId: 'c5-a', deviceKey: generateKeyPair().publicKey, creditLimit: 1000 });
    assert.equal(enrolling.status, 503, `retry-class until the rotation is finished: ${JSON.stringify(enrolling.body)}`);

    const done = await rotate(hub1, 'c5');
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual(done.body.rotation, half.rotating!.rotation, 'the same record');
    const after = (await store.getHostedDomain('c5'))!;
    assert.ok(sameKey(after.publicKey, half.rotating!.publicKey) && after.rotating === undefined);
    assert.ok((await enrol(hub1, 'c5', 'c5-a')).credential, 'the new key signs');
  });

  it('a signer that is down when the replaced key is to be retired fails the call (503), and the rotation finishes, retired, when asked again', async () => {
    const { before, answer: failed } = await rotateFailing('c3', 'signer', 'retireKey', new UnavailableError('key service unavailable: ThrottlingException'));
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    const half = (await hub1.deps.store.getHostedDomain('c3'))!;
    assert.ok(half.keyId === before.keyId && half.rotating, 'begun, not finished: the old key is not left enabled');
    const done = await rotate(hub1, 'c3');
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.equal((done.body as unknown as { retired: boolean }).retired, true);
    await assert.rejects(domainSigner(hub1.deps, before).sign('x'), UnavailableError);
  });

  it('a signer that refuses for good to retire the replaced key does not keep the domain on it: switched, and the answer says why', async () => {
    const denied = Object.assign(new Error('not authorized to perform kms:ScheduleKeyDeletion'), { name: 'AccessDeniedException' });
    const { before, answer: done } = await rotateFailing('c4', 'signer', 'retireKey', denied);
    assert.equal(done.status, 201, JSON.stringify(done.body));
    const body = done.body as unknown as { retired: boolean; notRetired?: string };
    assert.equal(body.retired, false);
    assert.match(body.notRetired ?? '', new RegExp(`^key ${before.keyId}: AccessDeniedException: not authorized`));
    const after = (await hub1.deps.store.getHostedDomain('c4'))!;
    assert.ok(sameKey(after.publicKey, done.body.rotation.body.key) && after.rotating === undefined, 'switched to the new key');
  });

  it('a rotation finished long after it began is dated afresh, so what the old key signed meanwhile still counts', async () => {
    const { before, begun } = await cutShort('c8');
    await follow(hub2);
    // the ledger came back; the admin asks a quarter of an hour later
    const late = 15 * 60_000;
    await ahead(late, async () => {
      // meanwhile the domain still signed with the old key: a settlement's record, dated 14 minutes after the rotation began
      const hex = () => randomBytes(32).toString('hex');
      const settled = await createSettlementRecord(
        {
          version: 1,
          settlementId: hex(),
          consumerDomain: 'c8',
          phase: 'confirmed',
          txid: hex(),
          outputs: [{ payTo: 'bcrt1qprovider', providerDomain: 'p1', amount: 1000, obligationIds: [hex()] }],
          at: begun.rotation.body.at + 14 * 60_000,
        },
        domainSigner(hub1.deps, before),
      );
      await fed.ledgers[0]!.publish('settlements', ledgerKeys.settlement(settled.body.settlementId, 'confirmed'), [ledgerKeys.consumer('c8')], settled as unknown as Json);
      const done = await rotate(hub1, 'c8');
      assert.equal(done.status, 201, JSON.stringify(done.body));
      const r = done.body.rotation;
      assert.ok(r.body.at >= begun.rotation.body.at + late, 'dated when it was finished');
      assert.equal(r.body.seq, begun.rotation.body.seq);
      assert.ok(sameKey(r.body.key, begun.publicKey), 'the same new key');
      assert.ok(sameKey((await hub1.deps.store.getHostedDomain('c8'))!.publicKey, begun.publicKey));
    });
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.rotations, 1, JSON.stringify(followed));
    assert.equal(followed.settlements, 1, 'the old key\'s record, dated before the (re-dated) rotation, counts');
    assert.equal(followed.invalid, 0, JSON.stringify(followed));
  });

  it('a begun rotation already on the ledger is finished as it is, however late', async () => {
    const { begun } = await cutShort('c6');
    await fed.ledgers[0]!.publish('domains', rotationKey('c6', begun.rotation.body.seq), [domainKey('c6')], begun.rotation as unknown as Json);
    await propagate();
    const done = await ahead(15 * 60_000, () => rotate(hub1, 'c6'));
    assert.equal(done.status, 201, JSON.stringify(done.body));
    assert.deepEqual(done.body.rotation, begun.rotation, 'not dated afresh: the ledger has it');
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.invalid, 0, 'no second record of it on the ledger');
  });

  it('a begun rotation whose first publication landed late (after the re-dating checked) stands as it is', async () => {
    const { before: old, begun } = await cutShort('c7');
    // the first attempt's publication lands after all, and hub 1's follower keeps it
    await fed.ledgers[0]!.publish('domains', rotationKey('c7', begun.rotation.body.seq), [domainKey('c7')], begun.rotation as unknown as Json);
    await propagate();
    assert.equal((await follow(hub1)).rotations, 1);
    const ledger = hub1.deps.ledger;
    const realList = ledger.listByKey.bind(ledger);
    let missed = 0;
    // …but after the check that would have seen it: the rotation is dated afresh and published again
    ledger.listByKey = async (stream, key) => (key.startsWith('key-rotation:c7:') ? (missed++, []) : realList(stream, key));
    try {
      const done = await ahead(15 * 60_000, () => rotate(hub1, 'c7'));
      assert.equal(done.status, 201, JSON.stringify(done.body));
      assert.ok(missed > 0, 'the late publication was missed');
      assert.deepEqual((done.body as { rotation: unknown }).rotation, begun.rotation, 'the answer is the record that stands');
    } finally {
      ledger.listByKey = realList;
    }
    const now = (await hub1.deps.store.getHostedDomain('c7'))!;
    assert.ok(sameKey(now.publicKey, begun.publicKey) && now.keyId !== old.keyId && now.rotating === undefined, 'switched to the same new key');
    assert.deepEqual((await hub1.deps.directory.keys('c7'))!.rotations, [begun.rotation], 'the first record stands');
  });

});
