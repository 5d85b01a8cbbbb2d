import { type ECSClient, RunTaskCommand, type RunTaskCommandOutput } from '@aws-sdk/client-ecs';
import { SandboxError } from '../core/errors.ts';
import type { RestoreJob, SandboxStarter } from '../core/restore/launcher.ts';

/** The error name the state machine retries on (and records as RESTORE_FAILED once retries run out). */
export class SandboxCapacityError extends SandboxError {
  override name = 'Sandbox.CapacityUnavailable';
}

export const MAX_EPHEMERAL_GIB = 200;
const MIN_EPHEMERAL_GIB = 21;
const GIB = 1024 ** 3;
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
 * Scratch storage for a restore: the restored data (an archive expands, ~2x for typical
 * backups) plus room for probes and temporary files. Throws when it cannot fit a task.
 */
export function ephemeralStorageGiB(job: RestoreJob, maxGiB = MAX_EPHEMERAL_GIB): number {
  const bytes = job.backup.bytes;
  // 2.2x (11/5) for archives, 1.2x (6/5) for directories, in integers to avoid float rounding up.
  const tenths = job.backup.kind === 'archive' ? 11 : 6;
  const needed = Math.ceil((bytes * tenths) / (5 * GIB)) + 5;
  if (needed > maxGiB) {
    throw new SandboxError(
      `backup ${job.backup.id} (${(bytes / GIB).toFixed(1)} GiB) needs about ${needed} GiB of scratch storage to restore, more than the ${maxGiB} GiB a Fargate task can have: restore it on a larger host with the command line (backup-validator restore)`,
      job.backup.id,
    );
  }
  return Math.max(MIN_EPHEMERAL_GIB, needed);
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
        if (attempt < attempts) await sleep(backoff(o.baseDelayMs ?? 1000, attempt));
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
      if (attempt < attempts) await sleep(backoff(o.baseDelayMs ?? 1000, attempt));
    }
    throw new SandboxCapacityError(
      `no Fargate capacity for the restore sandbox of ${job.backup.id} after ${attempts} attempts (${lastProblem}); the state machine retries later`,
      job.backup.id,
    );
  }
}

function backoff(baseMs: number, attempt: number): number {
  const ceiling = baseMs * 2 ** (attempt - 1);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
