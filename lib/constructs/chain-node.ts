import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cloudmap from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';

/** Where the node keeps its state inside the container (the EFS mount). */
export const CHAIN_DATA_PATH = '/data';
/** uid/gid of the non-root user the images run as (see containers/STAR/Dockerfile). */
export const CHAIN_NODE_UID = '10001';

export interface ChainNodeProps {
  /** Cloud Map name, e.g. `multichain` → `multichain.oc.internal`. */
  readonly name: string;
  /** Folder with the Dockerfile (built at deploy time, only recorded at synth). */
  readonly imageDirectory: string;
  /** Docker build args (e.g. pinned release digests); empty values are dropped. */
  readonly buildArgs?: Record<string, string | undefined>;
  readonly rpcPort: number;
  /** Further container ports (e.g. MultiChain's P2P port behind a load balancer); no ingress is opened for them here. */
  readonly extraPorts?: readonly number[];
  /** Shell command for the container health check; it runs inside the container. */
  readonly healthCommand: string;
  /** Non-secret configuration for the entrypoint. */
  readonly environment: Record<string, string>;
  /** RPC user name baked into the generated secret. */
  readonly rpcUser: string;
  /**
   * A second, read-only RPC user (bitcoind: rpcwhitelist, containers/bitcoind/reader.sh):
   * its own generated secret, injected as RPC_READER_USER / RPC_READER_PASSWORD.
   */
  readonly readerUser?: string;
  readonly cluster: ecs.ICluster;
  readonly vpc: ec2.IVpc;
  readonly namespace: cloudmap.IPrivateDnsNamespace;
  /** The only security group allowed to reach the RPC port. */
  readonly rpcClients: ec2.ISecurityGroup;
  readonly cpu?: number;
  readonly memoryLimitMiB?: number;
}

/**
 * One chain daemon (multichaind or bitcoind) as a Fargate service: its data on
 * an encrypted, retained EFS file system through an access point owned by the
 * container's non-root user; its RPC credentials generated in Secrets Manager
 * (`{ "user": "...", "password": "..." }`) and injected as ECS secrets; a Cloud
 * Map A record; RPC reachable only from `rpcClients`.
 */
export class ChainNode extends Construct {
  readonly service: ecs.FargateService;
  readonly rpcSecret: secretsmanager.Secret;
  /** The read-only RPC user's secret, when the node has one (`readerUser`). */
  readonly readerSecret: secretsmanager.Secret | undefined;
  readonly fileSystem: efs.FileSystem;
  /** The task's security group (RPC from `rpcClients` only, unless a caller opens more). */
  readonly securityGroup: ec2.SecurityGroup;
  /** The container's name in the task definition (load balancer targets name it). */
  readonly containerName = 'Node';
  /** The node's log group (the entrypoint logs the node's chain address there). */
  readonly logGroup: logs.LogGroup;
  /** `http://{name}.{namespace}:{port}` */
  readonly rpcUrl: string;

