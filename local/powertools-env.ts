/**
 * Powertools settings for the embedded cloud, process-wide: Powertools reads
 * them once, when functions/shared/observability.ts loads, so local/cloud.ts
 * imports this module before any handler. Defaults only (`??=`): warnings and
 * errors, no CloudWatch EMF lines, so `npm start` stays readable;
 * `POWERTOOLS_LOG_LEVEL=INFO POWERTOOLS_METRICS_DISABLED=false npm start`
 * shows what a deployed function writes to its log.
 * (These are Powertools' own switches, the same for every hub of the process;
 * a hub's configuration stays in its environment map, never in process.env.)
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_SERVICE_NAME ??= 'obligation-chain-local';
// Tracing is off outside Lambda (Powertools' Tracer is a no-op here), but the X-Ray SDK it loads
// starts its automatic-context mode on import: an async_hooks hook with a destroy callback, paid
// by every promise of the process (CPU profile of the system bench: ≈ 8% of the time in
// registerDestroyHook and the async-hook callbacks). Manual mode is the X-Ray SDK's switch that skips it;
// on Lambda the variable is unset and tracing works as deployed.
process.env.AWS_XRAY_MANUAL_MODE ??= 'true';
export {};
