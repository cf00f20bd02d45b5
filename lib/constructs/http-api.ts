import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_ROUTE, ROUTES } from '../../functions/routes.ts';
import type { HandlerName } from './handlers.ts';

export { DEFAULT_ROUTE, ROUTES, type RouteSpec } from '../../functions/routes.ts';

export interface HttpApiProps {
  readonly functions: Record<HandlerName, lambda.IFunction>;
  /** Steady-state requests per second for the whole stage. */
  readonly rateLimit?: number;
  readonly burstLimit?: number;
}

/** The HTTP API (payload v2) with access logs and stage throttling. */
export class ObligationHttpApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;

  constructor(scope: Construct, id: string, props: HttpApiProps) {
    super(scope, id);
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'obligation-chain back-end',
      createDefaultStage: false,
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 100, burstLimit: props.burstLimit ?? 200 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        // Only $context variables that HTTP APIs support.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    const integrations = new Map<HandlerName, HttpLambdaIntegration>();
    const integrationOf = (handler: HandlerName): HttpLambdaIntegration => {
      let integration = integrations.get(handler);
      if (integration === undefined) {
        integration = new HttpLambdaIntegration(`${handler}Integration`, props.functions[handler]);
        integrations.set(handler, integration);
      }
      return integration;
    };
    const iam = new HttpIamAuthorizer();
    for (const route of ROUTES) {
      const integration = integrationOf(route.handler);
      const [created] = this.api.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration,
        ...(route.admin ? { authorizer: iam } : {}),
      });
      if (!route.admin && created !== undefined) {
        if (!route.open) throw new Error(`${route.method} ${route.path} is neither admin nor says why it may be open`);
        Validations.of(created).acknowledge({ id: 'AwsSolutions-APIG4', reason: `${route.method} ${route.path}: ${route.open}` });
      }
    }
    // every request no route matches: a typed 404 from the query function, not API Gateway's bare one
    const fallback = new apigwv2.HttpRoute(this, 'DefaultRoute', {
      httpApi: this.api,
      routeKey: apigwv2.HttpRouteKey.DEFAULT,
      integration: integrationOf(DEFAULT_ROUTE.handler),
    });
    Validations.of(fallback).acknowledge({ id: 'AwsSolutions-APIG4', reason: `${DEFAULT_ROUTE.routeKey}: ${DEFAULT_ROUTE.open}` });
  }
}
