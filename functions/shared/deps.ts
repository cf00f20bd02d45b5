/**
 * The one place where adapters are chosen and built, once per process (cold
 * start). Handlers and services receive these dependencies; nothing below
 * this file knows whether it runs on AWS, LocalStack or the embedded cloud:
 * the SDK clients honour AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, and
 * the ledger and Bitcoin endpoints come from the configuration.
 */
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
}

let current: Promise<Deps> | undefined;

/** Dependencies built from process.env on first call, then reused (Lambda cold start). */
export function getDeps(): Promise<Deps> {
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
  if (!deps) return;
  await deps.ledger.close();
  for (const p of wallets.values()) await (await p).close();
  wallets.clear();
  deps.store.close();
}

const wallets = new Map<string, Promise<Payments>>();

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
    listByKey: async (stream, key) => (await get()).listByKey(stream, key),
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

export async function buildDeps(config: Config): Promise<Deps> {
  let secretsClient: SecretsManagerClient | undefined;
  const secrets = () => (secretsClient ??= new SecretsManagerClient({}));

  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const store = new DynamoStore(doc, config.tableName);

  // The ledger and bitcoind are reached (and their secrets read) on first use only,
  // so a function that never touches them needs no grant for them.
  const ledger = lazyLedger(async () => {
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

  const iot = new IoTDataPlaneClient(config.iotDataEndpoint ? { endpoint: config.iotDataEndpoint } : {});
  const notifier: Notifier = {
    async publish(topic: string, payload: Json, qos: 0 | 1 = 1) {
      try {
        await iot.send(new PublishCommand({ topic, qos, payload: new TextEncoder().encode(JSON.stringify(payload)) }));
      } catch (e) {
        throw new UnavailableError(`IoT publish to ${topic} failed`, { cause: String((e as Error).message ?? e) });
      }
    },
  };

  const now = () => Date.now();
  return { config, store, ledger, payments, notifier, directory: new DomainDirectory(ledger, store), now };
}
