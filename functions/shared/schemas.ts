/** Boundary schemas: they validate each request and give its static type. */
import { z } from 'zod';
import { MIN_PRICE_SATS } from '../../service/domains.ts';

export const Name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a name of 1-64 letters, digits, _ or -');
export const Service = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a service name');
const Sats = z.number().int().positive().max(2_100_000_000_000_000);

export const PublicKeySchema = z.object({ alg: z.enum(['ed25519', 'p256']), spki: z.string().min(16).max(512) });

export const DomainParams = z.object({ domain: Name });
export const DeviceParams = z.object({ domain: Name, device: Name });

/** POST /domains/{domain}/faucet: how many blocks to mine to the domain (regtest; each coinbase is 50 BTC or less). */
export const FaucetBody = z.object({ blocks: z.number().int().min(1).max(50).optional() });

/** POST /chain/members: another hub's MultiChain address (base58: no 0, O, I or l, as grant.sh checks it) and what to do. */
export const ChainMemberBody = z.object({
  address: z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{20,64}$/, 'a MultiChain address (base58)'),
  action: z.enum(['grant', 'revoke']),
});

export const RegisterDomainBody = z.object({
  domain: Name,
  role: z.enum(['consumer', 'provider', 'both']),
  threshold: z.number().min(0).max(1).optional(),
  alg: z.enum(['ed25519', 'p256']).optional(),
  operates: z.array(Name).max(64).optional(),
  prices: z.record(Service, Sats.min(MIN_PRICE_SATS, `prices must be at least ${MIN_PRICE_SATS} sats (dust limit)`)).optional(),
  autoSettle: z.boolean().optional(),
  /** Providers: longest payment term accepted (ms), default 7 days. */
  maxTermMs: z.number().int().positive().optional(),
  /** Providers: shortest payment term accepted (ms); must exceed the settlement interval. Default MIN_TERM_MS. */
  minTermMs: z.number().int().positive().optional(),
});

export const EnrolBody = z.object({
  deviceId: Name,
  deviceKey: PublicKeySchema,
  creditLimit: z.number().int().min(0).max(2_100_000_000_000_000),
  validForMs: z.number().int().positive().optional(),
});

export const RevocationBody = z
  .object({
    /** The key to revoke; the device's enrolled key when absent. */
    deviceKey: PublicKeySchema.optional(),
    reason: z.string().regex(/^[\x20-\x7e]{0,200}$/, 'printable ASCII, at most 200 characters').optional(),
  })
  .default({});

/** A renewal request signed with the device key (core/records.ts parseRenewalRequest checks its shape). */
export const RenewalBody = z.object({ request: z.unknown() });

/** What a consumer device signs to ask for an offer over HTTP (service/offers.ts: OfferRequestBody). */
export const OfferRequestBodySchema = z.object({
  requestId: z.string().min(1).max(64),
  consumerDomain: Name,
  consumerDevice: Name,
  providerDomain: Name,
  providerDevice: Name,
  service: Service,
  issuedAt: z.number().int().positive(),
  /** Ask for a standing offer (service/offers.ts). */
  standing: z.literal(true).optional(),
});

/**
 * POST /offers: the request signed by the consumer device's key
 * (`by` = `domain/device`), with the credential its domain issued for that key.
 */
export const OfferBody = z.object({
  request: z.object({ body: OfferRequestBodySchema, sig: z.string().min(1).max(256), by: z.string().min(3).max(129) }),
  credential: z.unknown(),
});

/** Over MQTT the consumer's names come from the topic (the broker vouches for them), not the payload. */
export const OfferRequestMessage = z.object({
  requestId: z.string().min(1).max(64),
  providerDomain: Name,
  providerDevice: Name,
  service: Service,
  /** Ask for a standing offer (service/offers.ts): one offer for many purchases. */
  standing: z.literal(true).optional(),
});

export const ObligationMessage = z.object({
  requestId: z.string().max(64).optional(),
  obligation: z.unknown(),
});

export const ObligationBodySchema = z.object({ obligation: z.unknown() });

export const SettleBody = z.object({ maxOutputs: z.number().int().min(1).max(1000).optional() }).default({});

/** A key rotation takes no parameters: `{}` or no body (a body that is not JSON is refused like anywhere else). */
export const KeyRotationBody = z.object({}).default({});

// ---- query strings ------------------------------------------------------------
// Every route's query is a strict object: an unknown or misspelt parameter is a
// 400 that names it, never silently ignored.

/** Routes that take no query parameters. */
export const NoQuery = z.strictObject({});

/** Page size of list routes: default and largest. */
export const PAGE = { default: 50, max: 500 } as const;

const Limit = z
  .string()
  .regex(/^[0-9]{1,4}$/, `an integer from 1 to ${PAGE.max}`)
  .transform(Number)
  .pipe(z.number().int().min(1, `an integer from 1 to ${PAGE.max}`).max(PAGE.max, `an integer from 1 to ${PAGE.max}`));

/**
 * The opaque `next` token of a list page: base64url of `{"after": position}`.
 * `position` must have the shape the listing uses (checked by `shape`), so a
 * forged or corrupted token is a 400, never a store error.
 */
export const pageToken = {
  encode: (after: string): string => Buffer.from(JSON.stringify({ after }), 'utf8').toString('base64url'),
  schema: (shape: RegExp) =>
    z
      .string()
      .max(512)
      .transform((token, ctx) => {
        let after: unknown;
        try {
          after = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown }).after;
        } catch {
          after = undefined;
        }
        if (typeof after !== 'string' || !shape.test(after)) {
          ctx.addIssue({ code: 'custom', message: 'not a token this listing gave out (pass `next` from the previous page as is)' });
          return z.NEVER;
        }
        return after;
      }),
};

export const OBLIGATION_STATUSES = ['accepted', 'settling', 'fulfilled', 'defaulted'] as const;

/** GET /domains/{domain}/obligations */
export const ObligationsQuery = z.strictObject({
  side: z.enum(['consumer', 'provider']).default('consumer'),
  status: z.enum(OBLIGATION_STATUSES).optional(),
  order: z.enum(['oldest', 'newest']).default('oldest'),
  limit: Limit.default(PAGE.default),
  next: pageToken.schema(/^[0-9]{15}#[A-Za-z0-9_-]{1,128}$/).optional(),
});

/** GET /domains */
export const DomainsQuery = z.strictObject({
  limit: Limit.default(PAGE.default),
  next: pageToken.schema(/^[A-Za-z0-9_-]{1,64}$/).optional(),
});

/** GET /domains/{domain}/reputation: `verify` is recognised only to point at the admin route. */
export const ReputationQuery = z.strictObject({ verify: z.string().max(64).optional() });
