import { seriesLabeller } from '../core/catalogue.ts';
import { humanDollars } from '../core/cost.ts';
import type { RunReport } from '../core/model.ts';
import { humanBytes } from '../core/units.ts';
import { escapeHtml as h } from './escape.ts';

/** Coverage per series and the run's cost estimate, when the report has them (empty otherwise). */
export function coverageAndCostSection(report: RunReport): string {
  const out: string[] = [];
  if (report.coverage && report.coverage.length > 0) {
    const label = seriesLabeller(report.sources);
    const rows = report.coverage.map(
      (c) =>
        `<tr><td>${h(label(c.series))}</td><td>${c.withinDays} days</td><td>${(Math.floor(c.share * 1000) / 10).toFixed(1)}%</td>` +
        `<td>${c.readThisRun.backups} (${h(humanBytes(c.readThisRun.bytes))})</td><td>${c.deferred}</td>` +
        `<td>${c.oldestUnverified ? `${c.oldestUnverified.ageDays} days` : '–'}</td>` +
        `<td>${c.forecastMetAt === null ? 'never at this budget' : h(c.forecastMetAt.slice(0, 10))}</td>` +
        `<td>${c.behind ? 'BEHIND' : 'ok'}</td></tr>`,
    );
    out.push(
      '<h2>Coverage</h2>',
      '<p>Every object read within the window, under the per-run budget; backups the budget left for a later run are not checked this time.</p>',
      '<table><thead><tr><th>Series</th><th>Window</th><th>Verified in window</th><th>Read now</th><th>Deferred</th><th>Oldest unverified</th><th>Window met</th><th>State</th></tr></thead>',
      `<tbody>${rows.join('')}</tbody></table>`,
    );
  }
  if (report.cost) {
    const { estimate, usage, region } = report.cost;
    out.push(
      '<h2>Cost estimate</h2>',
      `<p>${h(humanDollars(estimate.total))} at ${h(region)} prices: S3 ${h(humanDollars(estimate.s3))} (${usage.s3GetRequests} GET, ${usage.s3ListRequests} LIST, ${h(humanBytes(usage.s3BytesRead))} read), ` +
        `Lambda ${h(humanDollars(estimate.lambda))}, Fargate ${h(humanDollars(estimate.fargate))}, Step Functions ${h(humanDollars(estimate.stepFunctions))}.</p>`,
      `<ul>${report.cost.estimated.map((e) => `<li>${h(e)}</li>`).join('')}</ul>`,
    );
  }
  return out.join('\n');
}
