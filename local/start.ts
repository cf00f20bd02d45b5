/**
 * `npm start`: the whole system on the embedded cloud — no AWS account, no
 * Docker. Starts the stand-ins and the real handlers, runs a fleet of real
 * SDK devices through a seeded scenario (some consumer domains never pay),
 * shows progress, then drains (every obligation ends fulfilled or defaulted)
 * and prints a summary checked against the ledger.
 *
 *   npm start -- --consumers 6 --rounds 20 --seed 7 --defaulters 0.3 --serve
 *   npm start -- --hubs 3        (a federation: see runFederated below)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_FLEET, deviceFiles, Fleet, type FleetConfig } from '../devices/fleet.ts';
import { isMain, onInterrupt, parse, runCli, UsageError, type CommandSpec, type Options } from '../cli/args.ts';
import type { LocalCloud } from './cloud.ts';
import { checkOutputFile, prepareDataDir } from './data-dir.ts';
import { allObligations } from './pages.ts';
import { multichainLedgerEnv } from './ledger-env.ts';
import { federationChecks, renderFederationSummary, renderSummary, type DomainPayments, type DomainSummary } from './summary.ts';
import { percentile } from './stats.ts';

const OPTIONS = {
  consumers: { type: 'int', min: 1, max: 1_000, default: DEFAULT_FLEET.consumers, arg: 'N', help: 'consumer domains' },
  devices: { type: 'int', min: 1, max: 1_000, default: DEFAULT_FLEET.devicesPerConsumer, arg: 'N', help: 'devices per consumer domain' },
  providers: { type: 'int', min: 1, max: 1_000, default: DEFAULT_FLEET.providers, arg: 'N', help: 'provider domains' },
  defaulters: { type: 'number', min: 0, max: 1, default: DEFAULT_FLEET.defaulterShare, arg: 'R', help: 'share of consumer domains that never pay' },
  rounds: { type: 'int', min: 1, max: 100_000, default: DEFAULT_FLEET.rounds, arg: 'N', help: 'purchase rounds' },
  'round-ms': { type: 'int', min: 0, max: 3_600_000, default: DEFAULT_FLEET.roundMs, arg: 'MS', help: 'pause between rounds' },
  'pay-window': { type: 'int', min: 500, max: 86_400_000, default: DEFAULT_FLEET.payWindowMs, arg: 'MS', help: 'dueBy − issuedAt of each obligation' },
  seed: { type: 'int', min: 0, max: 2 ** 32 - 1, default: DEFAULT_FLEET.seed, arg: 'N', help: 'PRNG seed' },
  hubs: { type: 'int', min: 1, max: 16, default: 1, arg: 'N', help: 'hubs sharing only the chain (consumers buy at other hubs)' },
  'ledger-delay': { type: 'int', min: 0, max: 60_000, default: 150, arg: 'MS', help: 'ledger delay between hubs (--hubs > 1)' },
  data: { type: 'string', arg: 'DIR', help: 'keep the ledger, DynamoDB and the devices\' keys and chains in DIR (created if its parent exists); run again to go on' },
  port: { type: 'int', min: 1, max: 65_535, arg: 'N', help: 'HTTP API port; default a free port' },
  'mqtt-port': { type: 'int', min: 1, max: 65_535, arg: 'N', help: 'MQTT broker port; default a free port' },
  serve: { type: 'boolean', help: 'keep running after the summary (web page, API, broker; Ctrl-C to stop)' },
  json: { type: 'string', arg: 'FILE', help: 'also write a machine-readable summary to FILE (one hub; see scripts/runs.ts)' },
  bitcoind: { type: 'string', arg: 'URL', help: 'pay through this real regtest bitcoind (http://user:password@host:port, or env BITCOIND_RPC_URL): its faucet and miner too' },
  multichain: { type: 'string', arg: 'URL', help: 'use this MultiChain node as the ledger: http://user:password@host:port/chain (or LEDGER_KIND=multichain with MULTICHAIN_RPC_URL…)' },
} as const satisfies Options;

export const START: CommandSpec<typeof OPTIONS> = {
  name: 'npm start',
  usage: '[-- options]',
  summary: 'obligation-chain on the embedded cloud: a seeded fleet of devices trades, settles and defaults; a summary checked against the ledger.',
  epilog: `examples:
  npm start -- --consumers 6 --rounds 20 --seed 7 --defaulters 0.3
  npm start -- --serve --port 8080 --mqtt-port 1883     (keep serving: web page, API, broker for hand-started devices)
  npm start -- --hubs 3                                  (a federation of three hubs)`,
  options: OPTIONS,
};


interface StartConfig {
  fleet: FleetConfig;
  data?: string;
  port?: number;
  mqttPort?: number;
  serve: boolean;
  json?: string;
  hubs: number;
  ledgerDelayMs: number;
  bitcoind?: string;
  /** The ledger's environment: empty for the embedded ledger, else a real MultiChain node's (local/ledger-env.ts). */
  ledgerEnv: Record<string, string>;
}

