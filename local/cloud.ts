/**
 * The embedded cloud: every AWS part the system uses, stood in by a real
 * local implementation, wired to the very Lambda handlers that CDK deploys.
 *
 *   DynamoDB      → dynalite (in memory, or on disk with `dataDir`), or any endpoint given as `dynamoEndpoint`
 *   IoT Core      → aedes with per-thing authentication/authorisation and topic rules
 *   IoT data API  → a node:http front speaking `POST /topics/{topic}` (the handlers use the real IoTDataPlaneClient)
 *   API Gateway   → a node:http front turning requests into HTTP API 2.0 events
 *   EventBridge   → an in-process scheduler
 *   bitcoind      → bcoin regtest in memory (or a given regtest node: a real bitcoind in test/real-nodes)
 *   MultiChain    → the embedded hash-linked ledger (a JSONL file with `dataDir`), or a given Ledger
 *
 * The handlers read their configuration from an environment map, exactly as
 * on Lambda: this file only sets the endpoints. That map is the hub's own and
 * is never written to process.env: the hub's Deps are built from it
 * (loadConfig + buildDeps) and every invocation of a handler (HTTP route,
 * topic rule, scheduled job, runJob) runs inside runWithDeps(hub's Deps), so
 * several hubs can run in one process (local/federation.ts).
 */
// first: Powertools' settings must be in place before any handler module loads
import './powertools-env.ts';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { handler as accept } from '../functions/accept.ts';
import { handler as domains } from '../functions/domains.ts';
import { handler as enrol } from '../functions/enrol.ts';
import { handler as offer } from '../functions/offer.ts';
import { handler as publish } from '../functions/publish.ts';
import { handler as query } from '../functions/query.ts';
import { handler as settle } from '../functions/settle.ts';
import { handler as watch } from '../functions/watch.ts';
import { handler as follow } from '../functions/follow.ts';
import { handler as rebalance } from '../functions/rebalance.ts';
import { buildDeps, closeDeps, runWithDeps, type Deps } from '../functions/shared/deps.ts';
import { loadConfig } from '../functions/shared/config.ts';
import { DEFAULT_ROUTE, ROUTES, TOPIC_ROUTES, type HandlerName } from '../functions/routes.ts';
import type { Context } from 'aws-lambda';
import type { PublicKeyRef } from '../core/types.ts';
import { DEFAULT_TOPIC_ROOT, ingestRuleName, topicsUnder } from '../service/topics.ts';
import { startRegtest, startRegtestInThread, type RegtestNode } from './bitcoin.ts';
import { lostThread } from './threads.ts';
import { MapThingRegistry, startBroker, type LocalBroker } from './broker.ts';
import { createStateTable, localDynamoClient, startDynamo, type InProcessHandler, type LocalDynamo } from './dynamo.ts';
import { startHttpFront, type Route } from './http.ts';
import { InProcessIotData, publishQos } from './iot-data.ts';
import { countHub, historyHandler, sampleHub, startHistory } from './history.ts';
import { LOCAL_REGION, lambdaContext } from './lambda.ts';
import { EmbeddedLedger } from '../adapters/ledger/embedded.ts';
import type { Ledger } from '../adapters/ports.ts';
import { logLine, startScheduler, type Scheduler } from './scheduler.ts';

