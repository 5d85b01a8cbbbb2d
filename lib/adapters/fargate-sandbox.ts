import { type ECSClient, RunTaskCommand, type RunTaskCommandOutput } from '@aws-sdk/client-ecs';
import { SandboxError } from '../core/errors.ts';
import type { RestoreJob, SandboxStarter } from '../core/restore/launcher.ts';
import { FARGATE_EPHEMERAL_GIB, scratchGiB, tooLargeForSandbox } from '../core/restore/scratch.ts';
import { backoffMs } from '../core/retry.ts';

/** The error name the state machine retries on (and records as RESTORE_FAILED once retries run out). */
export class SandboxCapacityError extends SandboxError {
  override name = 'Sandbox.CapacityUnavailable';
}

export const MAX_EPHEMERAL_GIB: number = FARGATE_EPHEMERAL_GIB.max;
/** The task-definition overrides (all of them) must stay under 8 KiB; the token takes its share. */
const INLINE_JOB_LIMIT = 4096;

export interface FargateSandboxOptions {
  client: Pick<ECSClient, 'send'>;
  cluster: string;
  taskDefinition: string;
  containerName: string;
  subnets: string[];
  securityGroups: string[];
  maxEphemeralGiB?: number;
  /** Seconds between the container's heartbeats. */
  heartbeatSeconds?: number;
  /** RunTask attempts on capacity errors (default 4), with exponential backoff from baseDelayMs. */
  attempts?: number;
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Scratch storage for a restore, sized from what the integrity pass measured (see scratchGiB).
 * The select step already kept backups too large for a task out of the sandbox with a finding;
 * this refuses once more rather than start a task that would run out of space.
 */
export function ephemeralStorageGiB(job: RestoreJob, maxGiB: number = MAX_EPHEMERAL_GIB): number {
  const needed = scratchGiB(job.backup, job.expandedBytes);
  if (needed > maxGiB) {
    throw new SandboxError(tooLargeForSandbox(job.backup.id, needed, maxGiB), job.backup.id);
  }
  return needed;
}

const RETRYABLE_ERRORS = new Set([
  'ThrottlingException',
  'ServerException',
  'ServiceUnavailableException',
  'TooManyRequestsException',
  'LimitExceededException',
]);

function isCapacityFailure(reason: string | undefined): boolean {
  return reason !== undefined && /^RESOURCE:|AGENT|capacity|Capacity is unavailable/i.test(reason);
}

/** Starts the restore sandbox as a Fargate task; its result comes back through the task token. */
export class FargateSandbox implements SandboxStarter {
  constructor(private readonly options: FargateSandboxOptions) {}

  async start(job: RestoreJob, taskToken: string): Promise<{ taskArn: string }> {
    const o = this.options;
    const sizeInGiB = ephemeralStorageGiB(job, o.maxEphemeralGiB ?? MAX_EPHEMERAL_GIB);
    const inline = JSON.stringify(job);
    const jobValue =
      Buffer.byteLength(inline) <= INLINE_JOB_LIMIT
        ? inline
        : JSON.stringify({ runId: job.runId, restore: job.restore });
    const command = new RunTaskCommand({
      cluster: o.cluster,
      taskDefinition: o.taskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: `backup-validator/${job.runId}`.slice(0, 128),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: o.subnets,
          securityGroups: o.securityGroups,
          assignPublicIp: 'DISABLED',
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: o.containerName,
            environment: [
              { name: 'JOB', value: jobValue },
              { name: 'TASK_TOKEN', value: taskToken },
              { name: 'HEARTBEAT_SECONDS', value: String(o.heartbeatSeconds ?? 60) },
            ],
          },
        ],
        ephemeralStorage: { sizeInGiB },
      },
    });
    const attempts = o.attempts ?? 4;
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let lastProblem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let output: RunTaskCommandOutput;
      try {
        output = await o.client.send(command);
      } catch (error) {
        const name = (error as Error).name;
        if (!RETRYABLE_ERRORS.has(name)) {
          throw new SandboxError(
            `ECS RunTask refused the restore sandbox for ${job.backup.id}: ${name}: ${(error as Error).message}`,
            job.backup.id,
            { cause: error },
          );
        }
        lastProblem = `${name}: ${(error as Error).message}`;
        if (attempt < attempts)
          await sleep(backoffMs(attempt, { baseMs: o.baseDelayMs ?? 1000, minShare: 0.5 }));
        continue;
      }
      const taskArn = output.tasks?.[0]?.taskArn;
      if (taskArn) return { taskArn };
      const reasons = (output.failures ?? []).map((f) => f.reason ?? 'unknown');
      lastProblem = reasons.join(', ') || 'no task and no failure reason';
      if (!reasons.some(isCapacityFailure)) {
        throw new SandboxError(
          `ECS RunTask did not start the restore sandbox for ${job.backup.id}: ${lastProblem}`,
          job.backup.id,
        );
      }
      if (attempt < attempts)
        await sleep(backoffMs(attempt, { baseMs: o.baseDelayMs ?? 1000, minShare: 0.5 }));
    }
    throw new SandboxCapacityError(
      `no Fargate capacity for the restore sandbox of ${job.backup.id} after ${attempts} attempts (${lastProblem}); the state machine retries later`,
      job.backup.id,
    );
  }
}
