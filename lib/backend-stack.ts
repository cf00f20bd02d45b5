import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import type { ChainStack } from './chain-stack.ts';
import { Handlers } from './constructs/handlers.ts';
import { ObligationHttpApi } from './constructs/http-api.ts';
import { IotDataEndpoint } from './constructs/iot-endpoint.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { RuleFailureDestinations } from './constructs/rule-failures.ts';
import { Schedules } from './constructs/schedules.ts';
import { topicRoot } from '../service/topics.ts';

export interface BackendStackProps extends StackProps {
  readonly chain: ChainStack;
  readonly table: dynamodb.ITableV2;
  /** Deployment stage: sets the handlers' MQTT topic root (service/topics.ts: topicRoot); default dev. */
  readonly stage?: string;
}

/** The serverless back-end: Lambdas, HTTP API, schedules. */
export class BackendStack extends Stack {
  readonly handlers: Handlers;
  readonly httpApi: ObligationHttpApi;
  readonly ruleFailures: RuleFailureDestinations;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: BackendStackProps) {
    super(scope, id, props);
    const { chain } = props;
    const iotEndpoint = new IotDataEndpoint(this, 'IotEndpoint');
    this.handlers = new Handlers(this, 'Handlers', {
      vpc: chain.network.vpc,
      securityGroup: chain.network.lambdaSecurityGroup,
      table: props.table,
      multichain: {
        rpcUrl: chain.multichain.rpcUrl,
        chainName: chain.chainName,
        secret: chain.multichain.rpcSecret,
        ...(chain.p2p ? { p2pEndpoint: chain.p2p.joinAddress } : {}),
      },
      bitcoin: {
        rpcUrl: chain.bitcoind.rpcUrl,
        secret: chain.bitcoind.rpcSecret,
        network: chain.bitcoinNetwork,
        ...(chain.bitcoind.readerSecret ? { readerSecret: chain.bitcoind.readerSecret } : {}),
      },
      iotDataEndpoint: iotEndpoint.url,
      topicRoot: topicRoot(props.stage ?? 'dev'),
      cluster: chain.cluster,
      chainServices: [chain.multichain.service, chain.bitcoind.service],
    });
    this.httpApi = new ObligationHttpApi(this, 'Http', { functions: this.handlers.functions });
    new Schedules(this, 'Schedules', { functions: this.handlers.functions });
    this.ruleFailures = new RuleFailureDestinations(this, 'RuleFailures', { functions: this.handlers.functions });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      functions: this.handlers.functions,
      table: props.table,
      failureQueues: Object.values(this.ruleFailures.queues),
      cluster: chain.cluster,
      chainServices: [chain.multichain.service, chain.bitcoind.service],
    });

    new CfnOutput(this, 'ApiUrl', { value: this.httpApi.api.apiEndpoint, description: 'HTTP API base URL' });
    // The node's address and permissions and the chain's parameters exist only at run time: this admin route asks the node.
    new CfnOutput(this, 'ChainInfoUrl', {
      value: `${this.httpApi.api.apiEndpoint}/chain`,
      description: "GET with SigV4 (execute-api): this hub's MultiChain address and permissions, the chain's name and parameters, the P2P endpoint (docs/deploy.md)",
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn, description: 'SNS topic of every alarm: subscribe the operators' });
    for (const [handler, queue] of Object.entries(this.ruleFailures.queues)) {
      new CfnOutput(this, `${handler}FailureQueueUrl`, { value: queue.queueUrl, description: `On-failure queue of the ${handler} rule invocations (scripts/redrive-rule-failures.sh)` });
    }
    new CfnOutput(this, 'IotDataEndpoint', { value: iotEndpoint.host, description: 'IoT Core data endpoint (ATS) for devices' });
  }
}
