/** Scheduled: publish accepted obligations and their outcomes to the ledger (idempotent). */
import { publishPending } from '../service/publish.ts';
import { scheduledJob } from './shared/middleware.ts';

export const handler = scheduledJob('publish', async (deps) => {
  const summary = await publishPending(deps);
  // What an operator must act on is logged whatever LOG_JOBS says: a hub the ledger refuses, items it refused for good.
  if (summary.blocked || summary.parked > 0) {
    console.error(JSON.stringify({ level: 'error', job: 'publish', msg: summary.blocked ? 'ledger refuses this hub: publication blocked' : 'ledger refused items: parked', summary }));
  }
  return summary;
});
