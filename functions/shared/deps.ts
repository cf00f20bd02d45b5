/**
 * The one place where adapters are chosen and built, once per process (cold
 * start). Handlers and services receive these dependencies; nothing below
 * this file knows whether it runs on AWS, LocalStack or the embedded cloud:
 * the SDK clients honour AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, and
 * the ledger and Bitcoin endpoints come from the configuration.
 *
 * On Lambda there is one set of dependencies per process, built from
 * process.env. The embedded cloud runs several hubs in one process, each with
 * its own table, ledger node and endpoints: it builds each hub's Deps with
 * buildDeps() and runs every handler invocation inside runWithDeps(), so that
 * getDeps() answers with that hub's Deps (an AsyncLocalStorage scope follows
 * the invocation through every await) and nothing is written to process.env.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UnavailableError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';
import { EmbeddedLedger } from '../../adapters/ledger/embedded.ts';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import type { Ledger, Notifier, Payments } from '../../adapters/ports.ts';
import { DynamoStore } from '../../adapters/store/dynamo.ts';
import { loadConfig, type Config, type RpcTarget } from './config.ts';
import { DomainDirectory } from '../../service/directory.ts';

export interface Deps {
  config: Config;
  store: DynamoStore;
  ledger: Ledger;
  /** The Bitcoin wallet of one hosted domain (created on first use). */
  payments(wallet: string): Promise<Payments>;
  notifier: Notifier;
  directory: DomainDirectory;
  now: () => number;
  /**
   * Settings for AWS SDK clients a handler builds itself (e.g. ECS for
   * /health): empty on Lambda (the SDK reads the environment), explicit region
   * and credentials in the embedded cloud, which leaves process.env alone.
   */
  aws: AwsClientSettings;
}

export interface AwsClientSettings {
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

let current: Promise<Deps> | undefined;

const scope = new AsyncLocalStorage<Deps>();

/**
 * Run `fn` with `deps` as the answer of getDeps() (for everything it awaits,
 * timers and callbacks included). The embedded cloud wraps each invocation of
 * a hub's handlers in this.
 */
export function runWithDeps<T>(deps: Deps, fn: () => T): T {
  return scope.run(deps, fn);
}

/**
 * The dependencies of the current invocation: the scoped ones inside
 * runWithDeps(), else the process-wide ones, built from process.env on first
 * call and then reused (Lambda cold start).
 */
export function getDeps(): Promise<Deps> {
  const scoped = scope.getStore();
  if (scoped) return Promise.resolve(scoped);
  current ??= buildDeps(loadConfig(process.env)).catch((e: unknown) => {
    current = undefined; // a failed cold start must not poison later invocations
    throw e;
  });
  return current;
}

/** Forget the cached dependencies (closing them); the next getDeps() rebuilds from the environment. */
export async function resetDeps(): Promise<void> {
  const d = current;
  current = undefined;
  if (!d) return;
  const deps = await d.catch(() => undefined);
  if (deps) await closeDeps(deps);
}

/** How to release what buildDeps() opened, per Deps (a Deps is a plain record that tests may also build). */
const closers = new WeakMap<Deps, () => Promise<void>>();

/**
 * Release what buildDeps() opened for `deps`: the ledger (unless it was handed
 * in, then its owner closes it), the wallets and the DynamoDB client.
 */
export async function closeDeps(deps: Deps): Promise<void> {
  const close = closers.get(deps);
  closers.delete(deps);
  await close?.();
}

async function credentials(target: RpcTarget, secrets: () => SecretsManagerClient): Promise<{ user: string; password: string }> {
  if (target.user !== undefined && target.password !== undefined) return { user: target.user, password: target.password };
  if (!target.secretArn) throw new Error(`invalid configuration: no RPC credentials for ${target.url}`);
  const out = await secrets().send(new GetSecretValueCommand({ SecretId: target.secretArn }));
  const parsed = JSON.parse(out.SecretString ?? '{}') as { user?: string; password?: string };
  if (!parsed.user || !parsed.password) throw new Error(`secret ${target.secretArn} lacks user/password`);
  return { user: parsed.user, password: parsed.password };
}

function endpointOf(url: string, auth: { user: string; password: string }) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)), username: auth.user, password: auth.password };
}

