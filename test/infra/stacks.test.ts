import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../lib/app.ts';
import { TABLE_INDEXES, TABLE_KEYS } from '../../adapters/table.ts';
import { APP_TAG, HANDLER_ACCESS, HANDLER_NAMES, SIGNER_ROLE_TAG, type HandlerName } from '../../lib/constructs/handlers.ts';
import { ROUTES } from '../../lib/constructs/http-api.ts';
import { TTL_ATTRIBUTE } from '../../adapters/table.ts';
import { BITCOIN_RPC_PORT, ChainStack, MULTICHAIN_P2P_PORT, MULTICHAIN_RPC_PORT, NAMESPACE_NAME } from '../../lib/chain-stack.ts';
import { joinAndAllow } from '../../lib/app.ts';
import { BackendStack } from '../../lib/backend-stack.ts';
import { DataStack } from '../../lib/data-stack.ts';
import { App } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { actionsOfRole, buildFixture, logicalId, render } from './fixture.ts';
import { METRIC, METRICS_NAMESPACE } from '../../functions/shared/metric-names.ts';
import { BACKLOG_PERIODS, STUCK_PERIODS, serviceOf } from '../../lib/constructs/monitoring.ts';
import { ingestRules } from '../../service/topics.ts';

const fixture = buildFixture();
after(() => fixture.dispose());
const { built, templates } = fixture;

const fnLogicalId = (name: HandlerName): string => logicalId(built.backend.handlers.functions[name]);
const roleActions = (name: HandlerName) => {
  const role = built.backend.handlers.functions[name].role;
  assert.ok(role, `${name} has a role`);
  return actionsOfRole(templates.backend, logicalId(role));
};
const hasAction = (name: HandlerName, action: string): boolean => roleActions(name).some((s) => s.action === action);

describe('DataStack: the table', () => {
  it('has pk/sk keys and gsi1..gsi3 projecting keys (and status on gsi1/gsi2) only, on demand', () => {
    templates.data.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      // small projections: an index write then costs ~1 unit, not the whole obligation again (issue 11)
      GlobalSecondaryIndexes: TABLE_INDEXES.map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection:
          index.indexName === 'gsi3' ? { ProjectionType: 'KEYS_ONLY' } : { ProjectionType: 'INCLUDE', NonKeyAttributes: ['status'] },
      })),
    });
  });

  it('is retained, deletion-protected, with point-in-time recovery and SSE', () => {
    templates.data.hasResource('AWS::DynamoDB::GlobalTable', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
        Replicas: [
          Match.objectLike({
            DeletionProtectionEnabled: true,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          }),
        ],
      }),
    });
  });

  it('expires offers through DynamoDB TTL on the attribute the store writes', () => {
    templates.data.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
    });
  });
});

