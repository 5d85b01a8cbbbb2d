import { Annotations, Aws, Duration, Stack } from 'aws-cdk-lib';
import { EventField, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { ARCHIVE_SUFFIXES } from '../core/archive-names.ts';
import { MANIFEST_NAME, SIDECAR_SUFFIX } from '../core/catalogue.ts';
import { ARRIVAL_BATCHING_SECONDS } from '../pipeline/arrival.ts';
import type { ResolvedInputs } from './inputs.ts';
import { acknowledge } from './nag.ts';
import type { PipelineFunction } from './pipeline-function.ts';
import { FUNCTION_SPECS, type PipelineFunctions } from './pipeline-functions.ts';
import type { PipelineStateMachine } from './pipeline-state-machine.ts';
import type { RestoreSandbox } from './restore-sandbox.ts';
import { keepIdsNamedAfter, StackPart } from './stable-ids.ts';

export interface TriggersProps {
  inputs: ResolvedInputs;
  pipeline: PipelineFunctions;
  machine: PipelineStateMachine;
  sandbox: RestoreSandbox;
}

/** What starts a run (the schedule, new backups) and what fails a restore step whose task stopped. */
export class Triggers extends StackPart {
  /** The arrival queue's dead letters, with validate-on-arrival. */
  readonly arrivalDeadLetters?: Queue;

  constructor(scope: Construct, id: string, props: TriggersProps) {
    super(scope, id);
    const { inputs, pipeline, machine } = props;
    const executionInput = { sources: inputs.sources.map((s) => s.url), config: inputs.configDocument };
    const scheduleRole = new Role(this, 'ScheduleRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler: start the backup validation state machine',
    });
    new Schedule(this, 'Schedule', {
      schedule: ScheduleExpression.expression(inputs.schedule),
      description: 'backup-validator: scheduled validation of every source',
      target: new StepFunctionsStartExecution(machine.stateMachine, {
        role: scheduleRole,
        input: ScheduleTargetInput.fromObject({ trigger: 'schedule', ...executionInput }),
        retryAttempts: 3,
      }),
    });

    const taskStopped = pipeline.functions['task-stopped'].fn;
    const taskStoppedRule = new Rule(this, 'TaskStoppedRule', {
      description: 'backup-validator: fail the waiting restore step as soon as its sandbox task stops',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: { lastStatus: ['STOPPED'], clusterArn: [props.sandbox.cluster.clusterArn] },
      },
      targets: [
        new LambdaFunction(taskStopped, {
          retryAttempts: 8,
          maxEventAge: Duration.hours(2),
          deadLetterQueue: pipeline.taskStoppedDeadLetters,
        }),
      ],
    });

    keepIdsNamedAfter(taskStoppedRule, taskStopped);

    const arrival = pipeline.functions.arrival;
    if (arrival) this.arrivalDeadLetters = this.addArrivals(arrival, inputs, machine);
  }

  /**
   * Validate-on-arrival: each source's rule puts "Object Created" events on a queue; the arrival
   * Lambda takes them in batches and starts one run per source and window (functions/arrival), which
   * checks only what is new. A burst of uploads is one run, not one per object.
   */
  private addArrivals(
    arrival: PipelineFunction,
    inputs: ResolvedInputs,
    machine: PipelineStateMachine,
  ): Queue {
    const deadLetters = new Queue(this, 'ArrivalDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      deadLetters,
      'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the arrival queue and of its EventBridge targets.',
    );
    const queue = new Queue(this, 'Arrivals', {
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
    keepIdsNamedAfter(arrival.fn, queue);
    arrival.fn.addEnvironment('STATE_MACHINE_ARN', machine.stateMachine.stateMachineArn);
    machine.stateMachine.grantStartExecution(arrival.role);
    machine.stateMachine.grantExecution(arrival.role, 'states:DescribeExecution');
    acknowledge(
      arrival,
      `AwsSolutions-IAM5[Resource::${machine.executionsArnFinding()}]`,
      'The arrival Lambda describes the run it may share with another batch: the wildcard covers only executions of this state machine.',
    );
    inputs.sources.forEach((source, i) => {
      const keyPrefix = source.prefix ? `${source.prefix}/` : '';
      new Rule(this, `ArrivalRule${i}`, {
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
      Annotations.of(Stack.of(this)).addInfo(
        `Validate-on-arrival for ${source.url}: the owner of bucket ${source.bucket} must turn on "Send notifications to Amazon EventBridge" (bucket Properties > Event notifications, or add "EventBridgeConfiguration": {} to the bucket's existing notification configuration; put-bucket-notification-configuration replaces the whole configuration). This stack imports the bucket and cannot change it.`,
      );
    });
    return deadLetters;
  }
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
