import { futureTimestampFindings } from '../compliance.ts';
import { policyFor } from '../config.ts';
import { checkIntegrityConfirmed } from '../confirm.ts';
import { backupFingerprint } from '../coverage.ts';
import { finding, type StageStatus } from '../findings.ts';
import { type StageResultRecord, sizeAnomaly } from '../ledger.ts';
import { forEachLimited } from '../limit.ts';
import type { Backup, IntegrityResult } from '../model.ts';
import { readJson, runKeys, writeJson } from '../run-store.ts';
import type { StageContext } from './context.ts';
import { ResultBatch } from './result-batch.ts';
import { loadDiscovery, loadRun, loadShard, type ShardRef } from './run.ts';

/**
 * The integrity pass runs at ~170 MB/s on 2 cores (`npm run bench`), but in a Lambda it reads one
 * S3 GET stream, which sustains tens of MB/s: 30 MB/s is the planning figure, the low end of
 * that. At that speed 12 of the 15 minutes read ~21 GB, so backups above 20 GiB are checked by the
 * sandbox task instead, which has no time limit.
 */
export const LAMBDA_S3_STREAM_BYTES_PER_SECOND = 30 * 1000 ** 2;
export const LAMBDA_INTEGRITY_MAX_BYTES =
  Math.floor((LAMBDA_S3_STREAM_BYTES_PER_SECOND * 12 * 60) / 1024 ** 3) * 1024 ** 3;

/** The backups of one shard the coverage budget leaves unread this run, with why (none without a policy). */
async function deferredOfShard(
  ctx: Pick<StageContext, 'runStore'>,
  ref: ShardRef,
): Promise<Record<string, string>> {
  const discovery = await loadDiscovery(ctx, ref.runId);
  return discovery.coverage
    ? readJson<Record<string, string>>(ctx.runStore, runKeys.deferred(ref.runId, ref.shard))
    : {};
}

function filesOf(backup: Backup, result: IntegrityResult): number {
  return backup.kind === 'directory' ? backup.objects : result.files;
}

/** Integrity of every backup of one shard, recorded in the ledger with the size-baseline check. */
export async function integrityStage(
  ctx: StageContext,
  ref: ShardRef,
  options: { maxBytes?: number; concurrency?: number } = {},
): Promise<{ runId: string; shard: number; results: Array<{ backupId: string; status: StageStatus }> }> {
  const run = await loadRun(ctx, ref.runId);
  const backups = await loadShard(ctx, ref);
  const deferred = await deferredOfShard(ctx, ref);
  const results: Array<{ backupId: string; status: StageStatus }> = [];
  const digests: Record<string, Record<string, string>> = {};
  const expanded: Record<string, number> = {};
  const recorded = new ResultBatch(ctx.ledger);
  // Each pass streams with bounded buffers, so memory grows with the concurrency, not with the backups.
  try {
    await forEachLimited(backups, options.concurrency ?? 1, async (backup, index) => {
      recorded.throwIfFailed();
      await checkOne(backup, index);
    });
  } finally {
    await recorded.settle();
  }
  recorded.throwIfFailed();
  await writeJson(ctx.runStore, runKeys.digests(ref.runId, ref.shard), digests);
  await writeJson(ctx.runStore, runKeys.expanded(ref.runId, ref.shard), expanded);
  return { runId: ref.runId, shard: ref.shard, results };

  async function checkOne(backup: Backup, index: number): Promise<void> {
    const coverageDeferred = Object.hasOwn(deferred, backup.id);
    if (coverageDeferred || (options.maxBytes !== undefined && backup.bytes > options.maxBytes)) {
      // Not read this run: the coverage budget went to backups verified longer ago (the report says so),
      // or too large to read within one invocation: left to the sandbox, which checks it before restoring.
      recorded.add([
        {
          runId: ref.runId,
          backupId: backup.id,
          series: backup.series,
          stage: 'integrity',
          status: 'SKIPPED',
          durationMs: 0,
          ...(coverageDeferred ? {} : { bytes: backup.bytes }),
          findings: [],
          at: ctx.now().toISOString(),
        },
      ]);
      results[index] = { backupId: backup.id, status: 'SKIPPED' };
      return;
    }
    ctx.signal?.throwIfAborted();
    ctx.events?.backupStarted?.(backup, 'integrity');
    const policy = policyFor(run.config, backup.series);
    const source = ctx.openSource(backup.source);
    const passOptions = {
      policy,
      history: ctx.ledger,
      archivePatterns: run.config.archives?.patterns ?? [],
      onProgress: (delta: number) => ctx.events?.bytesRead?.(delta),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    };
    const result = await (ctx.integrityPasses?.check(backup, source, passOptions) ??
      checkIntegrityConfirmed(backup, source, passOptions));
    // A check cut short by the abort is no verdict: nothing of it is recorded.
    ctx.signal?.throwIfAborted();
    const at = ctx.now().toISOString();
    const files = filesOf(backup, result);
    const records: StageResultRecord[] = [
      {
        runId: ref.runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'integrity',
        status: result.status,
        score: result.score,
        durationMs: result.durationMs,
        bytes: backup.bytes,
        files,
        findings: result.findings,
        at,
        fingerprint: backupFingerprint(backup),
      },
    ];
    if (result.status !== 'SKIPPED') {
      const anomaly = sizeAnomaly(await ctx.ledger.baseline(backup.series), backup.bytes, files, backup.id);
      const findings = anomaly
        ? [
            finding('SIZE_ANOMALY', `${anomaly}: check that the backup job still captures everything`, {
              backup: backup.id,
            }),
          ]
        : [];
      findings.push(...futureTimestampFindings(backup, new Date(run.startedAt)));
      records.push({
        runId: ref.runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'compliance',
        status: findings.length > 0 ? 'WARN' : 'PASS',
        durationMs: 0,
        findings,
        at,
      });
    }
    recorded.add(records);
    digests[backup.id] = result.objectSha256;
    if (result.contentBytes > 0) expanded[backup.id] = result.contentBytes;
    ctx.events?.backupFinished?.(backup, 'integrity', result.status);
    results[index] = { backupId: backup.id, status: result.status };
  }
}
