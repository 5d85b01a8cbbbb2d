import type { Status } from './findings.ts';
import type { Ledger, RunRecord, SeriesRpo, SeriesStatus, StageResultRecord } from './ledger.ts';

export interface TrendPoint {
  at: string;
  value: number;
  runId: string;
  backupId: string;
}

export interface SeriesTrend {
  series: string;
  /** Worst of the latest stage statuses, and FAIL when the newest backup was older than the RPO at the last check. */
  status: Status | null;
  /** Set when the newest backup was older than the series' RPO at the last check (as RPO_EXCEEDED in that run). */
  rpoExceeded?: { rpoMinutes: number; newestBackupAgeMinutes: number };
  lastCheckedAt?: string;
  latestBackup?: { backupId: string; createdAt: string };
  /** Oldest first: each backup's stored bytes (one point per backup). */
  sizes: TrendPoint[];
  /** Oldest first: each backup's file count (one point per backup). */
  files?: TrendPoint[];
  /** Oldest first: integrity scores (0..1). */
  scores: TrendPoint[];
  /** Oldest first: restore durations in ms. */
  restoreMs: TrendPoint[];
  /** The latest immutability verdict of the series' backups (issue 15), when a policy asked for one. */
  immutability?: { status: Status; runId: string; at: string };
}

export interface HistoryData {
  generatedAt: string;
  runs: RunRecord[];
  series: SeriesTrend[];
}

export interface LoadHistoryOptions {
  /** How many recent runs (default 10). */
  runs?: number;
  /** Only this series. */
  series?: string;
  /** Points per trend (default 30). */
  points?: number;
  now?: Date;
  /** The series' RPO in minutes (0: none), for series whose runs did not record their RPO verdict. */
  rpoMinutesFor?: (series: string) => number;
}

/** Gathers what `history` shows: one Query for the runs, one for the series, one per series for its trend. */
export async function loadHistory(
  ledger: Pick<Ledger, 'recentRuns' | 'latestBySeries' | 'seriesHistory'>,
  options: LoadHistoryOptions = {},
): Promise<HistoryData> {
  const points = options.points ?? 30;
  const [runs, statuses] = await Promise.all([
    ledger.recentRuns(options.runs ?? 10),
    ledger.latestBySeries(),
  ]);
  let wanted: SeriesStatus[] = statuses;
  if (options.series !== undefined) {
    const only = statuses.find((s) => s.series === options.series);
    wanted = [only ?? { series: options.series, status: null, stages: {} }];
  }
  const now = options.now ?? new Date();
  const series = await Promise.all(
    wanted.map(async (s) => {
      const trend = trendOf(s, await ledger.seriesHistory(s.series, points * 4), points);
      const immutability = s.stages.immutability;
      if (immutability)
        trend.immutability = { status: immutability.status, runId: immutability.runId, at: immutability.at };
      return withRpo(trend, options.rpoMinutesFor?.(s.series) ?? 0, now, s.rpo);
    }),
  );
  series.sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 : 0));
  return { generatedAt: now.toISOString(), runs, series };
}

/**
 * A series whose newest backup was older than its RPO when it was last checked is failing,
 * whatever its checks said: that run reported RPO_EXCEEDED for it, and history must not show it
 * as a PASS. The run's own verdict, recorded in the ledger, decides; for a series recorded
 * before runs kept it, the RPO given here is applied at the last check, not now (between weekly
 * runs the ledger cannot know of newer backups, and a fresh series must not turn red on its own).
 */
export function withRpo(
  trend: SeriesTrend,
  rpoMinutes: number,
  now: Date,
  recorded?: SeriesRpo,
): SeriesTrend {
  if (recorded) {
    if (!recorded.exceeded) return trend;
    const { rpoMinutes: minutes, newestBackupAgeMinutes } = recorded;
    return { ...trend, status: 'FAIL', rpoExceeded: { rpoMinutes: minutes, newestBackupAgeMinutes } };
  }
  if (rpoMinutes <= 0 || !trend.latestBackup) return trend;
  const createdAt = Date.parse(trend.latestBackup.createdAt);
  const checkedAt = trend.lastCheckedAt ? Date.parse(trend.lastCheckedAt) : now.getTime();
  if (Number.isNaN(createdAt) || Number.isNaN(checkedAt)) return trend;
  const ageMinutes = Math.floor((checkedAt - createdAt) / 60_000);
  if (ageMinutes <= rpoMinutes) return trend;
  return { ...trend, status: 'FAIL', rpoExceeded: { rpoMinutes, newestBackupAgeMinutes: ageMinutes } };
}

/** Trend lines of one series from its newest-first results. */
export function trendOf(
  status: SeriesStatus,
  results: readonly StageResultRecord[],
  points = 30,
): SeriesTrend {
  const oldestFirst = [...results].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const sizeByBackup = new Map<string, TrendPoint>();
  const filesByBackup = new Map<string, TrendPoint>();
  const scores: TrendPoint[] = [];
  const restoreMs: TrendPoint[] = [];
  for (const r of oldestFirst) {
    const point = (value: number): TrendPoint => ({ at: r.at, value, runId: r.runId, backupId: r.backupId });
    if (r.stage === 'integrity' && r.status !== 'SKIPPED') {
      if (r.bytes !== undefined && !sizeByBackup.has(r.backupId))
        sizeByBackup.set(r.backupId, point(r.bytes));
      if (r.files !== undefined && !filesByBackup.has(r.backupId))
        filesByBackup.set(r.backupId, point(r.files));
      if (r.score !== undefined) scores.push(point(r.score));
    } else if (r.stage === 'restore' && r.status !== 'SKIPPED' && r.status !== 'FAIL') {
      restoreMs.push(point(r.durationMs));
    }
  }
  return {
    series: status.series,
    status: status.status,
    ...(status.lastCheckedAt !== undefined ? { lastCheckedAt: status.lastCheckedAt } : {}),
    ...(status.latestBackup !== undefined ? { latestBackup: status.latestBackup } : {}),
    sizes: [...sizeByBackup.values()].slice(-points),
    files: [...filesByBackup.values()].slice(-points),
    scores: scores.slice(-points),
    restoreMs: restoreMs.slice(-points),
  };
}

/** What `history` says of a run still RUNNING: its age, and that its process may be gone. */
export interface UnfinishedRun {
  startedAgoSeconds: number;
  note: string;
}

export const UNFINISHED_NOTE = 'no end recorded — the process may have been killed';

/**
 * A run left RUNNING: one whose process was killed (SIGKILL, out of memory, power) never
 * records its end, so history gives its age instead of showing it running forever.
 */
export function unfinishedRun(run: RunRecord, now: string): UnfinishedRun | undefined {
  if (run.status !== 'RUNNING') return undefined;
  const ms = Date.parse(now) - Date.parse(run.startedAt);
  return {
    startedAgoSeconds: Number.isNaN(ms) ? 0 : Math.max(0, Math.floor(ms / 1000)),
    note: UNFINISHED_NOTE,
  };
}

/** The `--json` shape of `history`; a run still RUNNING carries `unfinished` (its age and why). */
export function historyJson(data: HistoryData): {
  schemaVersion: 1;
  generatedAt: string;
  runs: Array<RunRecord & { unfinished?: UnfinishedRun }>;
  series: SeriesTrend[];
} {
  const runs = data.runs.map((run) => {
    const unfinished = unfinishedRun(run, data.generatedAt);
    return unfinished ? { ...run, unfinished } : run;
  });
  return { schemaVersion: 1, generatedAt: data.generatedAt, runs, series: data.series };
}
