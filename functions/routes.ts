/**
 * The Lambda functions and the HTTP API routes, in one plain table that both
 * the CDK stacks (lib/constructs/http-api.ts) and the embedded cloud
 * (local/cloud.ts) read, so the local API is the deployed API.
 */
export const HANDLER_NAMES = ['domains', 'enrol', 'offer', 'accept', 'publish', 'watch', 'settle', 'follow', 'query', 'rebalance'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** One HTTP route: method, path, handler, and whether only IAM principals (admins) may call it. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: HandlerName;
  readonly admin: boolean;
  /** Why a route without the IAM authoriser may be open at the gateway (the cdk-nag APIG4 reason). */
  readonly open?: string;
}

const SIGNED_OFFER =
  'Device-facing: the offer request must be signed by the consumer device\'s enrolled key and carry the credential its domain issued (verified in service/offers.ts, forged requests are refused with F01/F02/F08).';
const SIGNED_OBLIGATION =
  'Device-facing: the obligation is signed by the consumer device and carries its domain-issued credential, both verified in core/policy.ts before anything is stored.';
const SIGNED_RENEWAL =
  'Device-facing: the renewal request is signed by the device key its domain enrolled, verified in the handler against that key (and its revocation) before a new credential is issued.';
const PUBLIC_READ =
  'Public read of what the shared ledger publishes anyway (records, reputation, obligations, chain heads, health); the query function holds no table write, no signing key and only the read-only bitcoind user.';

/**
 * Admin routes (hosting a domain, rotating its key, enrolling and revoking devices, the regtest
 * faucet, forcing a settlement, recomputing a reputation from the whole
 * ledger, the chain's membership details, granting another hub) need SigV4-signed requests (IAM authoriser) on AWS. The other routes
 * say why they may be open: a device signature checked in the handler, or a
 * public read.
 */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'POST', path: '/domains', handler: 'domains', admin: true },
  { method: 'POST', path: '/domains/{domain}/devices', handler: 'enrol', admin: true },
  // regtest only (refused elsewhere): mints coins, so admins only
  { method: 'POST', path: '/domains/{domain}/faucet', handler: 'domains', admin: true },
  { method: 'POST', path: '/domains/{domain}/devices/{device}/revocation', handler: 'enrol', admin: true },
  // creates the domain's next key (KMS on AWS) and publishes the rotation signed by the current one
  { method: 'POST', path: '/domains/{domain}/key-rotation', handler: 'domains', admin: true },
  // signed with the device's own key (it has no IAM identity), verified against its enrolled key
  { method: 'POST', path: '/domains/{domain}/devices/{device}/renewal', handler: 'enrol', admin: false, open: SIGNED_RENEWAL },
  { method: 'POST', path: '/offers', handler: 'offer', admin: false, open: SIGNED_OFFER },
  { method: 'POST', path: '/obligations', handler: 'accept', admin: false, open: SIGNED_OBLIGATION },
  { method: 'POST', path: '/domains/{domain}/settlements', handler: 'settle', admin: true },
  { method: 'GET', path: '/domains/{domain}/reputation', handler: 'query', admin: false, open: PUBLIC_READ },
  // recomputes from the whole ledger: admin only, so nobody can make every read scan the streams
  { method: 'GET', path: '/domains/{domain}/reputation/verify', handler: 'query', admin: true },
  { method: 'GET', path: '/domains/{domain}/obligations', handler: 'query', admin: false, open: PUBLIC_READ },
  { method: 'GET', path: '/domains/{domain}/devices/{device}/head', handler: 'query', admin: false, open: PUBLIC_READ },
  { method: 'GET', path: '/domains', handler: 'query', admin: false, open: PUBLIC_READ },
  { method: 'GET', path: '/domains/{domain}', handler: 'query', admin: false, open: PUBLIC_READ },
  { method: 'GET', path: '/health', handler: 'query', admin: false, open: PUBLIC_READ },
  // the node's address, its permissions and the chain's parameters (service/chain.ts): what another organisation needs to join
  { method: 'GET', path: '/chain', handler: 'query', admin: true },
  // grant or revoke another hub's node on the chain (grant.sh without ECS Exec): the chain's admin node only
  { method: 'POST', path: '/chain/members', handler: 'domains', admin: true },
];

/**
 * The API's `$default` route: every request no route above matches (an unknown path, a wrong method, a
 * path whose dot segments a client resolved) gets a typed 404 from the query function, like every other
 * refusal, instead of API Gateway's bare `{"message":"Not Found"}`. It reads nothing and writes nothing.
 */
export const DEFAULT_ROUTE = {
  routeKey: '$default',
  handler: 'query',
  open: 'Answers a request no route matches with a typed 404 (F09_NOT_FOUND) naming the method and path; it reads and writes nothing.',
} as const satisfies { routeKey: string; handler: HandlerName; open: string };

/** IoT topic rules: devices' `oc/+/+/out/<kind>` messages → the handler (AWS: CfnTopicRule with a Lambda action). */
export const TOPIC_ROUTES: ReadonlyArray<{ readonly kind: 'request' | 'obligation'; readonly handler: 'offer' | 'accept' }> = [
  { kind: 'request', handler: 'offer' },
  { kind: 'obligation', handler: 'accept' },
];
