/**
 * GET /health reports the ledger, bitcoind and — on AWS — the ECS services of
 * the chain nodes through the real @aws-sdk/client-ecs, which here talks to a
 * small DescribeServices endpoint (AWS JSON 1.1, as ECS speaks it) set with
 * AWS_ENDPOINT_URL_ECS: the same code path as on AWS, another endpoint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { listenLoopback } from '../../local/net.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';

describe('GET /health', () => {
  let ecs: Server;
  let cloud: LocalCloud;
  const calls: { target: string | undefined; body: { cluster?: string; services?: string[] } }[] = [];

  before(async () => {
    ecs = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        const body = JSON.parse(text || '{}') as { cluster?: string; services?: string[] };
        calls.push({ target: req.headers['x-amz-target'] as string | undefined, body });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          JSON.stringify({
            services: (body.services ?? []).map((name, i) => ({ serviceName: name, runningCount: i === 0 ? 1 : 0, desiredCount: 1 })),
            failures: [],
          }),
        );
      });
    });
    const port = await listenLoopback(ecs, 0, 'fake ECS');
    cloud = await startCloud({
      schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 },
      env: {
        AWS_ENDPOINT_URL_ECS: `http://127.0.0.1:${port}`,
        ECS_CLUSTER_ARN: 'arn:aws:ecs:us-east-1:000000000000:cluster/oc',
        ECS_SERVICES: 'multichain,bitcoind',
      },
    });
    await cloud.call('POST', '/domains', { domain: 'c1', role: 'consumer' });
  });
  after(async () => {
    await cloud?.stop();
    await new Promise((r) => ecs?.close(r));
  });

  it('reports the ledger, bitcoind and each chain service', async () => {
    const r = await cloud.call<{ ok: boolean; ledger: { ok: boolean }; bitcoin: { ok: boolean }; services: Record<string, string> }>(
      'GET',
      '/health',
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ledger.ok, true);
    assert.equal(r.body.bitcoin.ok, true);
    assert.deepEqual(r.body.services, { multichain: '1/1 running', bitcoind: '0/1 running' });
    const call = calls.at(-1);
    assert.equal(call?.target, 'AmazonEC2ContainerServiceV20141113.DescribeServices');
    assert.deepEqual(call?.body, { cluster: 'arn:aws:ecs:us-east-1:000000000000:cluster/oc', services: ['multichain', 'bitcoind'] });
  });

  it('says 503 when the ledger is down', async () => {
    const ledger = await cloud.ledger();
    ledger.setAvailable(false);
    try {
      const r = await cloud.call<{ ok: boolean; ledger: { ok: boolean } }>('GET', '/health');
      assert.equal(r.status, 503);
      assert.equal(r.body.ok, false);
      assert.equal(r.body.ledger.ok, false);
      // what failed is in the function's log, not in a public reply
      assert.doesNotMatch(JSON.stringify(r.body), /marked unavailable/);
    } finally {
      ledger.setAvailable(true);
    }
  });
});