describe('BackendStack: functions', () => {
  const functions = templates.backend.findResources('AWS::Lambda::Function');

  it('bundles one function per handler, nodejs22.x on arm64, traced, with TABLE_NAME', () => {
    for (const name of HANDLER_NAMES) {
      const fn = functions[fnLogicalId(name)];
      assert.ok(fn, `function ${name} exists`);
      const props = fn['Properties'] as Record<string, unknown>;
      assert.equal(props['Runtime'], 'nodejs22.x', name);
      assert.deepEqual(props['Architectures'], ['arm64'], name);
      assert.deepEqual(props['TracingConfig'], { Mode: 'Active' }, name);
      const env = (props['Environment'] as { Variables: Record<string, unknown> }).Variables;
      assert.ok(env['TABLE_NAME'], `${name} has TABLE_NAME`);
      assert.equal(env['LEDGER_KIND'], 'multichain');
      assert.equal(env['BITCOIN_KIND'], 'bitcoind');
      assert.equal(env['MULTICHAIN_RPC_URL'], `http://multichain.${NAMESPACE_NAME}:${MULTICHAIN_RPC_PORT}`);
      assert.equal(env['BITCOIN_RPC_URL'], `http://bitcoind.${NAMESPACE_NAME}:${BITCOIN_RPC_PORT}`);
      assert.equal(env['CONFIRMATIONS'], '1');
      assert.match(render(env['IOT_DATA_ENDPOINT']), /^https:\/\//);
      assert.ok(props['VpcConfig'], `${name} runs in the VPC`);
    }
  });

  it('bundles each handler as ESM with a createRequire banner', () => {
    for (const name of HANDLER_NAMES) {
      const code0 = (functions[fnLogicalId(name)]?.['Properties'] as { Code: { S3Key: string } }).Code;
      const assetPath = `asset.${code0.S3Key.replace(/\.zip$/, '')}`;
      const code = readFileSync(join(built.app.outdir, assetPath, 'index.mjs'), 'utf8');
      assert.ok(code.startsWith("import { createRequire } from 'module'; const require = createRequire(import.meta.url);"), name);
      assert.match(code, /export\s*\{[^}]*\bhandler\b/, `${name} exports handler as ESM`);
    }
    const props = functions[fnLogicalId('query')]?.['Properties'] as Record<string, unknown>;
    assert.equal(props['Handler'], 'index.handler');
  });

  it('every other function is only the IoT endpoint lookup', () => {
    const handlerIds = new Set(HANDLER_NAMES.map(fnLogicalId));
    const others = Object.keys(functions).filter((id) => !handlerIds.has(id));
    assert.equal(others.length, 1, `unexpected functions: ${others.join(', ')}`);
    templates.backend.resourceCountIs('Custom::AWS', 1);
    templates.backend.hasResourceProperties('Custom::AWS', {
      Create: Match.stringLikeRegexp('"action":"describeEndpoint".*"endpointType":"iot:Data-ATS"'),
    });
  });

  it('passes ECS cluster and services only to query', () => {
    for (const name of HANDLER_NAMES) {
      const env = (functions[fnLogicalId(name)]?.['Properties'] as { Environment: { Variables: Record<string, unknown> } })
        .Environment.Variables;
      assert.equal('ECS_SERVICES' in env, name === 'query', name);
      assert.equal('ECS_CLUSTER_ARN' in env, name === 'query', name);
    }
  });

  it('keeps secrets out of plain environment variables', () => {
    for (const [id, fn] of Object.entries(functions)) {
      const env = (fn['Properties'] as { Environment?: { Variables: Record<string, unknown> } }).Environment?.Variables ?? {};
      for (const [key, value] of Object.entries(env)) {
        assert.doesNotMatch(key, /PASSWORD|TOKEN|PRIVATE|SECRET$/, `${id}.${key}`);
        assert.doesNotMatch(JSON.stringify(value), /password/i, `${id}.${key}`);
      }
      const arns = Object.keys(env).filter((key) => key.endsWith('_SECRET_ARN'));
      // the watching functions are told only the read-only bitcoind user's secret, never the one that can spend
      for (const watching of ['query', 'watch', 'follow'] as const) {
        if (id === fnLogicalId(watching)) assert.deepEqual(arns.sort(), ['BITCOIN_READER_SECRET_ARN', 'MULTICHAIN_RPC_SECRET_ARN'], watching);
      }
      if (id === fnLogicalId('settle')) assert.deepEqual(arns.sort(), ['BITCOIN_RPC_SECRET_ARN', 'MULTICHAIN_RPC_SECRET_ARN']);
    }
  });

  it('reserves no concurrency: publish and settle runs may overlap (a lease serialises each: the hub\'s, a domain\'s)', () => {
    for (const name of HANDLER_NAMES) {
      const props = functions[fnLogicalId(name)]?.['Properties'] as Record<string, unknown>;
      assert.equal(props['ReservedConcurrentExecutions'], undefined, name);
    }
  });

  it('tells every function the settle schedule (5 minutes), from which the minimum payment term derives', () => {
    for (const name of HANDLER_NAMES) {
      const env = (functions[fnLogicalId(name)]?.['Properties'] as { Environment: { Variables: Record<string, unknown> } }).Environment
        .Variables;
      assert.equal(env['SETTLE_INTERVAL_MS'], '300000', name);
    }
  });
});

describe('BackendStack: least privilege', () => {
  it('query reads the table but has no write action', () => {
    const actions = roleActions('query').map((s) => s.action);
    assert.ok(actions.includes('dynamodb:Query'));
    for (const write of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']) {
      assert.ok(!actions.includes(write), `query must not have ${write}`);
    }
  });

  it('writers may put items (the same check catches a missing grant)', () => {
    for (const name of HANDLER_NAMES.filter((n) => HANDLER_ACCESS[n].table === 'readWrite')) {
      assert.ok(hasAction(name, 'dynamodb:PutItem'), name);
    }
  });

  it('table access names each GSI, no index wildcard', () => {
    const resources = roleActions('accept').find((s) => s.action === 'dynamodb:Query')?.resources ?? [];
    const rendered = resources.map(render);
    for (const index of TABLE_INDEXES) assert.ok(rendered.some((r) => r.endsWith(`/index/${index.indexName}`)), index.indexName);
    assert.ok(!rendered.some((r) => r.includes('*')));
  });

  it('iot:Publish only for offer and accept, only on device inbox topics', () => {
    const publishers = HANDLER_NAMES.filter((name) => hasAction(name, 'iot:Publish'));
    assert.deepEqual(publishers.sort(), ['accept', 'offer']);
    const resources = roleActions('offer').filter((s) => s.action === 'iot:Publish').flatMap((s) => s.resources.map(render));
    assert.deepEqual(resources, ['arn:{AWS::Partition}:iot:{AWS::Region}:{AWS::AccountId}:topic/oc/*/*/in/*']);
  });

  it('ecs:DescribeServices only for query, on the two services', () => {
    const callers = HANDLER_NAMES.filter((name) => hasAction(name, 'ecs:DescribeServices'));
    assert.deepEqual(callers, ['query']);
    const statement = roleActions('query').find((s) => s.action === 'ecs:DescribeServices');
    assert.equal(statement?.resources.length, 2);
    assert.ok(!statement?.resources.includes('*'));
  });

  it('secret read only where the handler talks to that node', () => {
    for (const name of HANDLER_NAMES) {
      const reads = roleActions(name).filter((s) => s.action === 'secretsmanager:GetSecretValue');
      const text = JSON.stringify(reads.map((s) => s.resources));
      assert.equal(text.includes('MultichainRpcSecret'), HANDLER_ACCESS[name].ledger, `${name} ledger secret`);
      assert.equal(text.includes('BitcoindRpcSecret'), HANDLER_ACCESS[name].bitcoin, `${name} bitcoind secret`);
      assert.equal(text.includes('BitcoindReaderSecret'), HANDLER_ACCESS[name].bitcoinReader === true, `${name} read-only bitcoind secret`);
    }
    assert.equal(HANDLER_ACCESS.query.bitcoin, false, 'the matrix itself has a handler without the spending bitcoind secret');
  });
});

describe('BackendStack: domain keys in KMS', () => {
  type Statement = { Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };
  /** The KMS statements attached to a handler's role. */
  const kmsStatements = (name: HandlerName): Statement[] => {
    const role = built.backend.handlers.functions[name].role;
    assert.ok(role);
    const id = logicalId(role);
    const out: Statement[] = [];
    for (const policy of Object.values(templates.backend.findResources('AWS::IAM::Policy'))) {
      const props = policy['Properties'] as { Roles: unknown[]; PolicyDocument: { Statement: Statement[] } };
      if (!props.Roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: id }))) continue;
      out.push(...props.PolicyDocument.Statement.filter((st) => [st.Action].flat().some((a) => a.startsWith('kms:'))));
    }
    return out;
  };
  const actions = (name: HandlerName) => kmsStatements(name).flatMap((st) => [st.Action].flat()).sort();
  const app = built.backend.stackName;

  it('kms:Sign only for the functions that sign; query, follow and watch can neither sign nor create keys', () => {
    const signers = HANDLER_NAMES.filter((n) => HANDLER_ACCESS[n].keys !== 'none');
    assert.deepEqual(signers.sort(), ['accept', 'domains', 'enrol', 'offer', 'publish', 'settle']);
    for (const name of HANDLER_NAMES) {
      assert.equal(actions(name).includes('kms:Sign'), signers.includes(name), name);
      if (!signers.includes(name)) assert.deepEqual(actions(name), [], `${name} has no KMS action at all`);
    }
  });

  it('only the registering function creates, tags, reads and retires keys', () => {
    assert.deepEqual(actions('domains'), ['kms:CreateKey', 'kms:DescribeKey', 'kms:GetPublicKey', 'kms:ScheduleKeyDeletion', 'kms:Sign', 'kms:TagResource']);
    for (const name of HANDLER_NAMES.filter((n) => n !== 'domains')) {
      assert.ok(actions(name).every((a) => a === 'kms:Sign'), `${name}: ${actions(name).join(',')}`);
    }
  });

  it('every grant on a key is conditioned on the app tag; CreateKey on SIGN_VERIFY ECC keys with exactly the app\'s tags', () => {
    for (const name of HANDLER_NAMES) {
      for (const st of kmsStatements(name)) {
        const action = [st.Action].flat()[0];
        if (action === 'kms:CreateKey') {
          assert.equal(st.Resource, '*');
          assert.deepEqual(st.Condition?.['StringEquals'], {
            [`aws:RequestTag/${APP_TAG}`]: app,
            'kms:KeyUsage': 'SIGN_VERIFY',
            'kms:KeySpec': ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256'],
          });
          assert.deepEqual(st.Condition?.['ForAllValues:StringEquals'], { 'aws:TagKeys': ['oc:domain', APP_TAG] });
        } else if (action === 'kms:TagResource') {
          assert.deepEqual(st.Condition?.['StringEquals'], { [`aws:RequestTag/${APP_TAG}`]: app });
          assert.deepEqual(st.Condition?.['ForAllValues:StringEquals'], { 'aws:TagKeys': ['oc:domain', APP_TAG] });
        } else if (action === 'kms:ScheduleKeyDeletion') {
          // a retired key only, and only with the longest waiting period (an operator may cancel it)
          assert.match(render(st.Resource), /:kms:.*:key\/\*$/, `${name} ${action}`);
          assert.deepEqual(st.Condition, {
            StringEquals: { [`aws:ResourceTag/${APP_TAG}`]: app },
            NumericEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 30 },
          });
        } else {
          assert.match(render(st.Resource), /:kms:.*:key\/\*$/, `${name} ${action}`);
          assert.deepEqual(st.Condition, { StringEquals: { [`aws:ResourceTag/${APP_TAG}`]: app } }, `${name} ${action}`);
        }
      }
    }
  });

  it('tags the signing roles as signers, and the key policy denies kms:Sign to every other principal', () => {
    const roles = templates.backend.findResources('AWS::IAM::Role');
    for (const name of HANDLER_NAMES) {
      const role = built.backend.handlers.functions[name].role;
      assert.ok(role);
      const tags = (roles[logicalId(role)]?.['Properties'] as { Tags?: { Key: string; Value: string }[] }).Tags ?? [];
      const tagged = tags.some((t) => t.Key === SIGNER_ROLE_TAG && t.Value === 'true');
      assert.equal(tagged, HANDLER_ACCESS[name].keys !== 'none', name);
    }
    const fns = templates.backend.findResources('AWS::Lambda::Function');
    const env = (name: HandlerName) =>
      (fns[logicalId(built.backend.handlers.functions[name])]?.['Properties'] as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    for (const name of HANDLER_NAMES) {
      assert.equal(env(name)['SIGNER_KIND'], 'kms', name);
      assert.equal(env(name)['SIGNER_KEY_POLICY'] !== undefined, name === 'domains', name);
    }
    assert.deepEqual(JSON.parse(String(env('domains')['SIGNER_KEY_TAGS'])), { [APP_TAG]: app });
    const policy = JSON.parse(render(env('domains')['SIGNER_KEY_POLICY'])) as { Statement: Statement[] & { Effect: string }[] };
    const deny = policy.Statement.find((st) => (st as unknown as { Effect: string }).Effect === 'Deny');
    assert.ok(deny, 'a Deny statement');
    assert.equal(deny.Action, 'kms:Sign');
    assert.deepEqual(deny.Condition, { StringNotEquals: { [`aws:PrincipalTag/${SIGNER_ROLE_TAG}`]: 'true' } });
  });
});