  constructor(scope: Construct, id: string, props: ChainNodeProps) {
    super(scope, id);

    this.rpcSecret = new secretsmanager.Secret(this, 'RpcSecret', {
      description: `RPC credentials of ${props.name}`,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ user: props.rpcUser }),
        generateStringKey: 'password',
        excludePunctuation: true,
        passwordLength: 40,
      },
    });
    Validations.of(this.rpcSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The daemon reads its RPC password at start only; rotating it needs a coordinated restart of the singleton node, done by redeploying (documented in docs/deploy.md).',
    });

    this.readerSecret = props.readerUser === undefined ? undefined : rpcSecret(this, 'ReaderSecret', `read-only RPC credentials of ${props.name}`, props.readerUser);

    this.fileSystem = new efs.FileSystem(this, 'Data', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      encrypted: true,
      // The chain state is the ledger itself (and the wallet): never delete it with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      enableAutomaticBackups: true,
    });
    const accessPoint = this.fileSystem.addAccessPoint('AccessPoint', {
      path: `/${props.name}`,
      createAcl: { ownerUid: CHAIN_NODE_UID, ownerGid: CHAIN_NODE_UID, permissions: '750' },
      posixUser: { uid: CHAIN_NODE_UID, gid: CHAIN_NODE_UID },
    });

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu ?? 512,
      memoryLimitMiB: props.memoryLimitMiB ?? 1024,
      // The official MultiChain and Bitcoin Core builds used here are x86_64.
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      volumes: [
        {
          name: 'data',
          efsVolumeConfiguration: {
            fileSystemId: this.fileSystem.fileSystemId,
            transitEncryption: 'ENABLED',
            authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
          },
        },
      ],
    });
    const executionRole = taskDefinition.obtainExecutionRole();
    Validations.of(executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'Pulling the image asset from ECR needs ecr:GetAuthorizationToken, which does not support resource-level permissions.',
    });
    this.fileSystem.grant(
      taskDefinition.taskRole,
      'elasticfilesystem:ClientMount',
      'elasticfilesystem:ClientWrite',
    );

    const logGroup = (this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    }));
    const container = taskDefinition.addContainer(this.containerName, {
      // Built for the task's platform whatever the build host is (an arm64 laptop would otherwise build an arm64 image).
      image: ecs.ContainerImage.fromAsset(props.imageDirectory, { buildArgs: definedOnly(props.buildArgs ?? {}), platform: Platform.LINUX_AMD64 }),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: props.name, logGroup }),
      environment: { ...props.environment, DATA_DIR: CHAIN_DATA_PATH, RPC_PORT: String(props.rpcPort) },
      secrets: {
        RPC_USER: ecs.Secret.fromSecretsManager(this.rpcSecret, 'user'),
        RPC_PASSWORD: ecs.Secret.fromSecretsManager(this.rpcSecret, 'password'),
        ...(this.readerSecret
          ? {
              RPC_READER_USER: ecs.Secret.fromSecretsManager(this.readerSecret, 'user'),
              RPC_READER_PASSWORD: ecs.Secret.fromSecretsManager(this.readerSecret, 'password'),
            }
          : {}),
      },
      portMappings: [props.rpcPort, ...(props.extraPorts ?? [])].map((containerPort) => ({ containerPort, protocol: ecs.Protocol.TCP })),
      healthCheck: {
        command: ['CMD-SHELL', props.healthCommand],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(10),
        retries: 3,
        // First start creates the chain / wallet and mines 101 blocks.
        startPeriod: Duration.seconds(120),
      },
    });
    container.addMountPoints({ containerPath: CHAIN_DATA_PATH, sourceVolume: 'data', readOnly: false });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'Only non-secret settings (chain name, ports, VPC CIDR for rpcallowip, data dir) are plain environment variables; the RPC credentials come from Secrets Manager as ECS secrets.',
    });

    const securityGroup = (this.securityGroup = new ec2.SecurityGroup(this, 'Sg', {
      vpc: props.vpc,
      description: `${props.name} node: RPC from the backend Lambdas only`,
      allowAllOutbound: true,
    }));
    securityGroup.addIngressRule(
      props.rpcClients,
      ec2.Port.tcp(props.rpcPort),
      `${props.name} RPC from the backend Lambdas`,
    );

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.cluster,
      taskDefinition,
      // A chain node is a singleton: two tasks on the same data dir would corrupt
      // it (and two bitcoind wallets could double-spend), so run exactly one and
      // stop the old task before starting a new one on deploy.
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      // ECS Exec (`aws ecs execute-command … --command "bitcoin-cli -datadir=/data …"`): CDK grants the task role
      // the four ssmmessages channel actions the SSM agent needs, nothing else (acknowledged below).
      enableExecuteCommand: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [securityGroup],
      assignPublicIp: false,
      cloudMapOptions: {
        name: props.name,
        cloudMapNamespace: props.namespace,
        dnsRecordType: cloudmap.DnsRecordType.A,
        dnsTtl: Duration.seconds(10),
      },
    });
    this.fileSystem.connections.allowDefaultPortFrom(this.service, `${props.name} task mounts its data`);
    Validations.of(taskDefinition.taskRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ECS Exec: ssmmessages:CreateControlChannel/CreateDataChannel/OpenControlChannel/OpenDataChannel support no resource-level permissions (Service Authorization Reference, Amazon Session Manager Message Gateway Service), so they are granted on * and nothing else is.',
    });

    this.rpcUrl = `http://${props.name}.${props.namespace.namespaceName}:${props.rpcPort}`;
  }
}

/** A generated `{ "user", "password" }` RPC secret, rotated by redeploying (see the SMG4 reason). */
function rpcSecret(scope: Construct, id: string, description: string, user: string): secretsmanager.Secret {
  const secret = new secretsmanager.Secret(scope, id, {
    description,
    generateSecretString: {
      secretStringTemplate: JSON.stringify({ user }),
      generateStringKey: 'password',
      excludePunctuation: true,
      passwordLength: 40,
    },
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      'The daemon reads its RPC credentials at start only; rotating them needs a coordinated restart of the singleton node, done by redeploying (documented in docs/deploy.md). Functions re-read them after SECRETS_MAX_AGE_S.',
  });
  return secret;
}

function definedOnly(values: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') out[key] = value;
  return out;
}