export interface CloudOptions {
  /** Keep the ledger (JSONL) and DynamoDB (LevelDB) here; in memory when absent. bcoin is always in memory. */
  dataDir?: string;
  /** Job periods in ms; 0 disables a job (tests run them by hand with runJob). */
  schedule?: Partial<Record<JobName, number>>;
  /** Extra environment for the handlers (e.g. CONFIRMATIONS, CREDIT_BASE). */
  env?: Record<string, string>;
  apiPort?: number;
  brokerPort?: number;
  /** Where failures of scheduled jobs are reported (default: one line on stderr). */
  log?: (message: string, error: unknown) => void;
  /**
   * Use this DynamoDB endpoint (e.g. DynamoDB Local, see local/dynamodb-local.ts)
   * instead of starting dynalite: a table with a unique name is created there.
   * The handlers only see a different AWS_ENDPOINT_URL_DYNAMODB and TABLE_NAME.
   */
  dynamoEndpoint?: string;
  /**
   * Run the embedded stand-ins that start here — DynamoDB (dynalite and its
   * front) and the bcoin regtest node — each in a worker thread of its own, on the
   * other core (local/dynamo.ts serveFrontInThread, local/bitcoin.ts
   * startRegtestInThread): what `npm start`, federations and the system benchmark
   * do. Default false (in this thread: a cloud starts about a second sooner,
   * which the test suites prefer).
   */
  threads?: boolean;
  /** With `dynamoEndpoint`: reach it through this in-process transport (an embedded front of this process, e.g. the federation's shared one). */
  dynamoTransport?: InProcessHandler;
  /**
   * Use this regtest node (shared by the hubs of a federation: one Bitcoin
   * network) instead of starting one. The caller stops it. Its `kind` sets
   * BITCOIN_KIND: a real regtest bitcoind (kind 'bitcoind') is reached through
   * the same adapter as on ECS, and `fund` mines to it.
   */
  regtest?: RegtestNode;
  /**
   * Use this ledger (a hub's node of an EmbeddedLedgerNetwork, or a
   * MultiChainLedger on the hub's own real node) instead of opening an
   * embedded ledger of its own. The caller closes it.
   */
  ledger?: Ledger;
  /** The ledger publishing address of this hub (LEDGER_PUBLISHER); default `local-hub`, or the given ledger's. */
  publisher?: string;
  /** Sample the live page's reputation history every second (default true; false: only when asked; bench/store.ts and tests that record every store request turn it off). */
  history?: boolean;
}

export type JobName = 'publish' | 'watch' | 'settle' | 'follow' | 'mine' | 'rebalance';

