import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SANDBOX_NODE_FLAGS } from '../../lib/adapters/local-sandbox.ts';
import {
  LAMBDA_INTEGRITY_MAX_BYTES,
  LAMBDA_S3_STREAM_BYTES_PER_SECOND,
} from '../../lib/core/stages/integrity.ts';
import { REPO_ROOT, SANDBOX_IMAGE_CONTEXT_EXCLUDE } from '../../lib/stacks/backup-validator-stack.ts';
import {
  actionsOf,
  flattenCfn,
  logicalIdStartingWith,
  resourcesOf,
  type Statement,
  statementsOfRole,
  synthStack,
} from '../support/cdk.ts';

/** What a first deployment to a fresh account needs, read from the synthesized template (issue 12). */

const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1111-2222';
const scratch = mkdtempSync(join(tmpdir(), 'bv-first-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const outdir = join(scratch, 'cdk.out');

const { app, template } = synthStack(
  {
    sources: ['s3://prod-backups/db'],
    kmsKeyArns: [KEY],
    s3PrefixListId: 'pl-6ea54007',
    dynamodbPrefixListId: 'pl-66a5400f',
  },
  { outdir },
);
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties: Record<string, unknown> }
>;

function taskDefinition() {
  const [def] = Object.values(resources).filter((r) => r.Type === 'AWS::ECS::TaskDefinition');
  return def?.Properties as {
    ContainerDefinitions: Array<{
      User: string;
      ReadonlyRootFilesystem: boolean;
      MountPoints: Array<{ ContainerPath: string }>;
    }>;
    TaskRoleArn: unknown;
  };
}

function roleOf(prefix: string): Statement[] {
  return statementsOfRole(template, logicalIdStartingWith(template, 'AWS::IAM::Role', prefix));
}

/** The final stage of the Dockerfile: its USER, VOLUMEs, and the folders a RUN chowns to a uid. */
function finalStage(dockerfile: string) {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const start = lines.map((l) => /^FROM /.test(l)).lastIndexOf(true);
  const stage = lines.slice(start);
  const volumes = stage
    .filter((l) => l.startsWith('VOLUME '))
    .flatMap((l) => JSON.parse(l.slice('VOLUME '.length)) as string[]);
  const owned = new Map<string, string>();
  for (const line of stage.filter((l) => l.startsWith('RUN '))) {
    for (const m of line.matchAll(/chown (\d+):\d+ ((?:\/[\w/.-]+\s*)+)/g)) {
      for (const path of (m[2] as string).trim().split(/\s+/)) owned.set(path, m[1] as string);
    }
  }
  const user = stage
    .filter((l) => l.startsWith('USER '))
    .pop()
    ?.slice('USER '.length)
    .trim();
  return { volumes, owned, user };
}

describe('the restore sandbox can write on Fargate', () => {
  it('every path the task mounts is a VOLUME of the image, owned by the uid the task runs as', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'containers/restore-sandbox/Dockerfile'), 'utf8');
    const image = finalStage(dockerfile);
    const [container] = taskDefinition().ContainerDefinitions;
    const uid = container?.User.split(':')[0];
    expect(uid).toBe('1000');
    expect(container?.ReadonlyRootFilesystem).toBe(true);
    // The node images' `node` user is uid 1000.
    expect({ node: '1000' }[image.user ?? ''] ?? image.user).toBe(uid);
    const mounted = (container?.MountPoints ?? []).map((m) => m.ContainerPath);
    expect(mounted.length).toBeGreaterThan(0);
    for (const path of mounted) {
      expect(image.volumes, `${path} is not a VOLUME in the image`).toContain(path);
      expect(image.owned.get(path), `${path} is not chowned to ${uid} in the image`).toBe(uid);
    }
  });

  it('the image runs node with the V8 flags the local sandbox was measured with', () => {
    const dockerfile = readFileSync(join(REPO_ROOT, 'containers/restore-sandbox/Dockerfile'), 'utf8');
    const entrypoint = dockerfile
      .split('\n')
      .filter((l) => l.startsWith('ENTRYPOINT '))
      .pop();
    const argv = JSON.parse(entrypoint?.slice('ENTRYPOINT '.length) ?? '[]') as string[];
    expect(argv[0]).toBe('node');
    expect(argv.at(-1)).toBe('/app/main.mjs');
    for (const flag of SANDBOX_NODE_FLAGS) expect(argv).toContain(flag);
  });

  it('the image is built from package files, lib and its own folder only: a README edit does not rebuild it', () => {
    app.synth();
    const assets = readdirSync(outdir).filter((entry) => entry.startsWith('asset.'));
    const context = assets.find((a) => readdirSync(join(outdir, a)).includes('containers'));
    expect(context).toBeDefined();
    const top = readdirSync(join(outdir, context as string)).sort();
    expect(top).toEqual(['containers', 'lib', 'package-lock.json', 'package.json']);
    expect(readdirSync(join(outdir, context as string, 'containers'))).toEqual(['restore-sandbox']);
    expect(readdirSync(join(outdir, context as string, 'lib'))).not.toContain('stacks');
  });

  it('a docker build by hand uses the same context as the deploy (Dockerfile.dockerignore is the same allow-list)', () => {
    const dockerignore = readFileSync(
      join(REPO_ROOT, 'containers/restore-sandbox/Dockerfile.dockerignore'),
      'utf8',
    )
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(dockerignore).toEqual(SANDBOX_IMAGE_CONTEXT_EXCLUDE);
  });

  it('the sandbox task reads the run store but never writes to it', () => {
    const writes = roleOf('RestoreTaskTaskRole')
      .filter((s) => resourcesOf(s).some((r) => r.includes('Reports')))
      .flatMap(actionsOf)
      .filter((a) => /^s3:(Put|Delete)/.test(a));
    expect(writes).toEqual([]);
  });
});

