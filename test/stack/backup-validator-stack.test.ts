import { Match } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEPLOYED_SIZES } from '../../lib/core/prices.ts';
import {
  FUNCTION_ARN_PLACEHOLDERS,
  loadDefinitionText,
  TASK_STATE_FUNCTIONS,
} from '../../lib/pipeline/definition.ts';
import { DEFAULT_EPHEMERAL_GIB, FUNCTION_SPECS } from '../../lib/stacks/backup-validator-stack.ts';
import {
  actionsOf,
  flattenCfn,
  logicalIdStartingWith,
  resourcesOf,
  type Statement,
  statementsOfRole,
  synthStack,
} from '../support/cdk.ts';

const CONFIG = {
  defaults: { rpoMinutes: 60, redundancy: { copies: 1, targets: ['s3://copies-bucket/mirror'] } },
  series: { 'db-*': { rtoMinutes: 10 } },
};

const { template } = synthStack({
  sources: ['s3://prod-backups/db', 's3://prod-backups/files/', 's3://other-backups'],
  configDocument: CONFIG,
  alarmEmail: 'ops@example.com',
  redundancyTargets: ['s3://dr-bucket/copies'],
  validateOnArrival: true,
});
const resources = template.toJSON().Resources as Record<
  string,
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are untyped JSON that the assertions walk
  { Type: string; Properties: Record<string, any> }
>;

function functionRole(name: string): string {
  const pascal = name
    .split('-')
    .map((p) => p[0]?.toUpperCase() + p.slice(1))
    .join('');
  return logicalIdStartingWith(template, 'AWS::IAM::Role', `${pascal}Role`);
}

function s3Statements(statements: Statement[]): Statement[] {
  return statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
}

const S3_WRITE = /^s3:(Put|Delete|Copy|Restore|Abort|Replicate|Create|Update|Bypass)/;

function writesOn(statements: Statement[], bucket: string): string[] {
  return statements
    .filter((s) => resourcesOf(s).some((r) => r.startsWith(`arn:aws:s3:::${bucket}`)))
    .flatMap(actionsOf)
    .filter((a) => S3_WRITE.test(a) || a === 's3:*');
}

