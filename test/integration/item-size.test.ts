/**
 * An obligation's item stays within 1 KB over its whole life at its accepting hub,
 * with domain and device names of 16 characters (about 1,010 bytes at most; at 20 it
 * passes 1 KB: the names recur in its index keys and signed body): DynamoDB bills a write at the
 * larger of the item's images before and after it, 1 unit per KB (2 in a
 * transaction, as its close is), so every write of it after acceptance costs the
 * minimum only while it stays below 1 KB (adapters/store/dynamo.ts: the compact
 * item, hashes as bytes, short names of the fields it gains, nothing kept once counted).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { itemSize } from '../../bench/item-size.ts';
import { acceptMany, enrol, registerDomain } from './support.ts';

const CONSUMER = 'meters-north-cty';
const PROVIDER = 'parking-city-ctr';
const DEVICE = 'meter-serial-123';

describe('the size of an obligation item over its life', () => {
  let cloud: LocalCloud;
  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, mine: 0, follow: 0, rebalance: 0 } });
  });
  after(async () => {
    await cloud?.stop();
  });

  it('stays within 1 KB from acceptance to its published outcome, with 16-character names', async () => {
    await registerDomain(cloud, CONSUMER, 'consumer');
    await registerDomain(cloud, PROVIDER, 'provider');
    await cloud.fund(CONSUMER);
    const dev = await enrol(cloud, CONSUMER, DEVICE);
    const ids = await acceptMany(cloud, dev, PROVIDER, `${PROVIDER}-spd`, 3);
    const { store } = cloud.deps;
    const sizes = new Map<string, number[]>(ids.map((id) => [id, []]));
    const measure = async () => {
      for (const id of ids) {
        const raw = (await store.doc.send(new GetCommand({ TableName: cloud.dynamo.tableName, Key: { pk: `OB#${id}`, sk: 'OB' }, ConsistentRead: true }))).Item;
        assert.ok(raw, `obligation ${id} is stored`);
        sizes.get(id)!.push(itemSize(raw));
      }
    };
    await measure();
    for (let round = 0; ; round++) {
      assert.ok(round < 10, 'closed and published within 10 rounds of the jobs');
      for (const job of ['publish', 'settle', 'mine', 'watch', 'follow'] as const) {
        await cloud.runJob(job);
        await measure();
      }
      const items = await Promise.all(ids.map((id) => store.getObligation(id)));
      if (items.every((o) => o?.status === 'fulfilled' && o.outcomeTxid !== undefined)) break;
    }
    for (const [id, s] of sizes) {
      assert.ok(s.length > 5 && s[s.length - 1]! > s[0]!, `${id} grew over its life: ${s.join(' ')}`);
      assert.ok(Math.max(...s) <= 1024, `${id} stayed within 1 KB: ${s.join(' ')} bytes`);
    }
  });
});
