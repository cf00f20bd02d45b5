import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { TOPIC_ROUTES } from '../../functions/routes.ts';
import type { HandlerName } from './handlers.ts';
import { DEFAULT_TOPIC_ROOT, ingestRules, topicsUnder, type IngestRules, type OutKind } from '../../service/topics.ts';

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
 * IoT topic rules from the devices' `out/` messages into the SPB handlers. Devices
 * reach them by Basic Ingest (`$aws/rules/<rule name>/<root>/<domain>/<thing>/out/<kind>`,
 * service/topics.ts), so each rule has an explicit name, per stage (`ingestRuleName`:
 * `oc_request`, `oc_demo_obligation`, …): devices must know it, and rule names are the
 * account's per region, so two stages must not share one (a CDK-generated name would
 * be unique but unknown to devices until deployed). The SQL keeps the FROM filter: it
 * documents what the rule receives and still applies to a plain publish. A
 * failed action is written to a CloudWatch log group (errorAction). Each
 * invoke permission is created here, in this stack, scoped to the rule's ARN,
 * so the back-end stack does not depend on this one.
 */
export class TopicRules extends Construct {
  readonly rules: iot.CfnTopicRule[] = [];
  /** The rules' names per kind: what devices publish to (the IoT stack's `IngestRules` output). */
  readonly ruleNames: IngestRules;
  readonly errorLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TopicRulesProps) {
    super(scope, id);
    this.ruleNames = ingestRules(props.topicRoot ?? DEFAULT_TOPIC_ROOT);
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
        // RuleName: ^[a-zA-Z0-9_]+$, 1-128 (AWS::IoT::TopicRule); changing it replaces the rule
        ruleName: this.ruleNames[kind],
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
