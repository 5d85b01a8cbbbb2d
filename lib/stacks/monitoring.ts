import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
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
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../core/metrics.ts';
import { type Functions, type PipelineFunctions, pascal } from './pipeline-functions.ts';
import { StackPart } from './stable-ids.ts';
import type { Triggers } from './triggers.ts';

export interface MonitoringProps {
  alarmEmail?: string;
  pipeline: PipelineFunctions;
  stateMachine: StateMachine;
  triggers: Triggers;
}

/** The alarm topic (encrypted), one alarm per way a run can go wrong, and the dashboard. */
export class Monitoring extends StackPart {
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { functions } = props.pipeline;
    const machine = props.stateMachine;
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
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
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
    this.addAlarm(
      'ExecutionsFailedAlarm',
      machine.metricFailed({ period, statistic: 'Sum' }),
      'A validation run failed: a backup failed validation or the pipeline could not finish. See the run report.',
    );
    this.addAlarm(
      'ExecutionsAbortedAlarm',
      machine.metricAborted({ period, statistic: 'Sum' }),
      'A validation run was stopped before producing its report: its backups were not validated.',
    );
    this.addAlarm(
      'TaskStoppedDeadLettersAlarm',
      props.pipeline.taskStoppedDeadLetters.metricApproximateNumberOfMessagesVisible({
        period,
        statistic: 'Maximum',
      }),
      'A sandbox task stopped and the task-stopped Lambda could not fail its waiting step: that restore waits for its heartbeat timeout.',
    );
    const arrivalDeadLetters = props.triggers.arrivalDeadLetters;
    if (arrivalDeadLetters) {
      this.addAlarm(
        'ArrivalDeadLettersAlarm',
        arrivalDeadLetters.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'New backups arrived and no validation run could be started for them: see the arrival Lambda logs; the messages wait in the dead-letter queue.',
      );
    }
    this.addAlarm(
      'ExecutionsTimedOutAlarm',
      machine.metricTimedOut({ period, statistic: 'Sum' }),
      'A validation run timed out before producing its report.',
    );
    for (const [name, fn] of Object.entries(functions)) {
      this.addAlarm(
        `${pascal(name)}ErrorsAlarm`,
        fn.fn.metricErrors({ period, statistic: 'Sum' }),
        `The ${name} Lambda reported errors.`,
      );
    }
    this.addAlarm(
      'BackupsFailedAlarm',
      pipelineMetric('BackupsFailed', 'Maximum'),
      'At least one backup failed validation in the last run.',
    );
    this.addAlarm(
      'RpoBreachesAlarm',
      pipelineMetric('RpoBreaches', 'Maximum'),
      'The newest backup of at least one series is older than its RPO.',
    );
    dashboard(this, machine, functions);
  }

  private addAlarm(id: string, metric: IMetric, description: string): void {
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
  }
}

function pipelineMetric(metricName: string, statistic: string): Metric {
  return new Metric({ namespace: METRICS_NAMESPACE, metricName, statistic, period: Duration.hours(1) });
}

function perSeries(metricName: string, statistic: string, label: string): MathExpression {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},Series} MetricName="${metricName}"', '${statistic}', 3600)`,
    label,
    period: Duration.hours(1),
  });
}

function dashboard(scope: Construct, machine: StateMachine, functions: Functions): Dashboard {
  return new Dashboard(scope, 'Dashboard', {
    widgets: [
      [
        new GraphWidget({
          title: 'Executions',
          left: [
            machine.metricStarted({ statistic: 'Sum' }),
            machine.metricSucceeded({ statistic: 'Sum' }),
            machine.metricFailed({ statistic: 'Sum' }),
            machine.metricTimedOut({ statistic: 'Sum' }),
          ],
        }),
        new GraphWidget({
          title: 'Execution duration',
          left: [machine.metricTime({ statistic: 'Maximum' })],
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
            perSeries('RestoreSeconds', 'Maximum', 'restore'),
            perSeries('RtoSeconds', 'Maximum', 'RTO'),
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
          left: [perSeries('CoverageShare', 'Minimum', 'coverage')],
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
}