/** The run's configuration from the command line; undefined when --help was asked for. Throws UsageError. */
export function startConfig(argv: readonly string[]): StartConfig | undefined {
  const { values, help } = parse(START, argv);
  if (help) return undefined;
  const fleet: FleetConfig = {
    ...DEFAULT_FLEET,
    consumers: values.consumers,
    devicesPerConsumer: values.devices,
    providers: values.providers,
    defaulterShare: values.defaulters,
    rounds: values.rounds,
    roundMs: values['round-ms'],
    payWindowMs: values['pay-window'],
    seed: values.seed,
  };
  const bitcoind = values.bitcoind ?? process.env.BITCOIND_RPC_URL;
  let ledgerEnv: Record<string, string>;
  try {
    ledgerEnv = multichainLedgerEnv(values.multichain, process.env);
  } catch (e) {
    const message = (e as Error).message;
    throw new UsageError(message.startsWith('--multichain') ? message : `--multichain: ${message}`);
  }
  if (values.hubs > 1 && (values.data !== undefined || values.port !== undefined || values['mqtt-port'] !== undefined || values.serve || values.json !== undefined || bitcoind !== undefined || ledgerEnv.LEDGER_KIND !== undefined)) {
    throw new UsageError('--data, --port, --mqtt-port, --serve, --json, --bitcoind and --multichain (or BITCOIND_RPC_URL, LEDGER_KIND=multichain) are for one hub only (drop --hubs)');
  }
  if (values.port !== undefined && values.port === values['mqtt-port']) throw new UsageError('--port and --mqtt-port must differ');
  return {
    fleet,
    hubs: values.hubs,
    ledgerDelayMs: values['ledger-delay'],
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.port !== undefined ? { port: values.port } : {}),
    ...(values['mqtt-port'] !== undefined ? { mqttPort: values['mqtt-port'] } : {}),
    ...(values.json !== undefined ? { json: values.json } : {}),
    serve: values.serve,
    ...(bitcoind !== undefined ? { bitcoind } : {}),
    ledgerEnv,
  };
}

/** Milliseconds for a progress line ('–' when nothing was measured yet). */
const ms = (x: number): string => (Number.isNaN(x) ? '–' : `${x.toFixed(0)} ms`);

