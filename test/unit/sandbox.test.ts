import { RunTaskCommand, type RunTaskCommandInput } from '@aws-sdk/client-ecs';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
} from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { TaskTokenReporter } from '../../containers/restore-sandbox/task-token.ts';
import { depsFromEnv, makeRestoreTriggerHandler } from '../../functions/restore-trigger/handler.ts';
import { makeTaskStoppedHandler, type TaskStateChangeEvent } from '../../functions/task-stopped/handler.ts';
import { ephemeralStorageGiB, FargateSandbox } from '../../lib/adapters/fargate-sandbox.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { SandboxError } from '../../lib/core/errors.ts';
import type { RestoreJob } from '../../lib/core/restore/launcher.ts';

const GIB = 1024 ** 3;

function job(bytes: number, members = 1): RestoreJob {
  return {
    runId: 'run-1',
    restore: 3,
    source: 's3://backups/prod',
    policy: DEFAULT_POLICY,
    probes: [],
    backup: {
      id: 's3://backups/prod/db-20250625.tar.gz',
      source: 's3://backups/prod',
      series: 'db',
      kind: 'archive',
      key: 'db-20250625.tar.gz',
      name: 'db-20250625.tar.gz',
      createdAt: '2025-06-25T11:46:22.000Z',
      createdFrom: 'name',
      objects: 1,
      bytes,
      members: Array.from({ length: members }, (_, i) => ({
        key: `db-20250625-part-${i}-${'x'.repeat(40)}.tar.gz`,
        path: `db-20250625-part-${i}.tar.gz`,
        size: bytes,
        lastModified: '2025-06-25T11:46:22.000Z',
      })),
      manifestKeys: [],
    },
  };
}

/** An SDK-level fake: records every command and answers from a script. */
class RecordingClient {
  readonly commands: Array<{ name: string; input: Record<string, unknown> }> = [];
  constructor(private readonly answers: Array<(input: Record<string, unknown>) => unknown> = []) {}
  async send(command: { constructor: { name: string }; input: unknown }): Promise<never> {
    this.commands.push({ name: command.constructor.name, input: command.input as Record<string, unknown> });
    const answer = this.answers.shift();
    return (answer ? answer(command.input as Record<string, unknown>) : {}) as never;
  }
}

