import { type HistoryData, unfinishedRun } from '../core/history.ts';
import { humanAge, humanBytes, humanTime } from '../core/units.ts';
import { lineChart } from './charts.ts';
import { escapeHtml as h } from './escape.ts';
import { badge } from './page.ts';
import { PAGE_STYLE } from './style.ts';

/** `history --html`: the recent runs and every series' trends, as one self-contained page. */
export function renderHistoryHtml(
  data: HistoryData,
  objectives: (series: string) => { rpoMinutes: number; rtoMinutes: number },
): string {
  const runs = data.runs.map((r) => {
    const c = r.counts;
    const counts = c
      ? `${c.pass} pass, ${c.warn} warn, ${c.fail} fail${c.skipped ? `, ${c.skipped} not checked` : ''}`
      : '';
    const age = humanAge(Date.parse(data.generatedAt) - Date.parse(r.startedAt));
    const unfinished = unfinishedRun(r, data.generatedAt);
    const status = `${runBadge(r.status)}${unfinished ? ` ${h(unfinished.note)}` : ''}`;
    return (
      `<tr><th scope="row"><code>${h(r.runId)}</code></th><td>${h(r.command ?? '')}</td><td>${h(r.trigger)}</td>` +
      `<td>${h(r.startedAt.slice(0, 16).replace('T', ' '))} (${h(age)} ago)</td><td>${status}</td><td>${h(counts)}${r.error ? ` ${h(r.error)}` : ''}</td></tr>`
    );
  });
  const label = (at: string) => at.slice(0, 10);
  const series = data.series.map((s) => {
    const goals = objectives(s.series);
    const rto = goals.rtoMinutes * 60_000;
    const charts = [
      lineChart({
        title: 'Size',
        points: s.sizes.map((p) => ({ label: label(p.at), value: p.value })),
        format: humanBytes,
      }),
      lineChart({
        title: 'Files',
        points: (s.files ?? []).map((p) => ({ label: label(p.at), value: p.value })),
        format: (v) => String(Math.round(v)),
      }),
      lineChart({
        title: 'Integrity score',
        points: s.scores.map((p) => ({ label: label(p.at), value: p.value })),
        format: (v) => v.toFixed(2),
      }),
      lineChart({
        title: 'Restore time',
        points: s.restoreMs.map((p) => ({ label: label(p.at), value: p.value })),
        format: humanTime,
        ...(rto > 0 ? { limit: { value: rto, label: `RTO ${humanTime(rto)}` } } : {}),
      }),
    ];
    const rpo = s.rpoExceeded
      ? `<p><strong>RPO_EXCEEDED</strong>: the newest backup was ${h(humanAge(s.rpoExceeded.newestBackupAgeMinutes * 60_000))} old at the last check (RPO ${h(humanAge(s.rpoExceeded.rpoMinutes * 60_000))}).</p>`
      : '';
    return `<section class="series"><h3>${h(s.series)} ${badge(s.status ?? 'SKIPPED')}</h3>${rpo}<div class="charts">${charts.join('')}</div></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backup validation history</title>
<style>${PAGE_STYLE}</style></head>
<body>
<header><h1>Backup validation history</h1><p class="meta">As of ${h(data.generatedAt)}: ${data.runs.length} recent runs, ${data.series.length} series.</p></header>
<main>
<h2>Runs</h2>
<table class="matrix"><thead><tr><th>run</th><th>command</th><th>trigger</th><th>started</th><th>verdict</th><th>counts</th></tr></thead><tbody>${runs.join('')}</tbody></table>
<h2>Series</h2>
${series.join('') || '<p>No series recorded yet.</p>'}
</main>
</body></html>
`;
}

/** A run's status: a verdict's badge, or the run state itself (RUNNING, ERROR, ABORTED) spelt out. */
function runBadge(status: string): string {
  return status === 'PASS' || status === 'WARN' || status === 'FAIL'
    ? badge(status)
    : `<span class="badge s--">${h(status)}</span>`;
}
