/** Scheduled: the ledger follower — learn other hubs' domains, obligations, settlements and outcomes (service/follow.ts). */
import { followLedger } from '../service/follow.ts';
import { scheduledJob } from './shared/middleware.ts';

export const handler = scheduledJob('follow', (deps) => followLedger(deps));
