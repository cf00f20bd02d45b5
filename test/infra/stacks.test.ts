import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Match } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TABLE_INDEXES, TABLE_KEYS } from '../../adapters/table.ts';
import { HANDLER_ACCESS, HANDLER_NAMES, type HandlerName } from '../../lib/constructs/handlers.ts';
import { ROUTES } from '../../lib/constructs/http-api.ts';
import { TTL_ATTRIBUTE } from '../../adapters/table.ts';
import { BITCOIN_RPC_PORT, ChainStack, MULTICHAIN_P2P_PORT, MULTICHAIN_RPC_PORT, NAMESPACE_NAME } from '../../lib/chain-stack.ts';
import { joinAndAllow } from '../../lib/app.ts';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { actionsOfRole, buildFixture, logicalId, render } from './fixture.ts';

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
  it('has pk/sk keys and gsi1..gsi3 with ALL projection, on demand', () => {
    templates.data.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      GlobalSecondaryIndexes: TABLE_INDEXES.map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
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
      if (id === fnLogicalId('query')) assert.deepEqual(arns.sort(), ['BITCOIN_RPC_SECRET_ARN', 'MULTICHAIN_RPC_SECRET_ARN']);
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
    }
    assert.equal(HANDLER_ACCESS.offer.ledger, false, 'the matrix itself has a handler without ledger access');
  });
});

describe('BackendStack: HTTP API and schedules', () => {
  const expectedRoutes = [
    'POST /domains',
    'POST /domains/{domain}/devices',
    'POST /offers',
    'POST /obligations',
    'POST /domains/{domain}/settlements',
    'GET /domains/{domain}/reputation',
    'GET /domains/{domain}/obligations',
    'GET /domains/{domain}/devices/{device}/head',
    'GET /domains',
    'GET /domains/{domain}',
    'GET /health',
  ];

  it('has exactly the eleven routes, IAM-authorised on admin routes only', () => {
    const routes = Object.values(templates.backend.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => r['Properties'] as { RouteKey: string; AuthorizationType?: string },
    );
    assert.deepEqual(routes.map((r) => r.RouteKey).sort(), [...expectedRoutes].sort());
    const admin = new Set(['POST /domains', 'POST /domains/{domain}/devices', 'POST /domains/{domain}/settlements']);
    for (const route of routes) {
      assert.equal(route.AuthorizationType ?? 'NONE', admin.has(route.RouteKey) ? 'AWS_IAM' : 'NONE', route.RouteKey);
    }
    assert.equal(ROUTES.length, 11);
  });

  it('logs access and throttles the default stage', () => {
    templates.backend.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context.requestId') },
    });
  });

  it('runs publish, watch and follow every minute, settle every five, with {"source":"schedule"}', () => {
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
    assert.equal(byTarget.size, 4);
  });
});

describe('IotStack', () => {
  it('scopes the device policy by thing name and domain attribute', () => {
    const policies = Object.values(templates.iot.findResources('AWS::IoT::Policy'));
    assert.equal(policies.length, 1);
    const doc = (policies[0]?.['Properties'] as { PolicyDocument: { Statement: Array<{ Action: string; Resource: unknown }> } })
      .PolicyDocument;
    const prefix = 'arn:{AWS::Partition}:iot:{AWS::Region}:{AWS::AccountId}:';
    const byAction = Object.fromEntries(doc.Statement.map((s) => [s.Action, render(s.Resource)]));
    assert.deepEqual(byAction, {
      'iot:Connect': `${prefix}client/\${iot:Connection.Thing.ThingName}`,
      'iot:Publish': `${prefix}topic/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/out/*`,
      'iot:Subscribe': `${prefix}topicfilter/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/in/*`,
      'iot:Receive': `${prefix}topic/oc/\${iot:Connection.Thing.Attributes[domain]}/\${iot:Connection.Thing.ThingName}/in/*`,
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
    for (const [, rule] of rules) {
      const payload = (rule['Properties'] as { TopicRulePayload: Record<string, unknown> }).TopicRulePayload;
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
      assert.deepEqual(secrets.sort(), ['RPC_PASSWORD', 'RPC_USER']);
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

describe('ChainStack: joining another organisation\'s chain, P2P open to an allow-list', () => {
  const p2pApp = new App({ outdir: mkdtempSync(join(tmpdir(), 'oc-cdk-p2p-')) });
  const joining = new ChainStack(p2pApp, 'OcChainB', {
    chainName: 'oc-chain',
    joinChain: 'oc-a-nlb.example.org:8571',
    p2pAllowCidrs: ['203.0.113.0/24', '198.51.100.7/32'],
  });
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
