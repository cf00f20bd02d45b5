/** Scheduled: SPB payment watcher — match payments, fulfil after N confirmations, default the overdue. */
import { watchAll } from '../service/watch.ts';
import { scheduledJob } from './shared/middleware.ts';

export const handler = scheduledJob('watch', (deps) => watchAll(deps));
