/**
 * The `dynamodb:LeadingKeys` conditions in lib/constructs/handlers.ts must not
 * break the functions they limit: every DynamoDB request the enrol and offer
 * handlers make (over HTTP and the IoT rule) is recorded on the embedded
 * cloud's client and checked against the patterns IAM will enforce on AWS
 * (StringLike: `*` matches any run of characters), with no Scan and no index.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { HANDLER_ACCESS } from '../../lib/constructs/handlers.ts';
import { startCloud, type LocalCloud } from '../../local/cloud.ts';
import { lambdaContext } from '../../local/lambda.ts';
import { handler as offerHandler } from '../../functions/offer.ts';
import { enrol, ensureProviderDevice, offerRequest, registerDomain, type TestDevice } from './support.ts';

interface Request {
  command: string;
  keys: string[];
  index: string | undefined;
}

/** The partition key values a request names (Key, Item, a Query's :p, batch requests). */
function partitionKeys(input: Record<string, unknown>): string[] {
  const out: string[] = [];
  const pk = (v: unknown) => {
    const value = (v as { pk?: unknown } | undefined)?.pk;
    const s = typeof value === 'string' ? value : (value as { S?: string } | undefined)?.S;
    if (s !== undefined) out.push(s);
  };
  pk(input.Key);
  pk(input.Item);
  if (typeof input.KeyConditionExpression === 'string') {
    const values = (input.ExpressionAttributeValues ?? {}) as Record<string, unknown>;
    const m = /\bpk\s*=\s*(:\w+)/.exec(input.KeyConditionExpression);
    const v = m ? values[m[1] ?? ''] : undefined;
    out.push(typeof v === 'string' ? v : ((v as { S?: string } | undefined)?.S ?? '<no pk>'));
  }
  for (const items of [input.TransactItems, ...Object.values((input.RequestItems ?? {}) as Record<string, unknown>)]) {
    if (!Array.isArray(items)) continue;
    for (const item of items as Record<string, Record<string, unknown> | undefined>[]) {
      for (const op of Object.values(item)) {
        pk(op?.Key);
        pk(op?.Item);
      }
    }
  }
  return out;
}

const matches = (key: string, pattern: string) =>
  new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(key);

describe('LeadingKeys: what enrol and offer really touch', () => {
  let cloud: LocalCloud;
  let recording: Request[] | undefined;
  let scd: TestDevice;

  before(async () => {
    // no job and no history sampler: every recorded request is the handler's own
    cloud = await startCloud({ schedule: { publish: 0, watch: 0, settle: 0, follow: 0, mine: 0 }, history: false });
    const doc = (cloud.deps.store as unknown as { doc: DynamoDBDocumentClient }).doc;
    doc.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        recording?.push({ command: context.commandName ?? '?', keys: partitionKeys(input), index: input.IndexName as string | undefined });
        return next(args);
      },
      { step: 'initialize', name: 'recordLeadingKeys' },
    );
    await registerDomain(cloud, 'c1', 'consumer');
    await registerDomain(cloud, 'p1', 'provider', { threshold: 0.3 });
  });
  after(async () => {
    await cloud?.stop();
  });

  const during = async (fn: () => Promise<unknown>): Promise<Request[]> => {
    recording = [];
    try {
      await fn();
      return recording;
    } finally {
      recording = undefined;
    }
  };

  const check = (handler: 'enrol' | 'offer', requests: Request[]) => {
    const patterns = HANDLER_ACCESS[handler].leadingKeys;
    assert.ok(patterns, `${handler} is limited by LeadingKeys`);
    assert.ok(requests.length > 0, 'requests were recorded');
    for (const r of requests) {
      assert.notEqual(r.command, 'ScanCommand', `${handler}: a Scan`);
      assert.equal(r.index, undefined, `${handler}: ${r.command} on index ${r.index}`);
      assert.ok(r.keys.length > 0, `${handler}: ${r.command} names no partition key`);
      for (const key of r.keys) assert.ok(patterns.some((p) => matches(key, p)), `${handler}: ${r.command} on ${key} is outside ${patterns.join(', ')}`);
    }
  };

  it('enrol: a new device, and enrolling it again', async () => {
    const requests = await during(async () => {
      scd = await enrol(cloud, 'c1', 'c1-scd-1');
      await ensureProviderDevice(cloud, 'p1', 'p1-spd-1');
    });
    check('enrol', requests);
  });

  it('offer over HTTP (signed request) and over the IoT rule', async () => {
    const requests = await during(async () => {
      const r = await cloud.call('POST', '/offers', offerRequest(scd, 'p1', 'p1-spd-1'));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const ruled = await cloud.invoke(() =>
        offerHandler(
          { domain: 'c1', thing: scd.id, topic: `oc/c1/${scd.id}/out/request`, requestId: 'r1', providerDomain: 'p1', providerDevice: 'p1-spd-1', service: 'wifi-access' } as never,
          lambdaContext('offer'),
        ),
      );
      assert.ok((ruled as { offerId?: string }).offerId, JSON.stringify(ruled));
    });
    check('offer', requests);
  });

  it('the check fails on a key outside the patterns (control)', () => {
    assert.throws(() => check('enrol', [{ command: 'GetItemCommand', keys: ['REP#c1'], index: undefined }]), /outside/);
    assert.ok(matches('DEVICE#c1/c1-scd-1', 'DEVICE#*'));
    assert.ok(!matches('XDEVICE#c1', 'DEVICE#*'));
  });
});