describe('IAM: least privilege per function', () => {
  it('never gives any role a write action on a source bucket', () => {
    for (const id of Object.keys(template.findResources('AWS::IAM::Role'))) {
      const statements = statementsOfRole(template, id);
      expect(writesOn(statements, 'prod-backups'), id).toEqual([]);
      expect(writesOn(statements, 'other-backups'), id).toEqual([]);
    }
  });

  it('reads sources only below their prefixes, listing with an s3:prefix condition', () => {
    const statements = s3Statements(statementsOfRole(template, functionRole('integrity')));
    const reads = statements.find((s) => resourcesOf(s).includes('arn:aws:s3:::prod-backups/db/*'));
    // Issue 15: the immutability check's object reads (retention, legal hold) share the statement.
    expect(actionsOf(reads as Statement).sort()).toEqual([
      's3:GetObject',
      's3:GetObjectAttributes',
      's3:GetObjectLegalHold',
      's3:GetObjectRetention',
    ]);
    expect(resourcesOf(reads as Statement).sort()).toEqual([
      'arn:aws:s3:::other-backups/*',
      'arn:aws:s3:::prod-backups/db/*',
      'arn:aws:s3:::prod-backups/files/*',
    ]);
    const list = statements.find(
      (s) => actionsOf(s).includes('s3:ListBucket') && resourcesOf(s)[0] === 'arn:aws:s3:::prod-backups',
    );
    expect(list?.Condition).toEqual({ StringLike: { 's3:prefix': ['db', 'db/*', 'files', 'files/*'] } });
    const wholeBucket = statements.find(
      (s) => actionsOf(s).includes('s3:ListBucket') && resourcesOf(s)[0] === 'arn:aws:s3:::other-backups',
    );
    expect(wholeBucket?.Condition).toBeUndefined();
  });

  it('gives source access only to the functions that read backups and to the sandbox task', () => {
    const readers = Object.keys(FUNCTION_SPECS).filter((name) =>
      statementsOfRole(template, functionRole(name)).some((s) =>
        resourcesOf(s).some((r) => r.startsWith('arn:aws:s3:::prod-backups')),
      ),
    );
    expect(readers.sort()).toEqual(['discover', 'integrity', 'redundancy']);
    const taskRole = logicalIdStartingWith(template, 'AWS::IAM::Role', 'RestoreTaskTaskRole');
    expect(
      statementsOfRole(template, taskRole).some((s) =>
        resourcesOf(s).includes('arn:aws:s3:::prod-backups/db/*'),
      ),
    ).toBe(true);
  });

  it('issue 15: gives the integrity function (which runs the immutability check) exactly the protection Get* reads, on the sources only', () => {
    const protection = [
      's3:GetBucketObjectLockConfiguration',
      's3:GetBucketVersioning',
      's3:GetLifecycleConfiguration',
      's3:GetObjectLegalHold',
      's3:GetObjectRetention',
    ];
    const statements = s3Statements(statementsOfRole(template, functionRole('integrity')));
    const buckets = statements.find((s) => actionsOf(s).includes('s3:GetBucketVersioning'));
    expect(actionsOf(buckets as Statement).sort()).toEqual(protection.slice(0, 3));
    expect(resourcesOf(buckets as Statement).sort()).toEqual([
      'arn:aws:s3:::other-backups',
      'arn:aws:s3:::prod-backups',
    ]);
    const objects = statements.find((s) => actionsOf(s).includes('s3:GetObjectRetention'));
    expect(
      actionsOf(objects as Statement)
        .filter((a) => protection.includes(a))
        .sort(),
    ).toEqual(protection.slice(3));
    expect(resourcesOf(objects as Statement).sort()).toEqual([
      'arn:aws:s3:::other-backups/*',
      'arn:aws:s3:::prod-backups/db/*',
      'arn:aws:s3:::prod-backups/files/*',
    ]);
    // No other role reads protection settings, and no role may change them.
    for (const name of Object.keys(FUNCTION_SPECS)) {
      const actions = statementsOfRole(template, functionRole(name)).flatMap(actionsOf);
      const granted = actions.filter((a) => protection.includes(a)).sort();
      expect(granted, name).toEqual(name === 'integrity' ? protection : []);
      expect(
        actions.filter((a) =>
          /^s3:(Put|Delete)(ObjectRetention|ObjectLegalHold|Bucket|Lifecycle)|^s3:BypassGovernanceRetention/.test(
            a,
          ),
        ),
        name,
      ).toEqual([]);
    }
  });

  it('lets only the redundancy function write, and only to the redundancy targets, never delete', () => {
    for (const name of Object.keys(FUNCTION_SPECS)) {
      const statements = statementsOfRole(template, functionRole(name));
      const targets = ['dr-bucket', 'copies-bucket'].flatMap((b) => writesOn(statements, b));
      if (name === 'redundancy') expect(targets).toEqual(['s3:PutObject', 's3:PutObject']);
      else expect(targets, name).toEqual([]);
    }
    const redundancy = statementsOfRole(template, functionRole('redundancy'));
    const put = redundancy.find((s) => resourcesOf(s).includes('arn:aws:s3:::dr-bucket/copies/*'));
    expect(actionsOf(put as Statement).sort()).toEqual([
      's3:GetObject',
      's3:GetObjectAttributes',
      's3:PutObject',
    ]);
    expect(resourcesOf(put as Statement).sort()).toEqual([
      'arn:aws:s3:::copies-bucket/mirror/*',
      'arn:aws:s3:::dr-bucket/copies/*',
    ]);
    expect(redundancy.flatMap(actionsOf).filter((a) => a.includes('Delete'))).toEqual([]);
  });

  it('names every resource except the actions AWS offers no resource-level permission for', () => {
    const allowedStar = new Set([
      'xray:PutTraceSegments',
      'xray:PutTelemetryRecords',
      'ecr:GetAuthorizationToken',
      'logs:CreateLogDelivery',
      'logs:GetLogDelivery',
      'logs:UpdateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:DescribeResourcePolicies',
      'logs:DescribeLogGroups',
      'xray:GetSamplingRules',
      'xray:GetSamplingTargets',
    ]);
    for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement as Statement[]) {
        if (resourcesOf(statement).includes('*')) {
          for (const action of actionsOf(statement)) expect(allowedStar, action).toContain(action);
        }
        for (const action of actionsOf(statement)) expect(action).not.toMatch(/\*$/);
      }
    }
  });

  it('gives the ledger to each function with named indexes, and no Scan or DeleteItem anywhere', () => {
    const all = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as Statement[],
    );
    const dynamo = all.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo.flatMap(actionsOf)).not.toContain('dynamodb:Scan');
    expect(dynamo.flatMap(actionsOf)).not.toContain('dynamodb:DeleteItem');
    const ledgerId = logicalIdStartingWith(template, 'AWS::DynamoDB::Table', 'Ledger');
    for (const r of dynamo.flatMap(resourcesOf)) {
      expect([`<${ledgerId}.Arn>`, `<${ledgerId}.Arn>/index/gsi1`, `<${ledgerId}.Arn>/index/gsi2`]).toContain(
        r,
      );
    }
    const triggerWrites = statementsOfRole(template, functionRole('restore-trigger'))
      .flatMap(actionsOf)
      .filter((a) => /dynamodb:(Put|Update|BatchWrite)/.test(a));
    expect(triggerWrites).toEqual([]);
  });

  it('lets restore-trigger run only the sandbox task definition on this cluster and pass only its roles to ECS', () => {
    const statements = statementsOfRole(template, functionRole('restore-trigger'));
    const runTask = statements.find((s) => actionsOf(s).includes('ecs:RunTask')) as Statement;
    const taskDef = logicalIdStartingWith(template, 'AWS::ECS::TaskDefinition', 'RestoreTask');
    const cluster = logicalIdStartingWith(template, 'AWS::ECS::Cluster', 'Cluster');
    expect(resourcesOf(runTask)).toEqual([`<${taskDef}>`]);
    expect(flattenCfn(runTask.Condition?.ArnEquals?.['ecs:cluster'])).toBe(`<${cluster}.Arn>`);
    const passRole = statements.find((s) => actionsOf(s).includes('iam:PassRole')) as Statement;
    expect(resourcesOf(passRole).sort()).toEqual(
      [
        `<${logicalIdStartingWith(template, 'AWS::IAM::Role', 'RestoreTaskTaskRole')}.Arn>`,
        `<${logicalIdStartingWith(template, 'AWS::IAM::Role', 'RestoreTaskExecutionRole')}.Arn>`,
      ].sort(),
    );
    expect(passRole.Condition).toEqual({
      StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' },
    });
  });

  it('lets the sandbox task and task-stopped answer task tokens of this state machine and its child executions only', () => {
    const machine = logicalIdStartingWith(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
    for (const role of [
      logicalIdStartingWith(template, 'AWS::IAM::Role', 'RestoreTaskTaskRole'),
      functionRole('task-stopped'),
    ]) {
      const states = statementsOfRole(template, role).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('states:')),
      );
      expect(states.flatMap(actionsOf).sort()).toEqual([
        'states:SendTaskFailure',
        'states:SendTaskHeartbeat',
        'states:SendTaskSuccess',
      ]);
      expect(states.flatMap(resourcesOf).sort()).toEqual(
        [`<${machine}>`, `arn:aws:states:eu-west-1:123456789012:execution:<${machine}.Name>/*`].sort(),
      );
    }
  });

  it('lets the state machine start, describe, stop and redrive its own child executions only (the Restores Distributed Map)', () => {
    const role = logicalIdStartingWith(template, 'AWS::IAM::Role', 'StateMachineRole');
    const machine = logicalIdStartingWith(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
    const states = statementsOfRole(template, role).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('states:')),
    );
    expect([...new Set(states.flatMap(actionsOf))].sort()).toEqual([
      'states:DescribeExecution',
      'states:RedriveExecution',
      'states:StartExecution',
      'states:StopExecution',
    ]);
    const resources = states.flatMap(resourcesOf);
    expect(resources).toContain(`<${machine}>`);
    for (const resource of resources) {
      expect(
        resource === `<${machine}>` || (resource.includes(':execution:') && resource.includes(machine)),
      ).toBe(true);
    }
  });

  it('lets the state machine invoke exactly the seven pipeline functions', () => {
    const role = logicalIdStartingWith(template, 'AWS::IAM::Role', 'StateMachineRole');
    const invoke = statementsOfRole(template, role).filter((s) =>
      actionsOf(s).includes('lambda:InvokeFunction'),
    );
    const arns = invoke.flatMap(resourcesOf).sort();
    const expected = Object.keys(FUNCTION_ARN_PLACEHOLDERS)
      .map((name) => {
        const pascal = name
          .split('-')
          .map((p) => p[0]?.toUpperCase() + p.slice(1))
          .join('');
        return `<${logicalIdStartingWith(template, 'AWS::Lambda::Function', `${pascal}Function`)}.Arn>`;
      })
      .sort();
    expect(arns).toEqual(expected);
  });
});

