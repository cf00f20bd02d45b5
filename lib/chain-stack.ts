import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as cloudmap from 'aws-cdk-lib/aws-servicediscovery';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { ChainNode } from './constructs/chain-node.ts';
import { Network } from './constructs/network.ts';

/** Private DNS namespace the chain nodes are registered in. */
export const NAMESPACE_NAME = 'oc.internal';
/** JSON-RPC port of multichaind (set as `default-rpc-port` when the chain is created). */
export const MULTICHAIN_RPC_PORT = 8570;
/** JSON-RPC port of bitcoind in regtest (its default). */
export const BITCOIN_RPC_PORT = 18443;

export interface ChainStackProps extends StackProps {
  /** MultiChain chain name (created on the node's first start). */
  readonly chainName: string;
  /** SHA-256 of the MultiChain release archive; the image build fails without it. */
  readonly multichainSha256?: string;
  /** Optional SHA-256 of the Bitcoin Core archive, checked on top of SHA256SUMS. */
  readonly bitcoinSha256?: string;
}

/**
 * The stateful chain side: network, ECS cluster, the MultiChain and bitcoind
 * nodes (data on retained EFS), their Cloud Map names and RPC secrets.
 */
export class ChainStack extends Stack {
  readonly network: Network;
  readonly cluster: ecs.Cluster;
  readonly multichain: ChainNode;
  readonly bitcoind: ChainNode;
  readonly chainName: string;

  constructor(scope: Construct, id: string, props: ChainStackProps) {
    super(scope, id, props);
    this.chainName = props.chainName;
    this.network = new Network(this, 'Network');
    const vpc = this.network.vpc;

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const namespace = new cloudmap.PrivateDnsNamespace(this, 'Namespace', {
      name: NAMESPACE_NAME,
      vpc,
      description: 'obligation-chain chain nodes',
    });
    const common = {
      cluster: this.cluster,
      vpc,
      namespace,
      rpcClients: this.network.lambdaSecurityGroup,
    };

    this.multichain = new ChainNode(this, 'Multichain', {
      ...common,
      name: 'multichain',
      imageDirectory: containerDir('multichain'),
      buildArgs: { MULTICHAIN_SHA256: props.multichainSha256 },
      rpcPort: MULTICHAIN_RPC_PORT,
      rpcUser: 'oc-multichain',
      environment: { CHAIN_NAME: props.chainName, RPC_ALLOW_IP: vpc.vpcCidrBlock },
      healthCommand: 'multichain-cli -datadir="$DATA_DIR" "$CHAIN_NAME" getinfo > /dev/null || exit 1',
    });
    this.bitcoind = new ChainNode(this, 'Bitcoind', {
      ...common,
      name: 'bitcoind',
      imageDirectory: containerDir('bitcoind'),
      buildArgs: { BITCOIN_SHA256: props.bitcoinSha256 },
      rpcPort: BITCOIN_RPC_PORT,
      rpcUser: 'oc-bitcoind',
      // for the functions that only read (query): node-level reads, nothing that can spend
      readerUser: 'oc-bitcoind-reader',
      environment: { NETWORK: 'regtest', RPC_ALLOW_IP: vpc.vpcCidrBlock },
      healthCommand: 'bitcoin-cli -datadir="$DATA_DIR" getblockchaininfo > /dev/null || exit 1',
    });
  }
}

function containerDir(name: string): string {
  return fileURLToPath(new URL(`../containers/${name}`, import.meta.url));
}
