import { App, Tags, Validations, type AppProps, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BackendStack } from './backend-stack.ts';
import { ChainStack } from './chain-stack.ts';
import { DataStack } from './data-stack.ts';
import { IotStack } from './iot-stack.ts';
import { BITCOIN_NETWORKS, type BitcoinNetwork } from '../core/network.ts';
import { LocalstackFreeBackendStack } from './localstack-free-stack.ts';

/**
 * Default MultiChain chain name (override with `-c chainName=...`). Other
 * context keys: `multichainSha256` (required to build the MultiChain image at
 * deploy), `stage` (default `dev`, in every stack name: `oc-<stage>-chain` …),
 * `bitcoinNetwork` (regtest | signet | testnet4 | mainnet), `bitcoinPrune`
 * (MiB, off regtest), `bitcoinVersion` + `bitcoinSha256` (another Bitcoin Core
 * release and its archive digest; default 28.1 with its pinned digest),
 * `joinChain` (host:port of a node of another organisation's chain to join
 * instead of creating one), `p2pAllowCidrs` (comma-separated CIDRs allowed to
 * reach this node's P2P port through a Network Load Balancer; none: no load
 * balancer). See docs/deploy.md.
 */
export const DEFAULT_CHAIN_NAME = 'oc-chain';
/** Default deployment stage (`-c stage=...`): part of every stack name, so stages share an account and region. */
export const DEFAULT_STAGE = 'dev';
const STAGE = /^[a-z][a-z0-9-]{0,15}$/;

const CROSS_STACK_STRENGTH = '@aws-cdk/core:defaultCrossStackReferences';

export interface ObligationChainAppOptions {
  /** Passed to `new App()` (tests pass `outdir`, `context`). */
  readonly appProps?: AppProps;
  /** Register the cdk-nag AwsSolutions pack as a synth-time validation plugin. */
  readonly nag?: boolean;
  /** Leave undefined for environment-agnostic stacks (synth needs no credentials). */
  readonly env?: Environment;
}

/** The four stacks, wired. */
export interface ObligationChainApp {
  readonly app: App;
  readonly chain: ChainStack;
  readonly data: DataStack;
  readonly backend: BackendStack;
  readonly iot: IotStack;
  readonly stage: string;
}

/**
 * Builds the whole deployment: ChainStack (network, ECS nodes, EFS, secrets)
 * and DataStack (table) hold state and are retained; BackendStack and IotStack
 * are stateless and depend on them (references go one way only).
 */
export function buildApp(options: ObligationChainAppOptions = {}): ObligationChainApp {
  const app = new App(options.appProps);
  // Keep the producer-protecting behaviour of cross-stack exports explicit.
  if (app.node.tryGetContext(CROSS_STACK_STRENGTH) === undefined) app.node.setContext(CROSS_STACK_STRENGTH, 'strong');
  const chainName = contextString(app, 'chainName') ?? DEFAULT_CHAIN_NAME;
  const stage = contextString(app, 'stage') ?? DEFAULT_STAGE;
  if (!STAGE.test(stage)) throw new Error(`-c stage=${stage}: lower-case letters, digits and '-', starting with a letter, at most 16`);
  const network = contextString(app, 'bitcoinNetwork') ?? 'regtest';
  if (!(BITCOIN_NETWORKS as readonly string[]).includes(network)) {
    throw new Error(`-c bitcoinNetwork=${network}: one of ${BITCOIN_NETWORKS.join(', ')}`);
  }
  const prune = contextString(app, 'bitcoinPrune');
  const name = (part: string) => `oc-${stage}-${part}`;
  const env = options.env;
  const stackProps = env === undefined ? {} : { env };

  const chain = new ChainStack(app, 'OcChain', {
    ...stackProps,
    stackName: name('chain'),
    chainName,
    multichainSha256: contextString(app, 'multichainSha256'),
    bitcoinSha256: contextString(app, 'bitcoinSha256'),
    bitcoinVersion: contextString(app, 'bitcoinVersion'),
    bitcoinNetwork: network as BitcoinNetwork,
    ...(prune === undefined ? {} : { bitcoinPruneMiB: Number(prune) }),
    ...joinAndAllow(app),
    description: 'obligation-chain: VPC, ECS cluster, MultiChain and bitcoind nodes on EFS',
  });
  const data = new DataStack(app, 'OcData', {
    ...stackProps,
    stackName: name('data'),
    description: 'obligation-chain: DynamoDB table (retained)',
  });
  const backend = new BackendStack(app, 'OcBackend', {
    ...stackProps,
    stackName: name('backend'),
    stage,
    chain,
    table: data.table,
    description: 'obligation-chain: Lambda handlers, HTTP API, schedules',
  });
  const iot = new IotStack(app, 'OcIot', {
    ...stackProps,
    stackName: name('iot'),
    stage,
    offer: backend.handlers.functions.offer,
    accept: backend.handlers.functions.accept,
    description: 'obligation-chain: IoT thing type, device policy, topic rules',
  });

  Tags.of(app).add('project', 'obligation-chain');
  Tags.of(app).add('managed-by', 'cdk');
  Tags.of(app).add('stage', stage);
  if (options.nag === true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, chain, data, backend, iot, stage };
}

