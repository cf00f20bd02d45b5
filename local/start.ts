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
import { parseArgs } from 'node:util';
import { DEFAULT_FLEET, Fleet, type FleetConfig } from '../devices/fleet.ts';
import { recomputeFromLedger } from '../service/reputation.ts';
import { startCloud, type LocalCloud } from './cloud.ts';
import { multichainLedgerEnv } from './ledger-env.ts';
import { hubEnv, startFederation } from './federation.ts';
import { drainFederation, federationReport } from './federation-report.ts';
import { federationChecks, renderFederationSummary, renderSummary, type DomainPayments, type DomainSummary } from './summary.ts';
import { percentile } from './stats.ts';

const HELP = `obligation-chain on the embedded cloud

usage: npm start [-- options]
  --consumers N      consumer domains (default ${DEFAULT_FLEET.consumers})
  --devices N        devices per consumer domain (default ${DEFAULT_FLEET.devicesPerConsumer})
  --providers N      provider domains (default ${DEFAULT_FLEET.providers})
  --defaulters R     share of consumer domains that never pay, 0..1 (default ${DEFAULT_FLEET.defaulterShare})
  --rounds N         purchase rounds (default ${DEFAULT_FLEET.rounds})
  --round-ms MS      pause between rounds (default ${DEFAULT_FLEET.roundMs})
  --pay-window MS    dueBy − issuedAt of each obligation (default ${DEFAULT_FLEET.payWindowMs})
  --seed N           PRNG seed (default ${DEFAULT_FLEET.seed})
  --hubs N           independent hubs sharing only the chain (default 1); with N > 1, domains are
                     hosted round-robin and consumers buy only from providers at other hubs
  --ledger-delay MS  ledger propagation delay between hubs (default 150; with --hubs > 1)
  --data DIR         keep the ledger and DynamoDB on disk in DIR (bcoin stays in memory)
  --port N           HTTP API port (default: a free port)
  --serve            keep running after the summary (watch the web page; Ctrl-C to stop)
  --json FILE        also write a machine-readable summary to FILE (one hub; see scripts/runs.ts)
  --multichain URL   use this MultiChain node as the ledger: http://user:password@host:port/chain
                     (one hub; or LEDGER_KIND=multichain with MULTICHAIN_RPC_URL… in the environment)
  --help`;

interface StartConfig {
  fleet: FleetConfig;
  data?: string;
  port?: number;
  serve: boolean;
  json?: string;
  hubs: number;
  ledgerDelayMs: number;
  /** The ledger's environment: empty for the embedded ledger, else a real MultiChain node's (local/ledger-env.ts). */
  ledgerEnv: Record<string, string>;
}

