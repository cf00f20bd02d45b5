/**
 * With a data directory the embedded cloud keeps the ledger (JSONL) and the
 * table (dynalite on LevelDB): a restart loses no accepted obligation, no
 * domain and no device chain. (bcoin regtest is in memory only: its chain and
 * wallets start over, as the README says.)
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { buy, enrol, registerDomain } from './support.ts';

const manual = { publish: 0, watch: 0, settle: 0, mine: 0 };

describe('restart with a data directory', () => {
  let dir: string;
  let cloud: LocalCloud | undefined;
  after(async () => {
    await cloud?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps domains, obligations, chain heads and the ledger across a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'oc-restart-'));
    cloud = await startCloud({ dataDir: dir, schedule: manual });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider');
    const dev = await enrol(cloud, 'c1', 'c1-scd-1');
    const first = await buy(cloud, dev, 'p1', 'p1-spd-1');
    const second = await buy(cloud, dev, 'p1', 'p1-spd-1');
    assert.equal(first.res.status, 201);
    assert.equal(second.res.status, 201);
    await cloud.runJob('publish');
    const ledgerSize = (await cloud.ledger()).size();
    await cloud.stop();
    cloud = undefined;

    cloud = await startCloud({ dataDir: dir, schedule: manual });
    cloud.registerThing(dev.id, 'c1', dev.keys.publicKey);
    const ledger = await cloud.ledger();
    ledger.verify();
    assert.equal(ledger.size(), ledgerSize, 'the ledger came back whole');
    assert.equal((await cloud.deps.ledger.listByKey('obligations', first.ob.id)).length, 1);
    const list = await cloud.call<{ count: number }>('GET', '/domains/c1/obligations');
    assert.equal(list.body.count, 2);
    const rep = await cloud.call<{ outstanding: number }>('GET', '/domains/c1/reputation');
    assert.equal(rep.body.outstanding, first.ob.body.amount + second.ob.body.amount);
    // the device chain continues where it was: seq 3 links to the second obligation
    const third = await buy(cloud, dev, 'p1', 'p1-spd-1');
    assert.equal(third.ob.body.seq, 3);
    assert.equal(third.res.status, 201, JSON.stringify(third.res.body));
    // and a replay of the first is answered as the duplicate it is
    const again = await cloud.call<{ duplicate: boolean }>('POST', '/obligations', { obligation: first.ob });
    assert.equal(again.body.duplicate, true);
  });
});
