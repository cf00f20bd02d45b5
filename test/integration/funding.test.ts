/**
 * Funding a domain and paying only on the hub's network, on the embedded cloud
 * (bcoin regtest behind the same adapter and handlers as on AWS):
 * GET /domains/{domain} shows the funding address, the balance (trusted +
 * pending) and what is owed; POST /domains/{domain}/faucet mines coins to it
 * (regtest only); a payTo of another network is F17_WRONG_NETWORK at
 * acceptance and is never paid by a settlement.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { settleDomain } from '../../service/settle.ts';
import { fundDomain } from '../../service/domains.ts';
import { loadConfig } from '../../functions/shared/config.ts';
import { buy, enrol, getOffer, registerDomain, sign, submit, type TestDevice } from './support.ts';

/** A mainnet address made by a Bitcoin Core v31 wallet (test/core/network.test.ts). */
const MAINNET = 'bc1qmfmgeswv7wd378sewj8qva3pnk4l53msq9ny2h';

interface Funding {
  network: string;
  address: string | null;
  balance: { trusted: number; pending: number; total: number };
  owed: number;
  settling: number;
  shortfall: number;
}

describe('funding a domain and its network (embedded cloud)', () => {
  let cloud: LocalCloud;
  let scd: TestDevice;
  const funding = async (domain: string) => {
    const r = await cloud.call<{ funding?: Funding }>('GET', `/domains/${domain}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.funding, 'a hosted domain shows its funding');
    return r.body.funding;
  };

  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    scd = await enrol(cloud, 'c1', 'c1-scd-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  it('GET /domains/{domain}: funding address, an empty balance and nothing owed at first', async () => {
    const f = await funding('c1');
    assert.equal(f.network, 'regtest');
    const hosted = await cloud.deps.store.getHostedDomain('c1');
    assert.equal(f.address, hosted?.fundingAddress);
    assert.deepEqual(f.balance, { trusted: 0, pending: 0, total: 0 });
    assert.equal(f.owed, 0);
  });

  it('what accepted obligations owe shows up, with the shortfall while the wallet is empty', async () => {
    const { ob, res } = await buy(cloud, scd, 'p1', 'p1-spd-1');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const f = await funding('c1');
    assert.equal(f.owed, ob.body.amount);
    assert.equal(f.shortfall, ob.body.amount);
  });

  it('POST /domains/{domain}/faucet mines to the funding address and matures it: trusted balance, no shortfall', async () => {
    const r = await cloud.call<{ address: string; blocks: number; funding: Funding }>('POST', '/domains/c1/faucet', { blocks: 1 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.address, (await cloud.deps.store.getHostedDomain('c1'))?.fundingAddress);
    const f = await funding('c1');
    // 101 regtest coinbases of this wallet are mature (100 + the faucet's), each at least 25 BTC at these heights
    assert.ok(f.balance.trusted >= 25 * 1e8, JSON.stringify(f.balance));
    assert.equal(f.balance.total, f.balance.trusted + f.balance.pending);
    assert.equal(f.shortfall, 0);
  });

  it('the faucet refuses bad input and unknown domains with typed errors', async () => {
    const bad = await cloud.call<{ error: { code: string } }>('POST', '/domains/c1/faucet', { blocks: 1000 });
    assert.equal(bad.status, 400);
    const unknown = await cloud.call<{ error: { code: string } }>('POST', '/domains/nobody/faucet', {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'F09_NOT_FOUND');
  });

  it('the faucet exists on regtest only: F08 on signet, testnet4 and mainnet', async () => {
    for (const network of ['signet', 'testnet4', 'mainnet']) {
      const config = loadConfig({ ...cloud.env, BITCOIN_KIND: 'bitcoind', BITCOIN_NETWORK: network });
      await assert.rejects(() => fundDomain({ ...cloud.deps, config }, 'c1'), (e: unknown) => (e as { code?: string }).code === 'F08_FORBIDDEN');
    }
  });

  it('an obligation whose payTo is a mainnet address is refused F17_WRONG_NETWORK at acceptance', async () => {
    const offer = await getOffer(cloud, scd, 'p1', 'p1-spd-1');
    const ob = sign(scd, { ...offer, body: { ...offer.body, payTo: MAINNET } });
    const res = await submit(cloud, scd, ob);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error?.code, 'F17_WRONG_NETWORK');
  });

  it('a settlement pays the obligations of its network and leaves out one with another network\'s payTo', async () => {
    await cloud.runJob('publish');
    const [good] = (await cloud.deps.store.listByConsumer('c1', 'accepted')).filter((o) => o.ledgerTxid !== undefined);
    assert.ok(good);
    // the same obligation as a ledger-borne one of another hub, with a mainnet payTo (as if it slipped past the follower)
    const wrong = { ...good, id: `${good.id.slice(0, -4)}beef`, payTo: MAINNET, origin: 'ledger' as const };
    assert.ok(await cloud.deps.store.putObligation(wrong));
    const summary = await cloud.invoke(() => settleDomain(cloud.deps, 'c1'));
    assert.deepEqual(summary.unpayable, [wrong.id]);
    assert.equal(summary.settlements.length, 1, JSON.stringify(summary));
    assert.equal(summary.settlements[0]?.obligations, 1);
    const paid = await cloud.deps.store.getObligation(good.id);
    assert.equal(paid?.status, 'settling');
    assert.equal((await cloud.deps.store.getObligation(wrong.id))?.status, 'accepted');
    const f = await funding('c1');
    assert.equal(f.settling, good.amount);
  });

  it('the domain stays readable while bitcoind is down: funding says it is unavailable, with the address', async () => {
    await cloud.regtest.setAvailable(false);
    try {
      const r = await cloud.call<{ record?: unknown; funding?: { unavailable?: string; address?: string } }>('GET', '/domains/c1');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.record);
      assert.equal(typeof r.body.funding?.unavailable, 'string');
      assert.equal(r.body.funding?.address, (await cloud.deps.store.getHostedDomain('c1'))?.fundingAddress);
    } finally {
      await cloud.regtest.setAvailable(true);
    }
  });
});
