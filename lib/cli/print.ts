import { seriesLabeller } from '../core/catalogue.ts';
import type { Config } from '../core/config.ts';
import type { RunReport } from '../core/model.ts';
import { humanAge, humanBytes } from '../core/units.ts';
import type { CliIo } from './io.ts';
import {
  renderFindings,
  renderMatrix,
  renderProtection,
  renderSummary,
  table,
  withSeriesRows,
} from './render.ts';
import { renderCoverageAndCost } from './render-coverage.ts';

function renderInventory(report: RunReport, now: Date): string {
  const label = seriesLabeller(report.sources);
  const backupRows = report.backups.map((b) => [
    label(b.series),
    b.location,
    b.kind,
    String(b.objects),
    humanBytes(b.bytes),
    humanAge(now.getTime() - Date.parse(b.createdAt)),
    b.status,
  ]);
  const rows = withSeriesRows(report, backupRows, label, (row) => ['-', '-', '-', row.status]);
  return table(['SERIES', 'BACKUP', 'KIND', 'OBJECTS', 'SIZE', 'AGE', 'STATUS'], rows, [
    'l',
    'l',
    'l',
    'r',
    'r',
    'r',
    'l',
  ]);
}

const percent = (weight: number) => `${Math.round(weight * 100)} %`;

/** What the matrix's cells, SCORE and COMPLIANCE mean, printed under it. */
export function matrixLegend(weights: Config['defaults']['weights']): string {
  return [
    'Cells: ok = no finding, WARN = a warning, FAIL = an error, - = not checked by this command.',
    `SCORE: integrity score from 0 to 1, weighted checksum ${percent(weights.checksum)}, access ${percent(weights.access)}, ` +
      `archive ${percent(weights.archive)} ("weights" in the configuration); a trend, never a pass: any error fails the backup whatever its score.`,
    "COMPLIANCE: the policy's checks: age against the RPO, size and file count against the series' usual, verified copies, timestamps.",
    "TIME: how long the restore took (the series' RTO applies to it).",
  ].join('\n');
}

export interface PrintOptions {
  /** Only the inventory (discover): no checks ran, so no matrix and no legend. */
  inventoryOnly: boolean;
  /** The integrity weights the legend states: the configuration's defaults. */
  weights: Config['defaults']['weights'];
}

export function printReport(io: CliIo, report: RunReport, now: Date, options: PrintOptions): void {
  const out: string[] = [];
  if (report.backups.length === 0) out.push('No backups found.');
  else if (options.inventoryOnly) out.push(renderInventory(report, now));
  else out.push(renderMatrix(report, now), '', matrixLegend(options.weights));
  const findings = renderFindings(report);
  if (findings) out.push('', findings);
  const protection = renderProtection(report);
  if (protection) out.push('', protection);
  const coverage = options.inventoryOnly ? '' : renderCoverageAndCost(report, seriesLabeller(report.sources));
  if (coverage) out.push('', coverage);
  out.push('', renderSummary(report));
  io.stdout.write(`${out.join('\n')}\n`);
}
