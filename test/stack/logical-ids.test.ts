import { describe, expect, it } from 'vitest';
import { synthStack } from '../support/cdk.ts';

/**
 * Issue 11: the stack is composed of constructs, and moving a resource into one must not make
 * CloudFormation replace it. Stateful resources keep their logical IDs (pinned below); every other
 * resource's ID and type is snapshotted so that a change shows up in review.
 */
const { template } = synthStack({
  sources: ['s3://prod-backups/db', 's3://prod-backups/files/', 's3://other-backups'],
  configDocument: {
    defaults: { rpoMinutes: 60, redundancy: { copies: 1, targets: ['s3://copies-bucket/mirror'] } },
    series: { 'db-*': { rtoMinutes: 10 } },
  },
  alarmEmail: 'ops@example.com',
  redundancyTargets: ['s3://dr-bucket/copies'],
  validateOnArrival: true,
});
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties?: Record<string, unknown> }
>;

const STATEFUL_TYPES = new Set([
  'AWS::DynamoDB::Table',
  'AWS::S3::Bucket',
  'AWS::SNS::Topic',
  'AWS::SQS::Queue',
  'AWS::Logs::LogGroup',
  'AWS::KMS::Key',
  'AWS::ECS::TaskDefinition',
  'AWS::ECS::Cluster',
  'AWS::EC2::VPC',
]);

describe('issue 11: logical IDs survive the stack being composed of constructs', () => {
  it('keeps the logical IDs of the stateful resources', () => {
    const stateful = Object.entries(resources)
      .filter(([, r]) => STATEFUL_TYPES.has(r.Type))
      .map(([id, r]) => `${r.Type} ${id}`)
      .sort();
    expect(stateful).toEqual([
      'AWS::DynamoDB::Table LedgerB7379752',
      'AWS::EC2::VPC SandboxVpc49D074CB',
      'AWS::ECS::Cluster ClusterEB0386A7',
      'AWS::ECS::TaskDefinition RestoreTask5891A6FB',
      'AWS::KMS::Key AlarmTopicKey57B0D3A7',
      'AWS::Logs::LogGroup ArrivalLogs9092A140',
      'AWS::Logs::LogGroup DiscoverLogsEC775F15',
      'AWS::Logs::LogGroup IntegrityLogs20AC94A9',
      'AWS::Logs::LogGroup RecordFailureLogs2AC9ED65',
      'AWS::Logs::LogGroup RedundancyLogsA1D17EA8',
      'AWS::Logs::LogGroup ReportLogsAA3E998E',
      'AWS::Logs::LogGroup RestoreTriggerLogs4BF9BE68',
      'AWS::Logs::LogGroup SandboxFlowLogs21824699',
      'AWS::Logs::LogGroup SandboxLogsE45A9FE4',
      'AWS::Logs::LogGroup SelectRestoresLogsED7D5E0D',
      'AWS::Logs::LogGroup StateMachineLogs3CB16D3C',
      'AWS::Logs::LogGroup TaskStoppedLogs4F0F8798',
      'AWS::S3::Bucket AccessLogs8B620ECA',
      'AWS::S3::Bucket Reports65402A0A',
      'AWS::SNS::Topic AlarmTopicD01E77F9',
      'AWS::SQS::Queue ArrivalDeadLetters15AB5DC4',
      'AWS::SQS::Queue ArrivalsD4970207',
      'AWS::SQS::Queue TaskStoppedDeadLetters73E7892F',
    ]);
  });

  it('keeps the task definition family (named after its construct path, not its logical ID)', () => {
    const taskDefinitions = Object.values(resources).filter((r) => r.Type === 'AWS::ECS::TaskDefinition');
    expect(taskDefinitions.map((r) => r.Properties?.Family)).toEqual([
      'BackupValidatorTestRestoreTaskD1B7C5DC',
    ]);
  });

  it('keeps the logical ID and type of every resource', () => {
    const all = Object.entries(resources)
      .map(([id, r]) => `${r.Type} ${id}`)
      .sort();
    expect(all).toMatchSnapshot();
  });
});
