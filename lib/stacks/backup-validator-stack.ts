import { fileURLToPath } from 'node:url';
import {
  Annotations,
  ArnFormat,
  Aws,
  CfnOutput,
  type CfnResource,
  Duration,
  IgnoreMode,
  RemovalPolicy,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
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
import { EventField, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Policy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { LEDGER_TABLE } from '../adapters/ledger-schema.ts';
import { ROLE_ENV } from '../adapters/stores.ts';
import { ARCHIVE_SUFFIXES } from '../core/archive-names.ts';
import { MANIFEST_NAME, SIDECAR_SUFFIX } from '../core/catalogue.ts';
import { FARGATE_EPHEMERAL_GIB } from '../core/restore/scratch.ts';
import { ARRIVAL_BATCHING_SECONDS } from '../pipeline/arrival.ts';
import {
  FUNCTION_ARN_PLACEHOLDERS,
  loadDefinitionText,
  type PipelineFunctionName,
} from '../pipeline/definition.ts';
import {
  grantKeyUse,
  grantLedger,
  grantRedundancyWrite,
  grantRunStore,
  grantSourceProtectionRead,
  grantSourceRead,
  grantSourceRegion,
} from './access.ts';
import { type ResolvedInputs, resolveInputs, type StackInputs } from './inputs.ts';
import { acknowledge } from './nag.ts';
import { PipelineFunction } from './pipeline-function.ts';
import { SandboxNetwork } from './sandbox-network.ts';

export const METRICS_NAMESPACE = 'BackupValidator';
export const SANDBOX_CONTAINER_NAME = 'restore-sandbox';
export const MAX_EPHEMERAL_GIB = FARGATE_EPHEMERAL_GIB.max;
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
/** Suffixes of archive backups; the on-arrival rule starts a validation for these only. */

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

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BackupValidatorStackProps extends StackProps, StackInputs {
  /** Repository root: Lambda entries and the container build context. */
  repoRoot?: string;
  logRetention?: RetentionDays;
}

export class BackupValidatorStack extends Stack {
  readonly inputs: ResolvedInputs;
  readonly ledger: Table;
  readonly reportsBucket: Bucket;
  /** Every function; `arrival` only with validate-on-arrival. */
  readonly functions: Record<Exclude<LambdaName, 'arrival'>, PipelineFunction> & {
    arrival?: PipelineFunction;
  };
  readonly stateMachine: StateMachine;
  readonly cluster: Cluster;
  readonly taskDefinition: FargateTaskDefinition;
  readonly network: SandboxNetwork;
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: BackupValidatorStackProps = {}) {
    super(scope, id, props);
    const inputs = resolveInputs(props);
    this.inputs = inputs;
    const repoRoot = props.repoRoot ?? REPO_ROOT;
    const logRetention = props.logRetention ?? RetentionDays.THREE_MONTHS;
    const sourceUrls = inputs.sources.map((s) => s.url);

    // --- Storage: the ledger and the run store --------------------------------------------------
    const keyType = { S: AttributeType.STRING }[LEDGER_TABLE.keyType];
    this.ledger = new Table(this, 'Ledger', {
      partitionKey: { name: LEDGER_TABLE.partitionKey, type: keyType },
      sortKey: { name: LEDGER_TABLE.sortKey, type: keyType },
      billingMode: BillingMode[LEDGER_TABLE.billingMode],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: LEDGER_TABLE.ttlAttribute,
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(LEDGER_TABLE.indexes)) {
      this.ledger.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: keyType },
        sortKey: { name: index.sortKey, type: keyType },
        projectionType: ProjectionType.ALL,
      });
    }

    const accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.reportsBucket = new Bucket(this, 'Reports', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'reports/',
      lifecycleRules: [
        { id: 'run-artifacts', prefix: 'runs/', expiration: Duration.days(30) },
        { id: 'old-versions', noncurrentVersionExpiration: Duration.days(30) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const runStore = `s3://${this.reportsBucket.bucketName}`;

    // --- Restore sandbox: isolated network, cluster, task definition ------------------------------
    this.network = new SandboxNetwork(this, 'Sandbox', {
      logRetention,
      ...(inputs.s3PrefixListId ? { s3PrefixListId: inputs.s3PrefixListId } : {}),
      ...(inputs.dynamodbPrefixListId ? { dynamodbPrefixListId: inputs.dynamodbPrefixListId } : {}),
    });
    this.cluster = new Cluster(this, 'Cluster', {
      vpc: this.network.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    this.taskDefinition = new FargateTaskDefinition(this, 'RestoreTask', {
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
      image: ContainerImage.fromAsset(repoRoot, {
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
        LEDGER_TABLE: this.ledger.tableName,
        RUN_STORE: runStore,
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
    const taskRole = this.taskDefinition.taskRole;
    // The task role is a child of the task definition, so acknowledgements there cover its policy.
    const sandboxTask = { node: this.taskDefinition.node, grantPrincipal: taskRole };
    grantSourceRead(sandboxTask, inputs.sources);
    grantLedger(sandboxTask, this.ledger, 'readwrite');
    // The sandbox reads its job from the run store; its result goes to the ledger and the task token.
    grantRunStore(sandboxTask, this.reportsBucket, 'read');
    grantKeyUse(sandboxTask, inputs.kmsKeyArns, 'decrypt');
    acknowledge(
      this.taskDefinition,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken (task execution role, image pull) has no resource-level permission.',
    );

    // --- Lambdas ---------------------------------------------------------------------------------
    const commonEnvironment = {
      LEDGER_TABLE: this.ledger.tableName,
      RUN_STORE: runStore,
      METRICS_NAMESPACE,
      SOURCES: JSON.stringify(sourceUrls),
    };
    const extraEnvironment: Partial<Record<LambdaName, Record<string, string>>> = {
      'restore-trigger': {
        CLUSTER_ARN: this.cluster.clusterArn,
        TASK_DEFINITION_ARN: this.taskDefinition.taskDefinitionArn,
        CONTAINER_NAME: SANDBOX_CONTAINER_NAME,
        SUBNET_IDS: this.network.vpc.isolatedSubnets.map((s) => s.subnetId).join(','),
        SECURITY_GROUP_IDS: this.network.securityGroup.securityGroupId,
        MAX_EPHEMERAL_GIB: String(MAX_EPHEMERAL_GIB),
      },
      'task-stopped': { CLUSTER_ARN: this.cluster.clusterArn },
    };
    // task-stopped is invoked asynchronously by EventBridge: events it could not handle after every
    // retry land here (and raise an alarm) instead of vanishing.
    const taskStoppedDeadLetters = new Queue(this, 'TaskStoppedDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      taskStoppedDeadLetters,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the task-stopped Lambda and its EventBridge target.',
    );
    const functions = {} as BackupValidatorStack['functions'];
    for (const [name, spec] of Object.entries(FUNCTION_SPECS) as [LambdaName, FunctionSpec][]) {
      if (name === 'arrival' && !inputs.validateOnArrival) continue;
      functions[name] = new PipelineFunction(this, pascal(name), {
        name,
        repoRoot,
        memorySize: spec.memorySize,
        timeout: spec.timeout,
        logRetention,
        environment: { ...commonEnvironment, ...extraEnvironment[name] },
        ...(name === 'task-stopped' ? { deadLetterQueue: taskStoppedDeadLetters } : {}),
      });
    }
    this.functions = functions;

    for (const reader of [functions.discover, functions.integrity])
      grantKeyUse(reader, inputs.kmsKeyArns, 'decrypt');
    grantKeyUse(functions.redundancy, inputs.kmsKeyArns, 'encrypt-decrypt');
    grantSourceRead(functions.discover, inputs.sources);
    grantSourceRegion(functions.discover, inputs.sources);
    grantLedger(functions.discover, this.ledger, 'readwrite');
    grantRunStore(functions.discover, this.reportsBucket, 'readwrite');

    grantSourceRead(functions.integrity, inputs.sources);
    grantSourceProtectionRead(functions.integrity, inputs.sources);
    grantLedger(functions.integrity, this.ledger, 'readwrite');
    grantRunStore(functions.integrity, this.reportsBucket, 'readwrite');

    grantLedger(functions['select-restores'], this.ledger, 'readwrite');
    grantRunStore(functions['select-restores'], this.reportsBucket, 'readwrite');

    grantLedger(functions['restore-trigger'], this.ledger, 'read');
    grantRunStore(functions['restore-trigger'], this.reportsBucket, 'readwrite');
    functions['restore-trigger'].role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: [this.taskDefinition.taskDefinitionArn],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
    );
    functions['restore-trigger'].role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );

    grantLedger(functions['record-failure'], this.ledger, 'readwrite');
    grantRunStore(functions['record-failure'], this.reportsBucket, 'readwrite');

    grantSourceRead(functions.redundancy, inputs.sources);
    grantRedundancyWrite(functions.redundancy, inputs.redundancyTargets);
    grantLedger(functions.redundancy, this.ledger, 'readwrite');
    grantRunStore(functions.redundancy, this.reportsBucket, 'readwrite');

    grantLedger(functions.report, this.ledger, 'readwrite');
    grantRunStore(functions.report, this.reportsBucket, 'readwrite');

    // --- State machine ---------------------------------------------------------------------------
    const stateMachineLogs = new LogGroup(this, 'StateMachineLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const pipelineFunctions = Object.keys(FUNCTION_ARN_PLACEHOLDERS) as PipelineFunctionName[];
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromString(loadDefinitionText()),
      definitionSubstitutions: Object.fromEntries(
        pipelineFunctions.map((name) => [FUNCTION_ARN_PLACEHOLDERS[name], functions[name].fn.functionArn]),
      ),
      stateMachineType: StateMachineType.STANDARD,
      logs: { destination: stateMachineLogs, level: LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: pipelineFunctions.map((name) => functions[name].fn.functionArn),
      }),
    );
    acknowledge(
      this.stateMachine,
      'AwsSolutions-IAM5[Resource::*]',
      'Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups, DescribeResourcePolicies, PutResourcePolicy) and X-Ray tracing support no resource-level permissions.',
    );
    // Restores run as child executions (a Distributed Map), each with its own event history, so
    // a run of thousands of restores stays far from one execution's 25,000-event limit.
    const childExecutions = new Policy(this.stateMachine, 'DistributedMapPolicy');
    this.stateMachine.role.attachInlinePolicy(childExecutions);
    this.stateMachine.grantStartExecution(childExecutions);
    this.stateMachine.grantExecution(childExecutions, 'states:DescribeExecution', 'states:StopExecution');
    // A Distributed Map's child executions are named execution:<state machine>/<map run label>:<id>
    // (Step Functions Developer Guide, "IAM policies for using Distributed Map states" and "Redriving
    // Map Runs"): describing, stopping and redriving them needs that ARN, not execution:<name>:*.
    const childExecutionArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachine.stateMachineName}/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    childExecutions.addStatements(
      new PolicyStatement({
        actions: ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution'],
        resources: [childExecutionArn],
      }),
    );
    const machineId = this.getLogicalId(this.stateMachine.node.defaultChild as CfnResource);
    acknowledge(
      childExecutions,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${machineId}"}]}]}:*]`,
      "The Restores Distributed Map starts, describes and stops its own child executions, whose names Step Functions generates: the wildcard covers only this state machine's executions.",
    );
    // The restore step's task token belongs to a child execution of the Distributed Map, so the
    // answer is allowed for those executions as well as for the state machine itself.
    const childExecutionsFinding = `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${machineId}.Name>/*]`;
    const childExecutionsReason =
      "Distributed Map child executions get names Step Functions generates under this state machine's own name: the wildcard covers only its child executions.";
    acknowledge(childExecutions, childExecutionsFinding, childExecutionsReason);
    for (const [responder, scope] of [
      [taskRole, this.taskDefinition],
      [functions['task-stopped'].role, functions['task-stopped']],
    ] as const) {
      this.stateMachine.grantTaskResponse(responder);
      responder.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: [childExecutionArn],
        }),
      );
      acknowledge(scope, childExecutionsFinding, childExecutionsReason);
    }

    // --- Triggers --------------------------------------------------------------------------------
    const executionInput = { sources: sourceUrls, config: inputs.configDocument };
    const scheduleRole = new Role(this, 'ScheduleRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler: start the backup validation state machine',
    });
    new Schedule(this, 'Schedule', {
      schedule: ScheduleExpression.expression(inputs.schedule),
      description: 'backup-validator: scheduled validation of every source',
      target: new StepFunctionsStartExecution(this.stateMachine, {
        role: scheduleRole,
        input: ScheduleTargetInput.fromObject({ trigger: 'schedule', ...executionInput }),
        retryAttempts: 3,
      }),
    });

    new Rule(this, 'TaskStoppedRule', {
      description: 'backup-validator: fail the waiting restore step as soon as its sandbox task stops',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: { lastStatus: ['STOPPED'], clusterArn: [this.cluster.clusterArn] },
      },
      targets: [
        new LambdaFunction(functions['task-stopped'].fn, {
          retryAttempts: 8,
          maxEventAge: Duration.hours(2),
          deadLetterQueue: taskStoppedDeadLetters,
        }),
      ],
    });

    const arrivalDeadLetters = functions.arrival ? addArrivals(this, functions.arrival, inputs) : undefined;

    // --- Alarms and dashboard ---------------------------------------------------------------------
    const alarmKey = new Key(this, 'AlarmTopicKey', {
      enableKeyRotation: true,
      description: 'backup-validator alarm topic',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch alarms can publish to an encrypted topic only if the key lets CloudWatch use it.
    alarmKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    this.alarmTopic = new Topic(this, 'AlarmTopic', {
      displayName: 'Backup validation alarms',
      masterKey: alarmKey,
      enforceSSL: true,
    });
    if (inputs.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(inputs.alarmEmail));
    // A failed run also sends one message in plain words (which backups, which finding, since when, the report).
    functions.report.fn.addEnvironment('ALARM_TOPIC_ARN', this.alarmTopic.topicArn);
    functions.report.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['sns:Publish'], resources: [this.alarmTopic.topicArn] }),
    );
    // The topic is encrypted: publishing needs its key (exact actions, not the GenerateDataKey* wildcard).
    functions.report.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [alarmKey.keyArn] }),
    );

    const period = Duration.minutes(5);
    const addAlarm = (id: string, metric: IMetric, description: string) => {
      const alarm = new Alarm(this, id, {
        metric,
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      alarm.addAlarmAction(new SnsAction(this.alarmTopic));
      this.alarms.push(alarm);
    };
    addAlarm(
      'ExecutionsFailedAlarm',
      this.stateMachine.metricFailed({ period, statistic: 'Sum' }),
      'A validation run failed: a backup failed validation or the pipeline could not finish. See the run report.',
    );
    addAlarm(
      'ExecutionsAbortedAlarm',
      this.stateMachine.metricAborted({ period, statistic: 'Sum' }),
      'A validation run was stopped before producing its report: its backups were not validated.',
    );
    addAlarm(
      'TaskStoppedDeadLettersAlarm',
      taskStoppedDeadLetters.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      'A sandbox task stopped and the task-stopped Lambda could not fail its waiting step: that restore waits for its heartbeat timeout.',
    );
    if (arrivalDeadLetters) {
      addAlarm(
        'ArrivalDeadLettersAlarm',
        arrivalDeadLetters.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'New backups arrived and no validation run could be started for them: see the arrival Lambda logs; the messages wait in the dead-letter queue.',
      );
    }
    addAlarm(
      'ExecutionsTimedOutAlarm',
      this.stateMachine.metricTimedOut({ period, statistic: 'Sum' }),
      'A validation run timed out before producing its report.',
    );
    for (const [name, fn] of Object.entries(functions)) {
      addAlarm(
        `${pascal(name)}ErrorsAlarm`,
        fn.fn.metricErrors({ period, statistic: 'Sum' }),
        `The ${name} Lambda reported errors.`,
      );
    }
    const pipelineMetric = (metricName: string, statistic: string) =>
      new Metric({ namespace: METRICS_NAMESPACE, metricName, statistic, period: Duration.hours(1) });
    addAlarm(
      'BackupsFailedAlarm',
      pipelineMetric('BackupsFailed', 'Maximum'),
      'At least one backup failed validation in the last run.',
    );
    addAlarm(
      'RpoBreachesAlarm',
      pipelineMetric('RpoBreaches', 'Maximum'),
      'The newest backup of at least one series is older than its RPO.',
    );

    new Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new GraphWidget({
            title: 'Executions',
            left: [
              this.stateMachine.metricStarted({ statistic: 'Sum' }),
              this.stateMachine.metricSucceeded({ statistic: 'Sum' }),
              this.stateMachine.metricFailed({ statistic: 'Sum' }),
              this.stateMachine.metricTimedOut({ statistic: 'Sum' }),
            ],
          }),
          new GraphWidget({
            title: 'Execution duration',
            left: [this.stateMachine.metricTime({ statistic: 'Maximum' })],
          }),
          new SingleValueWidget({
            title: 'Backups failed / RPO breaches (last run)',
            metrics: [pipelineMetric('BackupsFailed', 'Maximum'), pipelineMetric('RpoBreaches', 'Maximum')],
          }),
        ],
        [
          new GraphWidget({
            title: 'Backups per run: passed, warned, failed, not checked',
            stacked: true,
            left: [
              pipelineMetric('BackupsPassed', 'Maximum'),
              pipelineMetric('BackupsWarned', 'Maximum'),
              pipelineMetric('BackupsFailed', 'Maximum'),
              pipelineMetric('BackupsNotChecked', 'Maximum'),
            ],
          }),
          new GraphWidget({
            title: 'Restore time against RTO, per series (seconds)',
            left: [
              new MathExpression({
                expression: `SEARCH('{${METRICS_NAMESPACE},Series} MetricName="RestoreSeconds"', 'Maximum', 3600)`,
                label: 'restore',
                period: Duration.hours(1),
              }),
              new MathExpression({
                expression: `SEARCH('{${METRICS_NAMESPACE},Series} MetricName="RtoSeconds"', 'Maximum', 3600)`,
                label: 'RTO',
                period: Duration.hours(1),
              }),
            ],
          }),
        ],
        [
          new GraphWidget({ title: 'Integrity score', left: [pipelineMetric('IntegrityScore', 'Minimum')] }),
          new GraphWidget({ title: 'Restore seconds', left: [pipelineMetric('RestoreSeconds', 'Maximum')] }),
          new GraphWidget({
            title: 'Backup age (hours)',
            left: [pipelineMetric('BackupAgeHours', 'Maximum')],
          }),
        ],
        [
          new GraphWidget({
            title: 'Coverage: share of bytes verified within the window, per series',
            left: [
              new MathExpression({
                expression: `SEARCH('{${METRICS_NAMESPACE},Series} MetricName="CoverageShare"', 'Minimum', 3600)`,
                label: 'coverage',
                period: Duration.hours(1),
              }),
            ],
            leftYAxis: { min: 0, max: 1 },
          }),
          new GraphWidget({
            title: 'Coverage: oldest unverified backup (days) and series behind',
            left: [pipelineMetric('OldestUnverifiedDays', 'Maximum')],
            right: [pipelineMetric('CoverageBehind', 'Maximum')],
          }),
          new GraphWidget({
            title: 'Cost estimate per run (USD, docs/cost.md)',
            left: [pipelineMetric('CostEstimateUsd', 'Sum')],
          }),
        ],
        [
          new GraphWidget({
            title: 'Lambda errors',
            width: 24,
            left: Object.entries(functions).map(([name, fn]) =>
              fn.fn.metricErrors({ statistic: 'Sum', label: name }),
            ),
          }),
        ],
      ],
    });

    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ReportsBucketName', { value: this.reportsBucket.bucketName });
    new CfnOutput(this, 'LedgerTableName', { value: this.ledger.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
  }
}

