/**
 * The LocalStack free set (`-c target=localstack-free`, lib/app.ts): it is
 * synthesized here, and every resource it holds must be of a service on the
 * free list (LOCALSTACK_FREE_SERVICES); the paid ones (API Gateway v2, IoT,
 * ECS, EFS, Cloud Map, X-Ray) must not appear. cdk-nag stays clean.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLocalstackFreeApp, buildTarget, LOCALSTACK_FREE_TARGET } from '../../lib/app.ts';
import { HANDLER_NAMES } from '../../lib/constructs/handlers.ts';
import { LOCALSTACK_FREE_SERVICES } from '../../lib/localstack-free-stack.ts';

const outdir = mkdtempSync(join(tmpdir(), 'oc-lsfree-'));
after(() => rmSync(outdir, { recursive: true, force: true }));
const built = buildLocalstackFreeApp({ appProps: { outdir, context: { target: LOCALSTACK_FREE_TARGET } } });
const backend = Template.fromStack(built.backend);
const data = Template.fromStack(built.data);

/** CloudFormation resource type prefix → the service in LOCALSTACK_FREE_SERVICES it needs. */
const SERVICE_OF: Record<string, (typeof LOCALSTACK_FREE_SERVICES)[number]> = {
  'AWS::IAM::': 'IAM',
  'AWS::DynamoDB::': 'DynamoDB',
  'AWS::Lambda::': 'Lambda',
  'AWS::Logs::': 'CloudWatch Logs',
  'AWS::Events::': 'EventBridge',
  'AWS::SecretsManager::': 'Secrets Manager',
  'AWS::CDK::Metadata': 'CloudFormation',
};

const typesOf = (t: Template) => Object.values(t.toJSON().Resources as Record<string, { Type: string }>).map((r) => r.Type);

describe('LocalStack free set (-c target=localstack-free)', () => {
  it('is only OcData and OcFreeBackend', () => {
    assert.deepEqual(built.app.node.children.filter((c) => c instanceof Object && 'templateFile' in c).map((s) => s.node.id).sort(), ['OcData', 'OcFreeBackend']);
  });

  it('uses only services of the free plan', () => {
    for (const type of [...typesOf(backend), ...typesOf(data)]) {
      const service = Object.entries(SERVICE_OF).find(([prefix]) => type.startsWith(prefix))?.[1];
      assert.ok(service && LOCALSTACK_FREE_SERVICES.includes(service), `${type} is not on the free list`);
    }
    for (const type of typesOf(backend)) assert.doesNotMatch(type, /ApiGatewayV2|IoT|ECS|EFS|ServiceDiscovery|EC2|CloudWatch::Alarm/);
  });

  it('has every handler, outside any VPC, without X-Ray, with its schedule', () => {
    const functions = Object.values(backend.findResources('AWS::Lambda::Function')).map((f) => f['Properties'] as Record<string, unknown>);
    assert.equal(functions.length, HANDLER_NAMES.length);
    for (const fn of functions) {
      assert.equal(fn['VpcConfig'], undefined);
      assert.notDeepEqual(fn['TracingConfig'], { Mode: 'Active' });
      const env = (fn['Environment'] as { Variables: Record<string, unknown> }).Variables;
      assert.ok(env['POWERTOOLS_SERVICE_NAME']);
      assert.equal(env['ECS_CLUSTER_ARN'], undefined);
    }
    backend.resourceCountIs('AWS::Events::Rule', 5); // publish, watch, settle, follow, rebalance
  });

  it('takes the chain endpoints and credentials as parameters, passwords not echoed', () => {
    const params = backend.toJSON().Parameters as Record<string, { NoEcho?: boolean }>;
    for (const p of ['MultichainRpcUrl', 'MultichainChainName', 'BitcoinRpcUrl', 'MultichainUser', 'MultichainPassword', 'BitcoinUser', 'BitcoinPassword', 'BitcoinReaderUser', 'BitcoinReaderPassword']) {
      assert.ok(params[p], p);
    }
    for (const p of ['MultichainPassword', 'BitcoinPassword', 'BitcoinReaderPassword']) assert.equal(params[p]?.NoEcho, true, p);
    backend.resourceCountIs('AWS::SecretsManager::Secret', 3);
  });

  it('is cdk-nag clean', () => {
    for (const stack of [built.data, built.backend]) {
      const report = new AwsSolutionsChecks(built.app).validateScope(stack);
      assert.deepEqual(report.violations.map((v) => v.ruleName), [], stack.stackName);
    }
  });

  it('is what -c target selects; an unknown target is refused', () => {
    assert.throws(() => buildTarget({ appProps: { outdir: join(outdir, 'x'), context: { target: 'localstack-pro' } } }), /unknown -c target=localstack-pro/);
  });
});
