/** Scheduled: publish accepted obligations and their outcomes to the ledger (idempotent); counts what it published and left waiting. */
import { publishPending } from '../service/publish.ts';
import { scheduledJob } from './shared/middleware.ts';
import { recordPublish } from './shared/observability.ts';

export const handler = scheduledJob('publish', async (deps) => {
  const summary = await publishPending(deps);
  recordPublish(summary);
  return summary;
});
