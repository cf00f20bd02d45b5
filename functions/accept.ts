/**
 * SPB accept. The IoT rule on `oc/+/+/out/obligation` (answer to the
 * consumer's `in/reply`, grant to the provider device's `in/grant`) and
 * POST /obligations over HTTP. Duplicate deliveries get the same answer.
 */
import { acceptObligation, notifyOutcome } from '../service/accept.ts';
import { byEvent, httpRoute, parse, ruleHandler } from './shared/middleware.ts';
import { ObligationBodySchema, ObligationMessage } from './shared/schemas.ts';

const rule = ruleHandler('reply', async (event, deps) => {
  const msg = parse(ObligationMessage, event, 'message');
  const outcome = await acceptObligation(deps, msg.obligation, { domain: event.domain, thing: event.thing });
  await notifyOutcome(deps, msg.obligation, outcome, msg.requestId, { domain: event.domain, thing: event.thing });
  return outcome.accepted
    ? { accepted: true, obligationId: outcome.obligationId, duplicate: outcome.duplicate }
    : { accepted: false, obligationId: outcome.obligationId ?? null, error: outcome.error.code };
});

const http = httpRoute({ body: ObligationBodySchema }, async ({ body, deps }) => {
  const outcome = await acceptObligation(deps, body.obligation);
  if (!outcome.accepted) throw outcome.error;
  await notifyOutcome(deps, body.obligation, outcome);
  return {
    status: outcome.duplicate ? 200 : 201,
    body: { obligationId: outcome.obligationId, acceptance: outcome.acceptance, duplicate: outcome.duplicate },
  };
});

export const handler = byEvent({ http, other: rule });
