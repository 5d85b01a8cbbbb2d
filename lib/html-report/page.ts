import { seriesLabeller } from '../core/catalogue.ts';
import type { Finding, FindingCode } from '../core/findings.ts';
import type { SeriesTrend } from '../core/history.ts';
import { checkOf, MATRIX_CHECKS } from '../core/matrix.ts';
import type { BackupReport, RunReport } from '../core/model.ts';
import { humanAge, humanBytes, humanTime } from '../core/units.ts';
import { lineChart } from './charts.ts';
import { coverageAndCostSection } from './coverage.ts';
import { escapeHtml as h } from './escape.ts';
import { FINDING_GUIDE } from './guide.ts';
import { PAGE_STYLE } from './style.ts';

export interface HtmlReportInput {
  report: RunReport;
  /** Per series, from the ledger (`history`'s trends); the report's own backups are always shown. */
  trends?: SeriesTrend[];
  /** RPO and RTO of a series (0: none), for the limit lines of its charts. */
  objectives?(series: string): { rpoMinutes: number; rtoMinutes: number };
}

type Verdict = 'PASS' | 'WARN' | 'FAIL' | 'SKIPPED';

const MARK: Record<Verdict | 'ok' | '-', string> = {
  PASS: '✓ PASS',
  ok: '✓ ok',
  WARN: '! WARN',
  FAIL: '✗ FAIL',
  SKIPPED: '– not checked',
  '-': '–',
};

export function badge(status: string): string {
  const known = (status in MARK ? status : '-') as keyof typeof MARK;
  return `<span class="badge s-${h(known)}">${h(MARK[known])}</span>`;
}

function cell(backup: BackupReport, check: string): string {
  const ran =
    check === 'restore' || check === 'probes'
      ? backup.restore.status !== 'SKIPPED'
      : check === 'compliance' || backup.integrity.status !== 'SKIPPED';
  const mine = backup.findings.filter((f) => checkOf(f.code) === check);
  if (mine.some((f) => f.severity === 'error')) return badge('FAIL');
  if (mine.length > 0) return badge('WARN');
  return ran ? badge('ok') : badge('-');
}

function nameOf(backup: BackupReport): string {
  return backup.id.split('/').filter(Boolean).pop() ?? backup.id;
}

/** The sentence a manager reads: how many, how many failed, what to do first. */
export function summaryLine(report: RunReport): string {
  const total = report.backups.length;
  const failed = report.backups.filter((b) => b.status === 'FAIL');
  const runFailures = report.findings.filter((f) => f.severity === 'error');
  if (failed.length === 0 && runFailures.length === 0) {
    const warned = report.backups.filter((b) => b.status === 'WARN').length;
    return `${total} backup${total === 1 ? '' : 's'} checked; none failed${warned ? `, ${warned} with warnings` : ''}.`;
  }
  const first = runFailures[0] ?? failed.flatMap((b) => b.findings).find((f) => f.severity === 'error');
  const label = seriesLabeller(report.sources);
  const firstSeries = runFailures[0]?.series;
  const firstWhere =
    firstSeries !== undefined ? `series ${label(firstSeries)}` : failed[0] ? nameOf(failed[0]) : 'the run';
  const todo = first ? FINDING_GUIDE[first.code as FindingCode]?.todo : undefined;
  return (
    `${total} backup${total === 1 ? '' : 's'} checked; ${failed.length} failed` +
    (runFailures.length
      ? `, and ${runFailures.length} problem${runFailures.length === 1 ? '' : 's'} with whole series`
      : '') +
    `. Start with ${firstWhere}${first ? ` (${first.code})` : ''}${todo ? `: ${todo}` : '.'}`
  );
}

function matrix(report: RunReport): string {
  const label = seriesLabeller(report.sources);
  const head = ['backup', 'series', 'created', 'size', ...MATRIX_CHECKS, 'verdict']
    .map((c) => `<th scope="col">${h(c)}</th>`)
    .join('');
  const rows = report.backups.map(
    (b) =>
      `<tr class="row-${h(b.status)}"><th scope="row" title="${h(b.id)}">${h(nameOf(b))}</th>` +
      `<td>${h(label(b.series))}</td><td>${h(b.createdAt.slice(0, 16).replace('T', ' '))}</td>` +
      `<td class="num">${h(humanBytes(b.bytes))}</td>` +
      MATRIX_CHECKS.map((c) => `<td>${cell(b, c)}</td>`).join('') +
      `<td>${badge(b.status)}</td></tr>`,
  );
  const seriesRows = groupBySeries(report.findings).map(
    ([series, findings]) =>
      `<tr class="row-series"><th scope="row">${h(series === 'the run' ? series : label(series))}</th><td colspan="${MATRIX_CHECKS.length + 3}">` +
      `${findings.map((f) => h(f.code)).join(', ')}</td><td>${badge(findings.some((f) => f.severity === 'error') ? 'FAIL' : 'WARN')}</td></tr>`,
  );
  return `<table class="matrix"><thead><tr>${head}</tr></thead><tbody>${[...rows, ...seriesRows].join('')}</tbody></table>`;
}

function groupBySeries(findings: readonly Finding[]): Array<[string, Finding[]]> {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = f.series ?? 'the run';
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups];
}

