import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';

/**
 * The account's IoT Core data endpoint (ATS), looked up at deploy time with
 * `iot:DescribeEndpoint` (endpointType `iot:Data-ATS`, the endpoint AWS
 * recommends; the response field is `endpointAddress`, a bare host name).
 */
export class IotDataEndpoint extends Construct {
  /** The bare host, e.g. `abc123-ats.iot.eu-west-1.amazonaws.com`. */
  readonly host: string;
  /** `https://{host}`, what the IoT data-plane client takes as `endpoint`. */
  readonly url: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const call: cr.AwsSdkCall = {
      service: 'Iot',
      action: 'describeEndpoint',
      parameters: { endpointType: 'iot:Data-ATS' },
      physicalResourceId: cr.PhysicalResourceId.of('iot-data-ats-endpoint'),
    };
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_WEEK,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // An explicit role with inline statements instead of the managed
    // AWSLambdaBasicExecutionRole: logs only to its own group.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Looks up the IoT data endpoint at deploy time',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    // DescribeEndpoint has no resource-level permissions: the resource must be "*".
    role.addToPolicy(new iam.PolicyStatement({ actions: ['iot:DescribeEndpoint'], resources: ['*'] }));
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'iot:DescribeEndpoint does not support resource-level permissions; the role may only read the account endpoint host.',
    });
    const lookup = new cr.AwsCustomResource(this, 'Lookup', {
      onCreate: call,
      onUpdate: call,
      role,
      installLatestAwsSdk: false,
      logGroup,
    });
    this.host = lookup.getResponseField('endpointAddress');
    this.url = `https://${this.host}`;
  }
}
