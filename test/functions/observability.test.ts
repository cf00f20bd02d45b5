/**
 * Powertools in the handlers (functions/shared/observability.ts): the EMF
 * documents the function layer writes (names, units, dimensions), the
 * correlation ids on the Logger's lines, and the embedded cloud's quiet
 * defaults (local/powertools-env.ts: `npm start` prints no EMF or info line).
 * The real handler modules run on the embedded cloud; Powertools writes
 * through the global console (POWERTOOLS_DEV), which the test captures.
 * Powertools reads its environment when it loads, so the handler modules are
 * imported after it is set.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// what CDK sets on a function (lib/constructs/handlers.ts), plus POWERTOOLS_DEV: write through the global console
const quietDefaults = { ...process.env };
process.env.POWERTOOLS_DEV = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
process.env.POWERTOOLS_SERVICE_NAME = 'obligation-chain-test';

const { startCloud } = await import('../../local/cloud.ts');
const { lambdaContext } = await import('../../local/lambda.ts');
const { handler: accept } = await import('../../functions/accept.ts');
const { handler: publish } = await import('../../functions/publish.ts');
const { handler: follow } = await import('../../functions/follow.ts');
const { handler: settle } = await import('../../functions/settle.ts');
const { METRICS_NAMESPACE, METRIC, metrics, recordSettleRuns } = await import('../../functions/shared/observability.ts');
const { buy, enrol, getOffer, registerDomain, sign } = await import('../integration/support.ts');
type LocalCloud = Awaited<ReturnType<typeof startCloud>>;
type TestDevice = Awaited<ReturnType<typeof enrol>>;

interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

/** Every JSON document Powertools wrote to the console while `fn` ran. */
async function captured<T>(fn: () => Promise<T>): Promise<{ result: T; docs: Record<string, unknown>[] }> {
  const docs: Record<string, unknown>[] = [];
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) {
    console[m] = (first: unknown) => {
      try {
        docs.push(JSON.parse(String(first)) as Record<string, unknown>);
      } catch {
        // not a Powertools document
      }
    };
  }
  try {
    return { result: await fn(), docs };
  } finally {
    methods.forEach((m, i) => (console[m] = saved[i] as never));
  }
}

const emf = (docs: Record<string, unknown>[]) => docs.filter((d): d is Emf => typeof d._aws === 'object');
/** The EMF document that declares metric `name`, with its declared dimensions and its value. */
function metric(docs: Record<string, unknown>[], name: string) {
  for (const d of emf(docs)) {
    const decl = d._aws.CloudWatchMetrics[0];
    const m = decl?.Metrics.find((x) => x.Name === name);
    if (decl && m) return { namespace: decl.Namespace, dimensions: decl.Dimensions, unit: m.Unit, value: d[name], doc: d };
  }
  return undefined;
}

const ruleEvent = (dev: TestDevice, obligation: unknown) => ({
  domain: dev.domain,
  thing: dev.id,
  topic: `oc/${dev.domain}/${dev.id}/out/obligation`,
  requestId: 'r1',
  obligation,
});

