import { finding } from '../findings.ts';
import type { StageResultRecord } from '../ledger.ts';
import { deserializeBackup } from '../run-store.ts';
import type { StageContext } from './context.ts';
import { loadShard } from './run.ts';
import { loadRestoreJob } from './select-restores.ts';

export interface FailureInput {
  stage: 'integrity' | 'restore';
  /** The Map item that failed: a shard reference or a restore item. */
  item: { runId: string; shard?: number; restore?: number };
  error?: { Error?: string; Cause?: string };
}

/** A Step Functions error (`{Error, Cause}`, the cause maybe a Lambda's JSON) as one line. */
export function describeError(error: FailureInput['error']): string {
  if (!error) return 'unknown error';
  let cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (parsed.errorMessage) cause = parsed.errorMessage;
  } catch {
    // A plain-text cause is used as it is.
  }
  return [error.Error, cause].filter(Boolean).join(': ') || 'unknown error';
}

/**
 * What a Catch records when a step failed for good: a FAIL for each backup the step left
 * without a verdict, so an infrastructure failure can never read as a pass.
 */
export async function recordFailureStage(
  ctx: StageContext,
  input: FailureInput,
): Promise<{ recorded: number }> {
  const why = describeError(input.error);
  const backups =
    input.stage === 'integrity'
      ? await loadShard(ctx, { runId: input.item.runId, shard: input.item.shard ?? -1 })
      : [deserializeBackup((await loadRestoreJob(ctx, input.item.runId, input.item.restore ?? -1)).backup)];
  const detail = await ctx.ledger.getRun(input.item.runId);
  const done = new Set(
    (detail?.results ?? [])
      .filter((r) => r.stage === input.stage && r.status !== 'SKIPPED')
      .map((r) => r.backupId),
  );
  const at = ctx.now().toISOString();
  const records: StageResultRecord[] = backups
    .filter((b) => !done.has(b.id))
    .map((b) => ({
      runId: input.item.runId,
      backupId: b.id,
      series: b.series,
      stage: input.stage,
      status: 'FAIL',
      durationMs: 0,
      findings: [
        input.stage === 'restore'
          ? finding('RESTORE_FAILED', `the restore could not complete: ${why}`, { backup: b.id })
          : finding('CHECK_FAILED', `the integrity check could not complete: ${why}`, { backup: b.id }),
      ],
      at,
    }));
  if (records.length > 0) await ctx.ledger.recordResults(records);
  return { recorded: records.length };
}
