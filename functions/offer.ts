/**
 * SPB offer. Two entry points, one service: the IoT rule on
 * `oc/+/+/out/request` (answer published to the device's `in/offer`), and
 * POST /offers over HTTP (answer in the response).
 */
import { UnknownDomainError } from '../core/errors.ts';
import { makeOffer } from '../service/offers.ts';
import { byEvent, httpRoute, parse, ruleHandler } from './shared/middleware.ts';
import { OfferBody, OfferRequestMessage } from './shared/schemas.ts';

const rule = ruleHandler('offer', async (event, deps) => {
  const msg = parse(OfferRequestMessage, event, 'request');
  const offer = await makeOffer(deps, { ...msg, consumerDomain: event.domain, consumerDevice: event.thing }, true);
  return { offerId: offer.body.offerId };
});

const http = httpRoute({ body: OfferBody }, async ({ body, deps }) => {
  // an offer to a domain nobody knows could never be paid with a valid credential: 404, and no offer stored
  if (!(await deps.directory.get(body.consumerDomain))) {
    throw new UnknownDomainError(`unknown domain ${body.consumerDomain}: no record of it here or on the ledger`, { domain: body.consumerDomain });
  }
  const offer = await makeOffer(deps, body, false);
  return { status: 201, body: { offer } };
});

export const handler = byEvent({ http, other: rule });
