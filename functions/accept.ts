/**
 * SPB accept. The IoT rule on `oc/+/+/out/obligation` (answer to the
 * consumer's `in/reply`, grant to the provider device's `in/grant`) and
 * POST /obligations over HTTP. Duplicate deliveries get the same answer.
 * Every decision is logged with its correlation ids (obligation id, domains,
 * thing) and counted: accepted, refused by code, and how long it took.
 */
import { acceptObligation, notifyOutcome, type AcceptOutcome } from '../service/accept.ts';
import { byEvent, httpRoute, parse, ruleHandler } from './shared/middleware.ts';
import { logger, recordAcceptance } from './shared/observability.ts';
import { ObligationBodySchema, ObligationMessage } from './shared/schemas.ts';

/** Decide, then log and count the decision (the service stays free of logging and metrics). */
async function decide(deps: Parameters<typeof acceptObligation>[0], raw: unknown, from?: { domain: string; thing: string }): Promise<AcceptOutcome> {
  const started = performance.now();
  const outcome = await acceptObligation(deps, raw, from);
  recordAcceptance(outcome, performance.now() - started);
  if (outcome.obligationId) logger.appendKeys({ obligationId: outcome.obligationId });
  if (outcome.accepted) {
    logger.appendKeys({ consumerDomain: outcome.obligation.body.consumerDomain, providerDomain: outcome.obligation.body.providerDomain });
    logger.info(outcome.duplicate ? 'obligation accepted again (duplicate delivery)' : 'obligation accepted', {
      amount: outcome.obligation.body.amount,
    });
  } else {
    logger.info('obligation refused', { code: outcome.error.code, reason: outcome.error.message });
  }
  return outcome;
}

const rule = ruleHandler('reply', async (event, deps) => {
  const msg = parse(ObligationMessage, event, 'message');
  const outcome = await decide(deps, msg.obligation, { domain: event.domain, thing: event.thing });
  await notifyOutcome(deps, msg.obligation, outcome, msg.requestId, { domain: event.domain, thing: event.thing });
  return outcome.accepted
    ? { accepted: true, obligationId: outcome.obligationId, duplicate: outcome.duplicate }
    : { accepted: false, obligationId: outcome.obligationId ?? null, error: outcome.error.code };
});

const http = httpRoute({ body: ObligationBodySchema }, async ({ body, deps }) => {
  const outcome = await decide(deps, body.obligation);
  if (!outcome.accepted) throw outcome.error;
  await notifyOutcome(deps, body.obligation, outcome);
  return {
    status: outcome.duplicate ? 200 : 201,
    body: { obligationId: outcome.obligationId, acceptance: outcome.acceptance, duplicate: outcome.duplicate },
  };
});

export const handler = byEvent({ http, other: rule });
