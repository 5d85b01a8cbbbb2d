import { type Finding, type StageStatus, type Status, statusOfFindings, worstStatus } from './findings.ts';
import type {
  Backup,
  BackupReport,
  BackupStatus,
  IntegrityResult,
  RestoreResult,
  RunReport,
} from './model.ts';

/** Everything the run learned about one backup. */
export interface BackupOutcome {
  backup: Backup;
  integrity?: IntegrityResult;
  restore?: RestoreResult;
  /** Findings of other stages (compliance, redundancy, infrastructure failures). */
  findings: Finding[];
  /** Why the coverage budget left the backup unread this run. */
  deferred?: string;
}

/**
 * Every finding of a backup, once: the integrity pass and the restore read the same bytes and
 * may state the same fact (a mismatch, an empty backup); the first stage to say it is kept.
 */
export function allFindings(outcome: BackupOutcome): Finding[] {
  const said = new Set<string>();
  const out: Finding[] = [];
  for (const stage of [
    outcome.integrity?.findings ?? [],
    outcome.restore?.findings ?? [],
    outcome.findings,
  ]) {
    const keys = stage.map(factKey);
    stage.forEach((f, i) => {
      if (!said.has(keys[i] as string)) out.push(f);
    });
    for (const key of keys) said.add(key);
  }
  return out;
}

/** A backup is empty once, whichever object or stage noticed it. */
function factKey(f: Finding): string {
  return `${f.code}\0${f.backup ?? ''}\0${f.code === 'EMPTY_BACKUP' ? '' : (f.object ?? '')}`;
}

function stageRank(status: StageStatus | undefined): Status {
  return status === undefined || status === 'SKIPPED' ? 'PASS' : status;
}

function ran(status: StageStatus | undefined): boolean {
  return status !== undefined && status !== 'SKIPPED';
}

/**
 * A backup's verdict: the worst of its stages and findings; no score hides an error. A backup
 * no stage of the command checked, with nothing found about it, is `SKIPPED`: never a pass.
 */
export function backupStatus(outcome: BackupOutcome): BackupStatus {
  const findings = allFindings(outcome);
  if (!ran(outcome.integrity?.status) && !ran(outcome.restore?.status) && findings.length === 0)
    return 'SKIPPED';
  return worstStatus([
    stageRank(outcome.integrity?.status),
    stageRank(outcome.restore?.status),
    statusOfFindings(findings),
  ]);
}

export function backupReport(outcome: BackupOutcome): BackupReport {
  const { backup, integrity, restore } = outcome;
  return {
    id: backup.id,
    series: backup.series,
    kind: backup.kind,
    location: backup.id,
    objects: backup.objects,
    bytes: backup.bytes,
    createdAt: backup.createdAt.toISOString(),
    status: backupStatus(outcome),
    ...(backup.parentId !== undefined ? { parentId: backup.parentId } : {}),
    ...(outcome.deferred !== undefined ? { deferred: outcome.deferred } : {}),
    integrity: integrity
      ? { status: integrity.status, score: integrity.score }
      : { status: 'SKIPPED', score: null },
    restore: restore
      ? {
          status: restore.status,
          durationMs: restore.durationMs,
          filesRestored: restore.filesRestored,
          bytesRestored: restore.bytesRestored,
        }
      : { status: 'SKIPPED', durationMs: 0, filesRestored: 0, bytesRestored: 0 },
    findings: allFindings(outcome).map(({ backup: _omit, ...rest }) => rest),
  };
}

export interface ReportInput {
  runId: string;
  command: string;
  trigger: RunReport['trigger'];
  sources: string[];
  startedAt: Date;
  finishedAt: Date;
  outcomes: BackupOutcome[];
  /** Findings about series or the run as a whole (RPO, unreadable sources). */
  runFindings: Finding[];
}

/** Checked statuses only: SKIPPED neither passes nor fails anything. */
function checked(statuses: Iterable<BackupStatus>): Status[] {
  return [...statuses].filter((s): s is Status => s !== 'SKIPPED');
}

/**
 * A folder backup is only as good as the archives found in it: its status takes in the worst
 * of theirs, and `nested` says which component gave it.
 */
function withNested(backups: BackupReport[]): void {
  const byId = new Map(backups.map((b) => [b.id, b]));
  for (const child of backups) {
    const parent = child.parentId === undefined ? undefined : byId.get(child.parentId);
    if (!parent) continue;
    parent.nested ??= [];
    parent.nested.push({ id: child.id, status: child.status });
  }
  for (const parent of backups) {
    if (!parent.nested) continue;
    const statuses = checked([parent.status, ...parent.nested.map((n) => n.status)]);
    if (statuses.length > 0) parent.status = worstStatus(statuses);
  }
}

/** One row of the matrix for each series (or the run) with a series-level finding. */
export interface SeriesRow {
  /** Undefined for findings about the run or a source as a whole. */
  series?: string;
  status: Status;
  findings: Finding[];
}

export function seriesRows(findings: readonly Finding[]): SeriesRow[] {
  const rows = new Map<string, SeriesRow>();
  for (const f of findings) {
    const key = f.series ?? '';
    const row = rows.get(key) ?? {
      ...(f.series !== undefined ? { series: f.series } : {}),
      status: 'PASS',
      findings: [],
    };
    row.findings.push(f);
    rows.set(key, row);
  }
  for (const row of rows.values()) row.status = statusOfFindings(row.findings);
  return [...rows.values()];
}

/**
 * The run's counts: `pass`, `warn`, `fail` and `skipped` count the rows of the matrix (every
 * backup, and every series-level row), so they add up to `backups + seriesRows` and the verdict
 * follows from them: FAIL when `fail > 0`, else WARN when `warn > 0`, else PASS.
 */
export function countsOf(backups: readonly BackupReport[], rows: readonly SeriesRow[]): RunReport['counts'] {
  const statuses: BackupStatus[] = [...backups.map((b) => b.status), ...rows.map((r) => r.status)];
  const count = (status: BackupStatus) => statuses.filter((s) => s === status).length;
  return {
    backups: backups.length,
    pass: count('PASS'),
    warn: count('WARN'),
    fail: count('FAIL'),
    skipped: count('SKIPPED'),
    series: new Set(backups.map((b) => b.series)).size,
    seriesRows: rows.length,
  };
}

/** The run report of docs/contract.md. The run's status is the worst backup, or FAIL on a run-level error. */
export function buildReport(input: ReportInput): RunReport {
  const backups = input.outcomes
    .map(backupReport)
    .sort(
      (a, b) =>
        a.series.localeCompare(b.series) ||
        a.createdAt.localeCompare(b.createdAt) ||
        a.id.localeCompare(b.id),
    );
  withNested(backups);
  const rows = seriesRows(input.runFindings);
  const status = worstStatus([...checked(backups.map((b) => b.status)), ...rows.map((r) => r.status)]);
  return {
    schemaVersion: 1,
    runId: input.runId,
    command: input.command,
    trigger: input.trigger,
    sources: input.sources,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    status,
    counts: countsOf(backups, rows),
    backups,
    findings: input.runFindings,
  };
}
