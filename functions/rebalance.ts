/** Scheduled: top up the escrow shards of the consumer domains drawing credit here (service/rebalance.ts). */
import { rebalanceAll } from '../service/rebalance.ts';
import { scheduledJob } from './shared/middleware.ts';

export const handler = scheduledJob('rebalance', (deps) => rebalanceAll(deps));
