import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { HandlerName } from './handlers.ts';

/** How often each background job runs. */
export const SCHEDULES: ReadonlyArray<{ readonly handler: HandlerName; readonly every: Duration }> = [
  { handler: 'publish', every: Duration.minutes(1) },
  { handler: 'watch', every: Duration.minutes(1) },
  { handler: 'settle', every: Duration.minutes(5) },
  { handler: 'follow', every: Duration.minutes(1) },
  // EventBridge's finest rate; grants last 5 min and are refreshed 2.5 min before they lapse (service/rebalance.ts)
  { handler: 'rebalance', every: Duration.minutes(1) },
];

/** The event the scheduled handlers receive. */
export const SCHEDULE_EVENT = { source: 'schedule' } as const;

/** EventBridge rules that invoke the background jobs with `{ "source": "schedule" }`. */
export class Schedules extends Construct {
  constructor(scope: Construct, id: string, props: { readonly functions: Record<HandlerName, lambda.IFunction> }) {
    super(scope, id);
    for (const { handler, every } of SCHEDULES) {
      new events.Rule(this, `${handler}Schedule`, {
        description: `obligation-chain: run ${handler} every ${every.toHumanString()}`,
        schedule: events.Schedule.rate(every),
        targets: [
          new targets.LambdaFunction(props.functions[handler], {
            event: events.RuleTargetInput.fromObject(SCHEDULE_EVENT),
            retryAttempts: 0,
          }),
        ],
      });
    }
  }
}
