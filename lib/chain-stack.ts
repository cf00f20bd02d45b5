import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as cloudmap from 'aws-cdk-lib/aws-servicediscovery';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { ChainNode } from './constructs/chain-node.ts';
import { Network } from './constructs/network.ts';
import { NETWORK_DEFAULTS, type BitcoinNetwork } from '../core/network.ts';
import { P2pEndpoint } from './constructs/p2p-endpoint.ts';

/** Private DNS namespace the chain nodes are registered in. */
export const NAMESPACE_NAME = 'oc.internal';
/** JSON-RPC port of multichaind (set as `default-rpc-port` when the chain is created). */
export const MULTICHAIN_RPC_PORT = 8570;
/** JSON-RPC port of bitcoind in regtest (its default; other networks: NETWORK_DEFAULTS[network].rpcPort). */
export const BITCOIN_RPC_PORT = NETWORK_DEFAULTS.regtest.rpcPort;
/** MultiChain P2P port (set as `default-network-port` when the chain is created). */
export const MULTICHAIN_P2P_PORT = 8571;

export interface ChainStackProps extends StackProps {
  /** MultiChain chain name (created on the node's first start). */
  readonly chainName: string;
  /** SHA-256 of the MultiChain release archive; the image build fails without it. */
  readonly multichainSha256?: string;
  /** SHA-256 of the Bitcoin Core archive (default: the Dockerfile's pin for 28.1), checked on top of SHA256SUMS. */
  readonly bitcoinSha256?: string;
  /** Bitcoin Core version to download (default: the Dockerfile's, 28.1); needs its bitcoinSha256. */
  readonly bitcoinVersion?: string;
  /** The Bitcoin network bitcoind joins (default regtest). */
  readonly bitcoinNetwork?: BitcoinNetwork;
  /** Off regtest only: keep this many MiB of blocks (>= 550; a pruned node has no txindex). */
  readonly bitcoinPruneMiB?: number;
  /**
   * `host:port` of a node of an existing chain to join (another organisation's
   * `JoinChain` output); unset: this deployment creates the chain.
   */
  readonly joinChain?: string;
  /**
   * CIDRs allowed to reach this node's P2P port through a Network Load Balancer
   * (the other organisations' egress IPs); none: no load balancer, the chain
   * stays private to this VPC.
   */
  readonly p2pAllowCidrs?: readonly string[];
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
  readonly bitcoinNetwork: BitcoinNetwork;
  /** The P2P load balancer, when other organisations are allowed in. */
  readonly p2p: P2pEndpoint | undefined;

