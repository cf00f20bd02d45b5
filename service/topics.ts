/**
 * MQTT topics. A device's messages are named `{root}/{domain}/{thing}/out/{kind}`
 * and it receives under `{root}/{domain}/{thing}/in/{kind}`; the IoT policy (and the
 * embedded broker) allow nothing else. `oc` is the topic root of the default
 * stage; every other stage has its own (`topicRoot`), so two stages in one
 * account and region (IoT Core's topic space is the account's, per region) never
 * invoke each other's topic rules or reach each other's devices.
 *
 * A device sends its `out/` messages through AWS IoT **Basic Ingest**: it publishes
 * `$aws/rules/{rule}/{root}/{domain}/{thing}/out/{kind}` (`ingest`), which goes straight
 * to the named topic rule, past the publish/subscribe broker, "without incurring
 * messaging costs" (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html;
 * the rule and its action are still billed as rules). From that page:
 * - the topic is `$aws/rules/{rule_name}` plus "the message topic that you'd use to invoke the rule";
 * - "The initial prefix of a Basic Ingest topic ($aws/rules/rule_name) isn't available to the
 *   topic(Decimal) function", so the rule's `topic(2)`/`topic(3)`/`topic()` see
 *   `{root}/{domain}/{thing}/out/{kind}`, exactly as for a plain publish: the handlers' event
 *   is the same (`fromDevice`);
 * - devices and rules "can't subscribe to Basic Ingest reserved topics": nobody receives them;
 * - a device needs `iot:Publish` on `$aws/rules/{rule_name}/...` (device-policy.ts);
 * - the FROM clause is "optional for rules that are only activated using the Basic Ingest
 *   feature" (iot-sql-reference.html), and third-party notes (not AWS's) report a rule firing
 *   on a Basic Ingest topic its FROM does not match: the rule NAME selects the rule, so the
 *   device policy (one exact topic per rule) is what confines a device to its own domain,
 *   thing and kind, and the embedded broker checks the same (local/broker.ts).
 */
/** What a device sends: each kind has its own topic rule (functions/routes.ts: TOPIC_ROUTES). */
export type OutKind = 'request' | 'obligation';
export type InKind = 'offer' | 'reply' | 'grant';
export const OUT_KINDS: readonly OutKind[] = ['request', 'obligation'];

/** The names of the topic rules a device sends its messages to by Basic Ingest, per kind. */
export type IngestRules = Readonly<Record<OutKind, string>>;
/**
 * AWS IoT rule names: `^[a-zA-Z0-9_]+$`, 1-128 characters (AWS::IoT::TopicRule RuleName,
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iot-topicrule.html):
 * no '-', no '/', so a name is one topic level.
 */
export const RULE_NAME = /^[a-zA-Z0-9_]{1,128}$/;
/** The reserved topic prefix of Basic Ingest. */
export const BASIC_INGEST_PREFIX = '$aws/rules/';

/** The default stage's topic root (the embedded cloud's, and `-c stage=dev`'s). */
export const DEFAULT_TOPIC_ROOT = 'oc';
/** A topic root: one topic level of letters, digits, '-' and '_' (no wildcard, no '/', no '$'). */
export const TOPIC_ROOT = /^[A-Za-z0-9_-]{1,32}$/;
/** The topic root of a deployment stage: `dev` keeps `oc`, any other is `oc-<stage>`. */
export const topicRoot = (stage: string): string => (stage === 'dev' ? DEFAULT_TOPIC_ROOT : `oc-${stage}`);

/**
 * The name of a stage's topic rule for one kind: explicit and derived from the stage's topic
 * root, as devices must name the rule in the topic before anything is deployed (Basic Ingest),
 * and two stages in one account and region must not collide (rule names are the account's, per
 * region). '-' becomes '_' (rule names allow neither '-' nor '/'): `oc` → `oc_request`,
 * `oc-demo` → `oc_demo_request`. One-to-one for the roots of stages (`oc`, `oc-<stage>` with
 * stages of [a-z0-9-], lib/app.ts), which hold no '_'.
 */
export const ingestRuleName = (root: string, kind: OutKind): string => {
  if (!TOPIC_ROOT.test(root)) throw new Error(`topic root ${JSON.stringify(root)} must be one topic level of letters, digits, '-' or '_'`);
  return `${root.replaceAll('-', '_')}_${kind}`;
};
/** A stage's rule names (the IoT stack's `IngestRules` output). */
export const ingestRules = (root: string): IngestRules => ({ request: ingestRuleName(root, 'request'), obligation: ingestRuleName(root, 'obligation') });

/** The Basic Ingest form of `topic`: sent to the rule named `rule` only. */
export function basicIngestTopic(rule: string, topic: string): string {
  if (!RULE_NAME.test(rule)) throw new Error(`rule name ${JSON.stringify(rule)}: letters, digits and '_' only, at most 128`);
  return `${BASIC_INGEST_PREFIX}${rule}/${topic}`;
}

/**
 * A Basic Ingest topic split into the rule it names and the topic the rule sees (what
 * `topic()` returns: without the `$aws/rules/{rule}` prefix); undefined for any other topic.
 */
export function parseBasicIngest(topic: string): { rule: string; topic: string } | undefined {
  if (!topic.startsWith(BASIC_INGEST_PREFIX)) return undefined;
  const rest = topic.slice(BASIC_INGEST_PREFIX.length);
  const slash = rest.indexOf('/');
  const rule = slash < 0 ? rest : rest.slice(0, slash);
  return { rule, topic: slash < 0 ? '' : rest.slice(slash + 1) };
}

/** The topics under `root` (one topic level: see TOPIC_ROOT); devices send to `rules` (default: the stage's, ingestRules). */
export function topicsUnder(root: string, rules: IngestRules = ingestRules(root)) {
  if (!TOPIC_ROOT.test(root)) throw new Error(`topic root ${JSON.stringify(root)} must be one topic level of letters, digits, '-' or '_'`);
  const fromDevice = (domain: string, thing: string, kind: OutKind) => `${root}/${domain}/${thing}/out/${kind}`;
  return {
    /** A device's message as its topic rule sees it (`topic()`, also for a Basic Ingest publish). */
    fromDevice,
    /** What a device publishes: `fromDevice` by Basic Ingest to the kind's topic rule. */
    ingest: (domain: string, thing: string, kind: OutKind) => basicIngestTopic(rules[kind], fromDevice(domain, thing, kind)),
    toDevice: (domain: string, thing: string, kind: InKind) => `${root}/${domain}/${thing}/in/${kind}`,
    inbox: (domain: string, thing: string) => `${root}/${domain}/${thing}/in/#`,
    /**
     * A first acceptance's reply and grant in ONE publish (issue 11: IoT Core bills each
     * publish): under the consumer's inbox, so the consumer receives it, and named after the
     * provider device, which subscribes to `grantsFor` (its IoT policy allows that one filter).
     */
    acceptedReply: (consumerDomain: string, consumerThing: string, providerDomain: string, providerThing: string) =>
      `${root}/${consumerDomain}/${consumerThing}/in/reply/${providerDomain}/${providerThing}`,
    /** The provider device's subscription to the accepted replies that grant it a service. */
    grantsFor: (providerDomain: string, providerThing: string) => `${root}/+/+/in/reply/${providerDomain}/${providerThing}`,
    /** Topic-rule filters (AWS IoT SQL FROM clauses and the embedded router). */
    rule: (kind: OutKind) => `${root}/+/+/out/${kind}`,
  } as const;
}

export const topics = topicsUnder(DEFAULT_TOPIC_ROOT);
