import type { KnownSeries, RpoCheck } from './compliance.ts';

export type { KnownSeries };

import type { VerificationEntry } from './coverage.ts';
import type { Finding, StageStatus, Status } from './findings.ts';
import type { Backup, BackupKind } from './model.ts';
import type { ChecksumHistory } from './ports.ts';
import { humanBytes } from './units.ts';

export type { VerificationEntry };

/**
 * The ledger: what was catalogued, validated and copied, kept across runs.
 * Every method throws `LedgerError` when the ledger cannot be reached, read or written;
 * none swallows a failure. Writes are idempotent (deterministic keys, conditional writes).
 */
export interface Ledger extends ChecksumHistory {
  /** Where the ledger lives (`dynamodb://TABLE` or a folder), for messages. */
  readonly location: string;
  /** Records a run as RUNNING. Starting the same run id again keeps the first record and returns it. */
  startRun(run: NewRun): Promise<RunRecord>;
  /** Records (or refreshes) the catalogue entries of these backups; never touches their verification state. */
  recordCatalogue(runId: string, backups: readonly Backup[]): Promise<void>;
  /**
   * Records stage results (one item per run, backup and stage: recording again replaces, never
   * duplicates), then folds them into the series' latest status, the series baselines and the
   * backups' last-verified times.
   */
  recordResults(records: readonly StageResultRecord[]): Promise<void>;
  /**
   * Records how a run judged each series' RPO (from its catalogue), so `history` shows the
   * verdict the run made; an older judgement never replaces a newer one.
   */
  recordSeriesRpo(runId: string, at: string, checks: readonly RpoCheck[]): Promise<void>;
  /** Records a verified redundancy copy; a newer verification of the same location replaces an older one. */
  recordCopy(copy: CopyRecord): Promise<void>;
  /** Marks a started run finished. Throws LedgerError if the run was never started. */
  finishRun(runId: string, outcome: RunOutcome): Promise<RunRecord>;
  /** The newest runs first. */
  recentRuns(limit: number): Promise<RunRecord[]>;
  /** A run and all its results, or undefined when the ledger has no such run. */
  getRun(runId: string): Promise<RunDetail | undefined>;
  /** The latest known status of every series, by series name. */
  latestBySeries(): Promise<SeriesStatus[]>;
  /**
   * The series catalogued from this source by earlier runs (outer backups only, not archives
   * found inside a folder backup), each with its newest recorded backup.
   */
  seriesOfSource(source: string): Promise<KnownSeries[]>;
  /** The newest stage results of one series first, at most `limit`. */
  seriesHistory(series: string, limit: number): Promise<StageResultRecord[]>;
  /** Every verified copy of one backup. */
  copiesOf(backupId: string): Promise<CopyRecord[]>;
  /**
   * The last verification of every catalogued backup of one series, never-verified ones first,
   * then oldest first: one Query (coverage's reading order).
   */
  verificationsOf(series: string): Promise<VerificationEntry[]>;
  /** Catalogued backups whose last verification is older than `date`, or that were never verified. */
  notVerifiedSince(date: Date): Promise<CatalogueEntry[]>;
  /** The compliance baseline of one series (empty when the series has none yet). */
  baseline(series: string): Promise<SeriesBaseline>;
  /** One catalogue entry, or undefined. */
  catalogueEntry(backupId: string): Promise<CatalogueEntry | undefined>;
  close(): Promise<void>;
}

export type Stage = 'integrity' | 'restore' | 'redundancy' | 'compliance' | 'immutability';
export const STAGES: readonly Stage[] = ['integrity', 'restore', 'redundancy', 'compliance', 'immutability'];

export type RunTrigger = 'schedule' | 'console' | 'cli' | 'event';
/**
 * `ERROR`: the run stopped before it could give every backup a verdict. `ABORTED`: a signal
 * (Ctrl-C, SIGTERM) stopped it; its counts say what was checked before.
 */
export type RunStatus = 'RUNNING' | Status | 'ERROR' | 'ABORTED';

export interface RunCounts {
  backups: number;
  pass: number;
  warn: number;
  fail: number;
  series: number;
  /** Backups no stage checked; absent in runs recorded before it was counted. */
  skipped?: number;
  /** Series-level rows counted in pass/warn/fail; absent in older runs. */
  seriesRows?: number;
}

export interface NewRun {
  runId: string;
  trigger: RunTrigger;
  sources: string[];
  command?: string;
  /** ISO-8601; defaults to the ledger's clock. */
  startedAt?: string;
}

