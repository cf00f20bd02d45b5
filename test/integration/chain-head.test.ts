/**
 * GET /domains/{domain}/devices/{device}/head: a device's chain head as its
 * back-end knows it, so a device that lost its chain state can resume
 * (seq + 1, prev = id) instead of being refused F04_REPLAY / F05_CHAIN_BREAK.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { GENESIS } from '../../core/types.ts';
import { buy, enrol, getOffer, registerDomain, sign, submit, type TestDevice } from './support.ts';

describe('device chain head', () => {
  let cloud: LocalCloud;
  let dev: TestDevice;

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0 } });
    await registerDomain(cloud, 'hc', 'consumer');
    await registerDomain(cloud, 'hp', 'provider', { threshold: 0.3 });
    dev = await enrol(cloud, 'hc', 'hc-dev');
  });
  after(async () => {
    await cloud?.stop();
  });

  const head = (device: string) => cloud.call<{ seq: number; id: string; error?: { code: string } }>('GET', `/domains/hc/devices/${device}/head`);

  it('a device with no obligation yet is at genesis', async () => {
    const r = await head('hc-dev');
    assert.equal(r.status, 200);
    assert.deepEqual({ seq: r.body.seq, id: r.body.id }, { seq: 0, id: GENESIS });
  });

  it('answers the last accepted link; a device that lost its state resumes from it', async () => {
    await buy(cloud, dev, 'hp', 'hp-spd');
    const { ob } = await buy(cloud, dev, 'hp', 'hp-spd');
    const r = await head('hc-dev');
    assert.deepEqual({ seq: r.body.seq, id: r.body.id }, { seq: 2, id: ob.id });

    // the device forgot its chain: from genesis it is a replay …
    const stale = await submit(cloud, dev, sign(dev, await getOffer(cloud, dev, 'hp', 'hp-spd'), { seq: 1, prev: GENESIS }));
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    // … from the head it is accepted
    const resumed = await submit(cloud, dev, sign(dev, await getOffer(cloud, dev, 'hp', 'hp-spd'), { seq: r.body.seq + 1, prev: r.body.id }));
    assert.equal(resumed.status, 201, JSON.stringify(resumed.body));
    assert.equal((await head('hc-dev')).body.seq, 3);
  });

  it('refuses a malformed device name with a typed 400', async () => {
    const r = await head('bad%20name!');
    assert.equal(r.status, 400, JSON.stringify(r.body));
  });
});
