/**
 * Logs, metrics and traces: Powertools for AWS Lambda (TypeScript), one
 * Logger, one Metrics and one Tracer per process, configured by Powertools'
 * own environment (POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL,
 * POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_METRICS_DISABLED, set by CDK in
 * lib/constructs/handlers.ts). The middleware chains (middleware.ts) attach
 * them to every handler; the handlers record what their services returned
 * with the `record*` functions below, so the services stay pure.
 *
 * Metrics are CloudWatch EMF lines on stdout (namespace METRICS_NAMESPACE):
 * the dashboard and alarms in lib/constructs/monitoring.ts read the same names.
 *
 * Powertools reads its environment once, when this module loads. The embedded
 * cloud (local/powertools-env.ts, loaded before any handler) defaults it to
 * warnings only and no EMF, so `npm start` prints neither.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { SettleSummary } from '../../service/settle.ts';
import { CODE_DIMENSION, METRIC, METRICS_NAMESPACE } from './metric-names.ts';

export { CODE_DIMENSION, METRIC, METRICS_NAMESPACE } from './metric-names.ts';

export const logger = new Logger();

/**
 * Powertools warns on every flush that has no metric ("No application metrics
 * to publish"): normal for handlers that record none, so it is a debug line;
 * every other warning of Metrics stays a warning.
 */
const metricsLog = {
  trace: (...a: unknown[]) => logger.trace(String(a[0]), ...(a.slice(1) as never[])),
  debug: (...a: unknown[]) => logger.debug(String(a[0]), ...(a.slice(1) as never[])),
  info: (...a: unknown[]) => logger.info(String(a[0]), ...(a.slice(1) as never[])),
  warn: (...a: unknown[]) =>
    String(a[0]).startsWith('No application metrics to publish')
      ? logger.debug(String(a[0]))
      : logger.warn(String(a[0]), ...(a.slice(1) as never[])),
  error: (...a: unknown[]) => logger.error(String(a[0]), ...(a.slice(1) as never[])),
};

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, logger: metricsLog });

/** X-Ray: active on Lambda (Tracing.ACTIVE), a no-op elsewhere (Powertools detects it is not in Lambda). */
export const tracer = new Tracer();

function count(name: string, value = 1): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}

/** An acceptance decision (HTTP or IoT rule) and how long it took. */
export function recordAcceptance(
  outcome: { accepted: true; duplicate: boolean } | { accepted: false; error: { code: string } },
  ms: number,
): void {
  metrics.addMetric(METRIC.acceptLatency, MetricUnit.Milliseconds, ms);
  if (outcome.accepted) {
    count(outcome.duplicate ? METRIC.duplicate : METRIC.accepted);
    return;
  }
  // one EMF document per refusal: its own `code` dimension, the service dimension kept
  const single = metrics.singleMetric();
  single.addDimension(CODE_DIMENSION, outcome.error.code);
  single.addMetric(METRIC.refused, MetricUnit.Count, 1);
}

/** A publish run: what it put on the ledger and what it left waiting. */
export function recordPublish(summary: { published: number; backlog?: number | undefined }): void {
  count(METRIC.published, summary.published);
  if (summary.backlog !== undefined) count(METRIC.publishBacklog, summary.backlog);
}

/**
 * What settle runs did: the settlements made and the sats they paid, the fee bumps, and the
 * settlements left stuck, each also a warning naming it and why (the alarm's reading).
 */
export function recordSettleRuns(runs: readonly Pick<SettleSummary, 'domain' | 'settlements' | 'bumped' | 'stuck'>[]): void {
  const settlements = runs.flatMap((r) => r.settlements);
  count(METRIC.settlements, settlements.length);
  count(METRIC.settledAmount, settlements.reduce((sum, s) => sum + s.total, 0));
  count(METRIC.feeBumps, runs.reduce((sum, r) => sum + (r.bumped?.length ?? 0), 0));
  count(METRIC.settlementsStuck, runs.reduce((sum, r) => sum + (r.stuck?.length ?? 0), 0));
  for (const r of runs) {
    for (const s of r.stuck ?? []) {
      logger.warn('settlement stuck', { domain: r.domain, settlementId: s.settlementId, txid: s.txid, reason: s.reason.slice(0, 300) });
    }
  }
}

/** Ledger records a follower run found invalid and skipped. */
export function recordInvalidRecords(invalid: number): void {
  count(METRIC.invalidRecords, invalid);
}