/**
 * Validate-on-arrival: each source's rule puts "Object Created" events on a queue; the arrival
 * Lambda takes them in batches and starts one run per source and window (functions/arrival), which
 * checks only what is new. A burst of uploads is one run, not one per object.
 */
function addArrivals(stack: BackupValidatorStack, arrival: PipelineFunction, inputs: ResolvedInputs): Queue {
  const deadLetters = new Queue(stack, 'ArrivalDeadLetters', {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  acknowledge(
    deadLetters,
    'AwsSolutions-SQS3',
    'This queue is itself the dead-letter queue of the arrival queue and of its EventBridge targets.',
  );
  const queue = new Queue(stack, 'Arrivals', {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(4),
    // AWS's guidance for a Lambda event source: at least six times the function's timeout, plus the batching window.
    visibilityTimeout: Duration.seconds(
      FUNCTION_SPECS.arrival.timeout.toSeconds() * 6 + ARRIVAL_BATCHING_SECONDS,
    ),
    deadLetterQueue: { queue: deadLetters, maxReceiveCount: 5 },
  });
  arrival.fn.addEventSource(
    new SqsEventSource(queue, {
      batchSize: 1000,
      maxBatchingWindow: Duration.seconds(ARRIVAL_BATCHING_SECONDS),
      // Two batches at a time at most (the least Lambda allows): they rarely start more than one run.
      maxConcurrency: 2,
      reportBatchItemFailures: true,
    }),
  );
  arrival.fn.addEnvironment('STATE_MACHINE_ARN', stack.stateMachine.stateMachineArn);
  stack.stateMachine.grantStartExecution(arrival.role);
  stack.stateMachine.grantExecution(arrival.role, 'states:DescribeExecution');
  acknowledge(
    arrival,
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stack.getLogicalId(stack.stateMachine.node.defaultChild as CfnResource)}"}]}]}:*]`,
    'The arrival Lambda describes the run it may share with another batch: the wildcard covers only executions of this state machine.',
  );
  inputs.sources.forEach((source, i) => {
    const keyPrefix = source.prefix ? `${source.prefix}/` : '';
    new Rule(stack, `ArrivalRule${i}`, {
      description: `backup-validator: validate new archives under ${source.url} (batched, one run per burst)`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [source.bucket] },
          object: { key: arrivalKeyPatterns(keyPrefix) },
        },
      },
      targets: [
        new SqsQueue(queue, {
          message: RuleTargetInput.fromObject({
            trigger: 'event',
            object: `s3://${EventField.fromPath('$.detail.bucket.name')}/${EventField.fromPath('$.detail.object.key')}`,
            time: EventField.time,
            sources: [source.url],
            config: inputs.configDocument,
          }),
          retryAttempts: 8,
          deadLetterQueue: deadLetters,
        }),
      ],
    });
    Annotations.of(stack).addInfo(
      `Validate-on-arrival for ${source.url}: the owner of bucket ${source.bucket} must turn on "Send notifications to Amazon EventBridge" (bucket Properties > Event notifications, or add "EventBridgeConfiguration": {} to the bucket's existing notification configuration; put-bucket-notification-configuration replaces the whole configuration). This stack imports the bucket and cannot change it.`,
    );
  });
  return deadLetters;
}

function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/**
 * The objects whose arrival starts a run: an archive (any suffix the catalogue reads), its
 * `.sha256` sidecar, or a directory backup's `SHA256SUMS` (backup tools write it last, so the
 * folder is complete when it lands). A directory backup without a manifest waits for the schedule.
 */
function arrivalKeyPatterns(keyPrefix: string): Array<{ wildcard: string }> {
  return [
    ...ARCHIVE_SUFFIXES.map(([suffix]) => `${keyPrefix}*${suffix}`),
    `${keyPrefix}*${SIDECAR_SUFFIX}`,
    `${keyPrefix}*/${MANIFEST_NAME}`,
  ].map((wildcard) => ({ wildcard }));
}
