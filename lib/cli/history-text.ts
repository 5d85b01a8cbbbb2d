import { humanDollars } from '../core/cost.ts';
import { type HistoryData, type TrendPoint, unfinishedRun } from '../core/history.ts';
import type { RunRecord } from '../core/ledger.ts';
import { humanAge, humanBytes, humanTime } from '../core/units.ts';
import { columns } from './render.ts';

/** `history` as text: a table of the recent runs, each series' trends as sparklines. */

/** The status shown for a run: a RUNNING one with its age (`RUNNING (started 3 h ago; no end recorded …)`). */
export function runStatusText(run: RunRecord, now: string, unicode = true): string {
  const unfinished = unfinishedRun(run, now);
  if (!unfinished) return run.status;
  const note = unicode ? unfinished.note : unfinished.note.replace('—', '-');
  return `RUNNING (started ${humanAge(unfinished.startedAgoSeconds * 1000)} ago; ${note})`;
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
    lines.push(...columns([header, ...rows]).map((l) => `  ${l}`));
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
    lines.push(...columns(rows).map((l) => `  ${l}`));
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
        `    RPO_EXCEEDED: the newest backup was ${humanAge(newestBackupAgeMinutes * 60_000)} old when last checked, the RPO is ${humanAge(rpoMinutes * 60_000)}`,
      );
    }
    const trends: Array<[string, TrendPoint[], (v: number) => string]> = [
      ['size', s.sizes, humanBytes],
      ['score', s.scores, (v) => v.toFixed(2)],
      ['restore', s.restoreMs, humanTime],
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
