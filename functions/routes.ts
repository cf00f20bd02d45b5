/**
 * The Lambda functions and the HTTP API routes, in one plain table that both
 * the CDK stacks (lib/constructs/http-api.ts) and the embedded cloud
 * (local/cloud.ts) read, so the local API is the deployed API.
 */
export const HANDLER_NAMES = ['domains', 'enrol', 'offer', 'accept', 'publish', 'watch', 'settle', 'follow', 'query'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** One HTTP route: method, path, handler, and whether only IAM principals (admins) may call it. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: HandlerName;
  readonly admin: boolean;
}

/**
 * Admin routes (hosting a domain, enrolling devices, forcing a settlement,
 * recomputing a reputation from the whole ledger) need
 * SigV4-signed requests (IAM authoriser) on AWS. The device-facing and read
 * routes are open at the gateway because every request body is signed by a
 * device or domain key and verified in the core.
 */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'POST', path: '/domains', handler: 'domains', admin: true },
  { method: 'POST', path: '/domains/{domain}/devices', handler: 'enrol', admin: true },
  // regtest only (refused elsewhere): mints coins, so admins only
  { method: 'POST', path: '/domains/{domain}/faucet', handler: 'domains', admin: true },
  { method: 'POST', path: '/domains/{domain}/devices/{device}/revocation', handler: 'enrol', admin: true },
  // signed with the device's own key (it has no IAM identity), verified against its enrolled key
  { method: 'POST', path: '/domains/{domain}/devices/{device}/renewal', handler: 'enrol', admin: false },
  { method: 'POST', path: '/offers', handler: 'offer', admin: false },
  { method: 'POST', path: '/obligations', handler: 'accept', admin: false },
  { method: 'POST', path: '/domains/{domain}/settlements', handler: 'settle', admin: true },
  { method: 'GET', path: '/domains/{domain}/reputation', handler: 'query', admin: false },
  // recomputes from the whole ledger: admin only, so nobody can make every read scan the streams
  { method: 'GET', path: '/domains/{domain}/reputation/verify', handler: 'query', admin: true },
  { method: 'GET', path: '/domains/{domain}/obligations', handler: 'query', admin: false },
  { method: 'GET', path: '/domains/{domain}/devices/{device}/head', handler: 'query', admin: false },
  { method: 'GET', path: '/domains', handler: 'query', admin: false },
  { method: 'GET', path: '/domains/{domain}', handler: 'query', admin: false },
  { method: 'GET', path: '/health', handler: 'query', admin: false },
];

/** IoT topic rules: devices' `oc/+/+/out/<kind>` messages → the handler (AWS: CfnTopicRule with a Lambda action). */
export const TOPIC_ROUTES: ReadonlyArray<{ readonly kind: 'request' | 'obligation'; readonly handler: 'offer' | 'accept' }> = [
  { kind: 'request', handler: 'offer' },
  { kind: 'obligation', handler: 'accept' },
];
