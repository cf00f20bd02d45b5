/** Scheduled: the ledger follower — learn other hubs' domains, obligations, settlements and outcomes (service/follow.ts); counts the invalid records it skipped. */
import { followLedger } from '../service/follow.ts';
import { scheduledJob } from './shared/middleware.ts';
import { logger, recordInvalidRecords } from './shared/observability.ts';

export const handler = scheduledJob('follow', async (deps) => {
  const summary = await followLedger(deps);
  recordInvalidRecords(summary.invalid);
  if (summary.invalid > 0) logger.warn('invalid ledger records skipped', { invalid: summary.invalid });
  return summary;
});