export interface RunRecord {
  runId: string;
  trigger: RunTrigger;
  sources: string[];
  command?: string;
  startedAt: string;
  finishedAt?: string;
  status: RunStatus;
  counts?: RunCounts;
  /** Why an ERROR or ABORTED run stopped. */
  error?: string;
  /** The run's cost estimate and coverage, as its report gave them (absent before coverage). */
  summary?: RunSummary;
}

/** What `history` shows of a run's cost and coverage, kept with the run. */
export interface RunSummary {
  /** Estimated US dollars. */
  costUsd?: number;
  coverage?: Array<{
    series: string;
    share: number;
    oldestUnverifiedDays?: number;
    forecastMetAt: string | null;
    behind: boolean;
  }>;
  /** How the run proved the redundancy copies it checked (issue 15). */
  copies?: { provenByChecksum: number; provenByRead: number; bytesNotDownloaded: number };
}

export interface RunOutcome {
  status: Exclude<RunStatus, 'RUNNING'>;
  counts: RunCounts;
  finishedAt?: string;
  error?: string;
  summary?: RunSummary;
}

export interface StageResultRecord {
  runId: string;
  backupId: string;
  series: string;
  stage: Stage;
  status: StageStatus;
  /** Integrity score 0..1 (integrity stage). */
  score?: number;
  durationMs: number;
  /** Integrity: the backup's stored bytes. Restore: bytes restored. */
  bytes?: number;
  /** Integrity: files found (archive members or directory files). Restore: files restored. */
  files?: number;
  findings: Finding[];
  /** ISO-8601 time the stage finished. */
  at: string;
  /** Findings left out because the item would pass the store's size limit (the first ones are kept). */
  findingsOmitted?: number;
  /** Integrity: the fingerprint of the version read (coverage tells a changed backup by it). */
  fingerprint?: string;
}

export interface RunDetail {
  run: RunRecord;
  results: StageResultRecord[];
}

export interface CatalogueEntry {
  backupId: string;
  series: string;
  kind: BackupKind;
  source: string;
  key: string;
  name: string;
  location: string;
  createdAt: string;
  objects: number;
  bytes: number;
  firstSeenAt?: string;
  firstSeenRunId?: string;
  /** Last integrity or restore result that was PASS or WARN. */
  lastVerifiedAt?: string;
  lastVerifiedRunId?: string;
}

export interface CopyRecord {
  backupId: string;
  /** Folder path or s3:// URL of the copy. */
  location: string;
  /** SHA-256 of the copy, lower-case hex. */
  sha256: string;
  bytes?: number;
  verifiedAt: string;
  runId?: string;
}

export interface SizePoint {
  backupId: string;
  bytes: number;
  files: number;
  at: string;
}

export interface RestorePoint {
  backupId: string;
  runId: string;
  durationMs: number;
  at: string;
}

export interface SeriesBaseline {
  series: string;
  /** Oldest first, at most BASELINE_POINTS, one per backup. */
  sizes: SizePoint[];
  /** Oldest first, at most BASELINE_POINTS, one per run and backup. */
  restores: RestorePoint[];
  /** Optimistic-concurrency version: 0 for a baseline never stored. */
  version: number;
}

export interface StageSummary {
  status: Status;
  runId: string;
  backupId: string;
  at: string;
  score?: number;
  durationMs: number;
  bytes?: number;
  files?: number;
}

/** A series' RPO as the newest run that catalogued it judged it. */
export interface SeriesRpo {
  runId: string;
  at: string;
  rpoMinutes: number;
  newestBackupAgeMinutes: number;
  exceeded: boolean;
}

export interface SeriesStatus {
  series: string;
  /** Worst of the latest stage statuses; null when no stage has a verdict yet. */
  status: Status | null;
  stages: Partial<Record<Stage, StageSummary>>;
  latestBackup?: { backupId: string; createdAt: string };
  /** The newest run's RPO judgement, when the series has an RPO. */
  rpo?: SeriesRpo;
  /** Newest `at` among the stages. */
  lastCheckedAt?: string;
}

/** How many recent points a series baseline keeps. */
export const BASELINE_POINTS = 20;
/** Fewer previous points than this and no anomaly is ever reported. */
export const BASELINE_MIN_POINTS = 3;

const RANK: Record<Status, number> = { PASS: 0, WARN: 1, FAIL: 2 };

export function statusRank(status: Status): number {
  return RANK[status];
}

export function emptyBaseline(series: string): SeriesBaseline {
  return { series, sizes: [], restores: [], version: 0 };
}

/**
 * Folds results into a baseline: an integrity result adds its backup's size and file count
 * (once per backup: checking a backup again adds nothing), a PASS/WARN restore adds its
 * duration (once per run and backup). Keeps the newest BASELINE_POINTS of each, oldest first.
 * Returns the same object when nothing changes, so the caller can skip the write.
 */
