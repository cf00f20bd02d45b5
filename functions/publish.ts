/** Scheduled: publish accepted obligations and their outcomes to the ledger (idempotent). */
import { publishPending } from '../service/publish.ts';
import { scheduledJob } from './shared/middleware.ts';

export const handler = scheduledJob('publish', (deps) => publishPending(deps));
