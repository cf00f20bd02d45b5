/**
 * Keys and revocation across two hubs that share only the chain:
 *   hub 1 hosts consumer c1 and provider p1; hub 2 hosts provider p2.
 * - no private key lies in any table (the Signer holds domain keys; hub keys are in memory);
 * - a revoked device key is refused at its own hub at once (store lookup) and at the
 *   other hub after one run of its ledger follower (the signed revocation record);
 * - a forged revocation (wrong signer, or the right name from a foreign node) is skipped and counted;
 * - credentials are short-lived: a device renews through its back-end (also through the
 *   device SDK), an ended credential is refused, and so is its renewal.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { generateKeyPair, keyFingerprint } from '../../core/keys.ts';
import { createRenewalRequest, createRevocation } from '../../core/records.ts';
import type { DeviceCredential, Json, RevocationBody, Signed } from '../../core/types.ts';
import { ConsumerDevice } from '../../devices/scd.ts';
import type { Federation } from '../../local/federation.ts';
import type { LocalCloud } from '../../local/cloud.ts';
import { domainSigner } from '../../service/keys.ts';
import { ledgerKeys } from '../../service/ledger-records.ts';
import { buy, enrol, ensureProviderDevice, follow, getOffer, idleLink, offerRequest, sign, sleep, submit, type TestDevice, twoHubs } from './support.ts';

/** A purchase that may be refused at the offer (its answer then) or at acceptance. */
async function attempt(cloud: LocalCloud, dev: TestDevice, providerDomain: string, providerDevice: string) {
  await ensureProviderDevice(cloud, providerDomain, providerDevice);
  const offered = await cloud.call<{ offer: Parameters<typeof sign>[1] } & ErrorBody>('POST', '/offers', offerRequest(dev, providerDomain, providerDevice));
  if (offered.status !== 201) return { stage: 'offer', res: offered };
  return { stage: 'accept', res: await submit(cloud, dev, sign(dev, offered.body.offer)) };
}

const DELAY = 30;
type ErrorBody = { error?: { code: string } };

