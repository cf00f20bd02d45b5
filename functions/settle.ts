/**
 * SCB settlement. POST /domains/{domain}/settlements settles one domain now;
 * the schedule settles every hosted consumer domain that settles automatically.
 */
import { settleAll, settleDomain } from '../service/settle.ts';
import { byEvent, httpRoute, scheduledJob } from './shared/middleware.ts';
import { recordSettleRuns } from './shared/observability.ts';
import { DomainParams, SettleBody } from './shared/schemas.ts';

const scheduled = scheduledJob('settle', async (deps) => {
  const summaries = await settleAll(deps);
  recordSettleRuns(summaries);
  return summaries;
});

const http = httpRoute({ body: SettleBody, params: DomainParams }, async ({ body, params, deps }) => {
  const summary = await settleDomain(deps, params.domain, body.maxOutputs ? { maxOutputs: body.maxOutputs } : {});
  recordSettleRuns([summary]);
  return { status: summary.deferred ? 202 : 200, body: summary };
});

export const handler = byEvent({ http, other: scheduled });
