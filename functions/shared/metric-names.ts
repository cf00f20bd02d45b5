/**
 * The custom metrics' namespace, names and dimensions: written by the handlers
 * (observability.ts), read by the dashboard and alarms (lib/constructs/monitoring.ts).
 * No Powertools import here, so CDK code can read them at synth.
 */
/** The CloudWatch namespace of every custom metric (dashboard, alarms and handlers agree on it). */
export const METRICS_NAMESPACE = 'ObligationChain';

/** Custom metric names, shared with lib/constructs/monitoring.ts. */
export const METRIC = {
  accepted: 'ObligationsAccepted',
  duplicate: 'DuplicateDeliveries',
  refused: 'ObligationsRefused',
  acceptLatency: 'AcceptLatency',
  published: 'ObligationsPublished',
  publishBacklog: 'PublishBacklog',
  settlements: 'Settlements',
  settledAmount: 'SettledAmountSats',
  /** Settlements a run left waiting: refused and not (or no longer) outbid, or that the wallet will not bump. */
  settlementsStuck: 'SettlementsStuck',
  feeBumps: 'FeeBumps',
  invalidRecords: 'InvalidLedgerRecordsSkipped',
} as const;

/** Dimension of the refusal metric: the typed error code (core/errors.ts). */
export const CODE_DIMENSION = 'code';