describe('device keys: revocation at every hub, short-lived credentials and renewal', () => {
  let fed: Federation;
  let hub1: LocalCloud;
  let hub2: LocalCloud;
  const propagate = () => sleep(DELAY * 4);
  const renew = (hub: LocalCloud, dev: TestDevice, signer = dev.keys.privateKey, at = Date.now()) =>
    hub.call<{ credential: Signed<DeviceCredential> } & ErrorBody>('POST', `/domains/${dev.domain}/devices/${dev.id}/renewal`, {
      request: createRenewalRequest({ domain: dev.domain, deviceId: dev.id, at }, signer),
    });

  before(async () => {
    ({ fed, hub1, hub2 } = await twoHubs(DELAY));
  });
  after(async () => {
    await fed?.stop();
  });

  it('keeps no private key in any table: the hosted domain holds its signer key id and public key only', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-scan');
    assert.equal((await buy(hub1, dev, 'p1', 'p1-spd-1')).res.status, 201);
    for (const hub of fed.hubs) {
      const client = new DynamoDBClient({
        region: hub.env.AWS_REGION!,
        endpoint: hub.env.AWS_ENDPOINT_URL_DYNAMODB!,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      try {
        const items = (await client.send(new ScanCommand({ TableName: hub.env.TABLE_NAME! }))).Items ?? [];
        assert.ok(items.length > 0);
        const text = JSON.stringify(items);
        assert.doesNotMatch(text, /pkcs8|privateKey/i, 'a private key in the table');
        const hosted = items.filter((i) => i.sk?.S === 'CONFIG');
        assert.ok(hosted.length > 0);
        for (const h of hosted) {
          assert.match(h.keyId?.S ?? '', /^local:/);
          assert.ok(h.publicKey?.M?.spki?.S);
        }
      } finally {
        client.destroy();
      }
    }
  });

  it('refuses a revoked device at its own hub at once, and at another hub after one follower run', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-stolen');
    assert.equal((await buy(hub1, dev, 'p1', 'p1-spd-1')).res.status, 201);
    assert.equal((await buy(hub2, dev, 'p2', 'p2-spd-1')).res.status, 201);
    const early = await getOffer(hub1, dev, 'p1', 'p1-spd-1');

    const revoked = await hub1.call<{ revocation: Signed<RevocationBody> }>('POST', `/domains/c1/devices/${dev.id}/revocation`, { reason: 'key stolen' });
    assert.equal(revoked.status, 201, JSON.stringify(revoked.body));
    assert.equal(revoked.body.revocation.body.deviceId, dev.id);
    const again = await hub1.call('POST', `/domains/c1/devices/${dev.id}/revocation`, {});
    assert.equal(again.status, 201, 'revoking twice is harmless');

    // refused at acceptance, with an offer it got before the revocation...
    const home = await submit(hub1, dev, sign(dev, early));
    assert.equal(home.status, 403);
    assert.equal((home.body as ErrorBody).error?.code, 'F14_REVOKED');
    // ...and no new offer either
    const asked = await attempt(hub1, dev, 'p1', 'p1-spd-1');
    assert.deepEqual([asked.stage, asked.res.status, (asked.res.body as ErrorBody).error?.code], ['offer', 403, 'F14_REVOKED']);

    await propagate();
    // until its follower runs, hub 2 has not heard: the window is one follower interval
    assert.equal((await buy(hub2, dev, 'p2', 'p2-spd-1')).res.status, 201);
    const followed = await follow(hub2);
    assert.equal(followed.revocations, 1, JSON.stringify(followed));
    assert.equal(followed.invalid, 0);
    const away = await attempt(hub2, dev, 'p2', 'p2-spd-1');
    assert.equal(away.res.status, 403);
    assert.equal((away.res.body as ErrorBody).error?.code, 'F14_REVOKED');

    // the revoked key cannot renew or be enrolled again; a new key for the same device can
    const renewal = await renew(hub1, dev);
    assert.equal(renewal.body.error?.code, 'F14_REVOKED');
    const reEnrol = await hub1.call<ErrorBody>('POST', '/domains/c1/devices', { deviceId: dev.id, deviceKey: dev.keys.publicKey, creditLimit: 1_000 });
    assert.equal(reEnrol.body.error?.code, 'F14_REVOKED');
    const fresh = await enrol(hub1, 'c1', dev.id);
    fresh.head = dev.head;
    assert.equal((await buy(hub2, fresh, 'p2', 'p2-spd-1')).res.status, 201, 'a new key is not revoked');
  });

  it('skips and counts a forged revocation: signed by another key, or published from another node', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-target');
    const dev2 = await enrol(hub1, 'c1', 'c1-target2');
    const stranger = generateKeyPair();
    const revocationOf = (d: TestDevice) => ({ domain: 'c1', deviceId: d.id, deviceKey: d.keys.publicKey, reason: 'forged', at: Date.now() });
    const keyOf = (d: TestDevice) => ledgerKeys.revocation('c1', d.id, keyFingerprint(d.keys.publicKey));
    // wrong signer, from c1's own hub node (so only the signature is wrong)
    await fed.ledgers[0]!.publish('domains', keyOf(dev), [], createRevocation(revocationOf(dev), stranger.privateKey) as unknown as Json);
    // c1's genuine signature, but published from a node that is not c1's hub
    const c1 = await hub1.deps.store.getHostedDomain('c1');
    assert.ok(c1);
    const genuine = await createRevocation(revocationOf(dev2), domainSigner(hub1.deps, c1));
    await fed.network.node('rogue-hub').publish('domains', keyOf(dev2), [], genuine as unknown as Json);
    await propagate();
    const followed = await follow(hub2);
    assert.equal(followed.revocations, 0, JSON.stringify(followed));
    assert.equal(followed.invalid, 2, JSON.stringify(followed));
    for (const d of [dev, dev2]) assert.equal((await buy(hub2, d, 'p2', 'p2-spd-1')).res.status, 201, 'a forged revocation revokes nothing');
  });

  it('renews a credential through the back-end; an ended credential is refused and cannot be renewed', async () => {
    const short = await enrol(hub1, 'c1', 'c1-renew');
    const renewed = await renew(hub1, short);
    assert.equal(renewed.status, 201, JSON.stringify(renewed.body));
    const c = renewed.body.credential.body;
    assert.deepEqual(c.deviceKey, short.keys.publicKey);
    assert.ok(c.notAfter > short.credential.body.notAfter, 'renewal moves the end forward');
    assert.equal(c.notAfter - c.notBefore, 7 * 86_400_000 + 60_000, 'valid CREDENTIAL_TTL_MS (default 7 days)');
    short.credential = renewed.body.credential;
    assert.equal((await buy(hub1, short, 'p1', 'p1-spd-1')).res.status, 201);

    const other = generateKeyPair();
    assert.equal((await renew(hub1, short, other.privateKey)).body.error?.code, 'F01_BAD_SIGNATURE', 'signed by another key');
    assert.equal((await renew(hub1, short, undefined, Date.now() - 3_600_000)).body.error?.code, 'F03_EXPIRED', 'a stale request');

    const tooLong = await hub1.call<ErrorBody>('POST', '/domains/c1/devices', { deviceId: 'c1-long', deviceKey: other.publicKey, creditLimit: 1, validForMs: 8 * 86_400_000 });
    assert.equal(tooLong.body.error?.code, 'F00_MALFORMED', 'no credential beyond CREDENTIAL_TTL_MS');

    const keys = generateKeyPair();
    const r = await hub1.call<{ credential: Signed<DeviceCredential> }>('POST', '/domains/c1/devices', { deviceId: 'c1-ended', deviceKey: keys.publicKey, creditLimit: 1_000_000, validForMs: 1 });
    assert.equal(r.status, 201);
    await sleep(5);
    const ended: TestDevice = { domain: 'c1', id: 'c1-ended', keys, credential: r.body.credential, head: { seq: 0, id: '0'.repeat(64) } };
    const refused = await attempt(hub1, ended, 'p1', 'p1-spd-1');
    assert.equal((refused.res.body as ErrorBody).error?.code, 'F02_BAD_CREDENTIAL');
    assert.equal((await renew(hub1, ended)).body.error?.code, 'F02_BAD_CREDENTIAL', 'an ended credential is re-enrolled, not renewed');
  });

  it('the device SDK renews before the credential ends, and not earlier', async () => {
    const dev = await enrol(hub1, 'c1', 'c1-sdk');
    const link = idleLink(dev.id);
    const make = (beforeMs: number) =>
      new ConsumerDevice({
        domain: 'c1',
        deviceId: dev.id,
        privateKey: dev.keys.privateKey,
        credential: dev.credential,
        link,
        providerKey: async () => dev.keys.publicKey,
        renewal: { api: hub1.api, beforeMs },
        attempts: 1,
      });
    const early = make(60_000);
    assert.equal(await early.renewIfDue(), false, 'seven days left: not due');
    assert.deepEqual(early.credential, dev.credential, 'unchanged');
    const due = make(8 * 86_400_000);
    assert.equal(await due.renewIfDue(), true);
    assert.ok(due.credential.body.notAfter > dev.credential.body.notAfter);
  });
});
