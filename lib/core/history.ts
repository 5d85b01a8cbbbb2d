import { formatAge } from './compliance.ts';
import { humanDollars } from './cost.ts';
import type { Status } from './findings.ts';
import type { Ledger, RunRecord, SeriesRpo, SeriesStatus, StageResultRecord } from './ledger.ts';
import { humanBytes } from './units.ts';

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

/** The status shown for a run: a RUNNING one with its age (`RUNNING (started 3 h ago; no end recorded …)`). */
export function runStatusText(run: RunRecord, now: string, unicode = true): string {
  const unfinished = unfinishedRun(run, now);
  if (!unfinished) return run.status;
  const note = unicode ? unfinished.note : unfinished.note.replace('—', '-');
  return `RUNNING (started ${formatAge(unfinished.startedAgoSeconds * 1000)} ago; ${note})`;
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

const BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/** A sparkline of the values; a flat line sits mid-height. */
export function sparkline(values: readonly number[]): string {
  if (values.length === 0) return '';
  const min = Math.min(...values);
  const max = Math.max(...values);
  return values
    .map((v) => (max === min ? BARS[4] : BARS[Math.round(((v - min) / (max - min)) * (BARS.length - 1))]))
    .join('');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}

/**
 * The `history` command's text: recent runs as a table, then each series' trends (size,
 * integrity score, restore time) as sparklines when `unicode`, plain numbers otherwise.
 */
export function renderHistory(data: HistoryData, options: { width: number; unicode: boolean }): string {
  const width = Math.max(40, options.width);
  const lines: string[] = [];
  lines.push('Recent runs');
  if (data.runs.length === 0) {
    lines.push('  no runs recorded in this ledger yet');
  } else {
    const costs = data.runs.some((r) => r.summary?.costUsd !== undefined);
    const header = ['RUN ID', 'STARTED', 'TRIGGER', 'STATUS', 'PASS', 'WARN', 'FAIL', 'SKIPPED'];
    if (costs) header.push('COST (EST.)');
    const rows = data.runs.map((r) => [
      r.runId,
      r.startedAt.replace('T', ' ').slice(0, 16),
      r.trigger,
      runStatusText(r, data.generatedAt, options.unicode),
      String(r.counts?.pass ?? '-'),
      String(r.counts?.warn ?? '-'),
      String(r.counts?.fail ?? '-'),
      String(r.counts?.skipped ?? '-'),
      ...(costs ? [r.summary?.costUsd === undefined ? '-' : humanDollars(r.summary.costUsd)] : []),
    ]);
    lines.push(...table([header, ...rows]).map((l) => `  ${l}`));
  }
  const covered = data.runs.find((r) => r.summary?.coverage && r.summary.coverage.length > 0);
  if (covered?.summary?.coverage) {
    lines.push('', `Coverage (run ${covered.runId})`);
    const rows = covered.summary.coverage.map((c) => [
      c.series,
      `${(Math.floor(c.share * 1000) / 10).toFixed(1)}% verified within the window`,
      c.oldestUnverifiedDays === undefined
        ? 'nothing unverified'
        : `oldest unverified ${c.oldestUnverifiedDays}d`,
      c.forecastMetAt === null
        ? 'window never met at this budget'
        : `window met ${c.forecastMetAt.slice(0, 10)}`,
      c.behind ? 'COVERAGE_BEHIND' : '',
    ]);
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  const copied = data.runs.find((r) => r.summary?.copies);
  if (copied?.summary?.copies) {
    const { provenByChecksum, provenByRead, bytesNotDownloaded } = copied.summary.copies;
    lines.push(
      '',
      `Copies (run ${copied.runId}): ${provenByChecksum} object(s) proven by stored checksum, ${provenByRead} read back; ${humanBytes(bytesNotDownloaded)} not downloaded`,
    );
  }
  lines.push('');
  const arrow = options.unicode ? '→' : '->';
  lines.push(`Series trends (oldest ${arrow} newest)`);
  if (data.series.length === 0) lines.push('  no series recorded in this ledger yet');
  const label = 10;
  for (const s of data.series) {
    const when = s.lastCheckedAt ? `  last checked ${s.lastCheckedAt.replace('T', ' ').slice(0, 16)}` : '';
    lines.push(`  ${s.series}  ${s.status ?? 'not checked yet'}${when}`);
    if (s.immutability) {
      lines.push(
        `    immutability: ${s.immutability.status} (run ${s.immutability.runId}${s.immutability.status === 'PASS' ? '' : ': its report says what can delete the backups'})`,
      );
    }
    if (s.rpoExceeded) {
      const { newestBackupAgeMinutes, rpoMinutes } = s.rpoExceeded;
      lines.push(
        `    RPO_EXCEEDED: the newest backup was ${formatAge(newestBackupAgeMinutes * 60_000)} old when last checked, the RPO is ${formatAge(rpoMinutes * 60_000)}`,
      );
    }
    const trends: Array<[string, TrendPoint[], (v: number) => string]> = [
      ['size', s.sizes, formatBytes],
      ['score', s.scores, (v) => v.toFixed(2)],
      ['restore', s.restoreMs, formatDuration],
    ];
    for (const [name, points, format] of trends) {
      if (points.length === 0) continue;
      const values = points.map((p) => p.value);
      const last = format(values[values.length - 1] as number);
      const prefix = `    ${name.padEnd(label)}`;
      if (options.unicode) {
        const room = Math.max(5, width - prefix.length - last.length - 8);
        lines.push(`${prefix}${sparkline(values.slice(-room))}  last ${last}`);
      } else {
        lines.push(`${prefix}${fitList(values.map(format), width - prefix.length)}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The newest items that fit the width, comma-separated, with "..." when older ones are left out. */
function fitList(items: readonly string[], room: number): string {
  const kept: string[] = [];
  let length = 0;
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as string;
    const extra = item.length + (kept.length > 0 ? 2 : 0);
    if (length + extra + 5 > room && kept.length > 0) {
      kept.unshift('...');
      break;
    }
    kept.unshift(item);
    length += extra;
  }
  return kept.join(', ');
}

function table(rows: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}
