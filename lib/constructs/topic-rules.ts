import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { TOPIC_ROUTES } from '../../functions/routes.ts';
import type { HandlerName } from './handlers.ts';
import { DEFAULT_TOPIC_ROOT, topicsUnder, type OutKind } from '../../service/topics.ts';

/** The IoT SQL of a rule that forwards device messages of one kind, under a stage's topic root, to a handler. */
export function ruleSql(kind: OutKind, root: string = DEFAULT_TOPIC_ROOT): string {
  return `SELECT *, topic(2) AS domain, topic(3) AS thing, topic() AS topic FROM '${topicsUnder(root).rule(kind)}'`;
}

export { TOPIC_ROUTES } from '../../functions/routes.ts';

export interface TopicRulesProps {
  readonly functions: Pick<Record<HandlerName, lambda.IFunction>, 'offer' | 'accept'>;
  /** The stage's MQTT topic root (service/topics.ts: topicRoot); default `oc`. */
  readonly topicRoot?: string;
}

/**
 * IoT topic rules from the devices' `out/` topics into the SPB handlers. A
 * failed action is written to a CloudWatch log group (errorAction). Each
 * invoke permission is created here, in this stack, scoped to the rule's ARN,
 * so the back-end stack does not depend on this one.
 */
export class TopicRules extends Construct {
  readonly rules: iot.CfnTopicRule[] = [];
  readonly errorLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TopicRulesProps) {
    super(scope, id);
    this.errorLogs = new logs.LogGroup(this, 'RuleErrors', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const errorRole = new iam.Role(this, 'ErrorActionRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com'),
      description: 'Lets IoT rules write failed actions to the rule error log group',
    });
    errorRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
        resources: [this.errorLogs.logGroupArn],
      }),
    );

    for (const { kind, handler } of TOPIC_ROUTES) {
      const fn = props.functions[handler];
      const rule = new iot.CfnTopicRule(this, `${kind}Rule`, {
        topicRulePayload: {
          description: `Device ${kind} messages to the ${handler} handler`,
          sql: ruleSql(kind, props.topicRoot),
          awsIotSqlVersion: '2016-03-23',
          ruleDisabled: false,
          actions: [{ lambda: { functionArn: fn.functionArn } }],
          errorAction: {
            cloudwatchLogs: { logGroupName: this.errorLogs.logGroupName, roleArn: errorRole.roleArn },
          },
        },
      });
      new lambda.CfnPermission(this, `${kind}InvokePermission`, {
        action: 'lambda:InvokeFunction',
        functionName: fn.functionArn,
        principal: 'iot.amazonaws.com',
        sourceArn: rule.attrArn,
        sourceAccount: Stack.of(this).account,
      });
      this.rules.push(rule);
    }
  }
}
