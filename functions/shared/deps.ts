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
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient, PublishCommand, type IoTDataPlaneClientConfig } from '@aws-sdk/client-iot-data-plane';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { UnavailableError } from '../../core/errors.ts';
import type { Json } from '../../core/types.ts';
import { EmbeddedLedger } from '../../adapters/ledger/embedded.ts';
import { MultiChainLedger } from '../../adapters/ledger/multichain.ts';
import { BitcoinPayments } from '../../adapters/payments/bitcoin.ts';
import { addressFormat } from '../../core/network.ts';
import type { Ledger, Notifier, Payments, Signer, WalletReads } from '../../adapters/ports.ts';
import { KmsSigner } from '../../adapters/signer/kms.ts';
import { LocalSigner } from '../../adapters/signer/local.ts';
import { DynamoStore } from '../../adapters/store/dynamo.ts';
import { loadConfig, type Config } from './config.ts';
import { DomainDirectory } from '../../service/directory.ts';
import { tracer } from './observability.ts';
import { rebuiltOnRotation, RpcCredentials, sameAuth, type RpcAuth } from './secrets.ts';

// The services' view of their dependencies (service/deps.ts); this module builds them.
export type { AwsClientSettings, Deps } from '../../service/deps.ts';
import type { AwsClientSettings, Deps } from '../../service/deps.ts';

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

function endpointOf(url: string, auth: { user: string; password: string }) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)), username: auth.user, password: auth.password };
}

