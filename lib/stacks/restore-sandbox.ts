import { IgnoreMode, RemovalPolicy } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
} from 'aws-cdk-lib/aws-ecs';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ROLE_ENV } from '../adapters/stores.ts';
import { METRICS_NAMESPACE } from '../core/metrics.ts';
import { FARGATE_EPHEMERAL_GIB } from '../core/restore/scratch.ts';
import { type Grantee, grantKeyUse, grantLedger, grantRunStore, grantSourceRead } from './access.ts';
import type { ResolvedInputs } from './inputs.ts';
import { acknowledge } from './nag.ts';
import type { SandboxNetwork } from './sandbox-network.ts';
import { StackPart, stableUniqueId } from './stable-ids.ts';
import type { Storage } from './storage.ts';

export const SANDBOX_CONTAINER_NAME = 'restore-sandbox';
/** The task definition's size; each RunTask overrides it with what the backup measured (scratchGiB). */
export const DEFAULT_EPHEMERAL_GIB = FARGATE_EPHEMERAL_GIB.min;
/** The sandbox image's build context: everything but what its Dockerfile copies. */
export const SANDBOX_IMAGE_CONTEXT_EXCLUDE = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!lib',
  '!containers/restore-sandbox',
  'lib/stacks',
];

export interface RestoreSandboxProps {
  inputs: ResolvedInputs;
  storage: Storage;
  /** Built by the stack: its resources' tags and rules name its path, which must not change. */
  network: SandboxNetwork;
  repoRoot: string;
  logRetention: RetentionDays;
}

/** The restore sandbox: in its isolated network, a cluster and the Fargate task that restores one backup. */
export class RestoreSandbox extends StackPart {
  readonly network: SandboxNetwork;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly taskRole: IRole;

  constructor(scope: Construct, id: string, props: RestoreSandboxProps) {
    super(scope, id);
    const { inputs, storage, logRetention } = props;
    this.network = props.network;
    this.cluster = new Cluster(this, 'Cluster', {
      vpc: this.network.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    this.taskDefinition = new FargateTaskDefinition(this, 'RestoreTask', {
      // The family CDK derived from the task definition's path before it moved into this part.
      family: stableUniqueId(this, 'RestoreTask'),
      cpu: 2048,
      memoryLimitMiB: 8192,
      ephemeralStorageGiB: DEFAULT_EPHEMERAL_GIB,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
      volumes: [{ name: 'sandbox' }, { name: 'tmp' }],
    });
    const sandboxLogs = new LogGroup(this, 'SandboxLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const container = this.taskDefinition.addContainer('Sandbox', {
      containerName: SANDBOX_CONTAINER_NAME,
      image: ContainerImage.fromAsset(props.repoRoot, {
        file: 'containers/restore-sandbox/Dockerfile',
        // Only what the image is built from: a README or test edit must not change the image's hash.
        ignoreMode: IgnoreMode.DOCKER,
        exclude: [...SANDBOX_IMAGE_CONTEXT_EXCLUDE],
        platform: Platform.LINUX_ARM64,
      }),
      essential: true,
      readonlyRootFilesystem: true,
      user: '1000:1000',
      logging: LogDrivers.awsLogs({ streamPrefix: 'restore', logGroup: sandboxLogs }),
      environment: {
        LEDGER_TABLE: storage.ledger.tableName,
        RUN_STORE: storage.runStore,
        METRICS_NAMESPACE,
        [ROLE_ENV]: this.taskDefinition.taskRole.roleName,
      },
    });
    container.addMountPoints(
      { containerPath: '/sandbox', sourceVolume: 'sandbox', readOnly: false },
      { containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false },
    );
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-ECS2',
      'The environment holds only resource names (table, bucket, namespace), no secret; the job and task token come as per-task overrides.',
    );
    this.taskRole = this.taskDefinition.taskRole;
    const task = this.grantee();
    grantSourceRead(task, inputs.sources);
    grantLedger(task, storage.ledger, 'readwrite');
    // The sandbox reads its job from the run store; its result goes to the ledger and the task token.
    grantRunStore(task, storage.reportsBucket, 'read');
    grantKeyUse(task, inputs.kmsKeyArns, 'decrypt');
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken (task execution role, image pull) has no resource-level permission.',
    );
  }

  /** The task role, with its acknowledgements on the task definition (the role is its child). */
  grantee(): Grantee {
    return { node: this.taskDefinition.node, grantPrincipal: this.taskRole };
  }
}