function sdkError(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function runTaskInput(client: RecordingClient, index = 0): RunTaskCommandInput {
  const command = client.commands[index];
  if (!command) throw new Error(`no command ${index} was sent`);
  return command.input as unknown as RunTaskCommandInput;
}

function environmentOf(input: RunTaskCommandInput): Record<string, string> {
  const environment = input.overrides?.containerOverrides?.[0]?.environment ?? [];
  return Object.fromEntries(environment.map((e) => [e.name ?? '', e.value ?? '']));
}

const started = () => ({ tasks: [{ taskArn: 'arn:aws:ecs:eu-west-1:1:task/c/abc' }], failures: [] });

function sandbox(client: RecordingClient, delays: number[] = []) {
  return new FargateSandbox({
    client: client as never,
    cluster: 'arn:cluster',
    taskDefinition: 'arn:taskdef',
    containerName: 'restore-sandbox',
    subnets: ['subnet-a', 'subnet-b'],
    securityGroups: ['sg-1'],
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
}

describe('Fargate sandbox launcher', () => {
  it('runs an isolated Fargate task with the job, the token and storage sized from the backup', async () => {
    const client = new RecordingClient([started]);
    const answer = await sandbox(client).start(job(10 * GIB), 'token-123');
    expect(answer).toEqual({ taskArn: 'arn:aws:ecs:eu-west-1:1:task/c/abc' });
    expect(client.commands).toHaveLength(1);
    expect(client.commands[0]?.name).toBe(RunTaskCommand.name);
    const input = runTaskInput(client);
    expect(input.launchType).toBe('FARGATE');
    expect(input.cluster).toBe('arn:cluster');
    expect(input.taskDefinition).toBe('arn:taskdef');
    expect(input.networkConfiguration).toEqual({
      awsvpcConfiguration: {
        subnets: ['subnet-a', 'subnet-b'],
        securityGroups: ['sg-1'],
        assignPublicIp: 'DISABLED',
      },
    });
    expect(input.overrides?.containerOverrides?.[0]?.name).toBe('restore-sandbox');
    const env = environmentOf(input);
    expect(env.TASK_TOKEN).toBe('token-123');
    expect(JSON.parse(env.JOB ?? '')).toEqual(job(10 * GIB));
    // Not measured: 2.2 x 10 GiB, plus 10 % and 5 GiB = 30 GiB.
    expect(input.overrides?.ephemeralStorage).toEqual({ sizeInGiB: 30 });
  });

  it('passes a large job by reference to the run store, keeping overrides under the 8 KiB limit', async () => {
    const client = new RecordingClient([started]);
    await sandbox(client).start(job(GIB, 80), 'token');
    expect(JSON.parse(environmentOf(runTaskInput(client)).JOB ?? '')).toEqual({ runId: 'run-1', restore: 3 });
  });

  it('sizes scratch storage between 21 and 200 GiB and refuses a backup that cannot fit', async () => {
    expect(ephemeralStorageGiB(job(1024))).toBe(21);
    expect(ephemeralStorageGiB(job(80 * GIB))).toBe(199);
    const client = new RecordingClient([started]);
    const attempt = sandbox(client).start(job(100 * GIB), 'token');
    await expect(attempt).rejects.toThrow(SandboxError);
    await expect(attempt).rejects.toThrow(/needs about 248 GiB of scratch storage.*more than the 200 GiB/);
    expect(client.commands).toHaveLength(0);
  });

  it('issue 12: sizes scratch storage from the expanded size the integrity pass measured, not from the stored size', async () => {
    const measured = (stored: number, expanded: number) => ({ ...job(stored), expandedBytes: expanded });
    // A 10 GiB archive that expanded to 150 GiB: 165 + 5 GiB, where 2.2x the stored size would have given 30.
    expect(ephemeralStorageGiB(measured(10 * GIB, 150 * GIB))).toBe(170);
    // A well-compressed 60 GiB dump that expanded to 70 GiB: 82 GiB, where 2.2x would have asked 151.
    expect(ephemeralStorageGiB(measured(60 * GIB, 70 * GIB))).toBe(82);
    const client = new RecordingClient([started]);
    await sandbox(client).start(measured(60 * GIB, 70 * GIB), 'token');
    expect(runTaskInput(client).overrides?.ephemeralStorage).toEqual({ sizeInGiB: 82 });
    // 20 GiB stored (2.2x = 49 GiB) but 185 GiB expanded: 209 GiB, no task.
    await expect(sandbox(client).start(measured(20 * GIB, 185 * GIB), 'token')).rejects.toThrow(
      /needs about 209 GiB .*more than the 200 GiB a Fargate task can have/,
    );
    expect(client.commands).toHaveLength(1);
  });

  it('retries capacity failures with growing backoff, then succeeds', async () => {
    const delays: number[] = [];
    const client = new RecordingClient([
      () => ({ tasks: [], failures: [{ reason: 'RESOURCE:MEMORY' }] }),
      () => {
        throw sdkError('ThrottlingException', 'Rate exceeded');
      },
      started,
    ]);
    const answer = await sandbox(client, delays).start(job(GIB), 'token');
    expect(answer.taskArn).toMatch(/task/);
    expect(client.commands).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(1000);
    expect(delays[1]).toBeGreaterThanOrEqual(1000);
  });

  it('reports Sandbox.CapacityUnavailable once the attempts run out', async () => {
    const capacity = () => ({ tasks: [], failures: [{ reason: 'Capacity is unavailable at this time' }] });
    const client = new RecordingClient([capacity, capacity, capacity, capacity]);
    const error = await sandbox(client)
      .start(job(GIB), 'token')
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(SandboxError);
    expect((error as Error).name).toBe('Sandbox.CapacityUnavailable');
    expect((error as Error).message).toMatch(/after 4 attempts \(Capacity is unavailable/);
    expect(client.commands).toHaveLength(4);
  });

  it('does not retry a failure that is not about capacity', async () => {
    const client = new RecordingClient([() => ({ tasks: [], failures: [{ reason: 'MISSING' }] })]);
    const error = await sandbox(client)
      .start(job(GIB), 'token')
      .catch((e: Error) => e);
    expect((error as Error).name).toBe('SandboxError');
    expect(client.commands).toHaveLength(1);
  });
});

describe('restore-trigger handler', () => {
  const env = {
    CLUSTER_ARN: 'arn:cluster',
    TASK_DEFINITION_ARN: 'arn:taskdef',
    CONTAINER_NAME: 'restore-sandbox',
    SUBNET_IDS: 'subnet-a, subnet-b',
    SECURITY_GROUP_IDS: 'sg-1',
    RUN_STORE: 's3://reports',
    MAX_EPHEMERAL_GIB: '200',
  };

  it('fails fast naming a missing environment variable', () => {
    const { SUBNET_IDS: _omitted, ...incomplete } = env;
    expect(() => depsFromEnv(incomplete)).toThrow(/SUBNET_IDS/);
  });

  it('loads the job named by the item and starts the sandbox with the task token', async () => {
    const ecs = new RecordingClient([started]);
    const deps = depsFromEnv(env, ecs as never);
    const loaded: string[] = [];
    const handler = makeRestoreTriggerHandler(() => ({
      starter: deps.starter,
      loadJob: async (runId, restore) => {
        loaded.push(`${runId}/${restore}`);
        return job(GIB);
      },
    }));
    const answer = await handler({
      item: { runId: 'run-1', restore: 3, heartbeatSeconds: 120, timeoutSeconds: 900 },
      taskToken: 'tok',
    });
    expect(answer).toEqual({ taskArn: 'arn:aws:ecs:eu-west-1:1:task/c/abc' });
    expect(loaded).toEqual(['run-1/3']);
    const input = runTaskInput(ecs);
    expect(input.networkConfiguration?.awsvpcConfiguration?.subnets).toEqual(['subnet-a', 'subnet-b']);
    expect(environmentOf(input).TASK_TOKEN).toBe('tok');
  });

  it('refuses an event without a task token', async () => {
    const handler = makeRestoreTriggerHandler(() => {
      throw new Error('must not build deps');
    });
    await expect(handler({ item: { runId: 'r', restore: 0 } } as never)).rejects.toThrow(/no taskToken/);
  });
});

function stoppedEvent(
  exitCode: number | undefined,
  extra: Partial<NonNullable<TaskStateChangeEvent['detail']>> = {},
) {
  return {
    detail: {
      clusterArn: 'arn:cluster',
      taskArn: 'arn:task/1',
      lastStatus: 'STOPPED',
      stoppedReason: 'Essential container in task exited',
      containers: [{ name: 'restore-sandbox', ...(exitCode !== undefined ? { exitCode } : {}) }],
      overrides: {
        containerOverrides: [
          {
            name: 'restore-sandbox',
            environment: [
              { name: 'JOB', value: '{}' },
              { name: 'TASK_TOKEN', value: 'tok-9' },
            ],
          },
        ],
      },
      ...extra,
    },
  } satisfies TaskStateChangeEvent;
}

describe('task-stopped handler', () => {
  it('fails the waiting step when the container exited 1', async () => {
    const sfn = new RecordingClient();
    const outcome = await makeTaskStoppedHandler(() => ({ sfn, clusterArn: 'arn:cluster' }))(stoppedEvent(1));
    expect(outcome.action).toBe('failed');
    expect(sfn.commands).toEqual([
      {
        name: SendTaskFailureCommand.name,
        input: {
          taskToken: 'tok-9',
          error: 'Sandbox.TaskStopped',
          cause: 'Essential container in task exited; exit code 1; task arn:task/1',
        },
      },
    ]);
  });

  it('does nothing when the container exited 0 (it answered the step itself)', async () => {
    const sfn = new RecordingClient();
    const outcome = await makeTaskStoppedHandler(() => ({ sfn, clusterArn: 'arn:cluster' }))(stoppedEvent(0));
    expect(outcome.action).toBe('none');
    expect(sfn.commands).toEqual([]);
  });

  it('issue 12: a task that never started fails the step with Sandbox.LaunchFailed, which the state machine retries', async () => {
    const sfn = new RecordingClient();
    await makeTaskStoppedHandler(() => ({ sfn }))(
      stoppedEvent(undefined, { stoppedReason: 'CannotPullContainerError', stopCode: 'TaskFailedToStart' }),
    );
    await makeTaskStoppedHandler(() => ({ sfn }))(
      stoppedEvent(undefined, {
        stoppedReason: 'ResourceInitializationError: failed to create new container runtime task',
      }),
    );
    expect(sfn.commands.map((c) => c.input.error)).toEqual(['Sandbox.LaunchFailed', 'Sandbox.LaunchFailed']);
    expect(sfn.commands[0]?.input.cause).toMatch(
      /CannotPullContainerError; no exit code .*; stop code TaskFailedToStart/,
    );
  });

  it('ignores other clusters, tasks without a token and steps already answered', async () => {
    const sfn = new RecordingClient([
      () => {
        throw sdkError('TaskTimedOut');
      },
    ]);
    const handler = makeTaskStoppedHandler(() => ({ sfn, clusterArn: 'arn:cluster' }));
    expect((await handler(stoppedEvent(1, { clusterArn: 'arn:other' }))).action).toBe('ignored');
    expect((await handler(stoppedEvent(1, { overrides: { containerOverrides: [] } }))).action).toBe(
      'ignored',
    );
    expect((await handler(stoppedEvent(137))).action).toBe('none');
    expect(sfn.commands).toHaveLength(1);
  });
});

describe('task token reporter', () => {
  it('issue 12: sends its first heartbeat as soon as it starts, not one interval later', async () => {
    const sfn = new RecordingClient();
    const reporter = new TaskTokenReporter(sfn as never, 'tok', { heartbeatSeconds: 3600 });
    reporter.startHeartbeats();
    await Promise.resolve();
    reporter.stopHeartbeats();
    expect(sfn.commands.map((c) => c.name)).toEqual([SendTaskHeartbeatCommand.name]);
  });

  it('heartbeats, then reports success with the result', async () => {
    const sfn = new RecordingClient();
    const reporter = new TaskTokenReporter(sfn as never, 'tok', { heartbeatSeconds: 60 });
    await reporter.heartbeat();
    await reporter.succeed({ status: 'PASS' });
    await reporter.heartbeat();
    expect(sfn.commands.map((c) => c.name)).toEqual([
      SendTaskHeartbeatCommand.name,
      SendTaskSuccessCommand.name,
    ]);
    expect(sfn.commands[1]?.input).toEqual({ taskToken: 'tok', output: '{"status":"PASS"}' });
  });

  it('stops the work when a heartbeat says the step timed out', async () => {
    const sfn = new RecordingClient([
      () => {
        throw sdkError('TaskTimedOut');
      },
    ]);
    const gone: string[] = [];
    const reporter = new TaskTokenReporter(sfn as never, 'tok', {
      heartbeatSeconds: 60,
      onGone: (r) => gone.push(r),
    });
    await reporter.heartbeat();
    expect(gone[0]).toMatch(/TaskTimedOut/);
  });

  it('reports failure with a bounded cause', async () => {
    const sfn = new RecordingClient();
    await new TaskTokenReporter(sfn as never, 'tok', { heartbeatSeconds: 60 }).fail(
      'Sandbox.RestoreFailed',
      'x'.repeat(40_000),
    );
    const input = sfn.commands[0]?.input as { error: string; cause: string };
    expect(input.error).toBe('Sandbox.RestoreFailed');
    expect(input.cause.length).toBe(32_768);
  });
});
