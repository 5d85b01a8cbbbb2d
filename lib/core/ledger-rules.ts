import type { Status } from './findings.ts';
import { representativeResult, type Stage, type StageResultRecord, statusRank } from './ledger.ts';
import type { Backup } from './model.ts';

/** The stages whose PASS or WARN proves a backup could be read back: they move its "last verified" time. */
const VERIFYING_STAGES: ReadonlySet<Stage> = new Set<Stage>(['integrity', 'restore']);
const VERIFYING_STATUSES: ReadonlySet<string> = new Set(['PASS', 'WARN']);

/** One result per run, backup and stage: a later record of the same triple replaces an earlier one. */
export function uniqueResults(records: readonly StageResultRecord[]): StageResultRecord[] {
  return [...new Map(records.map((r) => [`${r.runId}\0${r.backupId}\0${r.stage}`, r])).values()];
}

/** Whether a result moves its backup's last-verified time (forward only; the ledger keeps the newest). */
export function verifies(r: Pick<StageResultRecord, 'stage' | 'status'>): boolean {
  return VERIFYING_STAGES.has(r.stage) && VERIFYING_STATUSES.has(r.status);
}

/** Per backup, the newest result that verifies it. */
export function newestVerifications(records: readonly StageResultRecord[]): StageResultRecord[] {
  const latest = new Map<string, StageResultRecord>();
  for (const r of records) {
    if (!verifies(r)) continue;
    const current = latest.get(r.backupId);
    if (current === undefined || r.at > current.at) latest.set(r.backupId, r);
  }
  return [...latest.values()];
}

/**
 * Per series and stage, the result that stands for it: the newest run's worst (representativeResult).
 * The ledger keeps it only if no newer run's verdict is recorded: a condition on its write, so concurrent runs agree.
 */
export function seriesVerdicts(records: readonly StageResultRecord[]): StageResultRecord[] {
  const groups = new Map<string, StageResultRecord[]>();
  for (const r of records) {
    const key = `${r.series}\0${r.stage}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()]
    .map((group) => representativeResult(group))
    .filter((r): r is StageResultRecord => r !== undefined);
}

/** A series' recorded verdict for one stage, with the rank that orders verdicts of one run. */
export interface RankedVerdict {
  status: Status;
  rank: number;
  runId: string;
  backupId: string;
  at: string;
  score?: number | undefined;
  durationMs: number;
  bytes?: number | undefined;
  files?: number | undefined;
}

export function rankedVerdict(r: StageResultRecord): RankedVerdict {
  const status = r.status as Status;
  return {
    status,
    rank: statusRank(status),
    runId: r.runId,
    backupId: r.backupId,
    at: r.at,
    score: r.score,
    durationMs: r.durationMs,
    bytes: r.bytes,
    files: r.files,
  };
}

/**
 * Per series, the newest backup (the series' latest), and which series are outer ones: series of
 * archives found inside a folder backup are facts of that backup, not series that can vanish on their own.
 */
export function newestBackups(backups: Iterable<Backup>): { newest: Backup[]; outerSeries: Set<string> } {
  const newestBySeries = new Map<string, Backup>();
  const outerSeries = new Set<string>();
  for (const b of backups) {
    const current = newestBySeries.get(b.series);
    if (current === undefined || b.createdAt > current.createdAt) newestBySeries.set(b.series, b);
    if (b.parentId === undefined) outerSeries.add(b.series);
  }
  return { newest: [...newestBySeries.values()], outerSeries };
}
