/**
 * SPB: sign an offer, for one of its enrolled devices, answering a consumer device's request; remember it for acceptance.
 *
 * Two kinds (issue 11: fewer IoT messages per purchase):
 * - a single-use offer (the default): good for one obligation, for OFFER_TTL_MS;
 * - a standing offer, when the device asks for one (`standing: true`) and the hub allows
 *   them (STANDING_OFFER_PURCHASES > 0): the same signed price for repeated purchases by
 *   that one consumer device, until `expiresAt` (STANDING_OFFER_TTL_MS, never past the
 *   certificate of the hub key that signs it) and while the amounts accepted under it add
 *   up to at most `cap` (price × STANDING_OFFER_PURCHASES). Each obligation stays unique and
 *   replay-proof: its own id, the next link of the device's chain (seq, prev), and the
 *   acceptance transaction adds its amount to the offer's `spent` only while spent + amount
 *   ≤ cap (adapters/store/dynamo.ts: commitStandingAcceptance) — past it, F20_OFFER_EXHAUSTED.
 *   A device holding one sends only its obligations: no request, no offer per purchase.
 */
import { BadSignatureError, ExpiredError, ForbiddenError, MalformedError, NotFoundError, RevokedError, UnknownDomainError } from '../core/errors.ts';
import { verifySigned } from '../core/keys.ts';
import { createOffer, newOfferId, parseCredential, verifyCredential } from '../core/records.ts';
import type { Offer, Signed } from '../core/types.ts';
import type { Deps } from './deps.ts';
import { checkPayTo } from './addresses.ts';
import { hubKeyOf } from './keys.ts';
import { topicsUnder } from './topics.ts';

export interface OfferRequest {
  requestId: string;
  consumerDomain: string;
  consumerDevice: string;
  providerDomain: string;
  providerDevice: string;
  service: string;
  /** Ask for a standing offer. */
  standing?: true;
}

/** What a consumer device signs to ask for an offer over HTTP. */
export interface OfferRequestBody extends OfferRequest {
  /** When the device signed it (epoch ms); accepted within the offer TTL either way. */
  issuedAt: number;
}

/**
 * An HTTP offer request is only as good as its signature: over MQTT the broker
 * authenticates the thing and the consumer's names come from its topic; over
 * HTTP the consumer device signs the request with its enrolled key and sends
 * the credential its domain issued for that key. The credential is checked
 * against the consumer domain's key from its record on the ledger (as at
 * acceptance), the signature against the credential's device key, and the
 * request must be fresh (within the offer TTL), so an old request cannot be
 * replayed for new offers indefinitely. Throws a final ObligationError.
 */
export async function verifyOfferRequest(deps: Deps, signed: Signed<OfferRequestBody>, rawCredential: unknown): Promise<OfferRequest> {
  const r = signed.body;
  const credential = parseCredential(rawCredential);
  const device = `${r.consumerDomain}/${r.consumerDevice}`;
  if (credential.body.domain !== r.consumerDomain || credential.body.deviceId !== r.consumerDevice || signed.by !== device) {
    throw new ForbiddenError(`the offer request for ${device} comes with another device's credential or signer`, {
      credential: `${credential.body.domain}/${credential.body.deviceId}`,
      by: signed.by,
    });
  }
  const key = await deps.directory.currentKey(r.consumerDomain, credential);
  if (!key) throw new UnknownDomainError(`no record of consumer domain ${r.consumerDomain} on the ledger`, { domain: r.consumerDomain });
  const now = deps.now();
  verifyCredential(credential, key, now);
  // a revoked device key gets no offer either (its obligations would be refused at acceptance)
  // eventually consistent (half the read units): see DynamoStore.getRevocation; acceptance checks it again
  if (await deps.store.getRevocation(r.consumerDomain, r.consumerDevice, credential.body.deviceKey, false)) {
    throw new RevokedError(`the key of ${device} was revoked by ${r.consumerDomain}`, { device });
  }
  if (!verifySigned(signed, credential.body.deviceKey)) {
    throw new BadSignatureError(`the offer request is not signed by ${device}'s enrolled key`, { device });
  }
  if (Math.abs(now - r.issuedAt) > deps.config.offerTtlMs) {
    throw new ExpiredError(`the offer request was signed at ${new Date(r.issuedAt).toISOString()}, outside the ${deps.config.offerTtlMs} ms window`, {
      issuedAt: r.issuedAt,
      now,
    });
  }
  const { issuedAt: _issuedAt, ...request } = r;
  return request;
}

export async function makeOffer(deps: Deps, req: OfferRequest, reply: boolean): Promise<Signed<Offer>> {
  const provider = await deps.store.getHostedDomain(req.providerDomain);
  if (!provider || provider.role === 'consumer' || !provider.payTo) {
    throw new NotFoundError(`provider domain ${req.providerDomain} is not hosted here`, { domain: req.providerDomain });
  }
  // eventually consistent: the provider device's enrolment is written once and read by every offer
  if (!(await deps.store.getDevice(provider.domain, req.providerDevice, false))) {
    throw new NotFoundError(`device ${req.providerDevice} is not enrolled in ${provider.domain}`, {
      domain: provider.domain,
      device: req.providerDevice,
    });
  }
  checkPayTo(deps, provider.payTo);
  const price = provider.prices[req.service];
  if (price === undefined) {
    throw new MalformedError(`provider ${req.providerDomain} does not sell ${req.service}`, {
      services: Object.keys(provider.prices),
    });
  }
  // signed in process with the hub key the domain key certified: no KMS call per offer
  const hubKey = await hubKeyOf(deps, provider);
  const now = deps.now();
  const { ttlMs, purchases } = deps.config.standingOffer;
  const standing = req.standing === true && purchases > 0;
  // a standing offer ends before the certificate of the hub key that signs it (verifyOffer checks it at expiresAt)
  const expiresAt = standing ? Math.min(now + ttlMs, hubKey.certificate.body.notAfter) : now + deps.config.offerTtlMs;
  const offer = createOffer(
    {
      offerId: newOfferId(),
      providerDomain: provider.domain,
      providerDevice: req.providerDevice,
      service: req.service,
      price,
      payTo: provider.payTo,
      consumer: `${req.consumerDomain}/${req.consumerDevice}`,
      expiresAt,
      ...(standing ? { cap: price * purchases } : {}),
      certificate: hubKey.certificate,
    },
    hubKey.privateKey,
  );
  await deps.store.putOffer(offer);
  if (reply) {
    await deps.notifier.publish(topicsUnder(deps.config.topicRoot).toDevice(req.consumerDomain, req.consumerDevice, 'offer'), {
      requestId: req.requestId,
      offer: offer as never,
    });
  }
  return offer;
}