function findingsSection(report: RunReport): string {
  const label = seriesLabeller(report.sources);
  const rows = [
    ...report.findings.map((f) => ({
      where: f.series === undefined ? 'the run' : `series ${label(f.series)}`,
      f,
    })),
    ...report.backups.flatMap((b) => b.findings.map((f) => ({ where: nameOf(b), f }))),
  ].sort((a, b) => (a.f.severity === b.f.severity ? 0 : a.f.severity === 'error' ? -1 : 1));
  if (rows.length === 0) return '<p>No findings.</p>';
  const items = rows.map(({ where, f }) => {
    const guide = FINDING_GUIDE[f.code as FindingCode];
    return (
      `<li class="finding ${h(f.severity)}"><p><span class="code">${h(f.code)}</span> ` +
      `<span class="sev">${h(f.severity)}</span> in <strong>${h(where)}</strong>` +
      `${'object' in f && f.object ? `, <code>${h(String(f.object))}</code>` : ''}</p>` +
      `<p>${h(f.message)}</p>` +
      (guide
        ? `<p class="guide"><em>What it means:</em> ${h(guide.means)} <em>What to do:</em> ${h(guide.todo)}</p>`
        : '') +
      '</li>'
    );
  });
  return `<ol class="findings">${items.join('')}</ol>`;
}

function seriesSection(input: HtmlReportInput): string {
  const { report } = input;
  const names = [...new Set(report.backups.map((b) => b.series))].sort();
  const trendOf = new Map((input.trends ?? []).map((t) => [t.series, t]));
  const finished = Date.parse(report.finishedAt);
  const blocks = names.map((series) => {
    const backups = report.backups.filter((b) => b.series === series);
    const trend = trendOf.get(series);
    const goals = input.objectives?.(series) ?? { rpoMinutes: 0, rtoMinutes: 0 };
    const label = (at: string) => at.slice(0, 10);
    const sizes = trend?.sizes.length
      ? trend.sizes.map((p) => ({ label: label(p.at), value: p.value }))
      : backups.map((b) => ({ label: label(b.createdAt), value: b.bytes }));
    const files = trend?.files?.length
      ? trend.files.map((p) => ({ label: label(p.at), value: p.value }))
      : backups.map((b) => ({ label: label(b.createdAt), value: b.objects }));
    const scores = trend?.scores.length
      ? trend.scores.map((p) => ({ label: label(p.at), value: p.value }))
      : backups.flatMap((b) =>
          b.integrity.score === null ? [] : [{ label: label(b.createdAt), value: b.integrity.score }],
        );
    const restores = trend?.restoreMs.length
      ? trend.restoreMs.map((p) => ({ label: label(p.at), value: p.value }))
      : backups.flatMap((b) =>
          b.restore.status === 'SKIPPED' ? [] : [{ label: label(b.createdAt), value: b.restore.durationMs }],
        );
    const ages = backups.map((b) => ({
      label: label(b.createdAt),
      value: Math.max(0, (finished - Date.parse(b.createdAt)) / 60_000),
    }));
    const minutes = (m: number) => humanAge(m * 60_000);
    const charts = [
      lineChart({ title: 'Size', points: sizes, format: humanBytes }),
      lineChart({ title: 'Files', points: files, format: (v) => String(Math.round(v)) }),
      lineChart({ title: 'Integrity score', points: scores, format: (v) => v.toFixed(2) }),
      lineChart({
        title: 'Restore time',
        points: restores,
        format: humanTime,
        ...(goals.rtoMinutes > 0
          ? {
              limit: {
                value: goals.rtoMinutes * 60_000,
                label: `RTO ${humanTime(goals.rtoMinutes * 60_000)}`,
              },
            }
          : {}),
      }),
      lineChart({
        title: 'Backup age at this run',
        points: ages,
        format: minutes,
        ...(goals.rpoMinutes > 0
          ? { limit: { value: goals.rpoMinutes, label: `RPO ${minutes(goals.rpoMinutes)}` } }
          : {}),
      }),
    ];
    return `<section class="series"><h3>${h(seriesLabeller(report.sources)(series))}</h3><div class="charts">${charts.join('')}</div></section>`;
  });
  return blocks.join('');
}

/**
 * The run report as one self-contained page: no script, no external style, font or image, so it
 * works from a file, an e-mail attachment or a presigned URL. Built from the same report document
 * as the JSON; every name that comes from a backup is escaped.
 */
export function renderHtmlReport(input: HtmlReportInput): string {
  const { report } = input;
  const counts = report.counts;
  const rows = counts.seriesRows
    ? ` and ${counts.seriesRows} series row${counts.seriesRows === 1 ? '' : 's'}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backup validation ${h(report.status)}: ${h(report.runId)}</title>
<style>${PAGE_STYLE}</style></head>
<body>
<header><h1>Backup validation ${badge(report.status)}</h1>
<p class="summary">${h(summaryLine(report))}</p>
<p class="meta">Run <code>${h(report.runId)}</code> (${h(report.command)}, ${h(report.trigger)}), ${h(report.startedAt)} to ${h(report.finishedAt)};
${counts.pass} pass, ${counts.warn} warn, ${counts.fail} fail, ${counts.skipped} not checked, of ${counts.backups} backups${rows} in ${counts.series} series.
Sources: ${report.sources.map((s) => `<code>${h(s)}</code>`).join(', ')}.</p></header>
<main>
<h2>Results</h2>
${matrix(report)}
<p class="legend">✓ ok: the check passed. ! WARN: something to look at. ✗ FAIL: the backup cannot be trusted. – not checked by this command.</p>
<h2>Findings</h2>
${findingsSection(report)}
${coverageAndCostSection(report)}
<h2>Series</h2>
${seriesSection(input)}
</main>
</body></html>
`;
}
