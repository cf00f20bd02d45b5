import { CfnOutput, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';

export interface P2pEndpointProps {
  readonly vpc: ec2.IVpc;
  /** The MultiChain node's service and the security group of its task. */
  readonly service: ecs.FargateService;
  readonly nodeSecurityGroup: ec2.ISecurityGroup;
  readonly containerName: string;
  readonly port: number;
  /** Who may connect: the other organisations' egress addresses (their NAT gateway IPs), as CIDRs. */
  readonly allowCidrs: readonly string[];
}

/**
 * The MultiChain P2P port, reachable by other organisations' nodes: an
 * internet-facing Network Load Balancer (TCP, the node's task as IP target)
 * whose own security group admits only the allow-listed CIDRs on that port;
 * the node admits P2P traffic only from the load balancer's group. Being let
 * in at the network level is not membership: the chain admits only addresses
 * granted `connect` (containers/multichain/grant.sh).
 */
export class P2pEndpoint extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  /** `host:port` another organisation passes as `-c joinChain=…`. */
  readonly joinAddress: string;

  constructor(scope: Construct, id: string, props: P2pEndpointProps) {
    super(scope, id);
    if (props.allowCidrs.length === 0) throw new Error('P2pEndpoint needs at least one allowed CIDR');
    const lbSecurityGroup = new ec2.SecurityGroup(this, 'Sg', {
      vpc: props.vpc,
      description: 'MultiChain P2P load balancer: the allow-listed organisations only',
      allowAllOutbound: false,
    });
    for (const cidr of props.allowCidrs) {
      lbSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(props.port), `MultiChain P2P from ${cidr}`);
    }
    lbSecurityGroup.addEgressRule(props.nodeSecurityGroup, ec2.Port.tcp(props.port), 'to the MultiChain node');
    props.nodeSecurityGroup.addIngressRule(lbSecurityGroup, ec2.Port.tcp(props.port), 'MultiChain P2P through the load balancer');

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [lbSecurityGroup],
      crossZoneEnabled: true,
    });
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'A Network Load Balancer writes access logs only for TLS listeners; MultiChain P2P is plain TCP (the protocol authenticates peers by their granted addresses). Connections are recorded by the VPC flow logs (Network construct).',
    });
    const listener = this.loadBalancer.addListener('P2p', { port: props.port, protocol: elbv2.Protocol.TCP });
    listener.addTargets('Node', {
      port: props.port,
      protocol: elbv2.Protocol.TCP,
      targets: [props.service.loadBalancerTarget({ containerName: props.containerName, containerPort: props.port })],
      healthCheck: { protocol: elbv2.Protocol.TCP },
    });
    this.joinAddress = `${this.loadBalancer.loadBalancerDnsName}:${props.port}`;
    new CfnOutput(this, 'JoinChain', {
      description: 'What another organisation passes as -c joinChain=… to join this chain (after you allow its CIDR)',
      value: this.joinAddress,
    });
  }
}