describe('the state machine', () => {
  const machine = Object.values(resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  const definition = JSON.parse(flattenCfn(machine?.Properties.DefinitionString));
  const inner = (map: string) => definition.States[map].ItemProcessor.States;

  it('is a logged, traced STANDARD state machine', () => {
    expect(machine?.Properties.StateMachineType).toBe('STANDARD');
    expect(machine?.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine?.Properties.LoggingConfiguration).toMatchObject({
      Level: 'ALL',
      IncludeExecutionData: true,
    });
  });

  it('carries the definition file with every function ARN substituted to the right function', () => {
    expect(flattenCfn(machine?.Properties.DefinitionString)).toBe(loadDefinitionText());
    const substitutions = machine?.Properties.DefinitionSubstitutions as Record<string, unknown>;
    const substituted = JSON.parse(
      loadDefinitionText().replace(/\$\{([A-Za-z]+)\}/g, (whole, key: string) =>
        key in substitutions ? flattenCfn(substitutions[key]) : whole,
      ),
    );
    const states = {
      ...substituted.States,
      ...substituted.States.Integrity.ItemProcessor.States,
      ...substituted.States.Restores.ItemProcessor.States,
      ...substituted.States.Redundancy.ItemProcessor.States,
    };
    for (const [state, fn] of Object.entries(TASK_STATE_FUNCTIONS)) {
      const pascal = fn
        .split('-')
        .map((p) => p[0]?.toUpperCase() + p.slice(1))
        .join('');
      const id = logicalIdStartingWith(template, 'AWS::Lambda::Function', `${pascal}Function`);
      expect(states[state].Parameters.FunctionName, state).toBe(`<${id}.Arn>`);
    }
    expect(Object.keys(substitutions).sort()).toEqual(Object.values(FUNCTION_ARN_PLACEHOLDERS).sort());
  });

  it('retries transient Lambda errors and routes failures to the record and report states', () => {
    const checkShard = inner('Integrity').CheckShard;
    expect(checkShard.Retry[0]).toMatchObject({
      ErrorEquals: expect.arrayContaining(['Lambda.ServiceException', 'Lambda.TooManyRequestsException']),
      MaxAttempts: 3,
      BackoffRate: 2,
      JitterStrategy: 'FULL',
    });
    expect(checkShard.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordIntegrityFailure' },
    ]);
    expect(definition.States.Integrity.MaxConcurrency).toBe(8);
    expect(definition.States.Integrity.Catch[0]).toMatchObject({
      Next: 'SelectRestores',
      ResultPath: '$.integrityError',
    });
    // Redundancy does not depend on restores: it still runs when selection or the Restores map fails.
    expect(definition.States.SelectRestores.Catch[0]).toMatchObject({
      Next: 'Redundancy',
      ResultPath: '$.selectError',
    });
    expect(definition.States.Restores.Catch[0]).toMatchObject({
      Next: 'Redundancy',
      ResultPath: '$.restoresError',
    });
    expect(definition.States.Redundancy.Catch[0]).toMatchObject({
      Next: 'Report',
      ResultPath: '$.redundancyError',
    });
    expect(definition.States.Discover.Catch).toBeUndefined();
    expect(definition.States.Report.Catch).toBeUndefined();
    expect(definition.States.BackupsFailed).toMatchObject({ Type: 'Fail', Error: 'BackupValidationFailed' });
  });

  it('issue 12: retries client-side Lambda timeouts everywhere; Map children end with {}; the Restores Map tolerates no lost failure', () => {
    const tasks = {
      ...definition.States,
      ...inner('Integrity'),
      ...inner('Restores'),
      ...inner('Redundancy'),
    } as Record<string, { Resource?: string; Retry?: Array<{ ErrorEquals: string[] }> }>;
    const lambdaTasks = Object.entries(tasks).filter(([, s]) =>
      s.Resource?.startsWith('arn:aws:states:::lambda:invoke'),
    );
    expect(lambdaTasks.map(([name]) => name).sort()).toEqual(Object.keys(TASK_STATE_FUNCTIONS).sort());
    for (const [name, state] of lambdaTasks) {
      expect(state.Retry?.[0]?.ErrorEquals, name).toEqual(
        expect.arrayContaining([
          'Lambda.ServiceException',
          'Lambda.AWSLambdaException',
          'Lambda.SdkClientException',
          'Lambda.TooManyRequestsException',
          'Lambda.ClientExecutionTimeoutException',
          'Lambda.Unknown',
        ]),
      );
    }
    const children = [
      ...Object.entries(inner('Integrity')),
      ...Object.entries(inner('Restores')),
      ...Object.entries(inner('Redundancy')),
    ] as Array<[string, Record<string, unknown>]>;
    for (const [name, state] of children) {
      if (state.End) expect(state.OutputPath, name).toBeNull();
    }
    expect(definition.States.Restores.ToleratedFailurePercentage).toBe(0);
  });

  it('carries restore indexes from SelectRestores and rebuilds each item in the Restores Map', () => {
    expect(definition.States.SelectRestores.ResultSelector).toEqual({
      'restores.$': '$.Payload.restores',
      'heartbeatSeconds.$': '$.Payload.heartbeatSeconds',
      'timeoutSeconds.$': '$.Payload.timeoutSeconds',
    });
    expect(definition.States.SelectRestores.ResultPath).toBe('$.select');
    expect(definition.States.Restores.ItemsPath).toBe('$.select.restores');
    // One child execution per restore: thousands of restores never reach one history's 25,000 events.
    expect(definition.States.Restores.ItemProcessor.ProcessorConfig).toEqual({
      Mode: 'DISTRIBUTED',
      ExecutionType: 'STANDARD',
    });
    expect(definition.States.Restores.ResultPath).toBeNull();
    expect(definition.States.Restores.ItemSelector).toEqual({
      'runId.$': '$.discover.runId',
      'restore.$': '$$.Map.Item.Value',
      'heartbeatSeconds.$': '$.select.heartbeatSeconds',
      'timeoutSeconds.$': '$.select.timeoutSeconds',
    });
  });

  it('waits for the sandbox with a heartbeat and a timeout, retrying only transient and capacity errors', () => {
    const restore = inner('Restores').RestoreBackup;
    expect(restore.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(restore.HeartbeatSecondsPath).toBe('$.heartbeatSeconds');
    expect(restore.TimeoutSecondsPath).toBe('$.timeoutSeconds');
    expect(restore.Parameters.Payload).toEqual({ 'item.$': '$', 'taskToken.$': '$$.Task.Token' });
    const retried = restore.Retry.flatMap((r: { ErrorEquals: string[] }) => r.ErrorEquals);
    expect(retried).toContain('Sandbox.CapacityUnavailable');
    expect(retried).toContain('Sandbox.LaunchFailed');
    expect(retried).not.toContain('Sandbox.RestoreFailed');
    expect(retried).not.toContain('Sandbox.TaskStopped');
    expect(retried).not.toContain('States.Timeout');
    expect(retried).not.toContain('States.ALL');
    expect(restore.Catch[0]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: 'RecordRestoreFailure' });
    expect(definition.States.Restores.MaxConcurrency).toBe(5);
  });
});

