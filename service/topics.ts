/**
 * MQTT topics. A device publishes under `oc/{domain}/{thing}/out/{kind}` and
 * receives under `oc/{domain}/{thing}/in/{kind}`; the IoT policy (and the
 * embedded broker) allow nothing else.
 */
export type OutKind = 'request' | 'obligation' | 'delivered';
export type InKind = 'offer' | 'reply' | 'grant';

export const topics = {
  fromDevice: (domain: string, thing: string, kind: OutKind) => `oc/${domain}/${thing}/out/${kind}`,
  toDevice: (domain: string, thing: string, kind: InKind) => `oc/${domain}/${thing}/in/${kind}`,
  inbox: (domain: string, thing: string) => `oc/${domain}/${thing}/in/#`,
  /**
   * A first acceptance's reply and grant in ONE publish (issue 11: IoT Core bills each
   * publish): under the consumer's inbox, so the consumer receives it, and named after the
   * provider device, which subscribes to `grantsFor` (its IoT policy allows that one filter).
   */
  acceptedReply: (consumerDomain: string, consumerThing: string, providerDomain: string, providerThing: string) =>
    `oc/${consumerDomain}/${consumerThing}/in/reply/${providerDomain}/${providerThing}`,
  /** The provider device's subscription to the accepted replies that grant it a service. */
  grantsFor: (providerDomain: string, providerThing: string) => `oc/+/+/in/reply/${providerDomain}/${providerThing}`,
  /** Topic-rule filters (AWS IoT SQL FROM clauses and the embedded router). */
  rule: (kind: OutKind) => `oc/+/+/out/${kind}`,
} as const;