export interface LocalCloud {
  /** Base URL of the HTTP API. */
  readonly api: string;
  readonly broker: LocalBroker;
  readonly things: MapThingRegistry;
  readonly regtest: RegtestNode;
  readonly dynamo: LocalDynamo;
  readonly deps: Deps;
  /**
   * The hub's handler environment (what Lambda would see). Never written to
   * process.env; a caller that must run handlers outside this module (e.g.
   * esbuild bundles, which carry their own copy of deps.ts) may export it.
   */
  readonly env: Readonly<Record<string, string>>;
  readonly scheduler: Scheduler;
  /**
   * Stop the MQTT broker and start a fresh one on the same port with the same
   * things and rules (fault tests: IoT Core endpoint restart). Sessions are lost,
   * as on a broker that keeps none; devices reconnect and subscribe again.
   */
  restartBroker(): Promise<void>;
  /** The embedded ledger behind the handlers (opened on first use). */
  ledger(): Promise<EmbeddedLedger>;
  /** Register an IoT thing (AWS: create-thing with attribute domain + its certificate). */
  registerThing(thing: string, domain: string, key: PublicKeyRef): void;
  /** Run one scheduled job now; what it returned (the follow job: its FollowSummary, also added to followTotals). */
  runJob(name: JobName): Promise<unknown>;
  /**
   * Sums of the numeric fields of every `follow` run's result (the ledger
   * follower's summary, e.g. items read and invalid items skipped); empty
   * until the follower runs here.
   */
  readonly followTotals: Readonly<Record<string, number>>;
  /** Run `fn` as an invocation of this hub: getDeps() inside answers with this hub's Deps (tests calling a handler directly). */
  invoke<T>(fn: () => Promise<T>): Promise<T>;
  /** Regtest faucet: mine `blocks` to the domain's wallet and mature them. */
  fund(domain: string, blocks?: number): Promise<void>;
  /** Call the HTTP API like a client would. */
  call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export const DEFAULT_SCHEDULE: Record<JobName, number> = { publish: 250, watch: 500, settle: 2_000, follow: 500, mine: 1_000, rebalance: 10_000 };

/** Every Lambda entry, by the name CDK gives it. */
const HANDLERS: Record<HandlerName, unknown> = { domains, enrol, offer, accept, publish, watch, settle, follow, query, rebalance };

export async function startCloud(opts: CloudOptions = {}): Promise<LocalCloud> {
  const log = opts.log ?? logLine;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true });
    const dynamo = opts.dynamoEndpoint
      ? await useDynamo(opts.dynamoEndpoint, opts.dynamoTransport)
      : await startDynamo({ ...(opts.dataDir ? { path: join(opts.dataDir, 'dynamodb') } : {}), thread: opts.threads ?? false, lost: lostThread('the embedded DynamoDB', log) });
    stops.push(() => dynamo.stop());
    // with a data directory, wallets are re-created with the same keys each run (bcoin's chain is in memory)
    const regtestOptions = opts.dataDir ? { walletSeed: await walletSeed(opts.dataDir) } : {};
    const regtest = opts.regtest ?? (opts.threads ? await startRegtestInThread(regtestOptions, lostThread('the embedded regtest node', log)) : await startRegtest(regtestOptions));
    if (!opts.regtest) stops.push(() => regtest.stop());

    const things = new MapThingRegistry();
    const backend = { username: 'backend', password: randomBytes(16).toString('hex') };
    // the stage's topic root, as the handlers read it (TOPIC_ROOT) and the IoT policy confines devices to it
    const topicRoot = opts.env?.['TOPIC_ROOT'] ?? DEFAULT_TOPIC_ROOT;
    let broker = await startBroker({ things, backend, topicRoot, ...(opts.brokerPort ? { port: opts.brokerPort } : {}) });
    stops.push(() => broker.stop());

    // The IoT data plane endpoint: the handlers' IoTDataPlaneClient posts here.
    const iotData = await startHttpFront({
      routes: [
        {
          method: 'POST',
          path: '/topics/{topic+}',
          functionName: 'iot-data',
          handler: async (event) => {
            const topic = decodeURIComponent(event.pathParameters?.topic ?? '');
            const raw = event.body ?? '';
            const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
            await broker.publish(topic, text, publishQos(event.queryStringParameters?.qos));
            return { statusCode: 200, body: '{}' };
          },
        },
      ],
    });
    stops.push(() => iotData.stop());

    const env: Record<string, string> = {
      TABLE_NAME: dynamo.tableName,
      AWS_REGION: dynamo.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      IOT_DATA_ENDPOINT: iotData.url,
      LEDGER_KIND: 'embedded',
      LEDGER_PUBLISHER: opts.publisher ?? (opts.ledger instanceof EmbeddedLedger ? opts.ledger.publisher : undefined) ?? 'local-hub',
      BITCOIN_KIND: regtest.kind ?? 'bcoin',
      BITCOIN_RPC_URL: `http://${regtest.nodeRpc.host}:${regtest.nodeRpc.port}`,
      BITCOIN_WALLET_RPC_URL: `http://${regtest.walletRpc.host}:${regtest.walletRpc.port}`,
      BITCOIN_RPC_USER: regtest.nodeRpc.username,
      BITCOIN_RPC_PASSWORD: regtest.nodeRpc.password,
      CONFIRMATIONS: '1',
      // the settle job's period here (tests that run it by hand: 1 ms): minimum payment term and grace derive from it
      SETTLE_INTERVAL_MS: String(Math.max(1, opts.schedule?.settle ?? DEFAULT_SCHEDULE.settle)),
      LOG_JOBS: 'false',
      ...(opts.dataDir && !opts.ledger ? { LEDGER_FILE: join(opts.dataDir, 'ledger.jsonl') } : {}),
      // domain keys: the local signer (a key file beside the data, never in the table), KMS's stand-in
      SIGNER_KIND: 'local',
      ...(opts.dataDir ? { SIGNER_KEY_FILE: join(opts.dataDir, 'keys.json') } : {}),
      ...opts.env,
    };
    // The hub's Deps from its own environment map. The AWS clients get the
    // region, credentials and endpoint that Lambda's SDK would read from the
    // environment, explicitly, since process.env is not touched.
    const deps = await buildDeps(loadConfig(env), {
      aws: { region: env.AWS_REGION!, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! } },
      ...(env.AWS_ENDPOINT_URL_DYNAMODB ? { dynamoEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB } : {}),
      // the embedded stand-ins are reached in-process (same SDK calls, no loopback HTTP)
      ...(dynamo.requestHandler ? { dynamoRequestHandler: dynamo.requestHandler } : {}),
      iotRequestHandler: new InProcessIotData((topic, text, qos) => broker.publish(topic, text, qos)),
      ...(opts.ledger ? { ledger: opts.ledger } : {}),
    });
    stops.push(() => closeDeps(deps));
    // A real node keeps its wallets; this one starts empty each run. With a kept table, re-create the
    // hosted domains' wallets (same keys, from the data directory's seed) before any function reads one:
    // watch, follow and query only read wallets (Deps.walletReads), as on AWS with the read-only user.
    if (opts.dataDir && !opts.regtest) {
      for (const d of await deps.store.listHostedDomains()) await deps.payments(d.wallet);
    }
    /** A handler as this hub invokes it: inside the hub's Deps scope. */
    const scoped =
      <E, R>(h: (event: E, context: Context) => Promise<R>) =>
      (event: E, context: Context): Promise<R> =>
        runWithDeps(deps, () => h(event, context));

    // the run's history for the live page (local only): sampled from the start, served whole to a late visitor
    const sampler = startHistory(() => sampleHub(deps), opts.history === false ? 0 : 1_000);
    stops.push(() => sampler.stop());
    const api = await startHttpFront({
      ...(opts.apiPort ? { port: opts.apiPort } : {}),
      // the deployed API's routes (functions/routes.ts), each to the same handler module
      routes: [
        ...ROUTES.map((r) => ({
          method: r.method,
          path: r.path,
          handler: r.handler === 'enrol' ? thingOnEnrol(scoped(HANDLERS.enrol as Route['handler']), things) : scoped(HANDLERS[r.handler] as Route['handler']),
          functionName: r.handler,
        })),
        { method: 'GET', path: '/ui/history', handler: historyHandler(sampler.history, () => countHub(deps)) as Route['handler'], functionName: 'ui-history' },
      ],
      static: { dir: new URL('./web', import.meta.url).pathname, prefix: '/ui' },
      // the deployed API's $default route: a typed 404 from the same function
      fallback: { handler: scoped(HANDLERS[DEFAULT_ROUTE.handler] as Route['handler']), functionName: DEFAULT_ROUTE.handler },
    });
    stops.push(() => api.stop());

    // the deployed topic rules (functions/routes.ts), each to the same handler module
    const addRules = (b: LocalBroker) => {
      for (const { kind, handler } of TOPIC_ROUTES) {
        const h = scoped(HANDLERS[handler] as (event: unknown, context: Context) => Promise<unknown>);
        // named as the IoT stack names it (lib/constructs/topic-rules.ts): devices reach it by Basic Ingest
        b.addRule({ name: ingestRuleName(topicRoot, kind), topicFilter: topicsUnder(topicRoot).rule(kind), handler: (e) => h(e, lambdaContext(handler)) });
      }
    };
    addRules(broker);

    const schedule = { ...DEFAULT_SCHEDULE, ...opts.schedule };
    const scheduled = { source: 'aws.events', 'detail-type': 'Scheduled Event' };
    const followTotals: Record<string, number> = {};
    const inHub = <T>(fn: () => Promise<T>) => runWithDeps(deps, fn);
    const jobs: Record<JobName, () => Promise<unknown>> = {
      publish: () => inHub(() => publish(scheduled, lambdaContext('publish'))),
      watch: () => inHub(() => watch(scheduled, lambdaContext('watch'))),
      settle: () => inHub(() => settle(scheduled as never, lambdaContext('settle'))),
      follow: async () => {
        const result = await inHub(() => follow(scheduled, lambdaContext('follow')));
        addTotals(followTotals, result);
        return result;
      },
      rebalance: () => inHub(() => rebalance(scheduled, lambdaContext('rebalance'))),
      // regtest has no miners: a block whenever something waits in the mempool
      mine: () => mineIfPending(regtest),
    };
    const scheduler = startScheduler(
      (Object.keys(jobs) as JobName[]).filter((n) => schedule[n] > 0).map((n) => ({ name: n, everyMs: schedule[n], run: jobs[n] })),
      { log },
    );
    stops.push(() => scheduler.stop());

    const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    };

    return {
      api: api.url,
      get broker() {
        return broker;
      },
      restartBroker: async () => {
        const port = broker.port;
        await broker.stop();
        broker = await startBroker({ things, backend, topicRoot, port });
        addRules(broker);
      },
      things,
      regtest,
      dynamo,
      deps,
      env,
      followTotals,
      scheduler,
      ledger: async () => {
        await deps.ledger.health(); // opens it
        const l = opts.ledger ?? (deps.ledger as { opened?: () => unknown }).opened?.();
        if (!(l instanceof EmbeddedLedger)) throw new Error('the embedded cloud runs on the embedded ledger');
        return l;
      },
      registerThing: (thing, domain, key) => {
        things.put(thing, { domain, key });
      },
      runJob: (name) => jobs[name](),
      invoke: (fn) => runWithDeps(deps, fn),
      fund: async (domain, blocks = 2) => {
        const hosted = await deps.store.getHostedDomain(domain);
        if (!hosted) throw new Error(`no hosted domain ${domain}`);
        const wallet = await deps.payments(hosted.wallet);
        await regtest.mine(blocks, await wallet.newAddress('faucet'));
        await regtest.mine(100); // coinbase maturity
      },
      call,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** An external DynamoDB endpoint with a fresh table (`oc-state-<random>`); stop() only closes the client. */
async function useDynamo(endpoint: string, requestHandler?: InProcessHandler): Promise<LocalDynamo> {
  const client = localDynamoClient(endpoint, LOCAL_REGION, requestHandler);
  const tableName = `oc-state-${randomBytes(6).toString('hex')}`;
  try {
    await createStateTable(client, tableName);
  } catch (e) {
    client.destroy();
    throw e;
  }
  return { endpoint, region: LOCAL_REGION, tableName, client, ...(requestHandler ? { requestHandler } : {}), stop: async () => client.destroy() };
}

/**
 * Locally, an enrolled device is also a thing of the embedded broker, with the
 * enrolled key as its "certificate" (on AWS the thing and its X.509 certificate
 * come from scripts/provision-fleet.sh; DESIGN: device keys may be the
 * certificate's keys). So a device started by hand, in another process, can
 * connect once it is enrolled through the HTTP API (`npm run admin -- enrol`).
 * The thing is taken from the credential the domain signed, not from the request.
 */
function thingOnEnrol(h: Route['handler'], things: MapThingRegistry): Route['handler'] {
  return async (event, context) => {
    const res = await h(event, context);
    const out = res as { statusCode?: number; body?: unknown };
    // the same handler revokes and renews: only a reply carrying a credential names a thing
    if (out.statusCode === 201 && typeof out.body === 'string') {
      const { credential } = JSON.parse(out.body) as { credential?: { body: { domain: string; deviceId: string; deviceKey: PublicKeyRef } } };
      if (credential) things.put(credential.body.deviceId, { domain: credential.body.domain, key: credential.body.deviceKey });
    }
    return res;
  };
}

/** Add the numeric top-level fields of a job's result to `totals`. */
function addTotals(totals: Record<string, number>, result: unknown): void {
  if (typeof result !== 'object' || result === null) return;
  for (const [k, v] of Object.entries(result)) if (typeof v === 'number' && Number.isFinite(v)) totals[k] = (totals[k] ?? 0) + v;
}

/** Regtest has no miners: mine a block when something waits in the mempool (the `mine` job). */
export async function mineIfPending(regtest: RegtestNode): Promise<void> {
  const info = (await fetchRpc(regtest, 'getmempoolinfo')) as { size?: number } | undefined;
  if ((info?.size ?? 0) > 0) await regtest.mine(1);
}

async function fetchRpc(node: RegtestNode, method: string, params: unknown[] = []): Promise<unknown> {
  const { host, port, username, password } = node.nodeRpc;
  const res = await fetch(`http://${host}:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
    body: JSON.stringify({ method, params, id: 1 }),
  });
  const out = (await res.json()) as { result?: unknown };
  return out.result;
}

/** The secret the embedded bcoin derives wallet keys from, kept in the data directory (mode 600). */
async function walletSeed(dir: string): Promise<Buffer> {
  const file = join(dir, 'bcoin-wallet-seed');
  try {
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const seed = randomBytes(32);
  await writeFile(file, seed.toString('hex'), { mode: 0o600 });
  return seed;
}
