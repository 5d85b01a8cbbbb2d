import { fileURLToPath } from 'node:url';
import { type CfnElement, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { Cluster, FargateTaskDefinition } from 'aws-cdk-lib/aws-ecs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { type ResolvedInputs, resolveInputs, type StackInputs } from './inputs.ts';
import { Monitoring } from './monitoring.ts';
import { type Functions, PipelineFunctions } from './pipeline-functions.ts';
import { PipelineStateMachine } from './pipeline-state-machine.ts';
import { RestoreSandbox } from './restore-sandbox.ts';
import { SandboxNetwork } from './sandbox-network.ts';
import { stableLogicalId } from './stable-ids.ts';
import { Storage } from './storage.ts';
import { Triggers } from './triggers.ts';

export { METRICS_NAMESPACE } from '../core/metrics.ts';
export { FUNCTION_ACCESS, FUNCTION_SPECS, type LambdaName } from './pipeline-functions.ts';
export {
  DEFAULT_EPHEMERAL_GIB,
  SANDBOX_CONTAINER_NAME,
  SANDBOX_IMAGE_CONTEXT_EXCLUDE,
} from './restore-sandbox.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BackupValidatorStackProps extends StackProps, StackInputs {
  /** Repository root: Lambda entries and the container build context. */
  repoRoot?: string;
  logRetention?: RetentionDays;
}

/** The pipeline: storage, the restore sandbox, the functions, the state machine, its triggers and monitoring. */
export class BackupValidatorStack extends Stack {
  readonly inputs: ResolvedInputs;
  readonly ledger: Table;
  readonly reportsBucket: Bucket;
  readonly functions: Functions;
  readonly stateMachine: StateMachine;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly network: SandboxNetwork;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: BackupValidatorStackProps = {}) {
    super(scope, id, props);
    const inputs = resolveInputs(props);
    this.inputs = inputs;
    const repoRoot = props.repoRoot ?? REPO_ROOT;
    const logRetention = props.logRetention ?? RetentionDays.THREE_MONTHS;

    const storage = new Storage(this, 'Storage');
    const network = new SandboxNetwork(this, 'Sandbox', {
      logRetention,
      ...(inputs.s3PrefixListId ? { s3PrefixListId: inputs.s3PrefixListId } : {}),
      ...(inputs.dynamodbPrefixListId ? { dynamodbPrefixListId: inputs.dynamodbPrefixListId } : {}),
    });
    const sandbox = new RestoreSandbox(this, 'RestoreSandbox', {
      inputs,
      storage,
      network,
      repoRoot,
      logRetention,
    });
    const pipeline = new PipelineFunctions(this, 'Functions', {
      inputs,
      storage,
      sandbox,
      repoRoot,
      logRetention,
    });
    const machine = new PipelineStateMachine(this, 'Orchestration', {
      functions: pipeline.functions,
      sandbox,
      logRetention,
    });
    const triggers = new Triggers(this, 'Triggers', { inputs, pipeline, machine, sandbox });
    const monitoring = new Monitoring(this, 'Monitoring', {
      ...(inputs.alarmEmail ? { alarmEmail: inputs.alarmEmail } : {}),
      pipeline,
      stateMachine: machine.stateMachine,
      triggers,
    });

    this.ledger = storage.ledger;
    this.reportsBucket = storage.reportsBucket;
    this.network = sandbox.network;
    this.cluster = sandbox.cluster;
    this.taskDefinition = sandbox.taskDefinition;
    this.functions = pipeline.functions;
    this.stateMachine = machine.stateMachine;
    this.alarmTopic = monitoring.alarmTopic;
    this.alarms = monitoring.alarms;

    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ReportsBucketName', { value: this.reportsBucket.bucketName });
    new CfnOutput(this, 'LedgerTableName', { value: this.ledger.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }

  /** The parts are left out of logical IDs: moving a resource into one does not replace it. */
  protected override allocateLogicalId(element: CfnElement): string {
    return stableLogicalId(element);
  }
}
