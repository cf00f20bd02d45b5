/**
 * SPB offer. Two entry points, one service: the IoT rule on
 * `oc/+/+/out/request` (answer published to the device's `in/offer`; the
 * broker authenticated the thing), and POST /offers over HTTP (answer in the
 * response), where the request must be signed by the consumer device's
 * enrolled key (service/offers.ts: verifyOfferRequest).
 */
import { makeOffer, verifyOfferRequest } from '../service/offers.ts';
import { byEvent, httpRoute, parse, ruleHandler } from './shared/middleware.ts';
import { logger } from './shared/observability.ts';
import { OfferBody, OfferRequestMessage } from './shared/schemas.ts';

const rule = ruleHandler('offer', async (event, deps) => {
  const msg = parse(OfferRequestMessage, event, 'request');
  const offer = await makeOffer(deps, { ...msg, consumerDomain: event.domain, consumerDevice: event.thing }, true);
  return { offerId: offer.body.offerId };
});

const http = httpRoute({ body: OfferBody }, async ({ body, deps }) => {
  const request = await verifyOfferRequest(deps, body.request, body.credential);
  logger.appendKeys({ domain: request.consumerDomain, thing: request.consumerDevice });
  const offer = await makeOffer(deps, request, false);
  return { status: 201, body: { offer } };
});

export const handler = byEvent({ http, other: rule });