function config(): StartConfig {
  const { values } = parseArgs({
    options: {
      consumers: { type: 'string' },
      devices: { type: 'string' },
      providers: { type: 'string' },
      defaulters: { type: 'string' },
      rounds: { type: 'string' },
      'round-ms': { type: 'string' },
      'pay-window': { type: 'string' },
      seed: { type: 'string' },
      hubs: { type: 'string' },
      'ledger-delay': { type: 'string' },
      data: { type: 'string' },
      port: { type: 'string' },
      serve: { type: 'boolean', default: false },
      json: { type: 'string' },
      multichain: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const int = (v: string | undefined, def: number, name: string, min = 0): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min} (got ${v})`);
    return n;
  };
  const fleet: FleetConfig = {
    ...DEFAULT_FLEET,
    consumers: int(values.consumers, DEFAULT_FLEET.consumers, 'consumers', 1),
    devicesPerConsumer: int(values.devices, DEFAULT_FLEET.devicesPerConsumer, 'devices', 1),
    providers: int(values.providers, DEFAULT_FLEET.providers, 'providers', 1),
    defaulterShare: Math.min(1, int(values.defaulters, DEFAULT_FLEET.defaulterShare, 'defaulters')),
    rounds: int(values.rounds, DEFAULT_FLEET.rounds, 'rounds', 1),
    roundMs: int(values['round-ms'], DEFAULT_FLEET.roundMs, 'round-ms'),
    payWindowMs: int(values['pay-window'], DEFAULT_FLEET.payWindowMs, 'pay-window', 500),
    seed: int(values.seed, DEFAULT_FLEET.seed, 'seed'),
  };
  const hubs = int(values.hubs, 1, 'hubs', 1);
  if (hubs > 1 && (values.data || values.port || values.serve || values.json || values.multichain)) {
    throw new Error('--data, --port, --serve, --json and --multichain are for one hub only');
  }
  return {
    fleet,
    hubs,
    ledgerDelayMs: int(values['ledger-delay'], 150, 'ledger-delay'),
    ledgerEnv: multichainLedgerEnv(values.multichain, process.env),
    ...(values.data ? { data: values.data } : {}),
    ...(values.port ? { port: int(values.port, 0, 'port', 1) } : {}),
    ...(values.json ? { json: values.json } : {}),
    serve: values.serve ?? false,
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
      const r = await cloud.call<{ obligations: { status: string }[] }>('GET', `/domains/${d}/obligations`);
      open += r.body.obligations.filter((o) => o.status === 'accepted' || o.status === 'settling').length;
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

async function main(): Promise<void> {
  const cfg = config();
  if (cfg.hubs > 1) return runFederated(cfg);
  const t0 = Date.now();
  console.log('obligation-chain — embedded cloud (dynalite, aedes, bcoin regtest, embedded ledger, real handlers)');
  if (cfg.ledgerEnv.MULTICHAIN_RPC_URL) console.log(`  ledger        MultiChain node ${cfg.ledgerEnv.MULTICHAIN_RPC_URL} chain ${cfg.ledgerEnv.MULTICHAIN_CHAIN_NAME}`);
  const cloud = await startCloud({
    schedule: { publish: 250, watch: 400, settle: 1_000, mine: 500 },
    env: { ...LOCAL_GRACE, ...cfg.ledgerEnv },
    ...(cfg.data ? { dataDir: cfg.data } : {}),
    ...(cfg.port ? { apiPort: cfg.port } : {}),
  });
  let fleet: Fleet | undefined;
  const shutdown = async () => {
    await fleet?.close().catch(() => undefined);
    await cloud.stop();
  };
  process.once('SIGINT', () => {
    console.log('\nstopping…');
    void shutdown().then(() => process.exit(130));
  });
  try {
    console.log(`  HTTP API      ${cloud.api}`);
    console.log(`  live page     ${cloud.api}/ui/index.html`);
    console.log(`  MQTT broker   ${cloud.broker.url}`);
    if (cfg.data) {
      console.log(`  data          ${cfg.data} (ledger and table kept; bcoin regtest is in memory, so wallets start over each run)`);
    }
    const f = cfg.fleet;
    console.log(
      `scenario: ${f.consumers} consumer domains × ${f.devicesPerConsumer} devices, ${f.providers} providers × ${f.devicesPerProvider} devices, ` +
        `${Math.round(f.consumers * f.defaulterShare)} never pay; ${f.rounds} rounds, pay window ${f.payWindowMs} ms, seed ${f.seed}`,
    );
    fleet = new Fleet(f, hubEnv(cloud));
    process.stdout.write('setting up domains, wallets and devices… ');
    await fleet.setUp();
    console.log(`done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
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
      const obligations = (await cloud.call<{ obligations: { id: string; status: string; amount: number; paidTxid?: string }[] }>(
        'GET',
        `/domains/${c.domain}/obligations`,
      )).body.obligations;
      const rep = (await cloud.call<{ reputation: number; creditLimit: number; rScaled: number; sScaled: number }>(
        'GET',
        `/domains/${c.domain}/reputation`,
      )).body;
      const accepted = fleet.results.filter((r) => r.consumer === c.domain && r.ok).map((r) => (r.ok ? r.obligationId : ''));
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
        fulfilled: obligations.filter((o) => o.status === 'fulfilled').length,
        defaulted: obligations.filter((o) => o.status === 'defaulted').length,
        stored: obligations.length,
        onLedger,
        payments: new Set(obligations.map((o) => o.paidTxid).filter(Boolean)).size,
        paidSats: obligations.filter((o) => o.status === 'fulfilled').reduce((s, o) => s + o.amount, 0),
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
      const facts = await paymentFacts(cloud, fleet);
      await writeFile(cfg.json, JSON.stringify({ ok, open, seconds: (Date.now() - t0) / 1000, seed: f.seed, ...facts }, null, 2));
    }
    if (cfg.serve) {
      console.log(`\nserving ${cloud.api}/ui/index.html — Ctrl-C to stop`);
      await fleet.close();
      fleet = undefined;
      await new Promise(() => undefined);
    }
    await shutdown();
    process.exitCode = ok ? 0 : 1;
  } catch (e) {
    console.error(`\nfailed: ${(e as Error).message}`);
    await shutdown();
    process.exitCode = 1;
  }
}

