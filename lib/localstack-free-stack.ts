import { CfnOutput, CfnParameter, SecretValue, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { Handlers } from './constructs/handlers.ts';
import { Schedules } from './constructs/schedules.ts';

/** What a stack of the LocalStack free set uses, and what it leaves out (docs/deploy.md says why). */
export const LOCALSTACK_FREE_SERVICES = ['CloudFormation', 'IAM', 'DynamoDB', 'Lambda', 'CloudWatch Logs', 'EventBridge', 'Secrets Manager'] as const;
export const LOCALSTACK_PAID_ONLY = {
  'API Gateway v2 (HTTP API)': 'OcBackend: the HTTP routes; on the free set the functions are invoked directly (aws lambda invoke)',
  'IoT Core (rules, policies, data plane)': 'OcIot; and the device replies that offer/accept publish',
  'ECS/Fargate, EFS, Cloud Map': 'OcChain: the MultiChain and bitcoind nodes (run them yourself and pass their endpoints)',
  'X-Ray': 'active tracing (disabled on the free set)',
} as const;

/**
 * The back-end for LocalStack's free plan: the same handlers (same bundles,
 * same least-privilege grants) on the same table, outside any VPC, without
 * the HTTP API, IoT or X-Ray; the MultiChain and bitcoind endpoints and
 * credentials are stack parameters (nodes you run yourself, e.g. the real-node
 * binaries of test/real-nodes, reachable from LocalStack's Lambda containers),
 * the credentials stored in Secrets Manager exactly as OcChain stores them.
 */
export class LocalstackFreeBackendStack extends Stack {
  readonly handlers: Handlers;

  constructor(scope: Construct, id: string, props: StackProps & { readonly table: dynamodb.ITableV2 }) {
    super(scope, id, props);
    const param = (name: string, description: string, opts: { noEcho?: boolean; default?: string } = {}) =>
      new CfnParameter(this, name, { type: 'String', description, noEcho: opts.noEcho ?? false, ...(opts.default === undefined ? {} : { default: opts.default }) });
    const multichainUrl = param('MultichainRpcUrl', 'MultiChain JSON-RPC URL reachable from the Lambda containers, e.g. http://host.docker.internal:8570');
    const chainName = param('MultichainChainName', 'MultiChain chain name', { default: 'oc-chain' });
    const bitcoinUrl = param('BitcoinRpcUrl', 'bitcoind JSON-RPC URL (regtest) reachable from the Lambda containers');
    const iotEndpoint = param('IotDataEndpoint', 'IoT data-plane endpoint (IoT is not in the free plan: device replies fail there)', {
      default: 'http://localhost.localstack.cloud:4566',
    });
    const secret = (id: string, what: string) => {
      const user = param(`${id}User`, `${what} RPC user`);
      const password = param(`${id}Password`, `${what} RPC password`, { noEcho: true });
      const s = new secretsmanager.Secret(this, `${id}Secret`, {
        description: `${what} RPC credentials (from stack parameters)`,
        secretObjectValue: { user: SecretValue.unsafePlainText(user.valueAsString), password: SecretValue.cfnParameter(password) },
      });
      Validations.of(s).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'LocalStack free set: the credentials belong to nodes the developer runs and are changed by updating the stack parameters.',
      });
      return s;
    };

    this.handlers = new Handlers(this, 'Handlers', {
      table: props.table,
      multichain: { rpcUrl: multichainUrl.valueAsString, chainName: chainName.valueAsString, secret: secret('Multichain', 'MultiChain') },
      bitcoin: { rpcUrl: bitcoinUrl.valueAsString, secret: secret('Bitcoin', 'bitcoind'), readerSecret: secret('BitcoinReader', 'bitcoind read-only') },
      iotDataEndpoint: iotEndpoint.valueAsString,
      tracing: false,
    });
    new Schedules(this, 'Schedules', { functions: this.handlers.functions });
    for (const [name, fn] of Object.entries(this.handlers.functions)) {
      new CfnOutput(this, `${name}Function`, { value: fn.functionName, description: `invoke with: aws lambda invoke --function-name <this> ...` });
    }
  }
}