describe('Powertools metrics and logs from the handlers', () => {
  let cloud: LocalCloud;
  let scd: TestDevice;
  before(async () => {
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 } });
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
    await cloud.fund('c1');
    scd = await enrol(cloud, 'c1', 'c1-scd-1');
  });
  after(async () => {
    await cloud?.stop();
  });

  it('an acceptance over the IoT rule: accepted count and latency in EMF, a log line with the correlation ids', async () => {
    const ob = sign(scd, await getOffer(cloud, scd, 'p1', 'p1-spd-1'));
    const { result, docs } = await captured(() => cloud.invoke(() => accept(ruleEvent(scd, ob) as never, lambdaContext('accept'))));
    assert.equal((result as { accepted: boolean }).accepted, true);
    scd.head = { seq: ob.body.seq, id: ob.id };

    const accepted = metric(docs, METRIC.accepted);
    assert.ok(accepted, 'ObligationsAccepted in an EMF document');
    assert.equal(accepted.namespace, METRICS_NAMESPACE);
    assert.deepEqual(accepted.dimensions, [['service']]);
    assert.equal(accepted.doc.service, 'obligation-chain-test');
    assert.equal(accepted.value, 1);
    const latency = metric(docs, METRIC.acceptLatency);
    assert.equal(latency?.unit, 'Milliseconds');
    assert.equal(typeof latency?.value, 'number');

    const line = docs.find((d) => d.message === 'obligation accepted');
    assert.ok(line, 'a log line for the decision');
    assert.equal(line.obligationId, ob.id);
    assert.equal(line.domain, 'c1');
    assert.equal(line.thing, 'c1-scd-1');
    assert.equal(line.providerDomain, 'p1');
    assert.equal(line.function_name, 'accept');
  });

  it('a refusal is counted with its code as a dimension', async () => {
    const { docs } = await captured(() => cloud.invoke(() => accept(ruleEvent(scd, { junk: true }) as never, lambdaContext('accept'))));
    const refused = metric(docs, METRIC.refused);
    assert.ok(refused, 'ObligationsRefused in an EMF document');
    assert.deepEqual(refused.dimensions, [['service', 'code']]);
    assert.equal(refused.doc.code, 'F00_MALFORMED');
    assert.equal(refused.value, 1);
    assert.equal(metric(docs, METRIC.accepted), undefined);
    const line = docs.find((d) => d.message === 'obligation refused');
    assert.equal(line?.code, 'F00_MALFORMED');
    assert.equal(line?.thing, 'c1-scd-1');
    // the correlation ids of the previous invocation (an accepted obligation) do not leak into this one
    assert.equal(line?.obligationId, undefined, JSON.stringify(line));
    assert.equal(line?.providerDomain, undefined, JSON.stringify(line));
  });

  it('publish: published count and the backlog it left (ledger down → backlog)', async () => {
    await buy(cloud, scd, 'p1', 'p1-spd-1');
    // what is waiting: this purchase and the earlier acceptance over the rule
    const waiting = (await cloud.deps.store.listPendingPublication(100)).length;
    assert.ok(waiting >= 1);
    const ledger = await cloud.ledger();
    ledger.setAvailable(false);
    try {
      const { docs } = await captured(() => cloud.invoke(() => publish({ source: 'aws.events' } as never, lambdaContext('publish'))));
      assert.equal(metric(docs, METRIC.publishBacklog)?.value, waiting);
      assert.equal(metric(docs, METRIC.published)?.value, 0);
    } finally {
      ledger.setAvailable(true);
    }
    const { docs } = await captured(() => cloud.invoke(() => publish({ source: 'aws.events' } as never, lambdaContext('publish'))));
    assert.equal(metric(docs, METRIC.publishBacklog)?.value, 0);
    assert.equal(metric(docs, METRIC.published)?.value, waiting);
    assert.deepEqual(metric(docs, METRIC.publishBacklog)?.dimensions, [['service']]);
  });

  it('settle: the settlements and the sats they paid', async () => {
    const pending = await cloud.deps.store.listByConsumer('c1', 'accepted');
    const total = pending.reduce((sum, o) => sum + o.amount, 0);
    assert.ok(total > 0);
    const event = {
      version: '2.0',
      routeKey: 'POST /domains/{domain}/settlements',
      rawPath: '/domains/c1/settlements',
      headers: { 'content-type': 'application/json' },
      pathParameters: { domain: 'c1' },
      requestContext: { http: { method: 'POST', path: '/domains/c1/settlements' } },
      body: '{}',
      isBase64Encoded: false,
    };
    const { result, docs } = await captured(() => cloud.invoke(() => settle(event as never, lambdaContext('settle'))));
    assert.equal((result as { statusCode: number }).statusCode, 200, JSON.stringify(result));
    assert.equal(metric(docs, METRIC.settlements)?.value, 1);
    assert.equal(metric(docs, METRIC.settledAmount)?.value, total);
    assert.equal(metric(docs, METRIC.feeBumps)?.value, 0);
    assert.equal(metric(docs, METRIC.settlementsStuck)?.value, 0);
  });

  it('settle: fee bumps and stuck settlements are counted, and each stuck one is a warning with its id and reason', async () => {
    const { docs } = await captured(async () => {
      recordSettleRuns([
        {
          domain: 'c9',
          settlements: [],
          bumped: [1, 2].map((n) => ({ settlementId: 's-1', from: `${n}`.repeat(64), to: `${n + 1}`.repeat(64), satVb: 20 * n })),
          stuck: [{ settlementId: 's-1', txid: 'ab'.repeat(32), reason: `fee bump refused (insufficient fee), not outbid: over the fee cap ${'x'.repeat(400)}` }],
        },
        { domain: 'c8', settlements: [{ settlementId: 's-2', txid: 'cd'.repeat(32), total: 5, obligations: 1 }] },
      ]);
      metrics.publishStoredMetrics();
    });
    assert.equal(metric(docs, METRIC.feeBumps)?.value, 2);
    assert.equal(metric(docs, METRIC.settlementsStuck)?.value, 1);
    assert.equal(metric(docs, METRIC.settledAmount)?.value, 5);
    const warning = docs.find((d) => d['message'] === 'settlement stuck');
    assert.ok(warning, 'a warning per stuck settlement');
    assert.deepEqual([warning['level'], warning['domain'], warning['settlementId'], warning['txid']], ['WARN', 'c9', 's-1', 'ab'.repeat(32)]);
    assert.match(String(warning['reason']), /^fee bump refused/);
    assert.ok(String(warning['reason']).length <= 300, 'the reason cut short');
  });

  it('follow: invalid ledger records skipped are counted', async () => {
    const ledger = await cloud.ledger();
    await ledger.publish('domains', 'forged-1', ['d:forged'], { body: { domain: 'forged' }, sig: 'nope' });
    const { docs } = await captured(() => cloud.invoke(() => follow({ source: 'aws.events' } as never, lambdaContext('follow'))));
    const invalid = metric(docs, METRIC.invalidRecords);
    assert.ok(invalid, 'InvalidLedgerRecordsSkipped in an EMF document');
    assert.ok((invalid.value as number) >= 1, String(invalid.value));
    assert.ok(docs.some((d) => d.message === 'invalid ledger records skipped' && d.level === 'WARN'));
  });

});

describe('the embedded cloud\'s Powertools defaults (npm start)', () => {
  const script = fileURLToPath(new URL('./quiet-cloud.ts', import.meta.url));
  const run = async (env: Record<string, string | undefined>) => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '--import', 'tsx', script], {
      env: env as NodeJS.ProcessEnv,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };
  const clean = Object.fromEntries(Object.entries(quietDefaults).filter(([k]) => !k.startsWith('POWERTOOLS_')));

  it('print no EMF document and no info line', async () => {
    const out = await run(clean);
    assert.doesNotMatch(out, /"_aws"/);
    assert.doesNotMatch(out, /"level":\s*"INFO"/);
  });

  it('give way to POWERTOOLS_* set by the user (then the same run prints both)', async () => {
    const out = await run({ ...clean, POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false' });
    assert.match(out, /"_aws"/);
    assert.match(out, /"ObligationsAccepted"/);
    assert.match(out, /"level":\s*"INFO"/);
  });
});
