import { DEFAULT_TOPIC_ROOT } from '../../service/topics.ts';
import { Duration, RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import { NETWORK_DEFAULTS, type BitcoinNetwork } from '../../core/network.ts';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { TABLE_ENV, TABLE_INDEXES } from '../../adapters/table.ts';
import { RETIRED_KEY_WINDOW_DAYS } from '../../adapters/signer/kms.ts';
import { METRICS_NAMESPACE } from '../../functions/shared/metric-names.ts';

/** The handler entries in functions/{name}.ts, each exporting `handler`. */
import { HANDLER_NAMES, type HandlerName } from '../../functions/routes.ts';
import { SCHEDULES } from './schedules.ts';

export { HANDLER_NAMES, type HandlerName };

/** What one handler may touch: the least-privilege matrix, in one place. */
export interface HandlerAccess {
  readonly description: string;
  /** DynamoDB access: `read` gets no write action at all. */
  readonly table: 'read' | 'readWrite';
  /** May read the MultiChain RPC secret (talks to the ledger). */
  readonly ledger: boolean;
  /** May read the bitcoind RPC secret (addresses, payments): a credential that can spend. */
  readonly bitcoin: boolean;
  /** May read the read-only bitcoind user's secret (rpcwhitelist of node and wallet reads, containers/bitcoind): watch, follow, query. */
  readonly bitcoinReader?: boolean;
  /**
   * When set, the function may touch only items whose partition key matches
   * one of these patterns (IAM `dynamodb:LeadingKeys`, ForAllValues:StringLike)
   * and no index: for functions that need only some item kinds (adapters/table.ts).
   */
  readonly leadingKeys?: readonly string[];
  /** May publish replies to devices on `oc/+/+/in/#`. */
  readonly iotPublish: boolean;
  /** May call ecs:DescribeServices on the chain services (health). */
  readonly ecsHealth: boolean;
  /**
   * Domain keys in KMS: 'create' (kms:CreateKey and kms:TagResource with the app's tags,
   * kms:GetPublicKey, kms:Sign), 'sign' (kms:Sign on the app's keys only), 'none'.
   */
  readonly keys: 'create' | 'sign' | 'none';
  /** Reserved concurrency; 1 serialises a job so two runs never race. */
  readonly reservedConcurrency?: number;
  readonly timeout: Duration;
}

/** How long a function trusts an RPC secret before reading it again (Powertools Parameters maxAge). */
export const SECRETS_MAX_AGE = Duration.minutes(5);

/** How often the settle job runs (lib/constructs/schedules.ts). */
function settleEvery(): Duration {
  const every = SCHEDULES.find((s) => s.handler === 'settle')?.every;
  if (!every) throw new Error('no schedule for the settle job');
  return every;
}

export const HANDLER_ACCESS: Record<HandlerName, HandlerAccess> = {
  // creates the domain's KMS key and signs its record
  domains: { description: 'Host a domain and publish its record', table: 'readWrite', ledger: true, bitcoin: true, iotPublish: false, ecsHealth: false, keys: 'create', timeout: Duration.seconds(30) },
  // signs credentials and revocations, publishes revocations on the ledger; reads its hosted domain and writes
  // device and revocation items: nothing else in the table
  enrol: { description: 'Enrol, renew and revoke devices (sign credentials and revocations)', table: 'readWrite', leadingKeys: ['DOM#*', 'DEVICE#*', 'REVOKED#*'], ledger: true, bitcoin: false, iotPublish: false, ecsHealth: false, keys: 'sign', timeout: Duration.seconds(15) },
  // hosted provider, its device, the consumer domain's record (ledger on a cache miss), the consumer's revocations,
  // the offer it writes; signs with an in-memory hub key the domain key certifies once per half-life (service/keys.ts)
  offer: { description: 'SPB: answer a service request with a signed offer', table: 'readWrite', leadingKeys: ['DOM#*', 'DOMREC#*', 'DEVICE#*', 'REVOKED#*', 'OFFER#*'], ledger: true, bitcoin: false, iotPublish: true, ecsHealth: false, keys: 'sign', timeout: Duration.seconds(10) },
  accept: { description: 'SPB: accept or reject an obligation at once', table: 'readWrite', ledger: true, bitcoin: false, iotPublish: true, ecsHealth: false, keys: 'sign', timeout: Duration.seconds(10) },
  // Overlapping runs are safe without reserved concurrency: one run at a time holds the publication lease (service/publish.ts).
  publish: { description: 'Publish accepted obligations to the ledger', table: 'readWrite', ledger: true, bitcoin: false, iotPublish: false, ecsHealth: false, keys: 'sign', timeout: Duration.seconds(60) },
  watch: { description: 'SPB: match payments, mark fulfilled/defaulted', table: 'readWrite', ledger: true, bitcoin: false, bitcoinReader: true, iotPublish: false, ecsHealth: false, keys: 'none', timeout: Duration.seconds(60) },
  // Overlapping runs are safe without reserved concurrency: each consumer domain is settled under a lease (service/settle.ts).
  settle: { description: 'SCB: pay pending obligations in one transaction', table: 'readWrite', ledger: true, bitcoin: true, iotPublish: false, ecsHealth: false, keys: 'sign', timeout: Duration.minutes(2) },
  // Cursor-driven and idempotent: an overlapping run repeats work, never doubles it.
  follow: { description: 'Ledger follower: learn other hubs\' domains, obligations, outcomes and revocations', table: 'readWrite', ledger: true, bitcoin: false, bitcoinReader: true, iotPublish: false, ecsHealth: false, keys: 'none', timeout: Duration.seconds(60) },
  // only the escrow: the list of domains with credit here, their counters and shards (service/rebalance.ts). Overlapping
  // runs are safe: every rebalance is one transaction conditioned on the counters' version.
  rebalance: { description: 'Top up the escrow shards of consumer domains drawing credit here', table: 'readWrite', leadingKeys: ['CREDITDOMAINS', 'REP#*', 'CREDIT#*'], ledger: false, bitcoin: false, iotPublish: false, ecsHealth: false, keys: 'none', timeout: Duration.seconds(60) },
  // reads through the GSIs (hosted list, obligations by domain), so no LeadingKeys; bitcoind only as the read-only user
  query: { description: 'Reputation, obligations, health', table: 'read', ledger: true, bitcoin: false, bitcoinReader: true, iotPublish: false, ecsHealth: true, keys: 'none', timeout: Duration.seconds(15) },
};

/** Tag on every domain key naming the app (its backend stack); IAM grants on keys require it. */
export const APP_TAG = 'oc:app';
/** Tag on the roles of the functions that sign; the key policy denies kms:Sign to every other principal. */
export const SIGNER_ROLE_TAG = 'oc:signer';
/** Tags a new domain key may carry (adapters/signer/kms.ts adds `oc:domain`, the environment `oc:app`). */
export const KEY_TAG_KEYS = ['oc:domain', APP_TAG] as const;

/** DynamoDB actions of a reader (no write among them). */
export const TABLE_READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
] as const;
/** DynamoDB actions a writer adds (conditional puts, atomic ADD counters). */
export const TABLE_WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
] as const;

