/**
 * The embedded stand-in for EventBridge Scheduler rules (`rate(...)`) that
 * invoke Lambdas: each job runs on its interval, never overlapping with itself;
 * failures are recorded, never thrown.
 */
import { NotFoundError } from '../core/errors.ts';
import { errorMessage } from './lambda.ts';

export interface Job {
  name: string;
  everyMs: number;
  run: () => Promise<unknown>;
}

export interface JobStats {
  runs: number;
  failures: number;
  /** Ticks skipped because the previous run was still going. */
  skipped: number;
  lastError: string | undefined;
  lastRunAt: number | undefined;
}

export interface Scheduler {
  readonly stats: Readonly<Record<string, Readonly<JobStats>>>;
  /** Run `name` now (or join the run under way) and resolve when it is done. Never rejects for a job failure. */
  runNow(name: string): Promise<void>;
  /** Stop the timers and wait for runs under way. */
  stop(): Promise<void>;
}

export interface SchedulerOptions {
  /** Told about each failed run. Default console.error. */
  log?: (message: string, error: unknown) => void;
}

/** Start a timer per job. Timers are unref'd, so the scheduler alone keeps no process alive. */
export function startScheduler(jobs: Job[], opts: SchedulerOptions = {}): Scheduler {
  const log = opts.log ?? ((msg: string, error: unknown) => console.error(msg, error));
  const stats: Record<string, JobStats> = {};
  const running = new Map<string, Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  const byName = new Map(jobs.map((j) => [j.name, j]));
  let stopped = false;

  const start = (job: Job): Promise<void> => {
    const under = running.get(job.name);
    if (under) return under;
    const s = stats[job.name];
    const run = (async () => {
      try {
        await job.run();
      } catch (error) {
        if (s) {
          s.failures++;
          s.lastError = errorMessage(error);
        }
        log(`scheduled job ${job.name} failed`, error);
      } finally {
        if (s) {
          s.runs++;
          s.lastRunAt = Date.now();
        }
        running.delete(job.name);
      }
    })();
    running.set(job.name, run);
    return run;
  };

  for (const job of jobs) {
    stats[job.name] = { runs: 0, failures: 0, skipped: 0, lastError: undefined, lastRunAt: undefined };
    const timer = setInterval(() => {
      if (stopped) return;
      if (running.has(job.name)) {
        const s = stats[job.name];
        if (s) s.skipped++;
        return;
      }
      void start(job);
    }, job.everyMs);
    timer.unref();
    timers.push(timer);
  }

  return {
    stats,
    runNow(name) {
      const job = byName.get(name);
      if (!job) return Promise.reject(new NotFoundError(`no scheduled job ${name}`));
      return start(job);
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...running.values()]);
    },
  };
}

/** A failure as one line on stderr (`what: its message`): the embedded cloud's default log. */
export function logLine(message: string, error: unknown): void {
  console.error(`${message}: ${(error as Error)?.message ?? String(error)}`);
}
