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
export {};