/** The device inbox topics offer/accept may publish replies to (ARN resource name). */
/** The device inbox topics the offer and accept functions may publish replies on, under a stage's topic root. */
export const iotReplyTopics = (root: string = DEFAULT_TOPIC_ROOT): string => `topic/${root}/*/*/in/*`;
export const IOT_REPLY_TOPICS = iotReplyTopics();
const iotReplyTopicsNag = (root: string) => `arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:${iotReplyTopics(root)}`;

export interface HandlersProps {
  /** The functions' VPC and security group; without them the functions run outside any VPC (the LocalStack free set). */
  readonly vpc?: ec2.IVpc;
  readonly securityGroup?: ec2.ISecurityGroup;
  readonly table: dynamodb.ITableV2;
  readonly multichain: {
    readonly rpcUrl: string;
    readonly chainName: string;
    readonly secret: secretsmanager.ISecret;
    /** `host:port` other organisations join through (the P2P load balancer), shown by GET /chain; absent: none. */
    readonly p2pEndpoint?: string;
  };
  readonly bitcoin: {
    readonly rpcUrl: string;
    readonly secret: secretsmanager.ISecret;
    /** The read-only RPC user's secret (rpcwhitelist), for functions with `bitcoinReader`. */
    readonly readerSecret?: secretsmanager.ISecret;
    /** The network bitcoind runs (BITCOIN_NETWORK: valid addresses, confirmations and fee defaults). */
    readonly network?: BitcoinNetwork;
  };
  /** `https://{endpointAddress}` of the IoT data plane (ATS). */
  readonly iotDataEndpoint: string;
  /** The stage's MQTT topic root (service/topics.ts: topicRoot); default `oc`. */
  readonly topicRoot?: string;
  /** The chain nodes' cluster and services, for query's /health (absent: no ECS health). */
  readonly cluster?: ecs.ICluster;
  readonly chainServices?: readonly ecs.IBaseService[];
  /** Active X-Ray tracing (default true; LocalStack's free plan has no X-Ray). */
  readonly tracing?: boolean;
  /** Confirmations before a payment counts (default: the network's, 1 / 3 / 3 / 6; core/network.ts). */
  readonly confirmations?: number;
  /** Folder holding functions/ and package-lock.json; defaults to this repository. */
  readonly projectRoot?: string;
}

