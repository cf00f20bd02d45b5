import { Stack } from 'aws-cdk-lib';
import * as iot from 'aws-cdk-lib/aws-iot';
import { Construct } from 'constructs';
import { BASIC_INGEST_PREFIX, DEFAULT_TOPIC_ROOT, ingestRules, OUT_KINDS, type IngestRules } from '../../service/topics.ts';

/** The thing type every device is created with (scripts/provision-fleet.sh uses it). */
export const THING_TYPE_NAME = 'oc-device';
/** The thing type of a stage: thing type names are unique per account and region. `dev` keeps the historical `oc-device`. */
export const thingTypeName = (stage: string): string => (stage === 'dev' ? THING_TYPE_NAME : `oc-${stage}-device`);

// IoT policy variables. They are literal text in the policy document (IoT
// substitutes them per connection); CDK leaves `${iot:...}` alone because it is
// not a token, and formatArn joins it with Fn::Join, not Fn::Sub.
// Thing variables need the MQTT client id to equal the thing name.
const THING = '${iot:Connection.Thing.ThingName}';
const DOMAIN = '${iot:Connection.Thing.Attributes[domain]}';

/**
 * Resource names (after `arn:...:iot:region:account:`) the device policy allows, per action,
 * under a stage's topic root, with the stage's topic rules (default: `ingestRules(root)`).
 *
 * Publish: only by Basic Ingest, one exact topic per rule: `$aws/rules/<the kind's rule>/<root>/
 * <its domain>/<its name>/out/<kind>` (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html:
 * "you can specify permission for individual rules with $aws/rules/rule_name/* in the policy").
 * The FROM filter of a rule is not what selects it under Basic Ingest (service/topics.ts), so
 * each rule is tied to its own kind here; the plain `out/*` grant is gone: nothing subscribes to
 * a device's `out/` topics, and each plain publish is a billed message (issue 11).
 */
export const devicePolicyResources = (root: string = DEFAULT_TOPIC_ROOT, rules: IngestRules = ingestRules(root)) => ({
  connect: `client/${THING}`,
  publish: OUT_KINDS.map((kind) => `topic/${BASIC_INGEST_PREFIX}${rules[kind]}/${root}/${DOMAIN}/${THING}/out/${kind}`),
  subscribe: `topicfilter/${root}/${DOMAIN}/${THING}/in/*`,
  receive: `topic/${root}/${DOMAIN}/${THING}/in/*`,
  // a provider device receives its grants with the consumer's accepted reply, in one publish
  // (service/topics.ts: grantsFor). In a policy `+` is a literal character, `*` any characters
  // (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-variables.html); only the
  // back-end may publish under `in/`.
  subscribeGrants: `topicfilter/${root}/+/+/in/reply/${DOMAIN}/${THING}`,
  receiveGrants: `topic/${root}/*/*/in/reply/${DOMAIN}/${THING}`,
});
/** The default stage's (`oc`). */
export const DEVICE_POLICY_RESOURCES = devicePolicyResources();

/**
 * The thing type and the one IoT policy attached to every device certificate:
 * a device may connect only as its own thing name, publish only its own
 * `oc/{its domain}/{its name}/out/{kind}` to the kind's topic rule by Basic Ingest,
 * and subscribe/receive only under `.../in/` and the accepted replies addressed
 * to it as a provider device.
 */
export class DevicePolicy extends Construct {
  readonly policy: iot.CfnPolicy;
  readonly thingType: iot.CfnThingType;

  constructor(
    scope: Construct,
    id: string,
    props: { thingTypeName?: string; /** default `oc` */ topicRoot?: string; /** default: the root's (ingestRules) */ ingestRules?: IngestRules } = {},
  ) {
    super(scope, id);
    this.thingType = new iot.CfnThingType(this, 'ThingType', {
      thingTypeName: props.thingTypeName ?? THING_TYPE_NAME,
      thingTypeProperties: {
        thingTypeDescription: 'obligation-chain device (SCD or SPD)',
        searchableAttributes: ['domain', 'role'],
      },
    });
    const arn = (resource: string): string => {
      const slash = resource.indexOf('/');
      return Stack.of(this).formatArn({
        service: 'iot',
        resource: resource.slice(0, slash),
        resourceName: resource.slice(slash + 1),
      });
    };
    const r = devicePolicyResources(props.topicRoot, props.ingestRules);
    this.policy = new iot.CfnPolicy(this, 'Policy', {
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: arn(r.connect) },
          { Effect: 'Allow', Action: 'iot:Publish', Resource: r.publish.map(arn) },
          { Effect: 'Allow', Action: 'iot:Subscribe', Resource: [arn(r.subscribe), arn(r.subscribeGrants)] },
          { Effect: 'Allow', Action: 'iot:Receive', Resource: [arn(r.receive), arn(r.receiveGrants)] },
        ],
      },
    });
  }
}