describe('triggers', () => {
  it('schedules a weekly run by default through a role that may only start this state machine', () => {
    const schedule = Object.values(resources).find((r) => r.Type === 'AWS::Scheduler::Schedule');
    if (!schedule) throw new Error('no schedule in the template');
    expect(schedule.Properties.ScheduleExpression).toBe('cron(0 3 ? * SUN *)');
    const machine = logicalIdStartingWith(template, 'AWS::StepFunctions::StateMachine', 'StateMachine');
    expect(flattenCfn(schedule.Properties.Target.Arn)).toBe(`<${machine}>`);
    expect(JSON.parse(schedule.Properties.Target.Input)).toEqual({
      trigger: 'schedule',
      sources: ['s3://prod-backups/db', 's3://prod-backups/files', 's3://other-backups'],
      config: CONFIG,
    });
    const roleId = (schedule.Properties.Target.RoleArn['Fn::GetAtt'] as string[])[0] as string;
    const statements = statementsOfRole(template, roleId);
    expect(statements.flatMap(actionsOf)).toEqual(['states:StartExecution']);
    expect(statements.flatMap(resourcesOf)).toEqual([`<${machine}>`]);
  });

  it('sends stopped sandbox tasks of this cluster to task-stopped', () => {
    const cluster = logicalIdStartingWith(template, 'AWS::ECS::Cluster', 'Cluster');
    const rule = Object.values(resources).find(
      (r) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern.source?.[0] === 'aws.ecs',
    );
    expect(rule?.Properties.EventPattern['detail-type']).toEqual(['ECS Task State Change']);
    expect(rule?.Properties.EventPattern.detail.lastStatus).toEqual(['STOPPED']);
    expect(flattenCfn(rule?.Properties.EventPattern.detail.clusterArn[0])).toBe(`<${cluster}.Arn>`);
    const fn = logicalIdStartingWith(template, 'AWS::Lambda::Function', 'TaskStoppedFunction');
    expect(flattenCfn(rule?.Properties.Targets[0].Arn)).toBe(`<${fn}.Arn>`);
  });

  it('validates new archives on arrival, one rule per source, when asked', () => {
    const rules = Object.values(resources).filter(
      (r) => r.Type === 'AWS::Events::Rule' && r.Properties.EventPattern.source?.[0] === 'aws.s3',
    );
    expect(rules).toHaveLength(3);
    const db = rules.find((r) => r.Properties.EventPattern.detail.object.key[0].wildcard.startsWith('db/'));
    expect(db?.Properties.EventPattern.detail.bucket.name).toEqual(['prod-backups']);
    expect(db?.Properties.EventPattern.detail.object.key).toContainEqual({ wildcard: 'db/*.tar.gz' });
    // issue 12: every archive name the catalogue reads, sidecars, and a directory backup's manifest.
    for (const wildcard of ['db/*.tar.zstd', 'db/*.zst', 'db/*.sha256', 'db/*/SHA256SUMS'])
      expect(db?.Properties.EventPattern.detail.object.key).toContainEqual({ wildcard });
    const whole = rules.find((r) => r.Properties.EventPattern.detail.bucket.name[0] === 'other-backups');
    expect(whole?.Properties.EventPattern.detail.object.key).toContainEqual({ wildcard: '*.tgz' });
  });
});