/**
 * `--hubs N`: N independent hubs in this process, sharing only the ledger
 * network (a node per hub, items reach the other hubs after --ledger-delay)
 * and the regtest Bitcoin network. Consumer and provider domains are hosted
 * round-robin; each consumer buys only from providers hosted at other hubs,
 * through their hubs' HTTP API. The summary shows each consumer domain's
 * reputation as each hub reports it and the fate of the cross-hub obligations.
 */
async function runFederated(cfg: StartConfig): Promise<void> {
  const t0 = Date.now();
  const f = cfg.fleet;
  console.log(`obligation-chain — ${cfg.hubs} hubs in one process, sharing only the ledger network and regtest`);
  const fed = await startFederation({
    hubs: cfg.hubs,
    ledgerDelayMs: cfg.ledgerDelayMs,
    schedule: { publish: 250, watch: 400, settle: 1_000, follow: 500, mine: 500 },
    env: LOCAL_GRACE,
  });
  let fleet: Fleet | undefined;
  const shutdown = async () => {
    await fleet?.close().catch(() => undefined);
    await fed.stop();
  };
  process.once('SIGINT', () => {
    console.log('\nstopping…');
    void shutdown().then(() => process.exit(130));
  });
  try {
    for (const [i, hub] of fed.hubs.entries()) {
      console.log(`  ${fed.publisher(i)}  API ${hub.api}  MQTT ${hub.broker.url}`);
    }
    console.log(
      `scenario: ${f.consumers} consumer domains × ${f.devicesPerConsumer} devices, ${f.providers} providers × ${f.devicesPerProvider} devices, ` +
        `${Math.round(f.consumers * f.defaulterShare)} never pay; ${f.rounds} rounds, pay window ${f.payWindowMs} ms, seed ${f.seed}`,
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
    const open = await drainFederation(fed, fleet, Math.max(40_000, f.payWindowMs * 4), (n) =>
      process.stdout.write(process.stdout.isTTY ? `\r  draining: ${n} obligation(s) still open…   ` : `  draining: ${n} obligation(s) still open…\n`),
    );
    if (process.stdout.isTTY) process.stdout.write('\r' + ' '.repeat(60) + '\r');
    for (const hub of fed.hubs) await hub.runJob('publish');
    // let the last outcomes reach every hub and its follower fold them in
    await new Promise((r) => setTimeout(r, cfg.ledgerDelayMs + 1_000));
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
    process.exitCode = federationChecks(report, facts).every((c) => c.ok) ? 0 : 1;
  } catch (e) {
    console.error(`\nfailed: ${(e as Error).message}`);
    await shutdown();
    process.exitCode = 1;
  }
}


/**
 * What `scripts/runs.ts` checks: per consumer domain, defaults and what its
 * broadcast settlements paid against what its fulfilled obligations owed;
 * and every sat the providers' wallets received against the fulfilled total.
 */
async function paymentFacts(cloud: LocalCloud, fleet: Fleet): Promise<{ domains: DomainPayments[]; providersReceivedSats: number; owedFulfilledSats: number }> {
  const { store } = cloud.deps;
  const domains: DomainPayments[] = [];
  for (const c of fleet.consumers) {
    const obligations = await store.listByConsumer(c.domain);
    const settlements = (await store.listSettlements(c.domain)).filter((s) => s.phase === 'broadcast');
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
  let providersReceivedSats = 0;
  for (const p of fleet.providers) {
    const hosted = await store.getHostedDomain(p.domain);
    if (!hosted?.payTo) continue;
    const wallet = await cloud.deps.payments(hosted.wallet);
    const got = await wallet.receivedSince(undefined);
    providersReceivedSats += got.payments.filter((x) => x.address === hosted.payTo).reduce((sum, x) => sum + x.amount, 0);
  }
  return { domains, providersReceivedSats, owedFulfilledSats: domains.reduce((sum, d) => sum + d.owedFulfilledSats, 0) };
}


await main();
