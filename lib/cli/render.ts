import { seriesLabeller } from '../core/catalogue.ts';
import type { Finding } from '../core/findings.ts';
import { checkOf, MATRIX_CHECKS } from '../core/matrix.ts';
import type { RunReport } from '../core/model.ts';
import type { ProtectedRunReport } from '../core/protection-report.ts';
import { type SeriesRow, seriesRows } from '../core/report.ts';
import { humanAge, humanBytes, humanTime } from '../core/units.ts';

/** The run report as text: the results matrix, the findings and the verdict. */

/** Rows padded column by column to their widest cell (`r`: right-aligned), each line trimmed. */
export function columns(rows: readonly string[][], align: ReadonlyArray<'l' | 'r'> = []): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** A plain-text table: columns padded to their widest cell; numbers right-aligned. */
export function table(headers: string[], rows: string[][], align: Array<'l' | 'r'> = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return columns([headers, widths.map((w) => '-'.repeat(w)), ...rows], align).join('\n');
}

function cellStatus(
  findings: Array<Pick<Finding, 'code' | 'severity'>>,
  check: string,
  ran: boolean,
): string {
  if (!ran) return '-';
  const mine = findings.filter((f) => checkOf(f.code) === check);
  if (mine.some((f) => f.severity === 'error')) return 'FAIL';
  if (mine.length > 0) return 'WARN';
  return 'ok';
}

type BackupRow = RunReport['backups'][number];

/** The nested column of a folder backup: which archive inside it failed or warned. */
function nestedCell(backup: BackupRow): string {
  if (!backup.nested || backup.nested.length === 0) return '-';
  const order = ['FAIL', 'WARN', 'PASS', 'SKIPPED'] as const;
  const worst = order.find((s) => backup.nested?.some((n) => n.status === s)) ?? 'SKIPPED';
  if (worst === 'PASS') return 'ok';
  if (worst === 'SKIPPED') return '-';
  const names = backup.nested.filter((n) => n.status === worst).map((n) => n.id.slice(backup.id.length));
  return `${worst} ${names[0]}${names.length > 1 ? ` +${names.length - 1}` : ''}`;
}

/**
 * Rows for series-level findings (RPO, a series or source with no backups): each after the
 * last backup row of its series, or at the end, with its status and `(series)` as the backup.
 * Such a row starts with the series (`label`led), `(series)` or `(run)`, and `series` as its kind;
 * `seriesCells` gives the cells after those.
 */
export function withSeriesRows(
  report: RunReport,
  backupRows: string[][],
  label: (series: string) => string,
  seriesCells: (row: SeriesRow) => string[],
): string[][] {
  const seriesRow = (row: SeriesRow) => [
    row.series === undefined ? '-' : label(row.series),
    row.series === undefined ? '(run)' : '(series)',
    'series',
    ...seriesCells(row),
  ];
  const pending = seriesRows(report.findings);
  const out: string[][] = [];
  report.backups.forEach((b, i) => {
    out.push(backupRows[i] as string[]);
    if (report.backups[i + 1]?.series === b.series) return;
    const at = pending.findIndex((r) => r.series === b.series);
    if (at >= 0) out.push(seriesRow(...(pending.splice(at, 1) as [SeriesRow])));
  });
  for (const row of pending) out.push(seriesRow(row));
  return out;
}