describe('storage', () => {
  it('keeps the ledger: pk/sk and two string-keyed indexes, on demand, PITR, TTL, encrypted, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: { SSEEnabled: true },
        GlobalSecondaryIndexes: ['gsi1', 'gsi2'].map((name) => ({
          IndexName: name,
          KeySchema: [
            { AttributeName: `${name}pk`, KeyType: 'HASH' },
            { AttributeName: `${name}sk`, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    });
    const table = Object.values(resources).find((r) => r.Type === 'AWS::DynamoDB::Table');
    for (const attribute of table?.Properties.AttributeDefinitions ?? [])
      expect(attribute.AttributeType).toBe('S');
  });

  it('keeps reports in a private, encrypted, versioned, logged bucket whose run artifacts expire', () => {
    const reports = logicalIdStartingWith(template, 'AWS::S3::Bucket', 'Reports');
    const bucket = resources[reports]?.Properties;
    expect(bucket?.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(
      bucket?.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
    ).toEqual({
      SSEAlgorithm: 'AES256',
    });
    expect(bucket?.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket?.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ Prefix: 'runs/', ExpirationInDays: 30, Status: 'Enabled' }),
    );
    expect(flattenCfn(bucket?.LoggingConfiguration.DestinationBucketName)).toMatch(/^<AccessLogs/);
    const policy = Object.values(resources).find(
      (r) => r.Type === 'AWS::S3::BucketPolicy' && flattenCfn(r.Properties.Bucket) === `<${reports}>`,
    );
    expect(policy?.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });
});

describe('the restore sandbox', () => {
  it('has only isolated subnets: no internet gateway, no NAT, no route out of the VPC', () => {
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::EgressOnlyInternetGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.resourceCountIs('AWS::EC2::Route', 0);
    for (const subnet of Object.values(template.findResources('AWS::EC2::Subnet'))) {
      expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    }
  });

  it('reaches AWS through S3/DynamoDB gateway endpoints and private interface endpoints only', () => {
    const endpoints = Object.values(template.findResources('AWS::EC2::VPCEndpoint'));
    const services = endpoints.map((e) => flattenCfn(e.Properties.ServiceName)).sort();
    expect(services).toEqual(
      [
        'com.amazonaws.eu-west-1.dynamodb',
        'com.amazonaws.eu-west-1.ecr.api',
        'com.amazonaws.eu-west-1.ecr.dkr',
        'com.amazonaws.eu-west-1.logs',
        'com.amazonaws.eu-west-1.s3',
        'com.amazonaws.eu-west-1.states',
      ].sort(),
    );
    for (const endpoint of endpoints) {
      if (endpoint.Properties.VpcEndpointType === 'Interface')
        expect(endpoint.Properties.PrivateDnsEnabled).toBe(true);
    }
  });

  it('gives the task a security group with no ingress and HTTPS-only egress', () => {
    const sgId = logicalIdStartingWith(template, 'AWS::EC2::SecurityGroup', 'SandboxTaskSecurityGroup');
    const sg = resources[sgId]?.Properties;
    expect(sg?.SecurityGroupIngress).toBeUndefined();
    const ingressToTask = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).filter(
      (i) => flattenCfn(i.Properties.GroupId) === `<${sgId}.GroupId>`,
    );
    expect(ingressToTask).toEqual([]);
    for (const rule of sg?.SecurityGroupEgress ?? []) {
      expect(rule).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
    }
    expect(sg?.SecurityGroupEgress.length).toBeGreaterThan(0);
  });

  it('runs the restore image read-only, non-root, on ARM64 Fargate with a writable /sandbox', () => {
    const taskDef = Object.values(resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition')?.Properties;
    expect(taskDef?.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    expect(taskDef?.RequiresCompatibilities).toEqual(['FARGATE']);
    expect(taskDef?.EphemeralStorage).toEqual({ SizeInGiB: 21 });
    const container = taskDef?.ContainerDefinitions[0];
    expect(container.Name).toBe('restore-sandbox');
    expect(container.ReadonlyRootFilesystem).toBe(true);
    expect(container.User).toBe('1000:1000');
    expect(container.MountPoints).toContainEqual({
      ContainerPath: '/sandbox',
      SourceVolume: 'sandbox',
      ReadOnly: false,
    });
    expect(container.LogConfiguration.LogDriver).toBe('awslogs');
    expect(container.Environment.map((e: { Name: string }) => e.Name).sort()).toEqual(
      ['BACKUP_VALIDATOR_ROLE', 'LEDGER_TABLE', 'METRICS_NAMESPACE', 'RUN_STORE'].sort(),
    );
    // issue 12: an ACCESS_DENIED names the role to grant, even when S3's message does not.
    const taskRole = flattenCfn(
      resources[logicalIdStartingWith(template, 'AWS::ECS::TaskDefinition', 'RestoreTask')]?.Properties
        .TaskRoleArn,
    );
    const roleEnv = container.Environment.find((e: { Name: string }) => e.Name === 'BACKUP_VALIDATOR_ROLE');
    expect(taskRole).toBe(`<${flattenCfn(roleEnv.Value).slice(1, -1)}.Arn>`);
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it('tells restore-trigger where and how to launch the sandbox', () => {
    const fn = logicalIdStartingWith(template, 'AWS::Lambda::Function', 'RestoreTriggerFunction');
    const env = resources[fn]?.Properties.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(
      [
        'BACKUP_VALIDATOR_ROLE',
        'CLUSTER_ARN',
        'CONTAINER_NAME',
        'LEDGER_TABLE',
        'MAX_EPHEMERAL_GIB',
        'METRICS_NAMESPACE',
        'RUN_STORE',
        'SECURITY_GROUP_IDS',
        'SOURCES',
        'SUBNET_IDS',
        'TASK_DEFINITION_ARN',
      ].sort(),
    );
    expect(env.CONTAINER_NAME).toBe('restore-sandbox');
    expect(env.MAX_EPHEMERAL_GIB).toBe('200');
    expect(flattenCfn(env.SUBNET_IDS).split(',')).toHaveLength(2);
  });
});

describe('Lambdas', () => {
  it('run Node.js 22 on arm64 with JSON logs in their own log group, tracing and the contract environment', () => {
    const functions = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
    // The eight pipeline functions and, with validate-on-arrival, the arrival function (issue 12).
    expect(functions).toHaveLength(9);
    for (const [id, fn] of functions) {
      const p = fn.Properties;
      expect(p.Runtime, id).toBe('nodejs22.x');
      expect(p.Architectures).toEqual(['arm64']);
      expect(p.Handler).toBe('index.handler');
      expect(p.TracingConfig).toEqual({ Mode: 'Active' });
      expect(p.LoggingConfig.LogFormat).toBe('JSON');
      expect(flattenCfn(p.LoggingConfig.LogGroup)).toMatch(/^<.*Logs/);
      expect(JSON.parse(p.Environment.Variables.SOURCES)).toEqual([
        's3://prod-backups/db',
        's3://prod-backups/files',
        's3://other-backups',
      ]);
      expect(p.Environment.Variables.METRICS_NAMESPACE).toBe('BackupValidator');
      expect(flattenCfn(p.Environment.Variables.BACKUP_VALIDATOR_ROLE)).toBe(
        `<${flattenCfn(p.Role).slice(1, -5)}>`,
      );
      expect(flattenCfn(p.Environment.Variables.RUN_STORE)).toMatch(/^s3:\/\/<Reports/);
    }
    const integrity = logicalIdStartingWith(template, 'AWS::Lambda::Function', 'IntegrityFunction');
    expect(resources[integrity]?.Properties).toMatchObject({ MemorySize: 3008, Timeout: 900 });
    for (const group of Object.values(template.findResources('AWS::Logs::LogGroup'))) {
      expect(group.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });
});

describe('alarms', () => {
  const alarms = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');

  it("alarm on failed and timed-out executions, each Lambda's errors and the pipeline metrics", () => {
    const names = alarms.map((a) => `${a.Properties.Namespace}/${a.Properties.MetricName}`);
    expect(names.filter((n) => n === 'AWS/States/ExecutionsFailed')).toHaveLength(1);
    expect(names.filter((n) => n === 'AWS/States/ExecutionsTimedOut')).toHaveLength(1);
    expect(names.filter((n) => n === 'AWS/Lambda/Errors')).toHaveLength(9);
    for (const metric of ['BackupsFailed', 'RpoBreaches']) {
      const alarm = alarms.find((a) => a.Properties.MetricName === metric)?.Properties;
      expect(alarm).toMatchObject({
        Namespace: 'BackupValidator',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      expect(alarm?.Dimensions).toBeUndefined();
    }
  });

  it('notify an encrypted, TLS-only topic with the e-mail subscription, through a key CloudWatch may use', () => {
    const topicId = logicalIdStartingWith(template, 'AWS::SNS::Topic', 'AlarmTopic');
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions.map(flattenCfn)).toEqual([`<${topicId}>`]);
    }
    const topic = resources[topicId]?.Properties;
    expect(flattenCfn(topic?.KmsMasterKeyId)).toMatch(/^<AlarmTopicKey.*\.Arn>$/);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    const key = Object.values(resources).find((r) => r.Type === 'AWS::KMS::Key')?.Properties;
    expect(key?.EnableKeyRotation).toBe(true);
    expect(key?.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' } }),
    );
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('chart the pipeline metrics on a dashboard', () => {
    const dashboard = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    const body = flattenCfn(dashboard?.Properties.DashboardBody);
    for (const metric of [
      'ExecutionsFailed',
      'ExecutionTime',
      'BackupsFailed',
      'IntegrityScore',
      'RestoreSeconds',
      'BackupAgeHours',
      'Errors',
    ]) {
      expect(body).toContain(`"${metric}"`);
    }
  });

  it('issue 14: the dashboard charts coverage per series and the cost estimate, from the metrics the Report step emits', () => {
    const dashboard = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    const body = flattenCfn(dashboard?.Properties.DashboardBody);
    expect(body).toContain('MetricName=\\"CoverageShare\\"');
    for (const metric of ['OldestUnverifiedDays', 'CoverageBehind', 'CostEstimateUsd']) {
      expect(body).toContain(`"${metric}"`);
    }
  });

  it('issue 15: the cost model prices the sizes the stack deploys', () => {
    expect(DEPLOYED_SIZES.integrityLambdaMb).toBe(FUNCTION_SPECS.integrity.memorySize);
    expect(DEPLOYED_SIZES.otherLambdaMb).toBe(FUNCTION_SPECS.discover.memorySize);
    expect(DEPLOYED_SIZES.sandboxStorageGib).toBe(DEFAULT_EPHEMERAL_GIB);
    const task = Object.values(resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition');
    expect(Number(task?.Properties.Cpu)).toBe(DEPLOYED_SIZES.sandboxVcpu * 1024);
    expect(Number(task?.Properties.Memory)).toBe(DEPLOYED_SIZES.sandboxMemoryGib * 1024);
  });
});

describe('cdk-nag', () => {
  it('fails synthesis when something unsafe is added', () => {
    expect(() =>
      synthStack(
        { sources: ['s3://a-bucket/p'] },
        {
          beforeSynth: (s) => {
            new Bucket(s, 'RogueBucket');
          },
        },
      ),
    ).toThrow(/AwsSolutions-S10|Validation failed/);
  });
});