describe('BackendStack: HTTP API and schedules', () => {
  const expectedRoutes = [
    'POST /domains',
    'POST /domains/{domain}/devices',
    'POST /domains/{domain}/faucet',
    'POST /domains/{domain}/devices/{device}/revocation',
    'POST /domains/{domain}/devices/{device}/renewal',
    'POST /domains/{domain}/key-rotation',
    'POST /offers',
    'POST /obligations',
    'POST /domains/{domain}/settlements',
    'GET /domains/{domain}/reputation',
    'GET /domains/{domain}/reputation/verify',
    'GET /domains/{domain}/obligations',
    'GET /domains/{domain}/devices/{device}/head',
    'GET /domains',
    'GET /domains/{domain}',
    'GET /health',
    'GET /chain',
    'POST /chain/members',
    // every other request: a typed 404 from the query function (functions/routes.ts DEFAULT_ROUTE)
    '$default',
  ];

  it('has exactly the eighteen routes and $default, IAM-authorised on admin routes only (the regtest faucet, the ledger recomputation, key rotation and the chain membership among them; renewal is signed by the device key)', () => {
    const routes = Object.values(templates.backend.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => r['Properties'] as { RouteKey: string; AuthorizationType?: string },
    );
    assert.deepEqual(routes.map((r) => r.RouteKey).sort(), [...expectedRoutes].sort());
    const admin = new Set([
      'POST /domains',
      'POST /domains/{domain}/devices',
      'POST /domains/{domain}/faucet',
      'POST /domains/{domain}/settlements',
      // reads the whole ledger: not for anyone
      'GET /domains/{domain}/reputation/verify',
      'POST /domains/{domain}/devices/{device}/revocation',
      // creates a KMS key and publishes a rotation signed by the domain's current key
      'POST /domains/{domain}/key-rotation',
      // the node's address and permissions; granting or revoking another hub's node
      'GET /chain',
      'POST /chain/members',
    ]);
    for (const route of routes) {
      assert.equal(route.AuthorizationType ?? 'NONE', admin.has(route.RouteKey) ? 'AWS_IAM' : 'NONE', route.RouteKey);
    }
    assert.equal(ROUTES.length, 18);
    // $default goes to the query function, the same integration as GET /health
    const targetOf = (key: string) =>
      JSON.stringify(
        (Object.values(templates.backend.findResources('AWS::ApiGatewayV2::Route')).find((r) => (r['Properties'] as { RouteKey: string }).RouteKey === key)?.[
          'Properties'
        ] as { Target?: unknown } | undefined)?.Target,
      );
    assert.ok(targetOf('$default') !== undefined && targetOf('$default') === targetOf('GET /health'), `${targetOf('$default')} vs ${targetOf('GET /health')}`);
  });

  it('logs access and throttles the default stage', () => {
    templates.backend.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
    });
  });

  it('runs publish, watch, follow and rebalance every minute, settle every five, with {"source":"schedule"}', () => {
    const rules = Object.values(templates.backend.findResources('AWS::Events::Rule')).map(
      (r) => r['Properties'] as { ScheduleExpression: string; Targets: Array<{ Arn: unknown; Input: string }> },
    );
    const byTarget = new Map<string, string>();
    for (const rule of rules) {
      assert.equal(rule.Targets.length, 1);
      const target = rule.Targets[0];
      assert.ok(target);
      assert.deepEqual(JSON.parse(target.Input), { source: 'schedule' });
      byTarget.set(JSON.stringify(target.Arn), rule.ScheduleExpression);
    }
    const arnOf = (name: HandlerName) => JSON.stringify({ 'Fn::GetAtt': [fnLogicalId(name), 'Arn'] });
    assert.equal(byTarget.get(arnOf('publish')), 'rate(1 minute)');
    assert.equal(byTarget.get(arnOf('watch')), 'rate(1 minute)');
    assert.equal(byTarget.get(arnOf('settle')), 'rate(5 minutes)');
    assert.equal(byTarget.get(arnOf('follow')), 'rate(1 minute)');
    // shorter than half a grant (5 min, adapters/store/dynamo.ts): the rebalancer refreshes grants before they lapse
    assert.equal(byTarget.get(arnOf('rebalance')), 'rate(1 minute)');
    assert.equal(byTarget.size, 5);
  });
});

