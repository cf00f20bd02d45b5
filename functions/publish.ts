/** Scheduled: publish accepted obligations and their outcomes to the ledger (idempotent); counts what it published and left waiting. */
import { publishPending } from '../service/publish.ts';
import { scheduledJob } from './shared/middleware.ts';
import { logger, recordPublish } from './shared/observability.ts';

export const handler = scheduledJob('publish', async (deps) => {
  const summary = await publishPending(deps);
  recordPublish(summary);
  // What an operator must act on is logged at error level: a hub the ledger refuses, items it refused for good.
  if (summary.blocked || summary.parked > 0) {
    logger.error(summary.blocked ? 'ledger refuses this hub: publication blocked' : 'ledger refused items: parked', { job: 'publish', summary });
  }
  return summary;
});
