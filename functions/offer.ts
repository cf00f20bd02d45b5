/**
 * SPB offer. Two entry points, one service: the IoT rule on
 * `oc/+/+/out/request` (answer published to the device's `in/offer`), and
 * POST /offers over HTTP (answer in the response).
 */
import { ObligationError } from '../core/errors.ts';
import { makeOffer } from '../service/offers.ts';
import { topics } from '../service/topics.ts';
import { toReply } from './shared/errors.ts';
import { byEvent, httpRoute, parse, ruleHandler } from './shared/middleware.ts';
import { OfferBody, OfferRequestMessage } from './shared/schemas.ts';

const rule = ruleHandler(async (event, deps) => {
  let requestId: string | undefined;
  try {
    const msg = parse(OfferRequestMessage, event, 'request');
    requestId = msg.requestId;
    const offer = await makeOffer(deps, { ...msg, consumerDomain: event.domain, consumerDevice: event.thing }, true);
    return { offerId: offer.body.offerId };
  } catch (e) {
    if (e instanceof ObligationError && e.errorClass !== 'retry') {
      await deps.notifier.publish(topics.toDevice(event.domain, event.thing, 'offer'), {
        requestId: requestId ?? (typeof event.requestId === 'string' ? event.requestId : null),
        error: toReply(e).body.error as never,
      });
      return { error: e.code };
    }
    throw e;
  }
});

const http = httpRoute({ body: OfferBody }, async ({ body, deps }) => {
  const offer = await makeOffer(deps, body, false);
  return { status: 201, body: { offer } };
});

export const handler = byEvent({ http, other: rule });