/** The results matrix: one row a backup, one column a check. */
export function renderMatrix(report: RunReport, now: Date): string {
  const stagesRan = {
    access: report.backups.some((b) => b.integrity.status !== 'SKIPPED'),
    checksum: report.backups.some((b) => b.integrity.status !== 'SKIPPED'),
    archive: report.backups.some((b) => b.integrity.status !== 'SKIPPED'),
    restore: report.backups.some((b) => b.restore.status !== 'SKIPPED'),
    probes: report.backups.some((b) => b.restore.status !== 'SKIPPED'),
    compliance: true,
  };
  const checks = MATRIX_CHECKS.filter((c) => stagesRan[c]);
  const label = seriesLabeller(report.sources);
  const nested = report.backups.some((b) => b.nested && b.nested.length > 0);
  const backupRows = report.backups.map((b) => {
    const ranIntegrity = b.integrity.status !== 'SKIPPED';
    const ranRestore = b.restore.status !== 'SKIPPED';
    // Compliance of a backup no stage read is as unknown as the rest; its own findings still show.
    const ran = (c: string) =>
      c === 'compliance'
        ? ranIntegrity || ranRestore || b.findings.some((f) => checkOf(f.code) === c)
        : c === 'restore' || c === 'probes'
          ? ranRestore
          : ranIntegrity;
    return [
      label(b.series),
      b.location.slice(b.location.lastIndexOf('/', b.location.length - 2) + 1),
      b.kind === 'directory' ? 'dir' : 'archive',
      humanBytes(b.bytes),
      humanAge(now.getTime() - Date.parse(b.createdAt)),
      ...checks.map((c) => cellStatus(b.findings, c, ran(c))),
      ...(nested ? [nestedCell(b)] : []),
      b.integrity.score === null ? '-' : b.integrity.score.toFixed(2),
      b.restore.status === 'SKIPPED' ? '-' : humanTime(b.restore.durationMs),
      // Not read because of the coverage budget: still SKIPPED in the report, said plainly here.
      b.status === 'SKIPPED' && b.deferred !== undefined ? 'DEFERRED' : b.status,
    ];
  });
  const rows = withSeriesRows(report, backupRows, label, (row) => [
    '-',
    '-',
    ...checks.map((c) =>
      cellStatus(
        row.findings,
        c,
        row.findings.some((f) => checkOf(f.code) === c),
      ),
    ),
    ...(nested ? ['-'] : []),
    '-',
    '-',
    row.status,
  ]);
  const headers = [
    'SERIES',
    'BACKUP',
    'KIND',
    'SIZE',
    'AGE',
    ...checks.map((c) => c.toUpperCase()),
    ...(nested ? ['NESTED'] : []),
    'SCORE',
    'TIME',
    'STATUS',
  ];
  const align: Array<'l' | 'r'> = [
    'l',
    'l',
    'l',
    'r',
    'r',
    ...checks.map(() => 'l' as const),
    ...(nested ? ['l' as const] : []),
    'r',
    'r',
    'l',
  ];
  return table(headers, rows, align);
}

/** Every finding, errors first, each saying what and where. */
export function renderFindings(report: RunReport): string {
  const lines: string[] = [];
  const all = [
    ...report.findings.map((f) => ({ ...f, where: f.series ? `series ${f.series}` : 'run' })),
    ...report.backups.flatMap((b) => b.findings.map((f) => ({ ...f, where: b.location }))),
  ].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  for (const f of all) {
    const object = f.object ? ` [${f.object}]` : '';
    lines.push(
      `${f.severity === 'error' ? 'ERROR' : 'WARN '} ${f.code.padEnd(21)} ${f.where}${object}: ${f.message}`,
    );
  }
  return lines.join('\n');
}

/** The verdict and the counts it follows from: every row of the matrix is counted once. */
export function renderSummary(report: RunReport): string {
  const c = report.counts;
  const rows = c.seriesRows > 0 ? ` and ${c.seriesRows} series-level row(s)` : '';
  return `${report.status}: ${c.backups} backup(s) in ${c.series} series${rows}: ${c.pass} pass, ${c.warn} warn, ${c.fail} fail, ${c.skipped} skipped (not checked); run ${report.runId}`;
}

/** The lines the command line prints about immutability and copy proofs; empty when neither ran. */
export function renderProtection(report: RunReport): string {
  const { backups, copyProof } = report as ProtectedRunReport;
  const lines: string[] = [];
  const judged = backups.flatMap((b) => (b.immutability ? [b.immutability.status] : []));
  if (judged.length > 0) {
    const count = (status: string) => judged.filter((s) => s === status).length;
    lines.push(
      `Immutability: ${count('PASS')} backup(s) protected as the policy asks, ${count('WARN')} warn, ${count('FAIL')} fail, ` +
        `${count('NOT_APPLICABLE')} not applicable (folders)`,
    );
  }
  if (copyProof) {
    lines.push(
      `Copies: ${copyProof.provenByChecksum} object(s) proven by stored checksums (${humanBytes(copyProof.bytesNotDownloaded)} not downloaded), ` +
        `${copyProof.provenByRead} read back`,
    );
  }
  return lines.join('\n');
}
