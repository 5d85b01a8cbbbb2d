import { Duration } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../core/metrics.ts';
import { FARGATE_EPHEMERAL_GIB } from '../core/restore/scratch.ts';
import type { PipelineFunctionName } from '../pipeline/definition.ts';
import {
  grantKeyUse,
  grantLedger,
  grantRedundancyWrite,
  grantRunStore,
  grantSourceProtectionRead,
  grantSourceRead,
  grantSourceRegion,
} from './access.ts';
import type { ResolvedInputs } from './inputs.ts';
import { acknowledge } from './nag.ts';
import { PipelineFunction } from './pipeline-function.ts';
import { type RestoreSandbox, SANDBOX_CONTAINER_NAME } from './restore-sandbox.ts';
import { StackPart } from './stable-ids.ts';
import type { Storage } from './storage.ts';

export type LambdaName = PipelineFunctionName | 'task-stopped' | 'arrival';

interface FunctionSpec {
  memorySize: number;
  timeout: Duration;
}

/**
 * Integrity is CPU-bound (inflate, then hashing in a worker) with bounded memory: Lambda gives
 * CPU in proportion to memory, and 3008 MB (about 1.7 vCPU) is the largest size every account
 * can use, enough for the main thread and the hashing worker. The rest move little data.
 */
export const FUNCTION_SPECS: Record<LambdaName, FunctionSpec> = {
  discover: { memorySize: 1024, timeout: Duration.minutes(15) },
  integrity: { memorySize: 3008, timeout: Duration.minutes(15) },
  'select-restores': { memorySize: 512, timeout: Duration.minutes(5) },
  'restore-trigger': { memorySize: 512, timeout: Duration.minutes(2) },
  'record-failure': { memorySize: 256, timeout: Duration.minutes(1) },
  redundancy: { memorySize: 1024, timeout: Duration.minutes(15) },
  report: { memorySize: 1024, timeout: Duration.minutes(5) },
  'task-stopped': { memorySize: 256, timeout: Duration.minutes(1) },
  arrival: { memorySize: 256, timeout: Duration.minutes(1) },
};

/** What a function may touch besides its logs. The state machine's part adds what answers its tasks. */
interface Access {
  keys?: 'decrypt' | 'encrypt-decrypt';
  /** Read the sources; `region` adds GetBucketLocation, `protection` the object lock reads. */
  sources?: 'read' | 'region' | 'protection';
  redundancyWrite?: true;
  ledger?: 'read' | 'readwrite';
  runStore?: 'read' | 'readwrite';
}

export const FUNCTION_ACCESS: Record<LambdaName, Access> = {
  discover: { keys: 'decrypt', sources: 'region', ledger: 'readwrite', runStore: 'readwrite' },
  integrity: { keys: 'decrypt', sources: 'protection', ledger: 'readwrite', runStore: 'readwrite' },
  'select-restores': { ledger: 'readwrite', runStore: 'readwrite' },
  'restore-trigger': { ledger: 'read', runStore: 'readwrite' },
  'record-failure': { ledger: 'readwrite', runStore: 'readwrite' },
  redundancy: {
    keys: 'encrypt-decrypt',
    sources: 'read',
    redundancyWrite: true,
    ledger: 'readwrite',
    runStore: 'readwrite',
  },
  report: { ledger: 'readwrite', runStore: 'readwrite' },
  'task-stopped': {},
  arrival: {},
};

export type Functions = Record<Exclude<LambdaName, 'arrival'>, PipelineFunction> & {
  arrival?: PipelineFunction;
};

export interface PipelineFunctionsProps {
  inputs: ResolvedInputs;
  storage: Storage;
  sandbox: RestoreSandbox;
  repoRoot: string;
  logRetention: RetentionDays;
}

/** Every Lambda of the pipeline, each with its own role granted what FUNCTION_ACCESS says. */
export class PipelineFunctions extends StackPart {
  /** Every function; `arrival` only with validate-on-arrival. */
  readonly functions: Functions;
  /** task-stopped's failed asynchronous invocations and EventBridge deliveries. */
  readonly taskStoppedDeadLetters: Queue;

  constructor(scope: Construct, id: string, props: PipelineFunctionsProps) {
    super(scope, id);
    const { inputs, storage, sandbox } = props;
    const commonEnvironment = {
      LEDGER_TABLE: storage.ledger.tableName,
      RUN_STORE: storage.runStore,
      METRICS_NAMESPACE,
      SOURCES: JSON.stringify(inputs.sources.map((s) => s.url)),
    };
    const extraEnvironment: Partial<Record<LambdaName, Record<string, string>>> = {
      'restore-trigger': {
        CLUSTER_ARN: sandbox.cluster.clusterArn,
        TASK_DEFINITION_ARN: sandbox.taskDefinition.taskDefinitionArn,
        CONTAINER_NAME: SANDBOX_CONTAINER_NAME,
        SUBNET_IDS: sandbox.network.vpc.isolatedSubnets.map((s) => s.subnetId).join(','),
        SECURITY_GROUP_IDS: sandbox.network.securityGroup.securityGroupId,
        MAX_EPHEMERAL_GIB: String(FARGATE_EPHEMERAL_GIB.max),
      },
      'task-stopped': { CLUSTER_ARN: sandbox.cluster.clusterArn },
    };
    // task-stopped is invoked asynchronously by EventBridge: events it could not handle after every
    // retry land here (and raise an alarm) instead of vanishing.
    this.taskStoppedDeadLetters = new Queue(this, 'TaskStoppedDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.taskStoppedDeadLetters,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the task-stopped Lambda and its EventBridge target.',
    );
    const functions = {} as Functions;
    for (const [name, spec] of Object.entries(FUNCTION_SPECS) as [LambdaName, FunctionSpec][]) {
      if (name === 'arrival' && !inputs.validateOnArrival) continue;
      functions[name] = new PipelineFunction(this, pascal(name), {
        name,
        repoRoot: props.repoRoot,
        memorySize: spec.memorySize,
        timeout: spec.timeout,
        logRetention: props.logRetention,
        environment: { ...commonEnvironment, ...extraEnvironment[name] },
        ...(name === 'task-stopped' ? { deadLetterQueue: this.taskStoppedDeadLetters } : {}),
      });
    }
    this.functions = functions;
    for (const [name, fn] of Object.entries(functions) as [LambdaName, PipelineFunction][]) {
      grantAccess(fn, FUNCTION_ACCESS[name], props);
    }

    const trigger = functions['restore-trigger'].role;
    trigger.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: [sandbox.taskDefinition.taskDefinitionArn],
        conditions: { ArnEquals: { 'ecs:cluster': sandbox.cluster.clusterArn } },
      }),
    );
    trigger.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [sandbox.taskRole.roleArn, sandbox.taskDefinition.obtainExecutionRole().roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
  }
}

function grantAccess(fn: PipelineFunction, access: Access, props: PipelineFunctionsProps): void {
  const { sources, kmsKeyArns, redundancyTargets } = props.inputs;
  if (access.keys) grantKeyUse(fn, kmsKeyArns, access.keys);
  if (access.sources) grantSourceRead(fn, sources);
  if (access.sources === 'region') grantSourceRegion(fn, sources);
  if (access.sources === 'protection') grantSourceProtectionRead(fn, sources);
  if (access.redundancyWrite) grantRedundancyWrite(fn, redundancyTargets);
  if (access.ledger) grantLedger(fn, props.storage.ledger, access.ledger);
  if (access.runStore) grantRunStore(fn, props.storage.reportsBucket, access.runStore);
}

export function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