export function applyResultsToBaseline(
  baseline: SeriesBaseline,
  records: readonly StageResultRecord[],
): SeriesBaseline {
  let sizes = baseline.sizes;
  let restores = baseline.restores;
  for (const r of records) {
    if (r.series !== baseline.series) continue;
    if (r.stage === 'integrity' && r.status !== 'SKIPPED' && r.bytes !== undefined) {
      if (sizes.some((p) => p.backupId === r.backupId)) continue;
      sizes = [...sizes, { backupId: r.backupId, bytes: r.bytes, files: r.files ?? 0, at: r.at }];
    } else if (r.stage === 'restore' && (r.status === 'PASS' || r.status === 'WARN')) {
      if (restores.some((p) => p.backupId === r.backupId && p.runId === r.runId)) continue;
      restores = [...restores, { backupId: r.backupId, runId: r.runId, durationMs: r.durationMs, at: r.at }];
    }
  }
  if (sizes === baseline.sizes && restores === baseline.restores) return baseline;
  const byTime = <T extends { at: string }>(a: T, b: T) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0);
  return {
    ...baseline,
    sizes: [...sizes].sort(byTime).slice(-BASELINE_POINTS),
    restores: [...restores].sort(byTime).slice(-BASELINE_POINTS),
  };
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Why a backup's size or file count departs sharply from its series' baseline (below 50 % or
 * above 200 % of the median of at least BASELINE_MIN_POINTS previous backups), or undefined.
 * The backup's own point, if already in the baseline, is not compared with itself.
 */
export function sizeAnomaly(
  baseline: SeriesBaseline,
  bytes: number,
  files: number,
  backupId?: string,
): string | undefined {
  const previous = baseline.sizes.filter((p) => p.backupId !== backupId);
  if (previous.length < BASELINE_MIN_POINTS) return undefined;
  const reasons: string[] = [];
  const check = (what: string, value: number, reference: number | undefined, show: (n: number) => string) => {
    if (reference === undefined || reference <= 0) return;
    const ratio = value / reference;
    if (ratio < 0.5 || ratio > 2) {
      reasons.push(
        `${what} ${show(value)} is ${Math.round(ratio * 100)}% of the median ${show(reference)} of the last ${previous.length} backups`,
      );
    }
  };
  check('size', bytes, median(previous.map((p) => p.bytes)), humanBytes);
  check('file count', files, median(previous.map((p) => p.files)), (n) => n.toLocaleString('en-US'));
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

/** Median restore time of the baseline, or undefined with fewer than BASELINE_MIN_POINTS points. */
export function baselineRestoreMs(baseline: SeriesBaseline): number | undefined {
  if (baseline.restores.length < BASELINE_MIN_POINTS) return undefined;
  return median(baseline.restores.map((p) => p.durationMs));
}

/** Worst of the stages' statuses, null when there is none. */
export function seriesStatusOf(stages: Partial<Record<Stage, StageSummary>>): Status | null {
  let worst: Status | null = null;
  for (const s of Object.values(stages)) {
    if (s && (worst === null || RANK[s.status] > RANK[worst])) worst = s.status;
  }
  return worst;
}

/**
 * Of these results of one series and stage, the one that stands for the stage: the newest run's
 * (by `at`), and within one run the worst status. SKIPPED results never stand for a stage.
 */
export function representativeResult(records: readonly StageResultRecord[]): StageResultRecord | undefined {
  let best: StageResultRecord | undefined;
  let bestRunAt = '';
  const newestAtByRun = new Map<string, string>();
  for (const r of records) {
    if (r.status === 'SKIPPED') continue;
    const at = newestAtByRun.get(r.runId);
    if (at === undefined || r.at > at) newestAtByRun.set(r.runId, r.at);
  }
  for (const r of records) {
    if (r.status === 'SKIPPED') continue;
    const runAt = newestAtByRun.get(r.runId) as string;
    if (
      best === undefined ||
      runAt > bestRunAt ||
      (r.runId === best.runId && RANK[r.status] >= RANK[best.status as Status])
    ) {
      best = r;
      bestRunAt = runAt;
    }
  }
  return best;
}

/** Epoch seconds at which a record made at `at` expires; undefined when retention is 0 (keep forever). */
export function expiresAtFor(at: string, retentionDays: number): number | undefined {
  if (!(retentionDays > 0)) return undefined;
  return Math.floor(Date.parse(at) / 1000) + Math.round(retentionDays * 86_400);
}

/** Where a backup lives, as a single string for people. */
export function backupLocation(backup: Pick<Backup, 'source' | 'key'>): string {
  if (backup.key === '') return backup.source;
  return backup.source.endsWith('/') ? `${backup.source}${backup.key}` : `${backup.source}/${backup.key}`;
}
