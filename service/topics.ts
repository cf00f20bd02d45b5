/**
 * MQTT topics. A device publishes under `{root}/{domain}/{thing}/out/{kind}` and
 * receives under `{root}/{domain}/{thing}/in/{kind}`; the IoT policy (and the
 * embedded broker) allow nothing else. `oc` is the topic root of the default
 * stage; every other stage has its own (`topicRoot`), so two stages in one
 * account and region (IoT Core's topic space is the account's, per region) never
 * invoke each other's topic rules or reach each other's devices.
 */
export type OutKind = 'request' | 'obligation' | 'delivered';
export type InKind = 'offer' | 'reply' | 'grant';

/** The default stage's topic root (the embedded cloud's, and `-c stage=dev`'s). */
export const DEFAULT_TOPIC_ROOT = 'oc';
/** A topic root: one topic level of letters, digits, '-' and '_' (no wildcard, no '/', no '$'). */
export const TOPIC_ROOT = /^[A-Za-z0-9_-]{1,32}$/;
/** The topic root of a deployment stage: `dev` keeps `oc`, any other is `oc-<stage>`. */
export const topicRoot = (stage: string): string => (stage === 'dev' ? DEFAULT_TOPIC_ROOT : `oc-${stage}`);

/** The topics under `root` (one topic level: see TOPIC_ROOT). */
export function topicsUnder(root: string) {
  if (!TOPIC_ROOT.test(root)) throw new Error(`topic root ${JSON.stringify(root)} must be one topic level of letters, digits, '-' or '_'`);
  return {
    fromDevice: (domain: string, thing: string, kind: OutKind) => `${root}/${domain}/${thing}/out/${kind}`,
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
