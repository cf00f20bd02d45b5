/** Boundary schemas: they validate each request and give its static type. */
import { z } from 'zod';
import { MIN_PRICE_SATS } from '../../service/domains.ts';

export const Name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a name of 1-64 letters, digits, _ or -');
export const Service = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a service name');
const Sats = z.number().int().positive().max(2_100_000_000_000_000);

export const PublicKeySchema = z.object({ alg: z.enum(['ed25519', 'p256']), spki: z.string().min(16).max(512) });

export const DomainParams = z.object({ domain: Name });
export const DeviceParams = z.object({ domain: Name, device: Name });

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

/** What a consumer device signs to ask for an offer over HTTP (service/offers.ts: OfferRequestBody). */
export const OfferRequestBodySchema = z.object({
  requestId: z.string().min(1).max(64),
  consumerDomain: Name,
  consumerDevice: Name,
  providerDomain: Name,
  providerDevice: Name,
  service: Service,
  issuedAt: z.number().int().positive(),
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
});

export const ObligationMessage = z.object({
  requestId: z.string().max(64).optional(),
  obligation: z.unknown(),
});

export const ObligationBodySchema = z.object({ obligation: z.unknown() });

export const SettleBody = z.object({ maxOutputs: z.number().int().min(1).max(1000).optional() }).default({});