/** Wait until no obligation of the consumer domains is still open (accepted or settling). */
async function drain(cloud: LocalCloud, domains: string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    let open = 0;
    for (const d of domains) {
      open += (await allObligations(cloud, d)).filter((o) => o.status === 'accepted' || o.status === 'settling').length;
    }
    if (open === 0 || Date.now() > deadline) return open;
    if (open !== last) {
      // on a terminal, one line rewritten in place; in a log, one line per change
      process.stdout.write(process.stdout.isTTY ? `\r  draining: ${open} obligation(s) still open…   ` : `  draining: ${open} obligation(s) still open…\n`);
      last = open;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The scenario compresses minutes into seconds (a 3 s pay window, settle every second),
 * so a busy machine's lag is large next to the default grace (two settle intervals):
 * a paying domain whose settlement runs late must not be defaulted. Ten seconds of grace
 * for obligations not yet in settlement; see README "When a payer defaults".
 */
const LOCAL_GRACE = { ACCEPTED_GRACE_MS: '10000' };
/** The grace of `--hubs N` (see runFederated). */
const FEDERATED_GRACE = { ACCEPTED_GRACE_MS: '30000' };

async function main(): Promise<number | void> {
  const cfg = startConfig(process.argv.slice(2));
  if (!cfg) return 0;
  if (cfg.hubs > 1) return runFederated(cfg);
  // written when the run ends: a path it cannot be written to is refused now, not after the run
  // (and before --data's directory is made)
  if (cfg.json !== undefined) await checkOutputFile(cfg.json, '--json', cfg.data);
  const created = cfg.data === undefined ? false : (await prepareDataDir(cfg.data)).created;
  // the cloud's modules (AWS SDK, aedes, bcoin, aws-crt) load only once the arguments are known good
  const [{ startCloud }, { hubEnv }, { recomputeFromLedger }] = await Promise.all([
    import('./cloud.ts'),
    import('./federation.ts'),
    import('../service/reputation.ts'),
  ]);
  const t0 = Date.now();
  const bitcoind =
    cfg.bitcoind === undefined
      ? undefined
      : await (await import('./bitcoind.ts')).connectBitcoind(cfg.bitcoind).catch((e: unknown) => {
          // a user error (bad URL, credentials, not regtest, unreachable): one line, exit 2
          const message = (e as Error).message;
          throw new UsageError(message.startsWith('--bitcoind') ? message : `--bitcoind: ${message}`);
        });
  if (cfg.ledgerEnv.MULTICHAIN_RPC_URL) await checkMultichain(cfg.ledgerEnv);
  console.log(
    `obligation-chain — embedded cloud (dynalite, aedes, ${bitcoind ? `bitcoind regtest at ${bitcoind.nodeRpc.host}:${bitcoind.nodeRpc.port}` : 'bcoin regtest'}, ${cfg.ledgerEnv.MULTICHAIN_RPC_URL ? 'MultiChain' : 'embedded'} ledger, real handlers)`,
  );
  if (cfg.ledgerEnv.MULTICHAIN_RPC_URL) console.log(`  ledger        MultiChain node ${cfg.ledgerEnv.MULTICHAIN_RPC_URL} chain ${cfg.ledgerEnv.MULTICHAIN_CHAIN_NAME}`);
  // Ctrl-C while the cloud starts: stop what has started once startCloud returns
  let cloud: LocalCloud | undefined;
  let fleet: Fleet | undefined;
  const shutdown = async () => {
    await fleet?.close().catch(() => undefined);
    await cloud?.stop();
  };
  const interrupt = onInterrupt(shutdown, (l) => console.log(l));
  cloud = await startCloud({
    ...(bitcoind ? { regtest: bitcoind } : {}),
    schedule: { publish: 250, watch: 400, settle: 1_000, mine: 500 },
    threads: true,
    env: { ...LOCAL_GRACE, ...cfg.ledgerEnv },
    ...(cfg.data ? { dataDir: cfg.data } : {}),
    ...(cfg.port ? { apiPort: cfg.port } : {}),
    ...(cfg.mqttPort ? { brokerPort: cfg.mqttPort } : {}),
  }).catch((e: unknown) => {
    throw listenError(e, cfg);
  });
  if (interrupt.stopping) return new Promise<never>(() => undefined); // the interrupt handler stops and exits
  try {
    console.log(`  HTTP API      ${cloud.api}`);
    console.log(`  live page     ${cloud.api}/ui/index.html`);
    console.log(`  MQTT broker   ${cloud.broker.url}`);
    if (cfg.data) {
      console.log(
        `  data          ${cfg.data}${created ? ' (created)' : ''} (ledger, table, device keys and chains kept; bcoin regtest is in memory: wallets keep their keys, not their coins)`,
      );
    }
    const f = cfg.fleet;
    console.log(
      `scenario: ${f.consumers} consumer domains × ${f.devicesPerConsumer} devices, ${f.providers} providers × ${f.devicesPerProvider} devices, ` +
        `${Math.round(f.consumers * f.defaulterShare)} never pay;\n          ${f.rounds} rounds, pay window ${f.payWindowMs} ms, seed ${f.seed}`,
    );
    // with --data, devices keep their keys and chains there: a later run goes on where this one ends
    fleet = new Fleet(f, { ...hubEnv(cloud), ...(cfg.data ? deviceFiles(join(cfg.data, 'devices')) : {}) });
    process.stdout.write('setting up domains, wallets and devices… ');
    await fleet.setUp();
    console.log(`done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    // what the providers had received before this run (a --data directory keeps earlier runs' payments)
    const receivedBefore = cfg.json ? await providersReceived(cloud, fleet) : 0;
    await fleet.run((p) => {
      const lat = p.latencies;
      console.log(
        `  round ${String(p.round).padStart(2)}/${p.rounds}  accepted ${String(p.accepted).padStart(4)}  refused ${String(p.refused).padStart(4)}` +
          `  accept p50 ${ms(percentile(lat, 50))}  p99 ${ms(percentile(lat, 99))}`,
      );
    });
    const consumerDomains = fleet.consumers.map((c) => c.domain);
    const open = await drain(cloud, consumerDomains, Math.max(30_000, f.payWindowMs * 3));
    if (process.stdout.isTTY) process.stdout.write('\r' + ' '.repeat(60) + '\r');
    // The last outcomes onto the ledger: a scheduled run may hold the publication lease with a
    // pending set read before them (this run would then do nothing), so run until none is pending.
    for (let tries = 0; tries < 100; tries++) {
      await cloud.runJob('publish');
      if ((await cloud.deps.store.listPendingPublication(1)).length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // Check what was promised against the ledger alone.
    const ledger = await recomputeFromLedger(cloud.deps);
    const summaries: DomainSummary[] = [];
    for (const c of fleet.consumers) {
      const report = fleet.reports.get(c.domain);
      const obligations = await allObligations<{ id: string; status: string; amount: number; paidTxid?: string }>(cloud, c.domain);
      const rep = (await cloud.call<{ reputation: number; creditLimit: number; rScaled: number; sScaled: number }>(
        'GET',
        `/domains/${c.domain}/reputation`,
      )).body;
      const accepted = fleet.results.filter((r) => r.consumer === c.domain && r.ok).map((r) => (r.ok ? r.obligationId : ''));
      // this run's obligations (a --data directory keeps earlier runs' too: totals shown apart)
      const thisRun = new Set(accepted);
      const all = obligations;
      const mine = all.filter((o) => thisRun.has(o.id));
      let onLedger = 0;
      for (const id of accepted) onLedger += (await cloud.deps.ledger.listByKey('obligations', id)).length === 1 ? 1 : 0;
      const l = ledger.get(c.domain);
      summaries.push({
        domain: c.domain,
        defaulter: c.defaulter,
        history: report?.history.map((h) => h.reputation) ?? [],
        reputation: rep.reputation,
        creditLimit: rep.creditLimit,
        accepted: accepted.length,
        refused: report?.refused ?? {},
        timeouts: report?.timeouts ?? 0,
        fulfilled: mine.filter((o) => o.status === 'fulfilled').length,
        defaulted: mine.filter((o) => o.status === 'defaulted').length,
        stored: mine.length,
        onLedger,
        payments: new Set(mine.map((o) => o.paidTxid).filter(Boolean)).size,
        paidSats: mine.filter((o) => o.status === 'fulfilled').reduce((s, o) => s + o.amount, 0),
        allRuns: {
          stored: all.length,
          fulfilled: all.filter((o) => o.status === 'fulfilled').length,
          defaulted: all.filter((o) => o.status === 'defaulted').length,
          paidSats: all.filter((o) => o.status === 'fulfilled').reduce((s, o) => s + o.amount, 0),
        },
        ledgerAgrees:
          l !== undefined &&
          Math.abs(l.rScaled - rep.rScaled) <= 1e-9 * Math.max(1, rep.rScaled) &&
          Math.abs(l.sScaled - rep.sScaled) <= 1e-9 * Math.max(1, rep.sScaled),
      });
    }
    const lat = fleet.results.filter((r) => r.ok).map((r) => (r.ok ? r.acceptMs : 0));
    console.log(
      renderSummary(summaries, {
        threshold: f.threshold,
        open,
        seconds: (Date.now() - t0) / 1000,
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        brokerRefusals: cloud.broker.stats.refusedPublish + cloud.broker.stats.refusedSubscribe + cloud.broker.stats.refusedConnect,
        ruleFailures: cloud.broker.stats.ruleFailures,
      }),
    );
    const ok = open === 0 && summaries.every((s) => s.onLedger === s.accepted && s.fulfilled + s.defaulted === s.accepted && s.ledgerAgrees);
    if (cfg.json) {
      const thisRun = new Set(fleet.results.flatMap((r) => (r.ok ? [r.obligationId] : [])));
      const facts = await paymentFacts(cloud, fleet, thisRun, receivedBefore);
      await writeFile(cfg.json, JSON.stringify({ ok, open, seconds: (Date.now() - t0) / 1000, seed: f.seed, ...facts }, null, 2));
    }
    if (cfg.serve) {
      console.log(`\nserving ${cloud.api}/ui/index.html — API ${cloud.api}, MQTT ${cloud.broker.url} — Ctrl-C to stop`);
      await fleet.close();
      fleet = undefined;
      await new Promise(() => undefined);
    }
    await shutdown();
    return ok ? 0 : 1;
  } catch (e) {
    // work cut short by Ctrl-C fails with "connection closed" and the like: not an error of the run
    if (interrupt.stopping) return new Promise<never>(() => undefined);
    await shutdown();
    throw e;
  }
}

/**
 * A MultiChain node given by --multichain (or LEDGER_KIND=multichain in the environment) must
 * answer before anything starts, as --bitcoind's must: a wrong address, credentials, chain name
 * or publisher is the user's mistake (one line, exit 2), not a failure of the run half-way.
 */
async function checkMultichain(env: Record<string, string>): Promise<void> {
  const { MultiChainLedger } = await import('../adapters/ledger/multichain.ts');
  const node = new MultiChainLedger({
    url: env.MULTICHAIN_RPC_URL!,
    user: env.MULTICHAIN_RPC_USER!,
    password: env.MULTICHAIN_RPC_PASSWORD!,
    chainName: env.MULTICHAIN_CHAIN_NAME!,
    ...(env.MULTICHAIN_PUBLISHER ? { publisher: env.MULTICHAIN_PUBLISHER } : {}),
  });
  const health = await node.health();
  await node.close();
  if (!health.ok) throw new UsageError(`--multichain: node ${env.MULTICHAIN_RPC_URL} chain ${env.MULTICHAIN_CHAIN_NAME}: ${health.detail}`);
}

/** A port in use is the user's choice of port: say which flag (exit 2); anything else is a failure of the run. */
function listenError(e: unknown, cfg: StartConfig): unknown {
  const err = e as NodeJS.ErrnoException & { port?: number };
  if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
    const which = err.port !== undefined && err.port === cfg.mqttPort ? '--mqtt-port' : err.port === cfg.port ? '--port' : undefined;
    if (which) return new UsageError(`${which} ${err.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : 'not allowed to listen on it'}`);
  }
  return e;
}

/**
 * `--hubs N`: N independent hubs in this process, sharing only the ledger
 * network (a node per hub, items reach the other hubs after --ledger-delay)
 * and the regtest Bitcoin network. Consumer and provider domains are hosted
 * round-robin; each consumer buys only from providers hosted at other hubs,
 * through their hubs' HTTP API. The summary shows each consumer domain's
 * reputation as each hub reports it and the fate of the cross-hub obligations.
 */
async function runFederated(cfg: StartConfig): Promise<number> {
  const [{ hubEnv, startFederation }, { catchUpFollowers, drainFederation, federationReport }] = await Promise.all([
    import('./federation.ts'),
    import('./federation-report.ts'),
  ]);
  const t0 = Date.now();
  const f = cfg.fleet;
  console.log(`obligation-chain — ${cfg.hubs} hubs in one process, sharing only the ledger network and regtest`);
  const fed = await startFederation({
    hubs: cfg.hubs,
    ledgerDelayMs: cfg.ledgerDelayMs,
    schedule: { publish: 250, watch: 400, settle: 1_000, follow: 500, mine: 500 },
    // Three hubs and their jobs share one process on the machine's cores: a job can wait
    // seconds for the event loop (seen: up to 7 s). A payer's path to "settling" at a
    // provider's hub crosses four jobs at two hubs (follow, settle, publish, watch), so
    // the grace is 30 s here — 10 s failed 2 of 3 runs with 4 honest obligations
    // defaulted. On AWS the grace is two settlement intervals (10 min), the follower
    // runs every minute.
    env: FEDERATED_GRACE,
  });
  let fleet: Fleet | undefined;
  const shutdown = async () => {
    await fleet?.close().catch(() => undefined);
    await fed.stop();
  };
  const interrupt = onInterrupt(shutdown, (l) => console.log(l));
  try {
    for (const [i, hub] of fed.hubs.entries()) {
      console.log(`  ${fed.publisher(i)}  API ${hub.api}  MQTT ${hub.broker.url}`);
    }
    console.log(
      `scenario: ${f.consumers} consumer domains × ${f.devicesPerConsumer} devices, ${f.providers} providers × ${f.devicesPerProvider} devices, ` +
        `${Math.round(f.consumers * f.defaulterShare)} never pay;\n          ${f.rounds} rounds, pay window ${f.payWindowMs} ms, seed ${f.seed}`,
    );
    fleet = new Fleet(f, {
      ...hubEnv(fed.hubs[0]!),
      hubs: fed.hubs.map(hubEnv),
    });
    process.stdout.write('setting up domains, wallets and devices at every hub… ');
    await fleet.setUp();
    console.log(`done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    await fleet.run((p) => {
      const lat = p.latencies;
      console.log(
        `  round ${String(p.round).padStart(2)}/${p.rounds}  accepted ${String(p.accepted).padStart(4)}  refused ${String(p.refused).padStart(4)}` +
          `  accept p50 ${ms(percentile(lat, 50))}  p99 ${ms(percentile(lat, 99))}`,
      );
    });
    const open = await drainFederation(fed, fleet, Math.max(60_000, f.payWindowMs * 4), (n) =>
      process.stdout.write(process.stdout.isTTY ? `\r  draining: ${n} obligation(s) still open…   ` : `  draining: ${n} obligation(s) still open…\n`),
    );
    if (process.stdout.isTTY) process.stdout.write('\r' + ' '.repeat(60) + '\r');
    // the last outcomes reach every hub and its follower folds them in
    await catchUpFollowers(fed, cfg.ledgerDelayMs);
    const report = await federationReport(fed, fleet);
    const lat = fleet.results.filter((r) => r.ok).map((r) => (r.ok ? r.acceptMs : 0));
    const facts = {
      threshold: f.threshold,
      seconds: (Date.now() - t0) / 1000,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      ledgerDelayMs: cfg.ledgerDelayMs,
      open,
      tolerance: 0.05,
    };
    console.log(renderFederationSummary(report, facts));
    await shutdown();
    return federationChecks(report, facts).every((c) => c.ok) ? 0 : 1;
  } catch (e) {
    if (interrupt.stopping) return new Promise<never>(() => undefined);
    await shutdown();
    throw e;
  }
}


/**
 * What `scripts/runs.ts` checks, for this run alone (a --data directory keeps earlier
 * runs' obligations and payments too): per consumer domain, defaults and what the
 * broadcast settlements naming its obligations paid against what its fulfilled ones
 * owed; and every sat the providers received since the run began against the fulfilled total.
 */
async function paymentFacts(
  cloud: LocalCloud,
  fleet: Fleet,
  thisRun: Set<string>,
  receivedBefore: number,
): Promise<{ domains: DomainPayments[]; providersReceivedSats: number; owedFulfilledSats: number }> {
  const { store } = cloud.deps;
  const domains: DomainPayments[] = [];
  for (const c of fleet.consumers) {
    const obligations = (await store.listByConsumer(c.domain)).filter((o) => thisRun.has(o.id));
    const settlements = (await store.listSettlements(c.domain)).filter(
      (s) => s.phase === 'broadcast' && s.outputs.some((o) => o.obligationIds.some((id) => thisRun.has(id))),
    );
    const named = settlements.flatMap((s) => s.outputs.flatMap((o) => o.obligationIds));
    const fulfilled = obligations.filter((o) => o.status === 'fulfilled');
    domains.push({
      domain: c.domain,
      pays: !c.defaulter,
      accepted: obligations.length,
      fulfilled: fulfilled.length,
      defaulted: obligations.filter((o) => o.status === 'defaulted').length,
      owedFulfilledSats: fulfilled.reduce((sum, o) => sum + o.amount, 0),
      settledSats: settlements.reduce((sum, s) => sum + s.outputs.reduce((t, o) => t + o.amount, 0), 0),
      settlements: settlements.length,
      inSeveralSettlements: named.length - new Set(named).size,
    });
  }
  const providersReceivedSats = (await providersReceived(cloud, fleet)) - receivedBefore;
  return { domains, providersReceivedSats, owedFulfilledSats: domains.reduce((sum, d) => sum + d.owedFulfilledSats, 0) };
}

/** Sats the fleet's providers have received at their payment addresses, over every run. */
async function providersReceived(cloud: LocalCloud, fleet: Fleet): Promise<number> {
  let sats = 0;
  for (const p of fleet.providers) {
    const hosted = await cloud.deps.store.getHostedDomain(p.domain);
    if (!hosted?.payTo) continue;
    const wallet = await cloud.deps.payments(hosted.wallet);
    const got = await wallet.receivedSince(undefined);
    sats += got.payments.filter((x) => x.address === hosted.payTo).reduce((sum, x) => sum + x.amount, 0);
  }
  return sats;
}


if (isMain(import.meta.url)) runCli('npm start', main);
