import { text } from 'node:stream/consumers';
import { ECSClient } from '@aws-sdk/client-ecs';
import { FargateSandbox, MAX_EPHEMERAL_GIB } from '../../lib/adapters/fargate-sandbox.ts';
import { openStore } from '../../lib/adapters/stores.ts';
import { parseRestoreJob, type RestoreJob, type SandboxStarter } from '../../lib/core/restore/launcher.ts';
import { runKeys } from '../../lib/core/run-store.ts';
import { requireEnv } from '../shared/environment.ts';
import { logged } from '../shared/logging.ts';

export interface RestoreTriggerEvent {
  item: { runId: string; restore: number; heartbeatSeconds?: number; timeoutSeconds?: number };
  taskToken: string;
}

export interface RestoreTriggerDeps {
  starter: SandboxStarter;
  loadJob(runId: string, restore: number): Promise<RestoreJob>;
}

/** Validates the environment once (naming what is missing) and builds the Fargate starter. */
export function depsFromEnv(env: NodeJS.ProcessEnv = process.env, client?: ECSClient): RestoreTriggerDeps {
  const cluster = requireEnv('CLUSTER_ARN', env);
  const taskDefinition = requireEnv('TASK_DEFINITION_ARN', env);
  const containerName = requireEnv('CONTAINER_NAME', env);
  const subnets = requireEnv('SUBNET_IDS', env)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const securityGroups = requireEnv('SECURITY_GROUP_IDS', env)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const runStore = requireEnv('RUN_STORE', env);
  const maxEphemeralGiB = env.MAX_EPHEMERAL_GIB ? Number(env.MAX_EPHEMERAL_GIB) : MAX_EPHEMERAL_GIB;
  if (!Number.isInteger(maxEphemeralGiB) || maxEphemeralGiB < 21) {
    throw new Error(
      `environment variable MAX_EPHEMERAL_GIB must be a whole number >= 21, got ${env.MAX_EPHEMERAL_GIB}`,
    );
  }
  const store = openStore(runStore);
  return {
    starter: new FargateSandbox({
      client: client ?? new ECSClient({}),
      cluster,
      taskDefinition,
      containerName,
      subnets,
      securityGroups,
      maxEphemeralGiB,
    }),
    async loadJob(runId, restore) {
      const key = runKeys.restore(runId, restore);
      return parseRestoreJob(await text(await store.open(key)), `${runStore}/${key}`);
    },
  };
}

/** Starts one restore sandbox for a waiting `RestoreBackup` step and returns at once. */
export function makeRestoreTriggerHandler(deps: () => RestoreTriggerDeps) {
  return async (event: RestoreTriggerEvent): Promise<{ taskArn: string }> => {
    const item = event?.item;
    if (typeof event?.taskToken !== 'string' || event.taskToken === '') {
      throw new Error('the event has no taskToken: invoke this function with lambda:invoke.waitForTaskToken');
    }
    if (typeof item?.runId !== 'string' || !Number.isInteger(item.restore)) {
      throw new Error(`the event's item must be { runId, restore }, got ${JSON.stringify(item)}`);
    }
    const { starter, loadJob } = deps();
    const job = await loadJob(item.runId, item.restore);
    return starter.start(job, event.taskToken);
  };
}

let cached: RestoreTriggerDeps | undefined;

export const handler = logged(
  'restore-trigger',
  makeRestoreTriggerHandler(() => {
    cached ??= depsFromEnv();
    return cached;
  }),
);
