import { Duration, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TOPIC_ROUTES } from '../../functions/routes.ts';
import type { HandlerName } from './handlers.ts';

/** Lambda's retries of a failed asynchronous invocation before the on-failure destination (0..2). */
export const RULE_RETRY_ATTEMPTS = 2;
/** How long Lambda keeps trying one rule event (an offer request is useless after long). */
export const RULE_MAX_EVENT_AGE = Duration.hours(6);

type RuleHandler = (typeof TOPIC_ROUTES)[number]['handler'];

/**
 * On-failure destinations for the functions that IoT topic rules invoke.
 * "AWS IoT invokes Lambda functions asynchronously" (IoT developer guide,
 * Lambda rule action): the rule's errorAction only covers a failure to
 * invoke; an event the function itself failed on, after Lambda's retries,
 * goes to the function's on-failure destination, here one SQS queue per
 * function (EventInvokeConfig). The message body is Lambda's invocation
 * record with the original event in `requestPayload`; the redrive path is
 * scripts/redrive-rule-failures.sh (docs/reliability.md): both handlers are
 * idempotent (accept by obligation id), so a redriven event is safe.
 */
export class RuleFailureDestinations extends Construct {
  readonly queues: Record<RuleHandler, sqs.Queue>;

  constructor(scope: Construct, id: string, props: { readonly functions: Record<HandlerName, lambda.Function> }) {
    super(scope, id);
    const queues: Partial<Record<RuleHandler, sqs.Queue>> = {};
    for (const { handler } of TOPIC_ROUTES) {
      const queue = new sqs.Queue(this, `${handler}Failures`, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      Validations.of(queue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: `This queue is itself the dead-letter (on-failure) destination of the ${handler} function's rule invocations; its messages are redriven by scripts/redrive-rule-failures.sh, not by another queue.`,
      });
      props.functions[handler].configureAsyncInvoke({
        onFailure: new destinations.SqsDestination(queue),
        retryAttempts: RULE_RETRY_ATTEMPTS,
        maxEventAge: RULE_MAX_EVENT_AGE,
      });
      queues[handler] = queue;
    }
    this.queues = queues as Record<RuleHandler, sqs.Queue>;
  }
}