/** A Ledger that opens the real one on first use (and again after a failed open). */
function lazyLedger(open: () => Promise<Ledger>): Ledger & { opened(): Ledger | undefined } {
  let p: Promise<Ledger> | undefined;
  let value: Ledger | undefined;
  const get = () => {
    p ??= open().then(
      (l) => (value = l),
      (e: unknown) => {
        p = undefined;
        throw e instanceof UnavailableError ? e : new UnavailableError(`ledger unavailable: ${(e as Error).message}`);
      },
    );
    return p;
  };
  return {
    opened: () => value,
    ensureStreams: async () => (await get()).ensureStreams(),
    publish: async (stream, id, keys, data) => (await get()).publish(stream, id, keys, data),
    publishBatch: async (stream, entries) => (await get()).publishBatch(stream, entries),
    listByKey: async (stream, key) => (await get()).listByKey(stream, key),
    listByKeyFrom: async (stream, key, start, count) => (await get()).listByKeyFrom(stream, key, start, count),
    list: async (stream, start, count) => (await get()).list(stream, start, count),
    identity: async () => (await get()).identity(),
    health: async () => {
      try {
        return await (await get()).health();
      } catch (e) {
        return { ok: false, detail: (e as Error).message };
      }
    },
    close: async () => {
      if (p) await (await p.catch(() => undefined))?.close();
    },
  };
}

/**
 * What a caller that is not Lambda hands in instead of the process environment
 * (the embedded cloud, one per hub): the AWS clients' region, credentials and
 * endpoints, and a ready ledger (a hub's own node of a shared ledger network).
 */
export interface DepsOverrides {
  /** Region and static credentials for the AWS SDK clients (else the SDK's default chain: env, role). */
  aws?: Required<AwsClientSettings>;
  /** DynamoDB endpoint (else AWS_ENDPOINT_URL_DYNAMODB or the regional endpoint). */
  dynamoEndpoint?: string;
  /** A ledger to use as is; its owner opens and closes it (ensureStreams is still called on first use). */
  ledger?: Ledger;
  now?: () => number;
}

export async function buildDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  let secretsClient: SecretsManagerClient | undefined;
  const aws = overrides.aws ? { region: overrides.aws.region, credentials: overrides.aws.credentials } : {};
  const secrets = () => (secretsClient ??= new SecretsManagerClient(aws));

  const dynamo = new DynamoDBClient({ ...aws, ...(overrides.dynamoEndpoint ? { endpoint: overrides.dynamoEndpoint } : {}) });
  const doc = DynamoDBDocumentClient.from(dynamo, {
    marshallOptions: { removeUndefinedValues: true },
  });
  const store = new DynamoStore(doc, config.tableName);

  // The ledger and bitcoind are reached (and their secrets read) on first use only,
  // so a function that never touches them needs no grant for them.
  const given = overrides.ledger;
  const ledger = lazyLedger(async () => {
    if (given) {
      await given.ensureStreams();
      return given;
    }
    let l: Ledger;
    if (config.ledger.kind === 'embedded') {
      l = await EmbeddedLedger.open({ file: config.ledger.file, publisher: config.ledger.publisher });
    } else {
      const auth = await credentials(config.ledger, secrets);
      l = new MultiChainLedger({
        url: config.ledger.url,
        chainName: config.ledger.chainName,
        ...auth,
        ...(config.ledger.publisher ? { publisher: config.ledger.publisher } : {}),
      });
    }
    await l.ensureStreams();
    return l;
  });

  // One adapter per wallet, per Deps: hubs in one process keep their wallets apart.
  const wallets = new Map<string, Promise<Payments>>();
  let btcAuth: Promise<{ user: string; password: string }> | undefined;
  const payments = (wallet: string): Promise<Payments> => {
    const cached = wallets.get(wallet);
    if (cached) return cached;
    const ready = (async () => {
      btcAuth ??= credentials(config.bitcoin.node, secrets);
      const auth = await btcAuth.catch((e: unknown) => {
        btcAuth = undefined;
        throw e;
      });
      const adapter = new BitcoinPayments({
        kind: config.bitcoin.kind,
        node: endpointOf(config.bitcoin.node.url, auth),
        wallet: { ...endpointOf(config.bitcoin.walletUrl, auth), name: wallet },
      });
      await adapter.ensureWallet();
      return adapter as Payments;
    })();
    ready.catch(() => wallets.delete(wallet));
    wallets.set(wallet, ready);
    return ready;
  };

  const iot = new IoTDataPlaneClient({ ...aws, ...(config.iotDataEndpoint ? { endpoint: config.iotDataEndpoint } : {}) });
  const notifier: Notifier = {
    async publish(topic: string, payload: Json, qos: 0 | 1 = 1) {
      try {
        await iot.send(new PublishCommand({ topic, qos, payload: new TextEncoder().encode(JSON.stringify(payload)) }));
      } catch (e) {
        throw new UnavailableError(`IoT publish to ${topic} failed`, { cause: String((e as Error).message ?? e) });
      }
    },
  };

  const now = overrides.now ?? (() => Date.now());
  const deps: Deps = { config, store, ledger, payments, notifier, directory: new DomainDirectory(ledger, store), now, aws };
  closers.set(deps, async () => {
    if (!given) await ledger.close();
    for (const p of wallets.values()) await (await p.catch(() => undefined))?.close();
    wallets.clear();
    store.close();
    iot.destroy();
    secretsClient?.destroy();
  });
  return deps;
}