describe('IotStack', () => {
  it('scopes the device policy by thing name and domain attribute', () => {
    const policies = Object.values(templates.iot.findResources('AWS::IoT::Policy'));
    assert.equal(policies.length, 1);
    const doc = (policies[0]?.['Properties'] as { PolicyDocument: { Statement: Array<{ Action: string; Resource: unknown }> } })
      .PolicyDocument;
    const prefix = 'arn:{AWS::Partition}:iot:{AWS::Region}:{AWS::AccountId}:';
    const byAction = Object.fromEntries(doc.Statement.map((s) => [s.Action, Array.isArray(s.Resource) ? s.Resource.map(render) : render(s.Resource)]));
    assert.deepEqual(byAction, {
      'iot:Connect': `${prefix}client/\${iot:Connection.Thing.ThingName}`,
      // by Basic Ingest only, each rule for its own kind and the device's own domain and name
      'iot:Publish': [
        `${prefix}topic/$aws/rules/oc_request/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/out/request`,
        `${prefix}topic/$aws/rules/oc_obligation/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/out/obligation`,
      ],
      'iot:Subscribe': [
        `${prefix}topicfilter/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/in/*`,
        `${prefix}topicfilter/oc/+/+/in/reply/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}`,
      ],
      'iot:Receive': [
        `${prefix}topic/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/in/*`,
        `${prefix}topic/oc/*/*/in/reply/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}`,
      ],
    });
    assert.ok(!JSON.stringify(doc).includes('Fn::Sub'), 'policy variables must not go through Fn::Sub');
  });

  it('defines the oc-device thing type', () => {
    templates.iot.hasResourceProperties('AWS::IoT::ThingType', { ThingTypeName: 'oc-device' });
  });

  it('routes request → offer and obligation → accept, with an error action', () => {
    const rules = Object.entries(templates.iot.findResources('AWS::IoT::TopicRule'));
    assert.equal(rules.length, 2);
    const seen = new Map<string, string>();
    const names = new Map<string, string>();
    for (const [, rule] of rules) {
      const props = rule['Properties'] as { RuleName?: string; TopicRulePayload: Record<string, unknown> };
      const payload = props.TopicRulePayload;
      names.set(payload['Sql'] as string, props.RuleName ?? '(generated)');
      assert.equal(payload['AwsIotSqlVersion'], '2016-03-23');
      const error = payload['ErrorAction'] as { CloudwatchLogs?: { LogGroupName: unknown; RoleArn: unknown } };
      assert.ok(error.CloudwatchLogs?.LogGroupName && error.CloudwatchLogs.RoleArn, 'error action logs with a role');
      const actions = payload['Actions'] as Array<{ Lambda: { FunctionArn: unknown } }>;
      seen.set(payload['Sql'] as string, JSON.stringify(actions[0]?.Lambda.FunctionArn));
    }
    const importOf = (name: HandlerName) => new RegExp(`Handlers${name.charAt(0).toUpperCase()}${name.slice(1)}`);
    const request = seen.get("SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic FROM 'oc/+/+/out/request'");
    const obligation = seen.get("SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic FROM 'oc/+/+/out/obligation'");
    assert.match(request ?? '', importOf('offer'));
    assert.match(obligation ?? '', importOf('accept'));
    // explicit names (devices publish to $aws/rules/<name>/...), as the IngestRules output tells devices
    assert.deepEqual([...names.values()].sort(), ['oc_obligation', 'oc_request']);
    assert.equal(names.get("SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic FROM 'oc/+/+/out/request'"), 'oc_request');
    templates.iot.hasOutput('IngestRules', { Value: JSON.stringify({ request: 'oc_request', obligation: 'oc_obligation' }) });
  });

  it('lets IoT invoke each function only from its rule', () => {
    const permissions = Object.values(templates.iot.findResources('AWS::Lambda::Permission')).map(
      (p) => p['Properties'] as { Principal: string; SourceArn: { 'Fn::GetAtt': [string, string] } },
    );
    assert.equal(permissions.length, 2);
    const ruleIds = new Set(Object.keys(templates.iot.findResources('AWS::IoT::TopicRule')));
    for (const permission of permissions) {
      assert.equal(permission.Principal, 'iot.amazonaws.com');
      assert.ok(ruleIds.has(permission.SourceArn['Fn::GetAtt'][0]));
    }
  });
});

