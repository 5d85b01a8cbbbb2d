import { type Finding, type StageStatus, type Status, statusOfFindings, worstStatus } from './findings.ts';
import type { Backup, BackupReport, IntegrityResult, RestoreResult, RunReport } from './model.ts';

/** Everything the run learned about one backup. */
export interface BackupOutcome {
  backup: Backup;
  integrity?: IntegrityResult;
  restore?: RestoreResult;
  /** Findings of other stages (compliance, redundancy, infrastructure failures). */
  findings: Finding[];
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

/** A backup's verdict: the worst of its stages and findings; no score hides an error. */
export function backupStatus(outcome: BackupOutcome): Status {
  return worstStatus([
    stageRank(outcome.integrity?.status),
    stageRank(outcome.restore?.status),
    statusOfFindings(allFindings(outcome)),
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
  const status = worstStatus([...backups.map((b) => b.status), statusOfFindings(input.runFindings)]);
  return {
    schemaVersion: 1,
    runId: input.runId,
    command: input.command,
    trigger: input.trigger,
    sources: input.sources,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    status,
    counts: {
      backups: backups.length,
      pass: backups.filter((b) => b.status === 'PASS').length,
      warn: backups.filter((b) => b.status === 'WARN').length,
      fail: backups.filter((b) => b.status === 'FAIL').length,
      series: new Set(backups.map((b) => b.series)).size,
    },
    backups,
    findings: input.runFindings,
  };
}
