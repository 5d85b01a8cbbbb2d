import type { StageContext } from '../core/stages/context.ts';
import { loadRestoreJob, type RestoreSelection } from '../core/stages/select-restores.ts';
import type { TaskHandlers } from '../pipeline/local-runner.ts';
import type { Progress } from './progress.ts';

/** Past this many restores the header gives no total size: reading every job would cost more than it tells. */
const SIZED_RESTORES = 2000;

/** The restore stage's header and totals: the selected backups and their bytes, from their jobs. */
export async function beginRestores(
  progress: Progress,
  ctx: StageContext,
  runId: string,
  selection: Pick<RestoreSelection, 'restores'>,
): Promise<void> {
  let bytes = 0;
  if (!progress.quiet && selection.restores.length <= SIZED_RESTORES) {
    for (let at = 0; at < selection.restores.length; at += 16) {
      const jobs = await Promise.all(
        selection.restores.slice(at, at + 16).map((n) => loadRestoreJob(ctx, runId, n)),
      );
      for (const job of jobs) bytes += job.backup.bytes;
    }
  }
  progress.begin('restore', selection.restores.length, bytes);
}

/** The local state machine's Tasks, each announcing its stage first (comprehensive's progress). */
export function withStageProgress(
  progress: Progress,
  ctx: StageContext,
  runId: string,
  handlers: TaskHandlers,
): TaskHandlers {
  return {
    ...handlers,
    Discover: (input) => {
      progress.stage('discover');
      return handlers.Discover(input);
    },
    CheckShard: (input) => {
      if (progress.currentStage !== 'integrity') progress.begin('integrity');
      return handlers.CheckShard(input);
    },
    SelectRestores: async (input) => {
      const output = await handlers.SelectRestores(input);
      const selection = (output as { Payload?: { restores?: number[] } }).Payload;
      await beginRestores(progress, ctx, runId, { restores: selection?.restores ?? [] });
      return output;
    },
    CopyShard: (input) => {
      if (progress.currentStage !== 'redundancy') progress.stage('redundancy');
      return handlers.CopyShard(input);
    },
    Report: (input) => {
      progress.stage('report');
      return handlers.Report(input);
    },
  };
}
