import { randomInt } from 'node:crypto';
import { type Policy, type ProbeConfig, policyFor } from '../config.ts';
import type { CoveragePlan } from '../coverage.ts';
import { finding } from '../findings.ts';
import type { StageResultRecord } from '../ledger.ts';
import type { Backup } from '../model.ts';
import type { FirstSeenChecksum } from '../ports.ts';
import { scratchGiB, tooLargeForSandbox } from '../restore/scratch.ts';
import { readJson, runKeys, type SerializedBackup, serializeBackup, writeJson } from '../run-store.ts';
import type { StageContext } from './context.ts';
import { loadDiscovery, loadRun, loadShard } from './run.ts';

/**
 * One restore as a `Restores` Map iteration sees it. The state machine rebuilds it with the Map's
 * ItemSelector from a {@link RestoreSelection}, so the select step's payload holds only indexes.
 */
export interface RestoreItem {
  runId: string;
  restore: number;
  heartbeatSeconds: number;
  timeoutSeconds: number;
}

/** What the sandbox needs for one restore, kept in the run store under `runs/<id>/restores/<n>.json`. */
export interface RestoreJobFile {
  runId: string;
  restore: number;
  source: string;
  backup: SerializedBackup;
  policy: Policy;
  probes: ProbeConfig[];
  /** The integrity stage left this backup to the sandbox (too large for a Lambda): check it there first. */
  checkIntegrity?: boolean;
  /** SHA-256 of the stored objects as the integrity stage read them, when it ran. */
  objectSha256?: Record<string, string>;
  /** The checksums the ledger recorded when the backup was first seen: the restore compares them too. */
  firstSeen?: FirstSeenChecksum[];
  /** `archives.patterns` of the run's configuration. */
  archivePatterns?: string[];
  /** What the backup expanded to in the integrity pass: sizes the sandbox's scratch storage. */
  expandedBytes?: number;
}

/**
 * What the select step returns: restore indexes 0..n-1 and run-wide heartbeat and timeout (the
 * largest per-restore values), ~6 bytes a restore, so thousands stay far under Step Functions'
 * 256 KB payload limit.
 */
export interface RestoreSelection {
  restores: number[];
  heartbeatSeconds: number;
  timeoutSeconds: number;
}

/** The items the `Restores` Map's ItemSelector builds, for code that runs restores without it. */
export function restoreItemsFor(runId: string, selection: RestoreSelection): RestoreItem[] {
  return selection.restores.map((restore) => ({
    runId,
    restore,
    heartbeatSeconds: selection.heartbeatSeconds,
    timeoutSeconds: selection.timeoutSeconds,
  }));
}

/**
 * How long the restore step waits between heartbeats. Its clock starts when the token is issued,
 * so the first window covers the trigger Lambda, RunTask, Fargate provisioning (ENI, storage) and
 * the pull of the ~90 MB image, which together take 30-90 s and, on a busy day, a few minutes;
 * the container answers as soon as it starts and every 60 s after. A task that stops early is
 * failed at once by the task-stopped rule, so a roomy window costs nothing when a launch fails.
 */
export const RESTORE_HEARTBEAT_SECONDS = 300;

/** The timeout of a run with no restores: the floor of {@link restoreTimeoutSeconds}. */
const MIN_RESTORE_TIMEOUT_SECONDS = 900;

/** The step's timeout: a safety net well past the RTO, so an overrun is measured, not cut off. */
export function restoreTimeoutSeconds(policy: Policy): number {
  return Math.max(MIN_RESTORE_TIMEOUT_SECONDS, Math.ceil(policy.rtoMinutes * 60 * 3));
}

interface Candidate {
  backup: Backup;
  seen: number;
  shard: number;
}

/**
 * Chooses the backups to restore by each series' `restore.select`: the newest, all, or one at
 * random (reservoir sampling, so the catalogue streams past once). Backups that could not be
 * read at all (archived storage, access denied) are not sent to a sandbox; backups the integrity
 * stage left to the sandbox (too large for a Lambda) always are, to be checked there first.
 */