describe('ChainStack', () => {
  it('runs one Fargate task per chain node, registered in Cloud Map', () => {
    templates.chain.resourceCountIs('AWS::ECS::Service', 2);
    templates.chain.allResourcesProperties('AWS::ECS::Service', {
      DesiredCount: 1,
      LaunchType: 'FARGATE',
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 0, MaximumPercent: 100 }),
      ServiceRegistries: [Match.objectLike({ RegistryArn: Match.anyValue() })],
    });
    templates.chain.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: NAMESPACE_NAME });
    const names = Object.values(templates.chain.findResources('AWS::ServiceDiscovery::Service')).map(
      (s) => (s['Properties'] as { Name: string }).Name,
    );
    assert.deepEqual(names.sort(), ['bitcoind', 'multichain']);
    templates.chain.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it('keeps node data on encrypted, retained EFS through non-root access points', () => {
    templates.chain.resourceCountIs('AWS::EFS::FileSystem', 2);
    templates.chain.allResources('AWS::EFS::FileSystem', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ Encrypted: true }),
    });
    templates.chain.allResourcesProperties('AWS::EFS::AccessPoint', {
      PosixUser: { Uid: '10001', Gid: '10001' },
    });
    templates.chain.allResourcesProperties('AWS::ECS::TaskDefinition', {
      Volumes: [
        {
          Name: 'data',
          EFSVolumeConfiguration: Match.objectLike({ TransitEncryption: 'ENABLED', AuthorizationConfig: Match.objectLike({ IAM: 'ENABLED' }) }),
        },
      ],
    });
  });

  it('injects RPC credentials as ECS secrets, never as environment', () => {
    const taskDefinitions = Object.values(templates.chain.findResources('AWS::ECS::TaskDefinition'));
    assert.equal(taskDefinitions.length, 2);
    for (const td of taskDefinitions) {
      const [container] = (td['Properties'] as { ContainerDefinitions: Array<Record<string, unknown>> }).ContainerDefinitions;
      assert.ok(container);
      const secrets = (container['Secrets'] as Array<{ Name: string; ValueFrom: unknown }>).map((s) => s.Name);
      const isBitcoind = secrets.includes('RPC_READER_USER');
      // bitcoind has a second, read-only RPC user (containers/bitcoind/reader.sh); MultiChain does not
      assert.deepEqual(secrets.sort(), isBitcoind ? ['RPC_PASSWORD', 'RPC_READER_PASSWORD', 'RPC_READER_USER', 'RPC_USER'] : ['RPC_PASSWORD', 'RPC_USER']);
      const env = (container['Environment'] as Array<{ Name: string }>).map((e) => e.Name);
      assert.ok(!env.some((name) => /PASSWORD|RPC_USER/.test(name)), env.join(','));
      const health = (container['HealthCheck'] as { Command: string[] }).Command;
      assert.equal(health[0], 'CMD-SHELL');
      assert.match(health[1] ?? '', /multichain-cli .*getinfo|bitcoin-cli .*getblockchaininfo/);
      assert.equal((container['LogConfiguration'] as { LogDriver: string }).LogDriver, 'awslogs');
    }
    templates.chain.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password', SecretStringTemplate: '{"user":"oc-multichain"}' }),
    });
  });

  it('opens the RPC ports only to the Lambda security group', () => {
    const lambdaSg = logicalId(built.chain.network.lambdaSecurityGroup);
    const ingress = Object.values(templates.chain.findResources('AWS::EC2::SecurityGroupIngress'))
      .map((r) => r['Properties'] as { FromPort: number; SourceSecurityGroupId?: unknown; CidrIp?: string })
      .filter((r) => r.FromPort === MULTICHAIN_RPC_PORT || r.FromPort === BITCOIN_RPC_PORT);
    assert.equal(ingress.length, 2);
    for (const rule of ingress) {
      assert.deepEqual(rule.SourceSecurityGroupId, { 'Fn::GetAtt': [lambdaSg, 'GroupId'] });
      assert.equal(rule.CidrIp, undefined);
    }
  });

  it('enables ECS Exec on both chain services, granting the task roles only the four ssmmessages channel actions on *', () => {
    templates.chain.allResourcesProperties('AWS::ECS::Service', { EnableExecuteCommand: true });
    for (const node of [built.chain.bitcoind, built.chain.multichain]) {
      const role = node.service.taskDefinition.taskRole;
      const granted = actionsOfRole(templates.chain, logicalId(role));
      const wildcard = granted.filter((g) => g.resources.includes('*')).map((g) => g.action).sort();
      assert.deepEqual(wildcard, [
        'ssmmessages:CreateControlChannel',
        'ssmmessages:CreateDataChannel',
        'ssmmessages:OpenControlChannel',
        'ssmmessages:OpenDataChannel',
      ]);
      // nothing else but mounting its own file system
      assert.deepEqual([...new Set(granted.filter((g) => !g.resources.includes('*')).map((g) => g.action))].sort(), [
        'elasticfilesystem:ClientMount',
        'elasticfilesystem:ClientWrite',
      ]);
    }
  });

  it('builds both images for linux/amd64 whatever the build host', () => {
    const assembly = built.app.synth();
    const manifest = JSON.parse(readFileSync(join(assembly.directory, `${built.chain.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { platform?: string; dockerBuildArgs?: Record<string, string> } }>;
    };
    const images = Object.values(manifest.dockerImages);
    assert.equal(images.length, 2);
    for (const image of images) assert.equal(image.source.platform, 'linux/amd64');
  });

  it('runs bitcoind on regtest by default, on its RPC port, unpruned', () => {
    const env = bitcoindEnvironment(templates.chain);
    assert.equal(env['NETWORK'], 'regtest');
    assert.equal(env['RPC_PORT'], String(BITCOIN_RPC_PORT));
    assert.equal(env['PRUNE'], undefined);
  });

  it('has a 2-AZ VPC with one NAT, a DynamoDB gateway endpoint and flow logs', () => {
    templates.chain.resourceCountIs('AWS::EC2::NatGateway', 1);
    templates.chain.resourceCountIs('AWS::EC2::FlowLog', 1);
    templates.chain.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('dynamodb')])] }),
    });
    templates.chain.resourceCountIs('AWS::EC2::Subnet', 4);
  });
});

/** The table statements of a function's role, with their conditions. */
function tableStatements(name: HandlerName): Array<{ actions: string[]; resources: string[]; condition: unknown }> {
  const role = built.backend.handlers.functions[name].role;
  assert.ok(role);
  const roleId = logicalId(role);
  const out: Array<{ actions: string[]; resources: string[]; condition: unknown }> = [];
  for (const policy of Object.values(templates.backend.findResources('AWS::IAM::Policy'))) {
    const props = policy['Properties'] as { Roles: unknown[]; PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown; Condition?: unknown }> } };
    if (!props.Roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) continue;
    for (const st of props.PolicyDocument.Statement) {
      const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
      if (!actions.some((a) => a.startsWith('dynamodb:'))) continue;
      const resources = (Array.isArray(st.Resource) ? st.Resource : [st.Resource]).map((r) => JSON.stringify(r));
      out.push({ actions, resources, condition: st.Condition });
    }
  }
  return out;
}

describe('BackendStack: hardening (issue 13)', () => {
  const functions = templates.backend.findResources('AWS::Lambda::Function');
  const envOf = (name: HandlerName) =>
    (functions[fnLogicalId(name)]?.['Properties'] as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;

  it('configures Powertools on every function: its service name, the metrics namespace, a log level; secrets re-read after 5 minutes', () => {
    for (const name of HANDLER_NAMES) {
      const env = envOf(name);
      assert.equal(env['POWERTOOLS_SERVICE_NAME'], serviceOf(name), name);
      assert.equal(env['POWERTOOLS_METRICS_NAMESPACE'], METRICS_NAMESPACE, name);
      assert.equal(env['POWERTOOLS_LOG_LEVEL'], 'INFO', name);
      assert.equal(env['SECRETS_MAX_AGE_S'], '300', name);
      assert.equal(env['POWERTOOLS_METRICS_DISABLED'], undefined, name);
    }
  });

  it('LeadingKeys: enrol, offer and rebalance touch only their item kinds, with no Scan and no index', () => {
    const limited = HANDLER_NAMES.filter((n) => HANDLER_ACCESS[n].leadingKeys);
    assert.deepEqual(limited.sort(), ['enrol', 'offer', 'rebalance']);
    for (const name of limited) {
      const [statement, ...more] = tableStatements(name);
      assert.equal(more.length, 0, name);
      assert.ok(statement);
      assert.deepEqual(statement.condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': HANDLER_ACCESS[name].leadingKeys } }, name);
      assert.ok(!statement.actions.includes('dynamodb:Scan'), `${name}: a Scan names no key, so LeadingKeys cannot limit it`);
      assert.ok(statement.actions.includes('dynamodb:PutItem'), name);
      assert.equal(statement.resources.length, 1, `${name}: the table only, no index`);
      assert.doesNotMatch(statement.resources[0] ?? '', /index/);
    }
    assert.deepEqual(HANDLER_ACCESS.enrol.leadingKeys, ['DOM#*', 'DEVICE#*', 'REVOKED#*']);
    assert.deepEqual(HANDLER_ACCESS.offer.leadingKeys, ['DOM#*', 'DOMREC#*', 'DEVICE#*', 'REVOKED#*', 'OFFER#*']);
    // the escrow only: its list of domains, their counters and shards
    assert.deepEqual(HANDLER_ACCESS.rebalance.leadingKeys, ['CREDITDOMAINS', 'REP#*', 'CREDIT#*']);
  });

  it('the others keep table-wide access without a condition (they use the indexes)', () => {
    for (const name of HANDLER_NAMES.filter((n) => !HANDLER_ACCESS[n].leadingKeys)) {
      for (const st of tableStatements(name)) assert.equal(st.condition, undefined, name);
    }
  });

  it('query, watch and follow hold no bitcoind credential that can spend: only the read-only user\'s secret; only settle and domains hold that one', () => {
    const watching: readonly string[] = ['query', 'watch', 'follow'] as const;
    for (const name of ['query', 'watch', 'follow'] as const) {
      assert.deepEqual([HANDLER_ACCESS[name].bitcoin, HANDLER_ACCESS[name].bitcoinReader], [false, true], name);
      assert.ok(envOf(name)['BITCOIN_READER_SECRET_ARN'], `${name} is told the reader secret`);
      assert.equal(envOf(name)['BITCOIN_RPC_SECRET_ARN'], undefined, name);
    }
    const readerSecret = built.chain.bitcoind.readerSecret;
    assert.ok(readerSecret);
    for (const name of HANDLER_NAMES.filter((n) => !watching.includes(n))) assert.equal(envOf(name)['BITCOIN_READER_SECRET_ARN'], undefined, name);
    assert.deepEqual(HANDLER_NAMES.filter((n) => HANDLER_ACCESS[n].bitcoin).sort(), ['domains', 'settle']);
    templates.chain.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password', SecretStringTemplate: '{"user":"oc-bitcoind-reader"}' }),
    });
  });

  it('sends failed rule invocations of offer and accept to their own encrypted SQS queue after 2 retries', () => {
    const configs = templates.backend.findResources('AWS::Lambda::EventInvokeConfig');
    const byFunction = new Map(
      Object.values(configs).map((c) => {
        const p = c['Properties'] as { FunctionName: { Ref: string }; MaximumRetryAttempts: number; MaximumEventAgeInSeconds: number; DestinationConfig: { OnFailure: { Destination: unknown } } };
        return [p.FunctionName.Ref, p] as const;
      }),
    );
    assert.deepEqual([...byFunction.keys()].sort(), [fnLogicalId('accept'), fnLogicalId('offer')].sort());
    for (const handler of ['offer', 'accept'] as const) {
      const config = byFunction.get(fnLogicalId(handler));
      assert.ok(config);
      assert.equal(config.MaximumRetryAttempts, 2);
      assert.equal(config.MaximumEventAgeInSeconds, 6 * 3600);
      assert.deepEqual(config.DestinationConfig.OnFailure.Destination, { 'Fn::GetAtt': [logicalId(built.backend.ruleFailures.queues[handler]), 'Arn'] });
      assert.ok(hasAction(handler, 'sqs:SendMessage'), `${handler} may send to its queue`);
    }
    templates.backend.resourceCountIs('AWS::SQS::Queue', 2);
    templates.backend.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
  });

  it('alarms on every function\'s errors and throttles, the failure queues, table throttles, the publish backlog, stuck settlements and chain tasks, all to one topic', () => {
    const alarms = Object.values(templates.backend.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a['Properties'] as { MetricName?: string; Namespace?: string; Dimensions?: Array<{ Name: string; Value: unknown }>; Metrics?: unknown[]; AlarmActions: unknown[]; EvaluationPeriods: number; ComparisonOperator: string; Statistic?: string },
    );
    const topicRef = { Ref: logicalId(built.backend.monitoring.topic) };
    for (const a of alarms) assert.deepEqual(a.AlarmActions, [topicRef]);
    const named = (ns: string, metric: string) => alarms.filter((a) => a.Namespace === ns && a.MetricName === metric);
    assert.equal(named('AWS/Lambda', 'Errors').length, HANDLER_NAMES.length);
    assert.equal(named('AWS/Lambda', 'Throttles').length, HANDLER_NAMES.length);
    for (const name of HANDLER_NAMES) {
      assert.ok(named('AWS/Lambda', 'Errors').some((a) => JSON.stringify(a.Dimensions).includes(fnLogicalId(name))), `${name} errors`);
    }
    assert.equal(named('AWS/SQS', 'ApproximateNumberOfMessagesVisible').length, 2);
    const tableAlarm = alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes('WriteThrottleEvents') && JSON.stringify(a.Metrics).includes('ReadThrottleEvents'));
    assert.equal(tableAlarm.length, 1, 'one alarm on read + write throttle events');
    const backlog = named(METRICS_NAMESPACE, METRIC.publishBacklog);
    assert.equal(backlog.length, 1);
    assert.deepEqual(backlog[0]?.Dimensions, [{ Name: 'service', Value: serviceOf('publish') }]);
    assert.equal(backlog[0]?.Statistic, 'Minimum');
    assert.equal(backlog[0]?.EvaluationPeriods, BACKLOG_PERIODS);
    const stuck = named(METRICS_NAMESPACE, METRIC.settlementsStuck);
    assert.equal(stuck.length, 1);
    assert.deepEqual(stuck[0]?.Dimensions, [{ Name: 'service', Value: serviceOf('settle') }]);
    assert.deepEqual([stuck[0]?.Statistic, stuck[0]?.EvaluationPeriods, stuck[0]?.ComparisonOperator], ['Sum', STUCK_PERIODS, 'GreaterThanOrEqualToThreshold']);
    const tasks = named('ECS/ContainerInsights', 'RunningTaskCount');
    assert.equal(tasks.length, 2);
    for (const t of tasks) {
      assert.equal(t.ComparisonOperator, 'LessThanThreshold');
      assert.deepEqual(t.Dimensions?.map((d) => d.Name).sort(), ['ClusterName', 'ServiceName']);
    }
    templates.backend.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: Match.objectLike({ Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) }),
    });
  });

  it('has a dashboard with the headline figures: acceptances, refusals by code, latency, backlog, settlements, invalid records', () => {
    const dashboards = Object.values(templates.backend.findResources('AWS::CloudWatch::Dashboard'));
    assert.equal(dashboards.length, 1);
    const body = JSON.stringify((dashboards[0]?.['Properties'] as { DashboardBody: unknown }).DashboardBody);
    for (const metric of Object.values(METRIC)) assert.ok(body.includes(metric), metric);
    assert.match(body, /SEARCH\(/);
    assert.match(body, /RunningTaskCount/);
    assert.match(body, /WriteThrottleEvents/);
  });

  it('every open route says how it is authenticated; POST /offers names the device signature', () => {
    for (const route of ROUTES) {
      assert.equal(route.admin || (route.open ?? '').length >= 40, true, `${route.method} ${route.path}`);
    }
    assert.match(ROUTES.find((r) => r.path === '/offers')?.open ?? '', /signed by the consumer device/);
  });
});

/** The bitcoind container's plain environment in a chain template. */
function bitcoindEnvironment(template: Template): Record<string, string> {
  for (const td of Object.values(template.findResources('AWS::ECS::TaskDefinition'))) {
    const [container] = (td['Properties'] as { ContainerDefinitions: Array<{ Environment: Array<{ Name: string; Value: string }> }> }).ContainerDefinitions;
    const env = Object.fromEntries((container?.Environment ?? []).map((e) => [e.Name, e.Value]));
    if (env['NETWORK'] !== undefined) return env;
  }
  throw new Error('no bitcoind task definition');
}

describe('deployment options: stage, Bitcoin network, pruning (synth without bundling)', () => {
  const outdirs: string[] = [];
  after(() => {
    for (const d of outdirs) rmSync(d, { recursive: true, force: true });
  });
  const variant = (context: Record<string, unknown>) => {
    const outdir = mkdtempSync(join(tmpdir(), 'oc-cdk-variant-'));
    outdirs.push(outdir);
    // bundling-stacks []: no Lambda bundling, the templates are all these tests read
    return buildApp({ appProps: { outdir, context: { ...context, 'aws:cdk:bundling-stacks': [] } } });
  };

  it('puts the stage (default dev) in every stack name, the thing type and the stage tag', () => {
    assert.deepEqual([built.chain, built.data, built.backend, built.iot].map((st) => st.stackName), ['oc-dev-chain', 'oc-dev-data', 'oc-dev-backend', 'oc-dev-iot']);
    const prod = variant({ stage: 'prod' });
    assert.deepEqual([prod.chain, prod.data, prod.backend, prod.iot].map((st) => st.stackName), ['oc-prod-chain', 'oc-prod-data', 'oc-prod-backend', 'oc-prod-iot']);
    Template.fromStack(prod.iot).hasResourceProperties('AWS::IoT::ThingType', { ThingTypeName: 'oc-prod-device' });
    assert.throws(() => variant({ stage: 'Prod_1' }), /-c stage=Prod_1/);
  });

  it('gives every stage but dev its own MQTT topic root: rules, device policy, the handlers\' TOPIC_ROOT and reply grant, and an output', () => {
    const stageTopics = (b: typeof built, root: string) => {
      const iotT = Template.fromStack(b.iot);
      const sql = Object.values(iotT.findResources('AWS::IoT::TopicRule')).map((r) => (r['Properties'] as { TopicRulePayload: { Sql: string } }).TopicRulePayload.Sql);
      assert.ok(sql.length >= 2);
      for (const q of sql) assert.match(q, new RegExp(`FROM '${root}/\\+/\\+/out/\\w+'$`), q);
      // the rules' names are the stage's own: two stages in one account and region must not share one
      const rules = ingestRules(root);
      const names = Object.values(iotT.findResources('AWS::IoT::TopicRule')).map((r) => (r['Properties'] as { RuleName: string }).RuleName);
      assert.deepEqual(names.sort(), [rules.obligation, rules.request].sort());
      iotT.hasOutput('IngestRules', { Value: JSON.stringify(rules) });
      const policy = JSON.stringify(Object.values(iotT.findResources('AWS::IoT::Policy'))[0]);
      for (const kind of ['topicfilter']) assert.ok(policy.includes(`:${kind}/${root}/`), `${kind}/${root}/ in the device policy`);
      for (const kind of ['request', 'obligation'] as const) {
        assert.ok(policy.includes(`:topic/$aws/rules/${rules[kind]}/${root}/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/out/${kind}"`), `publish to ${rules[kind]} in the device policy`);
      }
      assert.ok(!policy.includes(`:topic/${root === 'oc' ? 'oc-' : 'oc/'}`), 'no other root in the device policy');
      iotT.hasOutput('TopicRoot', { Value: root });
      const backend = Template.fromStack(b.backend);
      const envs = Object.values(backend.findResources('AWS::Lambda::Function'))
        .map((f) => (f['Properties'] as { Environment?: { Variables?: Record<string, string> } }).Environment?.Variables ?? {})
        .filter((v) => v['IOT_DATA_ENDPOINT'] !== undefined);
      assert.ok(envs.length >= 2);
      for (const v of envs) assert.equal(v['TOPIC_ROOT'], root);
      const publish = JSON.stringify(Object.values(backend.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p).includes('iot:Publish')));
      assert.ok(publish.includes(`:topic/${root}/*/*/in/*`), 'replies may be published under this root only');
    };
    stageTopics(built, 'oc');
    stageTopics(variant({ stage: 'orgb' }), 'oc-orgb');
  });

  it('-c bitcoinNetwork=mainnet: the container, its RPC port and ingress, and the handlers (6 confirmations) follow', () => {
    const main = variant({ bitcoinNetwork: 'mainnet', bitcoinPrune: '550' });
    const chain = Template.fromStack(main.chain);
    const env = bitcoindEnvironment(chain);
    assert.equal(env['NETWORK'], 'mainnet');
    assert.equal(env['RPC_PORT'], '8332');
    assert.equal(env['PRUNE'], '550');
    const ingress = Object.values(chain.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => (r['Properties'] as { FromPort: number }).FromPort);
    assert.ok(ingress.includes(8332) && !ingress.includes(BITCOIN_RPC_PORT));
    const fns = Object.values(Template.fromStack(main.backend).findResources('AWS::Lambda::Function')).map(
      (f) => (f['Properties'] as { Environment?: { Variables?: Record<string, string> } }).Environment?.Variables ?? {},
    ).filter((v) => v['BITCOIN_RPC_URL'] !== undefined);
    assert.ok(fns.length >= 8);
    for (const v of fns) {
      assert.equal(v['BITCOIN_NETWORK'], 'mainnet');
      assert.equal(v['CONFIRMATIONS'], '6');
      assert.match(v['BITCOIN_RPC_URL'] ?? '', /:8332$/);
    }
  });

  it('refuses an unknown network and pruning on regtest or below 550 MiB', () => {
    assert.throws(() => variant({ bitcoinNetwork: 'testnet3' }), /-c bitcoinNetwork=testnet3/);
    assert.throws(() => variant({ bitcoinPrune: '550' }), /only off regtest/);
    assert.throws(() => variant({ bitcoinNetwork: 'signet', bitcoinPrune: '100' }), /bitcoinPrune must be/);
  });
});

