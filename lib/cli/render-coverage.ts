import { humanDollars } from '../core/cost.ts';
import type { RunCost, RunReport, SeriesCoverage } from '../core/model.ts';
import { humanBytes } from '../core/units.ts';
import { table } from './render.ts';

function percent(share: number): string {
  return `${(Math.floor(share * 1000) / 10).toFixed(1)}%`;
}

/** One row per covered series: share verified within the window, oldest unverified, forecast. */
export function renderCoverage(
  coverage: readonly SeriesCoverage[],
  label: (series: string) => string,
): string {
  const rows = coverage.map((c) => [
    label(c.series),
    `${c.withinDays}d`,
    percent(c.share),
    `${humanBytes(c.bytesVerifiedInWindow)} / ${humanBytes(c.bytes)}`,
    `${c.readThisRun.backups} (${humanBytes(c.readThisRun.bytes)})`,
    String(c.deferred),
    c.oldestUnverified ? `${c.oldestUnverified.ageDays}d` : '-',
    c.forecastMetAt === null ? 'never at this budget' : c.forecastMetAt.slice(0, 10),
    c.behind ? 'BEHIND' : 'ok',
  ]);
  return `Coverage (every object read within the window, under the budget):\n${table(
    ['SERIES', 'WINDOW', 'VERIFIED', 'BYTES', 'READ NOW', 'DEFERRED', 'OLDEST', 'WINDOW MET', 'STATE'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
  )}`;
}

/** The run's cost estimate in one line, with what it counted. */
export function renderCost(cost: RunCost): string {
  const u = cost.usage;
  const e = cost.estimate;
  const parts = [
    `S3 ${humanDollars(e.s3)} (${u.s3GetRequests} GET, ${u.s3HeadRequests} HEAD, ${u.s3ListRequests} LIST, ${humanBytes(u.s3BytesRead)} read)`,
  ];
  if (u.lambdaRequests > 0)
    parts.push(`Lambda ${humanDollars(e.lambda)} (${u.lambdaGbSeconds.toFixed(0)} GB-s)`);
  if (u.fargateVcpuSeconds > 0)
    parts.push(`Fargate ${humanDollars(e.fargate)} (${u.fargateVcpuSeconds.toFixed(0)} vCPU-s)`);
  if (u.stepFunctionsTransitions > 0)
    parts.push(`Step Functions ${humanDollars(e.stepFunctions)} (${u.stepFunctionsTransitions} transitions)`);
  return `Cost estimate (${cost.region} prices): ${humanDollars(e.total)}: ${parts.join(', ')}`;
}

/** The coverage table and the cost line of a run report, when it has them. */
export function renderCoverageAndCost(report: RunReport, label: (series: string) => string): string {
  const out: string[] = [];
  if (report.coverage && report.coverage.length > 0) out.push(renderCoverage(report.coverage, label));
  if (report.cost) out.push(renderCost(report.cost));
  return out.join('\n\n');
}
