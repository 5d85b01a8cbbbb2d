import { type SandboxLauncher, sandboxRecords } from '../core/restore/launcher.ts';
import { deserializeBackup } from '../core/run-store.ts';
import type { StageContext } from '../core/stages/context.ts';
import { recordFailureStage } from '../core/stages/record-failure.ts';
import {
  loadRestoreJob,
  type RestoreItem,
  type RestoreSelection,
  restoreItemsFor,
  selectRestoresStage,
} from '../core/stages/select-restores.ts';

// Apart from local-runner.ts: `restore` runs no state machine, and aws-local-stepfunctions with the
// handlers' SDK clients took ~0.3-0.5 s to load before the first restore could start.

/** What the local restore step does for one item: run the sandbox, record its result. */
export type LocalRestore = (ctx: StageContext, item: RestoreItem) => Promise<unknown>;

/**
 * The restore step on a laptop: the job from the run store, the container's entry point in a
 * child process, the result recorded in the ledger (in the cloud, the container records it).
 */
export function localRestore(launcher: SandboxLauncher): LocalRestore {
  return async (ctx, item) => {
    const job = await loadRestoreJob(ctx, item.runId, item.restore);
    const backup = deserializeBackup(job.backup);
    ctx.signal?.throwIfAborted();
    ctx.events?.backupStarted?.(backup, 'restore');
    const timeout = AbortSignal.timeout(item.timeoutSeconds * 1000);
    const signal = ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout;
    const result = await launcher.launch(job, { signal });
    // A restore killed by the run's abort is no verdict: nothing of it is recorded.
    ctx.signal?.throwIfAborted();
    await ctx.ledger.recordResults(sandboxRecords(job, result, ctx.now()));
    ctx.events?.backupFinished?.(backup, 'restore', result.status);
    return { backupId: result.backupId, status: result.status, durationMs: result.durationMs };
  };
}

/** The CLI's `restore`: select, then each restore in turn, a failure recorded as the Catch would. */
export async function runRestoresLocally(
  ctx: StageContext,
  runId: string,
  deps: { restore: LocalRestore; selected?(selection: RestoreSelection): Promise<void> },
): Promise<void> {
  const selection = await selectRestoresStage(ctx, runId);
  await deps.selected?.(selection);
  for (const item of restoreItemsFor(runId, selection)) {
    try {
      await deps.restore(ctx, item);
    } catch (error) {
      ctx.signal?.throwIfAborted();
      await recordFailureStage(ctx, {
        stage: 'restore',
        item,
        error: { Error: (error as Error).name, Cause: (error as Error).message },
      });
    }
  }
}
