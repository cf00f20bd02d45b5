import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CODE_DIMENSION, METRIC, METRICS_NAMESPACE } from '../../functions/shared/metric-names.ts';
import { HANDLER_NAMES, type HandlerName } from './handlers.ts';

export interface MonitoringProps {
  readonly functions: Record<HandlerName, lambda.IFunction>;
  readonly table: dynamodb.ITableV2;
  /** The rule functions' on-failure queues (lib/constructs/rule-failures.ts). */
  readonly failureQueues: readonly sqs.IQueue[];
  /** The chain nodes (one task each, Container Insights on the cluster). */
  readonly cluster?: ecs.ICluster;
  readonly chainServices?: readonly ecs.IBaseService[];
}

/** The Powertools service name of a handler (POWERTOOLS_SERVICE_NAME, lib/constructs/handlers.ts). */
export const serviceOf = (name: HandlerName): string => `obligation-chain-${name}`;

/** Consecutive 5-minute periods a publish backlog must persist before it alarms: five publish runs a period (every minute, lib/constructs/schedules.ts), none cleared it. */
export const BACKLOG_PERIODS = 3;
/** 5-minute periods in a row with a stuck settlement before the alarm (settle runs every 5 minutes on AWS, lib/constructs/schedules.ts). */
export const STUCK_PERIODS = 3;

const FIVE_MINUTES = Duration.minutes(5);

/**
 * A CloudWatch dashboard and the alarms of one hub: Lambda errors and
 * throttles, the rule functions' on-failure queue depth, DynamoDB throttles,
 * a publish backlog that no run clears, and chain nodes without a running
 * task. Every alarm notifies one SNS topic (subscribe operators to it). The
 * custom metrics are the handlers' EMF (functions/shared/metric-names.ts).
 */
export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', { displayName: 'obligation-chain alarms', enforceSSL: true });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'The topic carries only alarm names and states, no data; CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and a customer key for alarm notices is not worth its cost here.',
    });
    const notify = new actions.SnsAction(this.topic);
    const alarm = (alarmId: string, metric: cloudwatch.Metric | cloudwatch.MathExpression, opts: Partial<cloudwatch.CreateAlarmOptions> & { description: string }) => {
      const a = metric.createAlarm(this, alarmId, {
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: opts.description,
        ...opts,
      });
      a.addAlarmAction(notify);
      this.alarms.push(a);
      return a;
    };

    for (const name of HANDLER_NAMES) {
      const fn = props.functions[name];
      alarm(`${name}Errors`, fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }), {
        description: `obligation-chain ${name}: invocations ended in an error (see its log group)`,
      });
      alarm(`${name}Throttles`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), {
        description: `obligation-chain ${name}: invocations throttled (account or reserved concurrency)`,
      });
    }
    props.failureQueues.forEach((queue, i) => {
      alarm(`RuleFailures${i}`, queue.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: 'Maximum' }), {
        description: 'A device message failed its function after Lambda\'s retries: redrive with scripts/redrive-rule-failures.sh',
      });
    });

    const tableMetric = (metricName: string) =>
      new cloudwatch.Metric({ namespace: 'AWS/DynamoDB', metricName, dimensionsMap: { TableName: props.table.tableName }, period: FIVE_MINUTES, statistic: 'Sum' });
    const tableThrottles = new cloudwatch.MathExpression({
      expression: 'r + w',
      usingMetrics: { r: tableMetric('ReadThrottleEvents'), w: tableMetric('WriteThrottleEvents') },
      label: 'DynamoDB throttle events',
      period: FIVE_MINUTES,
    });
    alarm('TableThrottles', tableThrottles, { description: 'The table throttled reads or writes' });

    const custom = (metricName: string, service: HandlerName, statistic = 'Sum') =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service: serviceOf(service) }, period: FIVE_MINUTES, statistic });
    const backlog = custom(METRIC.publishBacklog, 'publish', 'Minimum');
    alarm('PublishBacklog', backlog, {
      evaluationPeriods: BACKLOG_PERIODS,
      description: `Accepted obligations left unpublished by every publish run for ${BACKLOG_PERIODS * 5} minutes (ledger down?): the cross-hub credit window grows`,
    });

    const stuck = custom(METRIC.settlementsStuck, 'settle');
    alarm('SettlementsStuck', stuck, {
      evaluationPeriods: STUCK_PERIODS,
      description: `A settlement has been stuck for ${STUCK_PERIODS * 5} minutes (the node refuses it and it cannot be outbid, or the wallet will not bump it): the settle function's "settlement stuck" log lines give its id and reason`,
    });

    const tasks: cloudwatch.IMetric[] = [];
    if (props.cluster && props.chainServices) {
      for (const service of props.chainServices) {
        const running = new cloudwatch.Metric({
          namespace: 'ECS/ContainerInsights',
          metricName: 'RunningTaskCount',
          dimensionsMap: { ClusterName: props.cluster.clusterName, ServiceName: service.serviceName },
          period: Duration.minutes(1),
          statistic: 'Minimum',
        });
        tasks.push(running);
        alarm(`${service.node.scope?.node.id ?? service.node.id}Tasks`, running, {
          threshold: 1,
          evaluationPeriods: 3,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          // no data from Container Insights is no evidence of a running node
          treatMissingData: cloudwatch.TreatMissingData.BREACHING,
          description: 'A chain node (singleton Fargate task) has had no running task for 3 minutes',
        });
      }
    }

    const region = Stack.of(this).region;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const graph = (title: string, left: cloudwatch.IMetric[], width = 8) => new cloudwatch.GraphWidget({ title, left, width, region });
    this.dashboard.addWidgets(
      graph('Acceptances', [custom(METRIC.accepted, 'accept'), custom(METRIC.duplicate, 'accept')]),
      graph('Refusals by code', [
        new cloudwatch.MathExpression({
          expression: `SEARCH('{${METRICS_NAMESPACE},${CODE_DIMENSION},service} MetricName="${METRIC.refused}"', 'Sum', 300)`,
          label: 'refused',
          period: FIVE_MINUTES,
        }),
      ]),
      graph('Accept latency (ms)', [custom(METRIC.acceptLatency, 'accept', 'p50'), custom(METRIC.acceptLatency, 'accept', 'p99')]),
    );
    this.dashboard.addWidgets(
      graph('Publication', [custom(METRIC.published, 'publish'), backlog]),
      graph('Settlements', [custom(METRIC.settlements, 'settle'), custom(METRIC.settledAmount, 'settle')]),
      graph('Fee bumps and stuck settlements', [custom(METRIC.feeBumps, 'settle'), stuck]),
      graph('Invalid ledger records skipped', [custom(METRIC.invalidRecords, 'follow')]),
    );
    this.dashboard.addWidgets(
      graph('Lambda errors', HANDLER_NAMES.map((n) => props.functions[n].metricErrors({ period: FIVE_MINUTES, label: n }))),
      graph('Lambda throttles', HANDLER_NAMES.map((n) => props.functions[n].metricThrottles({ period: FIVE_MINUTES, label: n }))),
      graph('Rule failures waiting (on-failure queues)', props.failureQueues.map((q) => q.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES }))),
    );
    this.dashboard.addWidgets(
      graph('DynamoDB throttles', [tableThrottles], 12),
      graph('Chain nodes running', tasks, 12),
    );
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));
  }
}
