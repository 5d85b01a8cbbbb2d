import type { StageResultRecord } from '../ledger.ts';
import type { ContentDigest, RestoreResult } from '../model.ts';
import { recordedHistory } from '../references/history.ts';
import { deserializeBackup } from '../run-store.ts';
import type { RestoreJobFile } from '../stages/select-restores.ts';
import type { RestoreRequest } from './restore.ts';

/**
 * One restore as a sandbox receives it: serialisable (dates as ISO strings), the same shape
 * select-restores writes to `runs/<runId>/restores/<n>.json`, plus optional per-file digests.
 */
export type RestoreJob = RestoreJobFile & {
  /** What the integrity pass read of each file (complete listing): compared, counts included. */
  references?: ContentDigest[];
};

/** Runs a restore somewhere isolated and answers with its result (local child process). */
export interface SandboxLauncher {
  launch(job: RestoreJob, options?: { signal?: AbortSignal }): Promise<RestoreResult>;
}

/**
 * Starts a restore whose result comes back later through a Step Functions task token
 * (Fargate): answers with the started task, not the result.
 */
export interface SandboxStarter {
  start(job: RestoreJob, taskToken: string): Promise<{ taskArn: string }>;
}

/** Everything restoreBackup needs from a job, except the store and the root the sandbox provides. */
export function requestFromJob(job: RestoreJob): Omit<RestoreRequest, 'store' | 'root'> {
  return {
    backup: deserializeBackup(job.backup),
    policy: job.policy,
    probes: job.probes,
    ...(job.references ? { references: job.references } : {}),
    ...(job.objectSha256 ? { objectSha256: job.objectSha256 } : {}),
    ...(job.firstSeen ? { history: recordedHistory(job.firstSeen) } : {}),
    ...(job.archivePatterns ? { archivePatterns: job.archivePatterns } : {}),
  };
}

/** Checks a job read from an environment variable or a file before anything runs. */
export function parseRestoreJob(text: string, origin: string): RestoreJob {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`the restore job in ${origin} is not valid JSON: ${(error as Error).message}`);
  }
  const job = raw as Partial<RestoreJob>;
  const missing = (['runId', 'source', 'backup', 'policy', 'probes'] as const).filter(
    (key) => job[key] === undefined,
  );
  if (missing.length > 0) {
    throw new Error(`the restore job in ${origin} lacks ${missing.join(', ')}`);
  }
  if (!Array.isArray(job.backup?.members) || typeof job.backup?.id !== 'string') {
    throw new Error(`the restore job in ${origin} has no valid backup (id and members are required)`);
  }
  return job as RestoreJob;
}

/** The ledger record of a finished restore, which the report reads. */
export function restoreRecord(job: RestoreJob, result: RestoreResult, at: Date): StageResultRecord {
  return {
    runId: job.runId,
    backupId: result.backupId,
    series: job.backup.series,
    stage: 'restore',
    status: result.status,
    durationMs: result.durationMs,
    bytes: result.bytesRestored,
    files: result.filesRestored,
    findings: result.findings,
    at: at.toISOString(),
  };
}

/** What a sandbox records for one job: the restore, and the integrity check when it ran one. */
export function sandboxRecords(job: RestoreJob, result: RestoreResult, at: Date): StageResultRecord[] {
  const records = [restoreRecord(job, result, at)];
  const integrity = result.integrity;
  if (integrity) {
    records.push({
      runId: job.runId,
      backupId: integrity.backupId,
      series: job.backup.series,
      stage: 'integrity',
      status: integrity.status,
      score: integrity.score,
      durationMs: integrity.durationMs,
      bytes: job.backup.bytes,
      files: job.backup.kind === 'directory' ? job.backup.objects : integrity.files,
      findings: integrity.findings,
      at: at.toISOString(),
    });
  }
  return records;
}