/** A Ledger whose every call goes to the ledger `get` answers with (the current one after a credential rotation). */
function delegatingLedger(get: () => Promise<Ledger>, close: () => Promise<void>): Ledger {
  return {
    ensureStreams: async () => (await get()).ensureStreams(),
    publish: async (stream, id, keys, data) => (await get()).publish(stream, id, keys, data),
    publishBatch: async (stream, entries) => (await get()).publishBatch(stream, entries),
    listByKey: async (stream, key) => (await get()).listByKey(stream, key),
    listByKeyFrom: async (stream, key, start, count) => (await get()).listByKeyFrom(stream, key, start, count),
    list: async (stream, start, count) => (await get()).list(stream, start, count),
    identity: async () => (await get()).identity(),
    chainInfo: async () => (await get()).chainInfo(),
    setMembership: async (address, action) => (await get()).setMembership(address, action),
    health: async () => (await get()).health(),
    close,
  };
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
  const ledger = delegatingLedger(get, async () => {
    if (p) await (await p.catch(() => undefined))?.close();
  });
  return {
    ...ledger,
    opened: () => value,
    // a ledger that cannot even be opened is unhealthy, not an error
    health: () => ledger.health().catch((e: unknown) => ({ ok: false, detail: (e as Error).message })),
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
  /** The DynamoDB client's transport (the embedded cloud: in-process to its stand-in); else the SDK's HTTP handler. */
  dynamoRequestHandler?: DynamoDBClientConfig['requestHandler'];
  /** The IoT data plane client's transport (the embedded cloud: in-process to its broker); else the SDK's HTTP handler. */
  iotRequestHandler?: IoTDataPlaneClientConfig['requestHandler'];
  /** A ledger to use as is; its owner opens and closes it (ensureStreams is still called on first use). */
  ledger?: Ledger;
  now?: () => number;
}

export async function buildDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  let secretsClient: SecretsManagerClient | undefined;
  const aws = overrides.aws ? { region: overrides.aws.region, credentials: overrides.aws.credentials } : {};
  // Every SDK client is traced (X-Ray subsegments per call; a no-op outside Lambda).
  const secrets = () => (secretsClient ??= tracer.captureAWSv3Client(new SecretsManagerClient(aws)));
  // Secrets re-read after their max age, so a rotation is picked up without a cold start.
  const creds = new RpcCredentials(secrets, config.secretsMaxAgeSeconds);

  const dynamo = tracer.captureAWSv3Client(
    new DynamoDBClient({
      ...aws,
      ...(overrides.dynamoEndpoint ? { endpoint: overrides.dynamoEndpoint } : {}),
      ...(overrides.dynamoRequestHandler ? { requestHandler: overrides.dynamoRequestHandler } : {}),
    }),
  );
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
      const target = config.ledger;
      const node = rebuiltOnRotation(
        () => creds.get(target),
        async (auth) =>
          new MultiChainLedger({
            url: target.url,
            chainName: target.chainName,
            ...auth,
            ...(target.publisher ? { publisher: target.publisher } : {}),
          }),
        (m) => m.close(),
      );
      l = delegatingLedger(() => node.get(), () => node.close());
    }
    await l.ensureStreams();
    return l;
  });

  // One adapter per wallet and credential, per Deps: hubs in one process keep their wallets apart.
  // Rebuilt when the credentials read (at most max-age old) differ from its own.
  const walletsOf = (target: typeof config.bitcoin.node, walletUrl: string, create: boolean) => {
    const wallets = new Map<string, { auth: RpcAuth; ready: Promise<BitcoinPayments> }>();
    const close = async (): Promise<void> => {
      for (const w of wallets.values()) await (await w.ready.catch(() => undefined))?.close();
      wallets.clear();
    };
    const get = async (wallet: string): Promise<BitcoinPayments> => {
      const auth = await creds.get(target);
      const cached = wallets.get(wallet);
      if (cached && sameAuth(cached.auth, auth)) return cached.ready;
      if (cached) void cached.ready.then((p) => p.close(), () => undefined);
      const ready = (async () => {
        const adapter = new BitcoinPayments({
          kind: config.bitcoin.kind,
          node: endpointOf(target.url, auth),
          wallet: { ...endpointOf(walletUrl, auth), name: wallet },
          minConfirmations: config.confirmations,
          addressFormat: addressFormat(config.bitcoin.network, config.bitcoin.kind),
          fees: config.bitcoin.fees,
        });
        if (create) await adapter.ensureWallet();
        return adapter;
      })();
      const entry = { auth, ready };
      ready.catch(() => {
        if (wallets.get(wallet) === entry) wallets.delete(wallet);
      });
      wallets.set(wallet, entry);
      return ready;
    };
    return { get, close };
  };
  const spending = walletsOf(config.bitcoin.node, config.bitcoin.walletUrl, true);
  const payments = (wallet: string): Promise<Payments> => spending.get(wallet);
  // The read-only bitcoind user (rpcwhitelist) when configured, else the node's own credentials (embedded cloud).
  const readerTarget = config.bitcoin.reader ?? config.bitcoin.node;
  const reading = walletsOf(readerTarget, config.bitcoin.reader ? readerTarget.url : config.bitcoin.walletUrl, false);
  const walletReads = (wallet: string): Promise<WalletReads> => reading.get(wallet);
  const bitcoinHealth = async () => {
    const auth = await creds.get(readerTarget);
    // no wallet call: node health only
    const node = endpointOf(readerTarget.url, auth);
    const adapter = new BitcoinPayments({ kind: config.bitcoin.kind, node, wallet: { ...node, name: '' } });
    try {
      return await adapter.health();
    } finally {
      await adapter.close();
    }
  };

  const iot = tracer.captureAWSv3Client(
    new IoTDataPlaneClient({
      ...aws,
      ...(config.iotDataEndpoint ? { endpoint: config.iotDataEndpoint } : {}),
      ...(overrides.iotRequestHandler ? { requestHandler: overrides.iotRequestHandler } : {}),
    }),
  );
  const notifier: Notifier = {
    async publish(topic: string, payload: Json, qos: 0 | 1 = 1) {
      try {
        await iot.send(new PublishCommand({ topic, qos, payload: new TextEncoder().encode(JSON.stringify(payload)) }));
      } catch (e) {
        throw new UnavailableError(`IoT publish to ${topic} failed`, { cause: String((e as Error).message ?? e) });
      }
    },
  };

  // KMS is reached on first use only (the SDK honours AWS_ENDPOINT_URL_KMS).
  let kms: KMSClient | undefined;
  const signer: Signer =
    config.signer.kind === 'local'
      ? await LocalSigner.open(config.signer.file)
      : new KmsSigner((kms = tracer.captureAWSv3Client(new KMSClient(aws))), {
          tags: config.signer.tags,
          ...(config.signer.keyPolicy ? { keyPolicy: config.signer.keyPolicy } : {}),
        });

  const now = overrides.now ?? (() => Date.now());
  const deps: Deps = { config, store, ledger, payments, walletReads, notifier, bitcoinHealth, signer, directory: new DomainDirectory(ledger, store), now, aws };
  closers.set(deps, async () => {
    if (!given) await ledger.close();
    await spending.close();
    await reading.close();
    store.close();
    iot.destroy();
    kms?.destroy();
    secretsClient?.destroy();
  });
  return deps;
}