describe('task tokens and child executions', () => {
  const childExecutions = (statements: Statement[], action: string) =>
    statements
      .filter((s) => actionsOf(s).includes(action))
      .flatMap(resourcesOf)
      .filter((r) => /:execution:.*\/\*$/.test(r));

  it('the sandbox and the task-stopped Lambda may answer the tokens of the Distributed Map child executions', () => {
    for (const role of [roleOf('RestoreTaskTaskRole'), roleOf('TaskStoppedRole')]) {
      for (const action of ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']) {
        expect(childExecutions(role, action), action).toHaveLength(1);
      }
    }
  });

  it('the state machine may describe, stop and redrive its child executions', () => {
    const machine = roleOf('StateMachineRole');
    for (const action of ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution']) {
      expect(childExecutions(machine, action), action).toHaveLength(1);
    }
  });
});

describe('the pipeline at scale', () => {
  const definition = () => {
    const machine = Object.values(resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
    return JSON.parse(flattenCfn(machine?.Properties.DefinitionString)) as {
      States: Record<string, { MaxConcurrency?: number }>;
    };
  };

  it("a run never needs more Lambdas at once than a new account's concurrency limit of 10", () => {
    const { States } = definition();
    // Integrity shards run together; restores and the other steps come after them, one at a time.
    expect(States.Integrity?.MaxConcurrency).toBeLessThanOrEqual(8);
    expect(States.Restores?.MaxConcurrency).toBeLessThanOrEqual(8);
  });

  it('the integrity Lambda is given only what one S3 stream reads in 12 of its 15 minutes; larger backups go to the sandbox', () => {
    const integrity = Object.values(resources).find(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        flattenCfn(r.Properties.Description as string).endsWith(' integrity'),
    );
    expect(integrity?.Properties.Timeout).toBe(900);
    expect(LAMBDA_INTEGRITY_MAX_BYTES / LAMBDA_S3_STREAM_BYTES_PER_SECOND).toBeLessThanOrEqual(12 * 60);
    expect(LAMBDA_S3_STREAM_BYTES_PER_SECOND).toBeLessThanOrEqual(50 * 1000 ** 2);
  });
});

describe('operating it', () => {
  const alarms = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');

  it('an alarm fires when a run is aborted', () => {
    const aborted = alarms.find((a) => a.Properties.MetricName === 'ExecutionsAborted');
    expect(aborted?.Properties.Namespace).toBe('AWS/States');
    expect(aborted?.Properties.AlarmActions).toHaveLength(1);
  });

  it('task-stopped events that could not be handled land in an encrypted dead-letter queue with an alarm on it', () => {
    const queueId = logicalIdStartingWith(template, 'AWS::SQS::Queue', 'TaskStoppedDeadLetters');
    const fn = Object.values(resources).find(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        flattenCfn(r.Properties.Description as string).includes('task-stopped'),
    );
    expect(flattenCfn((fn?.Properties.DeadLetterConfig as { TargetArn: unknown })?.TargetArn)).toBe(
      `<${queueId}.Arn>`,
    );
    const rule = Object.values(resources).find(
      (r) =>
        r.Type === 'AWS::Events::Rule' &&
        (r.Properties.EventPattern as { source?: string[] }).source?.[0] === 'aws.ecs',
    );
    const target = (
      rule?.Properties.Targets as Array<{ DeadLetterConfig?: { Arn: unknown } }> | undefined
    )?.[0];
    expect(flattenCfn(target?.DeadLetterConfig?.Arn)).toBe(`<${queueId}.Arn>`);
    expect(resources[queueId]?.Properties.SqsManagedSseEnabled).toBe(true);
    const queueAlarm = alarms.find(
      (a) =>
        a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible' &&
        JSON.stringify(a.Properties.Dimensions).includes(queueId),
    );
    expect(queueAlarm?.Properties.AlarmActions).toHaveLength(1);
  });

  it('backups encrypted with a customer-managed key are readable: kms:Decrypt through S3 only, and never more', () => {
    const kms = (prefix: string) =>
      roleOf(prefix)
        .filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')) && resourcesOf(s).includes(KEY))
        .map((s) => ({
          actions: actionsOf(s).sort(),
          resources: resourcesOf(s),
          via: flattenCfn((s.Condition?.StringEquals as Record<string, unknown>)?.['kms:ViaService']),
        }));
    const decrypt = [{ actions: ['kms:Decrypt'], resources: [KEY], via: 's3.eu-west-1.amazonaws.com' }];
    expect(kms('DiscoverRole')).toEqual(decrypt);
    expect(kms('IntegrityRole')).toEqual(decrypt);
    expect(kms('RestoreTaskTaskRole')).toEqual(decrypt);
    expect(kms('RedundancyRole')).toEqual([
      {
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [KEY],
        via: 's3.eu-west-1.amazonaws.com',
      },
    ]);
    expect(kms('ReportRole')).toEqual([]);
  });

  it('with prefix lists given, the sandbox reaches S3 and DynamoDB through them and nothing else on the internet', () => {
    const groups = Object.values(resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroup');
    const egress = [
      ...groups.flatMap(
        (g) => (g.Properties.SecurityGroupEgress as Array<Record<string, unknown>> | undefined) ?? [],
      ),
      ...Object.values(resources)
        .filter((r) => r.Type === 'AWS::EC2::SecurityGroupEgress')
        .map((r) => r.Properties),
    ];
    expect(egress.filter((e) => e.CidrIp === '0.0.0.0/0')).toEqual([]);
    expect(
      egress
        .map((e) => e.DestinationPrefixListId)
        .filter(Boolean)
        .sort(),
    ).toEqual(['pl-66a5400f', 'pl-6ea54007']);
  });
});

describe('issue 14: a failed run sends one message a person can act on', () => {
  it('the Report function knows the alarm topic and may publish to it (and use its key), and nothing else may', () => {
    const topicId = logicalIdStartingWith(template, 'AWS::SNS::Topic', 'AlarmTopic');
    const report = Object.values(resources).find(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        flattenCfn(r.Properties.Description as string).endsWith(' report'),
    );
    const env =
      (report?.Properties.Environment as { Variables: Record<string, unknown> } | undefined)?.Variables ?? {};
    expect(flattenCfn(env.ALARM_TOPIC_ARN)).toBe(`<${topicId}>`);
    const publishes = (prefix: string) =>
      roleOf(prefix)
        .filter((s) => actionsOf(s).includes('sns:Publish'))
        .flatMap(resourcesOf);
    expect(publishes('ReportRole')).toEqual([`<${topicId}>`]);
    for (const other of ['DiscoverRole', 'IntegrityRole', 'RedundancyRole', 'TaskStoppedRole']) {
      expect(publishes(other), other).toEqual([]);
    }
    const keyId = logicalIdStartingWith(template, 'AWS::KMS::Key', 'AlarmTopicKey');
    const keyUse = roleOf('ReportRole')
      .filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')))
      .flatMap(resourcesOf);
    expect(keyUse).toContain(`<${keyId}.Arn>`);
  });
});

describe('issue 14: the dashboard', () => {
  it('shows pass/warn/fail/not-checked counts per run and restore time against RTO per series', () => {
    const [dashboard] = Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    const body = flattenCfn(dashboard?.Properties.DashboardBody);
    for (const metric of ['BackupsPassed', 'BackupsWarned', 'BackupsFailed', 'BackupsNotChecked']) {
      expect(body).toContain(`"${metric}"`);
    }
    expect(body).toContain(
      `SEARCH('{BackupValidator,Series} MetricName=\\"RestoreSeconds\\"', 'Maximum', 3600)`,
    );
    expect(body).toContain(`SEARCH('{BackupValidator,Series} MetricName=\\"RtoSeconds\\"', 'Maximum', 3600)`);
  });
});
