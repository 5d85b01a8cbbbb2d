import { SendTaskFailureCommand, SFNClient } from '@aws-sdk/client-sfn';
import { logged } from '../shared/logging.ts';

/** The parts of an ECS "Task State Change" event this handler reads. */
export interface TaskStateChangeEvent {
  detail?: {
    clusterArn?: string;
    taskArn?: string;
    lastStatus?: string;
    stoppedReason?: string;
    stopCode?: string;
    containers?: Array<{ name?: string; exitCode?: number; reason?: string }>;
    overrides?: {
      containerOverrides?: Array<{ name?: string; environment?: Array<{ name?: string; value?: string }> }>;
    };
  };
}

export type TaskStoppedOutcome =
  | { action: 'ignored'; reason: string }
  | { action: 'none'; reason: string }
  | { action: 'failed'; taskArn?: string; cause: string };

/**
 * Stops that say nothing about the backup: the task never started (image pull, ENI or storage
 * set-up, capacity). They fail the step with an error the state machine retries with a new task.
 */
const LAUNCH_FAILURE =
  /CannotPullContainer|ResourceInitializationError|CannotCreateVolume|Timeout waiting for network interface|ResourceNotFound|capacity/i;

export function isLaunchFailure(detail: { stopCode?: string; stoppedReason?: string }): boolean {
  return detail.stopCode === 'TaskFailedToStart' || LAUNCH_FAILURE.test(detail.stoppedReason ?? '');
}

/** The step already has its answer (or gave up waiting): nothing to fail. */
const TOKEN_GONE = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

/**
 * A sandbox task stopped: unless its container exited 0 (it answered the step itself), fail
 * the waiting step now rather than letting it wait for its heartbeat timeout.
 */
export function makeTaskStoppedHandler(deps: () => { sfn: Pick<SFNClient, 'send'>; clusterArn?: string }) {
  return async (event: TaskStateChangeEvent): Promise<TaskStoppedOutcome> => {
    const detail = event?.detail;
    if (detail?.lastStatus !== 'STOPPED')
      return { action: 'ignored', reason: `status ${detail?.lastStatus}` };
    const { sfn, clusterArn } = deps();
    if (clusterArn && detail.clusterArn !== clusterArn) {
      return { action: 'ignored', reason: `task of another cluster (${detail.clusterArn})` };
    }
    let token: string | undefined;
    let containerName: string | undefined;
    for (const override of detail.overrides?.containerOverrides ?? []) {
      const value = override.environment?.find((e) => e.name === 'TASK_TOKEN')?.value;
      if (value) {
        token = value;
        containerName = override.name;
        break;
      }
    }
    if (!token) return { action: 'ignored', reason: 'no TASK_TOKEN in the task overrides' };
    const containers = detail.containers ?? [];
    const container = containers.find((c) => c.name === containerName) ?? containers[0];
    if (container?.exitCode === 0) return { action: 'none', reason: 'the container exited 0' };
    const cause = [
      detail.stoppedReason ?? 'the task stopped',
      container?.exitCode !== undefined
        ? `exit code ${container.exitCode}`
        : 'no exit code (the container never ran or was killed)',
      container?.reason,
      detail.stopCode ? `stop code ${detail.stopCode}` : undefined,
      detail.taskArn ? `task ${detail.taskArn}` : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    try {
      const error = isLaunchFailure(detail) ? 'Sandbox.LaunchFailed' : 'Sandbox.TaskStopped';
      await sfn.send(new SendTaskFailureCommand({ taskToken: token, error, cause }));
    } catch (error) {
      if (TOKEN_GONE.has((error as Error).name)) {
        return { action: 'none', reason: `the step was already answered (${(error as Error).name})` };
      }
      throw error;
    }
    return { action: 'failed', ...(detail.taskArn ? { taskArn: detail.taskArn } : {}), cause };
  };
}

let client: SFNClient | undefined;

export const handler = logged(
  'task-stopped',
  makeTaskStoppedHandler(() => {
    client ??= new SFNClient({});
    const clusterArn = process.env.CLUSTER_ARN;
    return { sfn: client, ...(clusterArn ? { clusterArn } : {}) };
  }),
  (outcome) => ({ ...outcome }),
);