function contextString(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** `-c target=localstack-free`: the stack set that LocalStack's free plan can deploy. */
export const LOCALSTACK_FREE_TARGET = 'localstack-free';

export interface LocalstackFreeApp {
  readonly app: App;
  readonly data: DataStack;
  readonly backend: LocalstackFreeBackendStack;
}

/**
 * The LocalStack free set: OcData (the table) and OcFreeBackend (the handlers
 * and schedules, the chain endpoints as parameters). No OcChain (ECS, EFS,
 * Cloud Map), no HTTP API, no OcIot: paid plans (docs/deploy.md).
 */
export function buildLocalstackFreeApp(options: ObligationChainAppOptions = {}): LocalstackFreeApp {
  const app = new App(options.appProps);
  const stackProps = options.env === undefined ? {} : { env: options.env };
  const data = new DataStack(app, 'OcData', { ...stackProps, description: 'obligation-chain: DynamoDB table (retained)' });
  const backend = new LocalstackFreeBackendStack(app, 'OcFreeBackend', {
    ...stackProps,
    table: data.table,
    description: 'obligation-chain on the LocalStack free plan: Lambda handlers and schedules; chain endpoints as parameters',
  });
  Tags.of(app).add('project', 'obligation-chain');
  Tags.of(app).add('managed-by', 'cdk');
  Tags.of(app).add('target', LOCALSTACK_FREE_TARGET);
  if (options.nag === true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, data, backend };
}

/** The app that `-c target=...` selects (default: the whole AWS deployment). */
export function buildTarget(options: ObligationChainAppOptions = {}): { app: App } {
  const probe = new App({ ...options.appProps });
  const target = contextString(probe, 'target');
  if (target === undefined || target === 'aws') return buildApp(options);
  if (target === LOCALSTACK_FREE_TARGET) return buildLocalstackFreeApp(options);
  throw new Error(`unknown -c target=${target} (aws or ${LOCALSTACK_FREE_TARGET})`);
}

/** `-c joinChain=host:port` and `-c p2pAllowCidrs=a/n,b/m`, checked at synth: a typo fails here, not at deploy. */
export function joinAndAllow(app: App): { joinChain?: string; p2pAllowCidrs: string[] } {
  const join = contextString(app, 'joinChain');
  if (join !== undefined && !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(join)) {
    throw new Error(`-c joinChain must be host:port (another organisation's JoinChain output), got ${join}`);
  }
  const raw = app.node.tryGetContext('p2pAllowCidrs') as unknown;
  const list = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(',') : [];
  const cidrs = list.map((c) => c.trim()).filter((c) => c.length > 0);
  for (const c of cidrs) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(c);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) throw new Error(`-c p2pAllowCidrs: not an IPv4 CIDR: ${c}`);
    if (Number(m[5]) === 0) throw new Error(`-c p2pAllowCidrs: ${c} would let everyone reach the P2P port; name the organisations' egress IPs`);
  }
  return { ...(join ? { joinChain: join } : {}), p2pAllowCidrs: cidrs };
}