/**
 * The eight backend Lambdas, bundled by esbuild from functions/*.ts as ESM for
 * Node.js 22 on arm64, inside the VPC, each with its own log group, X-Ray
 * tracing and exactly the grants of HANDLER_ACCESS.
 */
export class Handlers extends Construct {
  readonly functions: Record<HandlerName, NodejsFunction>;

  constructor(scope: Construct, id: string, props: HandlersProps) {
    super(scope, id);
    const root = props.projectRoot ?? fileURLToPath(new URL('../../', import.meta.url));
    const environment: Record<string, string> = {
      [TABLE_ENV]: props.table.tableName,
      LEDGER_KIND: 'multichain',
      MULTICHAIN_RPC_URL: props.multichain.rpcUrl,
      MULTICHAIN_CHAIN_NAME: props.multichain.chainName,
      MULTICHAIN_RPC_SECRET_ARN: props.multichain.secret.secretArn,
      ...(props.multichain.p2pEndpoint ? { MULTICHAIN_P2P_ENDPOINT: props.multichain.p2pEndpoint } : {}),
      BITCOIN_KIND: 'bitcoind',
      BITCOIN_RPC_URL: props.bitcoin.rpcUrl,
      BITCOIN_NETWORK: props.bitcoin.network ?? 'regtest',
      CONFIRMATIONS: String(props.confirmations ?? NETWORK_DEFAULTS[props.bitcoin.network ?? 'regtest'].confirmations),
      // the settle job's schedule: providers' minimum payment term and the default grace derive from it
      SETTLE_INTERVAL_MS: String(settleEvery().toMilliseconds()),
      IOT_DATA_ENDPOINT: props.iotDataEndpoint,
      TOPIC_ROOT: props.topicRoot ?? DEFAULT_TOPIC_ROOT,
      NODE_OPTIONS: '--enable-source-maps',
      SIGNER_KIND: 'kms',
      // Powertools (functions/shared/observability.ts); the service name is per function below
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      // RPC secrets are read again after this many seconds (rotation without a cold start)
      SECRETS_MAX_AGE_S: String(SECRETS_MAX_AGE.toSeconds()),
    };
    const app = Stack.of(this).stackName;

    const made: Partial<Record<HandlerName, NodejsFunction>> = {};
    for (const name of HANDLER_NAMES) {
      const access = HANDLER_ACCESS[name];
      const logGroup = new logs.LogGroup(this, `${pascal(name)}Logs`, {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const fn = new NodejsFunction(this, pascal(name), {
        description: `obligation-chain ${name}: ${access.description}`,
        entry: `${root}functions/${name}.ts`,
        handler: 'handler',
        projectRoot: root,
        depsLockFilePath: `${root}package-lock.json`,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: access.timeout,
        tracing: props.tracing === false ? lambda.Tracing.DISABLED : lambda.Tracing.ACTIVE,
        logGroup,
        ...(props.vpc && props.securityGroup
          ? { vpc: props.vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }, securityGroups: [props.securityGroup] }
          : {}),
        ...(access.reservedConcurrency === undefined ? {} : { reservedConcurrentExecutions: access.reservedConcurrency }),
        environment: {
          ...environment,
          SERVICE: `obligation-chain-${name}`,
          ...(access.keys === 'create'
            ? { SIGNER_KEY_TAGS: JSON.stringify({ [APP_TAG]: app }), SIGNER_KEY_POLICY: this.keyPolicy() }
            : {}),
          POWERTOOLS_SERVICE_NAME: `obligation-chain-${name}`,
          // each function is told only the bitcoind secret it may read: the spending one, or the read-only one
          ...(access.bitcoin ? { BITCOIN_RPC_SECRET_ARN: props.bitcoin.secret.secretArn } : {}),
          ...(access.bitcoinReader && props.bitcoin.readerSecret ? { BITCOIN_READER_SECRET_ARN: props.bitcoin.readerSecret.secretArn } : {}),
          ...(access.ecsHealth && props.cluster && props.chainServices
            ? {
                ECS_CLUSTER_ARN: props.cluster.clusterArn,
                ECS_SERVICES: props.chainServices.map((service) => service.serviceName).join(','),
              }
            : {}),
        },
        bundling: {
          format: OutputFormat.ESM,
          target: 'node22',
          minify: true,
          sourceMap: true,
          mainFields: ['module', 'main'],
          // CJS dependencies call require(); give ESM output a real one.
          banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
          // Ship the SDK versions pinned in package-lock.json, not the runtime's.
          bundleAwsSDK: true,
          // bitcoin-core → debugnyan → bunyan loads dtrace-provider (a native
          // add-on) inside try/catch; esbuild cannot bundle its dynamic require,
          // and bunyan runs without it.
          externalModules: ['dtrace-provider'],
        },
      });
      this.grant(fn, access, props);
      made[name] = fn;
    }
    this.functions = made as Record<HandlerName, NodejsFunction>;
    this.acknowledgeFindings(props.topicRoot ?? DEFAULT_TOPIC_ROOT);
  }

  /**
   * The key policy of every domain key: the account administers it through IAM
   * (KMS's default "enable IAM policies" statement, which also keeps the creator
   * able to change the policy, as CreateKey's lockout check requires), and
   * kms:Sign is denied to every principal whose role is not tagged as a signer,
   * whatever its IAM policies say (an administrator included).
   */
  private keyPolicy(): string {
    const stack = Stack.of(this);
    return stack.toJsonString({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'AccountAdministersThroughIam',
          Effect: 'Allow',
          Principal: { AWS: `arn:${stack.partition}:iam::${stack.account}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
        {
          Sid: 'OnlySignerRolesSign',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'kms:Sign',
          Resource: '*',
          Condition: { StringNotEquals: { [`aws:PrincipalTag/${SIGNER_ROLE_TAG}`]: 'true' } },
        },
      ],
    });
  }

  /** cdk-nag findings that are inherent to these functions, each with its reason. */
  private acknowledgeFindings(topicRoot: string): void {
    const acknowledgements = [
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The AWS managed basic execution policy only lets the function write its own CloudWatch logs.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason: 'The functions run in the VPC (they call the chain nodes over private DNS); Lambda needs this managed policy to manage their ENIs.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level permissions; kms:CreateKey (registering function only) has no key to scope to and is conditioned instead on SIGN_VERIFY ECC keys carrying exactly this app\'s tags.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${iotReplyTopicsNag(topicRoot)}]`,
        reason: 'offer/accept reply to whichever device asked, so they may publish on any device inbox topic {topic root}/{domain}/{device}/in/{kind} of this stage and nowhere else.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
        reason:
          'Domain keys are created at run time, one per hosted domain, so their ARNs are unknown at deploy time: kms:Sign (and for the registering function kms:GetPublicKey, kms:DescribeKey, kms:TagResource, and kms:ScheduleKeyDeletion with a 30-day waiting period only) is granted on key/* only under a condition on the key\'s oc:app tag, which the key policy and tag conditions on CreateKey/TagResource tie to this app.',
      },
      {
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the project targets and tests (bundle target node22); move to the next LTS deliberately, not by default.',
      },
    ];
    for (const fn of Object.values(this.functions)) Validations.of(fn).acknowledge(...acknowledgements);
  }

  /**
   * kms:Sign only on this app's domain keys (tag condition) for the functions that sign,
   * and their roles tagged as signers (the key policy denies everyone else). The
   * registering function may also create keys, only SIGN_VERIFY ECC keys carrying
   * exactly the app's tags, tag them so, read their public halves and state, and
   * schedule a retired key's deletion with a waiting period of RETIRED_KEY_WINDOW_DAYS.
   */
  private grantKeys(fn: NodejsFunction, keys: 'create' | 'sign'): void {
    const stack = Stack.of(this);
    const app = stack.stackName;
    const appKeys = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const ofThisApp = { StringEquals: { [`aws:ResourceTag/${APP_TAG}`]: app } };
    if (fn.role) Tags.of(fn.role).add(SIGNER_ROLE_TAG, 'true');
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['kms:Sign'], resources: [appKeys], conditions: ofThisApp }));
    if (keys !== 'create') return;
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['kms:GetPublicKey', 'kms:DescribeKey'], resources: [appKeys], conditions: ofThisApp }));
    // a key its domain rotated away from is retired: deletion scheduled, with the longest waiting period only
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:ScheduleKeyDeletion'],
        resources: [appKeys],
        conditions: { ...ofThisApp, NumericEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': RETIRED_KEY_WINDOW_DAYS } },
      }),
    );
    const tagsOnRequest = {
      [`aws:RequestTag/${APP_TAG}`]: app,
    };
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:CreateKey'],
        // CreateKey has no key ARN to scope to; conditions scope it instead
        resources: ['*'],
        conditions: {
          StringEquals: { ...tagsOnRequest, 'kms:KeyUsage': 'SIGN_VERIFY', 'kms:KeySpec': ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256'] },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [...KEY_TAG_KEYS] },
        },
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:TagResource'],
        resources: [appKeys],
        conditions: { StringEquals: tagsOnRequest, 'ForAllValues:StringEquals': { 'aws:TagKeys': [...KEY_TAG_KEYS] } },
      }),
    );
  }

  private grant(fn: NodejsFunction, access: HandlerAccess, props: HandlersProps): void {
    // Explicit statements rather than grantReadWriteData: they name each GSI
    // instead of `index/*`, and `read` has no write action at all.
    const tableArn = props.table.tableArn;
    const tableActions: string[] = access.table === 'readWrite' ? [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS] : [...TABLE_READ_ACTIONS];
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        // A Scan names no partition key, and ForAllValues over no value is true: a LeadingKeys
        // condition would not restrict it, so a function under LeadingKeys gets no Scan at all.
        actions: access.leadingKeys ? tableActions.filter((a) => a !== 'dynamodb:Scan') : tableActions,
        ...(access.leadingKeys
          ? {
              // "dynamodb:LeadingKeys – Represents the first key attribute of a table — in other words, the
              // partition key"; ForAllValues: every key the request names must match (IAM guide, DynamoDB fine-grained access).
              resources: [tableArn],
              conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...access.leadingKeys] } },
            }
          : { resources: [tableArn, ...TABLE_INDEXES.map((index) => `${tableArn}/index/${index.indexName}`)] }),
      }),
    );
    if (access.ledger) props.multichain.secret.grantRead(fn);
    if (access.bitcoin) props.bitcoin.secret.grantRead(fn);
    if (access.bitcoinReader) {
      if (!props.bitcoin.readerSecret) throw new Error('a bitcoinReader function needs the read-only bitcoind secret');
      props.bitcoin.readerSecret.grantRead(fn);
    }
    if (access.iotPublish) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['iot:Publish'],
          resources: [
            Stack.of(this).formatArn({ service: 'iot', resource: 'topic', resourceName: iotReplyTopics(props.topicRoot ?? DEFAULT_TOPIC_ROOT).slice('topic/'.length) }),
          ],
        }),
      );
    }
    if (access.keys !== 'none') this.grantKeys(fn, access.keys);
    if (access.ecsHealth && props.chainServices) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ecs:DescribeServices'],
          resources: props.chainServices.map((service) => service.serviceArn),
        }),
      );
    }
  }
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