describe('ChainStack: joining another organisation\'s chain, P2P open to an allow-list', () => {
  // bundling-stacks []: no Lambda bundling for the back-end below, the templates are all these tests read
  const p2pApp = new App({ outdir: mkdtempSync(join(tmpdir(), 'oc-cdk-p2p-')), context: { 'aws:cdk:bundling-stacks': [] } });
  const joining = new ChainStack(p2pApp, 'OcChainB', {
    chainName: 'oc-chain',
    joinChain: 'oc-a-nlb.example.org:8571',
    p2pAllowCidrs: ['203.0.113.0/24', '198.51.100.7/32'],
  });
  const joiningBackend = new BackendStack(p2pApp, 'OcBackendB', { chain: joining, table: new DataStack(p2pApp, 'OcDataB').table });
  const t = Template.fromStack(joining);
  after(() => rmSync(p2pApp.outdir, { recursive: true, force: true }));
  const multichainContainer = (tpl: Template) => {
    const defs = Object.values(tpl.findResources('AWS::ECS::TaskDefinition')).map(
      (td) => (td['Properties'] as { ContainerDefinitions: Array<{ Environment: { Name: string; Value: unknown }[]; PortMappings: { ContainerPort: number }[]; HealthCheck: { Command: string[] } }> }).ContainerDefinitions[0]!,
    );
    const found = defs.find((d) => d.Environment.some((e) => e.Name === 'CHAIN_NAME'));
    assert.ok(found);
    return found;
  };
  const env = (c: ReturnType<typeof multichainContainer>) => Object.fromEntries(c.Environment.map((e) => [e.Name, e.Value]));

  it('the node joins the given chain, maps its P2P port, and counts as healthy while it waits for the grant', () => {
    const c = multichainContainer(t);
    assert.equal(env(c)['JOIN_CHAIN'], 'oc-a-nlb.example.org:8571');
    assert.equal(env(c)['P2P_PORT'], String(MULTICHAIN_P2P_PORT));
    assert.deepEqual(c.PortMappings.map((p) => p.ContainerPort).sort(), [MULTICHAIN_RPC_PORT, MULTICHAIN_P2P_PORT].sort());
    assert.match(c.HealthCheck.Command[1] ?? '', /JOIN_CHAIN.*\.oc-joined.*exit 0.*getinfo/);
    // the creating side (default context) does not join
    assert.equal(env(multichainContainer(templates.chain))['JOIN_CHAIN'], undefined);
  });

  it('an internet-facing NLB forwards TCP 8571 to the node; its security group admits only the allow-listed CIDRs', () => {
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: MULTICHAIN_P2P_PORT, Protocol: 'TCP' });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Port: MULTICHAIN_P2P_PORT, Protocol: 'TCP', TargetType: 'ip' });
    const lbSg = logicalId(joining.p2p!.node.findChild('Sg') as IConstruct);
    const groups = t.findResources('AWS::EC2::SecurityGroup');
    const ingress = (groups[lbSg]!['Properties'] as { SecurityGroupIngress: { CidrIp: string; FromPort: number; ToPort: number }[] }).SecurityGroupIngress;
    assert.deepEqual(ingress.map((r) => [r.CidrIp, r.FromPort, r.ToPort]).sort(), [
      ['198.51.100.7/32', MULTICHAIN_P2P_PORT, MULTICHAIN_P2P_PORT],
      ['203.0.113.0/24', MULTICHAIN_P2P_PORT, MULTICHAIN_P2P_PORT],
    ]);
    // nothing anywhere is open to the world
    const everyIngress = [
      ...Object.values(groups).flatMap((g) => (g['Properties'] as { SecurityGroupIngress?: { CidrIp?: string }[] }).SecurityGroupIngress ?? []),
      ...Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r['Properties'] as { CidrIp?: string }),
    ];
    assert.ok(!everyIngress.some((r) => r.CidrIp === '0.0.0.0/0'));
    // the node admits P2P only from the load balancer's group
    const nodeSg = logicalId(joining.multichain.securityGroup);
    const p2pIngress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress'))
      .map((r) => r['Properties'] as { GroupId: unknown; FromPort: number; SourceSecurityGroupId?: unknown; CidrIp?: string })
      .filter((r) => r.FromPort === MULTICHAIN_P2P_PORT);
    assert.deepEqual(p2pIngress.map((r) => [r.GroupId, r.SourceSecurityGroupId, r.CidrIp]), [[{ 'Fn::GetAtt': [nodeSg, 'GroupId'] }, { 'Fn::GetAtt': [lbSg, 'GroupId'] }, undefined]]);
    // without an allow-list there is no load balancer at all
    templates.chain.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  });

  it('outputs the chain\'s parameters, the join address, the egress IP and how to read the node\'s address', () => {
    const outputs = t.findOutputs('*');
    const value = (suffix: string) => {
      const key = Object.keys(outputs).find((k) => k.includes(suffix));
      assert.ok(key, `output ${suffix} in ${Object.keys(outputs).join(',')}`);
      return JSON.stringify(outputs[key]!['Value']);
    };
    assert.equal(value('ChainName'), '"oc-chain"');
    assert.equal(value('ChainMode'), '"join oc-a-nlb.example.org:8571"');
    assert.equal(value('ChainPorts'), `"rpc ${MULTICHAIN_RPC_PORT} p2p ${MULTICHAIN_P2P_PORT}"`);
    assert.equal(value('P2pAllowCidrs'), '"203.0.113.0/24,198.51.100.7/32"');
    assert.match(value('JoinChain'), /DNSName.*:8571/);
    assert.match(value('MultichainAddressCommand'), /aws logs filter-log-events --log-group-name .*address/);
    assert.match(value('EgressIp'), /Ref/);
    const created = templates.chain.findOutputs('*');
    assert.equal(JSON.stringify(created[Object.keys(created).find((k) => k.includes('ChainMode'))!]!['Value']), '"create"');
    assert.ok(!Object.keys(created).some((k) => k.includes('JoinChain')));
  });

  it('GET /chain and POST /chain/members are IAM-authorised routes; the URL is an output; the functions are told the P2P endpoint only when the NLB exists', () => {
    const chainRoute = ROUTES.find((r) => r.path === '/chain');
    assert.deepEqual(chainRoute && { method: chainRoute.method, handler: chainRoute.handler, admin: chainRoute.admin }, { method: 'GET', handler: 'query', admin: true });
    templates.backend.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /chain', AuthorizationType: 'AWS_IAM' });
    // granting and revoking another hub (grant.sh without ECS Exec): admins only, too
    templates.backend.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /chain/members', AuthorizationType: 'AWS_IAM' });
    for (const [stack, tpl] of [
      [built.backend, templates.backend],
      [joiningBackend, Template.fromStack(joiningBackend)],
    ] as const) {
      const outputs = tpl.findOutputs('*');
      const key = Object.keys(outputs).find((k) => k.startsWith('ChainInfoUrl'));
      assert.ok(key, `ChainInfoUrl in ${Object.keys(outputs).join(',')}`);
      const value = outputs[key]!['Value'] as { 'Fn::Join': [string, unknown[]] };
      assert.equal(value['Fn::Join'][1].at(-1), '/chain', JSON.stringify(value));
      assert.match(JSON.stringify(value), new RegExp(logicalId(stack.httpApi.api)));
    }
    const queryEnv = (tpl: Template, stack: BackendStack) =>
      (tpl.findResources('AWS::Lambda::Function')[logicalId(stack.handlers.functions.query)]!['Properties'] as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    assert.equal(queryEnv(templates.backend, built.backend)['MULTICHAIN_P2P_ENDPOINT'], undefined, 'no NLB: nobody joins');
    // the NLB's DNS name (exported by the chain stack) and the P2P port
    assert.match(JSON.stringify(queryEnv(Template.fromStack(joiningBackend), joiningBackend)['MULTICHAIN_P2P_ENDPOINT']), /Fn::ImportValue.*P2pNlb.*DNSName.*:8571/);
  });

  it('-c joinChain and -c p2pAllowCidrs are checked at synth', () => {
    const ctx = (context: Record<string, string>) => joinAndAllow(new App({ context }));
    assert.deepEqual(ctx({ joinChain: 'a.example.org:8571', p2pAllowCidrs: '203.0.113.0/24, 198.51.100.7/32' }), {
      joinChain: 'a.example.org:8571',
      p2pAllowCidrs: ['203.0.113.0/24', '198.51.100.7/32'],
    });
    assert.deepEqual(ctx({}), { p2pAllowCidrs: [] });
    assert.throws(() => ctx({ joinChain: 'a.example.org' }), /host:port/);
    assert.throws(() => ctx({ p2pAllowCidrs: '0.0.0.0/0' }), /everyone/);
    assert.throws(() => ctx({ p2pAllowCidrs: '203.0.113.0/33' }), /not an IPv4 CIDR/);
    assert.throws(() => ctx({ p2pAllowCidrs: '300.0.113.0/24' }), /not an IPv4 CIDR/);
  });
});
