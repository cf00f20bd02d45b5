import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { DevicePolicy, thingTypeName } from './constructs/device-policy.ts';
import { TopicRules } from './constructs/topic-rules.ts';
import { topicRoot } from '../service/topics.ts';

export interface IotStackProps extends StackProps {
  readonly offer: lambda.IFunction;
  readonly accept: lambda.IFunction;
  /** Deployment stage (names the thing type; default dev → `oc-device`). */
  readonly stage?: string;
}

/** IoT Core: the device thing type and policy, and the rules into the SPB handlers. */
export class IotStack extends Stack {
  readonly devicePolicy: DevicePolicy;
  readonly topicRules: TopicRules;

  constructor(scope: Construct, id: string, props: IotStackProps) {
    super(scope, id, props);
    const thingType = thingTypeName(props.stage ?? 'dev');
    // a topic root per stage: IoT Core's topic space is the account's (per region), so two stages' rules must not see each other's devices
    const root = topicRoot(props.stage ?? 'dev');
    this.topicRules = new TopicRules(this, 'Rules', { functions: { offer: props.offer, accept: props.accept }, topicRoot: root });
    // devices may publish only by Basic Ingest, to these rules
    this.devicePolicy = new DevicePolicy(this, 'Devices', { thingTypeName: thingType, topicRoot: root, ingestRules: this.topicRules.ruleNames });
    new CfnOutput(this, 'DevicePolicyName', {
      value: this.devicePolicy.policy.ref,
      description: 'IoT policy to attach to each device certificate (scripts/provision-fleet.sh)',
    });
    new CfnOutput(this, 'TopicRoot', { value: root, description: "this stage's MQTT topic root: a device config's link.topicRoot (devices/config.ts)" });
    new CfnOutput(this, 'IngestRules', {
      value: JSON.stringify(this.topicRules.ruleNames),
      description: "this stage's topic rules, which devices publish to by Basic Ingest: a device config's link.ingestRules (devices/config.ts; default derived from link.topicRoot)",
    });
    new CfnOutput(this, 'ThingTypeName', { value: thingType, description: 'thing type of this stage (scripts/provision-fleet.sh --thing-type)' });
  }
}
