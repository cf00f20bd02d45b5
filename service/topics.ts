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
  /** Topic-rule filters (AWS IoT SQL FROM clauses and the embedded router). */
  rule: (kind: OutKind) => `oc/+/+/out/${kind}`,
} as const;