export async function selectRestoresStage(ctx: StageContext, runId: string): Promise<RestoreSelection> {
  const run = await loadRun(ctx, runId);
  const discovery = await loadDiscovery(ctx, runId);
  const detail = await ctx.ledger.getRun(runId);
  const unreadable = new Set(
    (detail?.results ?? [])
      .filter(
        (r) =>
          r.stage === 'integrity' &&
          r.findings.some((f) => f.code === 'ARCHIVED_STORAGE' || f.code === 'ACCESS_DENIED'),
      )
      .map((r) => r.backupId),
  );
  // Left unread by the coverage budget: not the sandbox's to check either (the budget covers both).
  const overBudget = discovery.coverage
    ? (await readJson<CoveragePlan>(ctx.runStore, runKeys.coverage(runId))).deferred
    : {};
  const deferred = new Set(
    (detail?.results ?? [])
      .filter(
        (r) => r.stage === 'integrity' && r.status === 'SKIPPED' && !Object.hasOwn(overBudget, r.backupId),
      )
      .map((r) => r.backupId),
  );
  const restores: number[] = [];
  let timeoutSeconds = MIN_RESTORE_TIMEOUT_SECONDS;
  const perSeries = new Map<string, Candidate>();
  const digestsOf = perShard((shard) =>
    readJson<Record<string, Record<string, string>>>(ctx.runStore, runKeys.digests(runId, shard)),
  );
  const expandedOf = perShard((shard) =>
    readJson<Record<string, number>>(ctx.runStore, runKeys.expanded(runId, shard)),
  );
  const regionOf = new Map(discovery.sources.map((s) => [s.url, s.region]));
  const notRestorable: StageResultRecord[] = [];

  const emit = async (backup: Backup, shard: number) => {
    const policy = policyFor(run.config, backup.series);
    const expandedBytes = await expandedOf(shard, backup.id);
    const why = sandboxRefusal(ctx, backup, expandedBytes, regionOf.get(backup.source));
    if (why) {
      notRestorable.push({
        runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'restore',
        status: 'FAIL',
        durationMs: 0,
        findings: [finding('CHECK_FAILED', why, { backup: backup.id })],
        at: ctx.now().toISOString(),
      });
      return;
    }
    const restore = restores.length;
    const job: RestoreJobFile = {
      runId,
      restore,
      source: backup.source,
      backup: serializeBackup(backup),
      policy,
      probes: run.config.probes,
    };
    if (deferred.has(backup.id)) job.checkIntegrity = true;
    if (expandedBytes !== undefined) job.expandedBytes = expandedBytes;
    if (run.config.archives?.patterns) job.archivePatterns = run.config.archives.patterns;
    const firstSeen = await ctx.ledger.firstSeenOf(backup.id);
    if (firstSeen && firstSeen.length > 0) job.firstSeen = firstSeen;
    const digests = await digestsOf(shard, backup.id);
    if (digests && Object.keys(digests).length > 0) job.objectSha256 = digests;
    await writeJson(ctx.runStore, runKeys.restore(runId, restore), job);
    restores.push(restore);
    timeoutSeconds = Math.max(timeoutSeconds, restoreTimeoutSeconds(policy));
  };

  for (const ref of discovery.shards) {
    for (const backup of await loadShard(ctx, ref)) {
      if (unreadable.has(backup.id)) continue;
      const select = policyFor(run.config, backup.series).restore.select;
      // A backup too large for the integrity Lambda is checked in a sandbox whatever the policy: none is skipped for its size.
      if (select === 'all' || deferred.has(backup.id)) {
        await emit(backup, ref.shard);
        continue;
      }
      const current = perSeries.get(backup.series);
      if (!current) {
        perSeries.set(backup.series, { backup, seen: 1, shard: ref.shard });
      } else if (select === 'latest') {
        current.seen++;
        if (backup.createdAt > current.backup.createdAt) {
          current.backup = backup;
          current.shard = ref.shard;
        }
      } else {
        current.seen++;
        if (randomInt(current.seen) === 0) {
          current.backup = backup;
          current.shard = ref.shard;
        }
      }
    }
  }
  for (const candidate of [...perSeries.values()].sort((a, b) =>
    a.backup.series.localeCompare(b.backup.series),
  )) {
    await emit(candidate.backup, candidate.shard);
  }
  if (notRestorable.length > 0) await ctx.ledger.recordResults(notRestorable);
  return { restores, heartbeatSeconds: RESTORE_HEARTBEAT_SECONDS, timeoutSeconds };
}

/** An integrity artifact of one shard (backup id -> value), read once a shard; none when it is missing. */
function perShard<T>(
  read: (shard: number) => Promise<Record<string, T>>,
): (shard: number, backupId: string) => Promise<T | undefined> {
  const byShard = new Map<number, Record<string, T>>();
  return async (shard, backupId) => {
    if (!byShard.has(shard)) byShard.set(shard, await read(shard).catch(() => ({})));
    return byShard.get(shard)?.[backupId];
  };
}

/**
 * Why the sandbox cannot restore a backup, said as a finding instead of a task that would fail:
 * more scratch storage than a task can have, or a bucket in another region than the sandbox,
 * whose network reaches S3 only through its own region's gateway endpoint.
 */
function sandboxRefusal(
  ctx: StageContext,
  backup: Backup,
  expandedBytes: number | undefined,
  sourceRegion: string | undefined,
): string | undefined {
  const bounds = ctx.sandbox;
  if (!bounds) return undefined;
  if (bounds.region && sourceRegion && sourceRegion !== bounds.region) {
    return `the restore of ${backup.id} cannot run: its bucket is in ${sourceRegion}, and the restore sandbox in ${bounds.region} reaches S3 only through that region's gateway endpoint (no internet route); integrity and redundancy were checked from the Lambdas; deploy the stack in ${sourceRegion} for this source, or replicate the bucket into ${bounds.region}`;
  }
  const needed = scratchGiB(backup, expandedBytes);
  if (needed > bounds.maxScratchGiB) return tooLargeForSandbox(backup.id, needed, bounds.maxScratchGiB);
  return undefined;
}

export async function loadRestoreJob(
  ctx: Pick<StageContext, 'runStore'>,
  runId: string,
  restore: number,
): Promise<RestoreJobFile> {
  return readJson<RestoreJobFile>(ctx.runStore, runKeys.restore(runId, restore));
}