  constructor(scope: Construct, id: string, props: ChainStackProps) {
    super(scope, id, props);
    this.chainName = props.chainName;
    const bitcoinNetwork = props.bitcoinNetwork ?? 'regtest';
    this.bitcoinNetwork = bitcoinNetwork;
    const prune = props.bitcoinPruneMiB ?? 0;
    if (prune !== 0 && (bitcoinNetwork === 'regtest' || !Number.isInteger(prune) || prune < 550)) {
      throw new Error(`bitcoinPrune must be 0 or an integer >= 550 (MiB), and only off regtest (got ${prune} on ${bitcoinNetwork})`);
    }
    this.network = new Network(this, 'Network');
    const vpc = this.network.vpc;

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      // ECS Exec sessions are not copied to CloudWatch/S3 (their output can show wallet data); the
      // ecs:ExecuteCommand calls themselves are in CloudTrail. So the task roles need only ssmmessages.
      executeCommandConfiguration: { logging: ecs.ExecuteCommandLogging.NONE },
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
      extraPorts: [MULTICHAIN_P2P_PORT],
      environment: {
        CHAIN_NAME: props.chainName,
        RPC_ALLOW_IP: vpc.vpcCidrBlock,
        P2P_PORT: String(MULTICHAIN_P2P_PORT),
        ...(props.joinChain ? { JOIN_CHAIN: props.joinChain } : {}),
      },
      // A joining node waits (healthy) until the chain's admin grants its address; then getinfo.
      healthCommand:
        'if [ -n "${JOIN_CHAIN:-}" ] && [ ! -f "$DATA_DIR/.oc-joined" ]; then exit 0; fi; multichain-cli -datadir="$DATA_DIR" "$CHAIN_NAME" getinfo > /dev/null || exit 1',
    });
    const allow = props.p2pAllowCidrs ?? [];
    this.p2p =
      allow.length > 0
        ? new P2pEndpoint(this, 'P2p', {
            vpc,
            service: this.multichain.service,
            nodeSecurityGroup: this.multichain.securityGroup,
            containerName: this.multichain.containerName,
            port: MULTICHAIN_P2P_PORT,
            allowCidrs: allow,
          })
        : undefined;
    addChainOutputs(this, props, allow);
    this.bitcoind = new ChainNode(this, 'Bitcoind', {
      ...common,
      name: 'bitcoind',
      imageDirectory: containerDir('bitcoind'),
      buildArgs: { BITCOIN_SHA256: props.bitcoinSha256, BITCOIN_VERSION: props.bitcoinVersion },
      rpcPort: NETWORK_DEFAULTS[bitcoinNetwork].rpcPort,
      rpcUser: 'oc-bitcoind',
      // for the functions that only read (query): node-level reads, nothing that can spend
      readerUser: 'oc-bitcoind-reader',
      environment: {
        NETWORK: bitcoinNetwork,
        RPC_ALLOW_IP: vpc.vpcCidrBlock,
        ...(prune > 0 ? { PRUNE: String(prune) } : {}),
      },
      // Off regtest the node validates a real chain: more memory for its UTXO cache (dbcache 450 MiB by default).
      ...(bitcoinNetwork === 'regtest' ? {} : { cpu: 1024, memoryLimitMiB: 4096 }),
      healthCommand: 'bitcoin-cli -datadir="$DATA_DIR" getblockchaininfo > /dev/null || exit 1',
    });
  }
}

/** The chain's parameters and where to find the node's address, as stack outputs. */
function addChainOutputs(stack: ChainStack, props: ChainStackProps, allow: readonly string[]): void {
  new CfnOutput(stack, 'ChainName', { description: 'MultiChain chain name', value: stack.chainName });
  new CfnOutput(stack, 'ChainMode', {
    description: 'create: this deployment created the chain; join: it joined the chain at the given node',
    value: props.joinChain ? `join ${props.joinChain}` : 'create',
  });
  new CfnOutput(stack, 'ChainPorts', { description: 'MultiChain RPC and P2P ports', value: `rpc ${MULTICHAIN_RPC_PORT} p2p ${MULTICHAIN_P2P_PORT}` });
  new CfnOutput(stack, 'P2pAllowCidrs', { description: 'Who may reach the P2P port (none: private chain)', value: allow.length > 0 ? allow.join(',') : 'none' });
  // The address exists only once the node has run (its wallet is on EFS): the
  // entrypoint logs it ("node address …" while joining, "chain … ready, address …")
  // and keeps it in /data/address.
  new CfnOutput(stack, 'MultichainAddressCommand', {
    description: "Prints this node's MultiChain address (the one the chain's admin grants)",
    value: `aws logs filter-log-events --log-group-name ${stack.multichain.logGroup.logGroupName} --filter-pattern '"address"' --query 'events[-1].message' --output text`,
  });
  // The egress address other organisations put in their p2pAllowCidrs to let this node in.
  const eips = stack.network.vpc.publicSubnets
    .map((subnet) => subnet.node.tryFindChild('EIP'))
    .filter((c): c is ec2.CfnEIP => c instanceof ec2.CfnEIP);
  if (eips.length > 0) {
    new CfnOutput(stack, 'EgressIp', { description: 'NAT gateway IP(s): what other organisations allow as <ip>/32', value: eips.map((e) => e.ref).join(',') });
  }
}

function containerDir(name: string): string {
  return fileURLToPath(new URL(`../containers/${name}`, import.meta.url));
}
