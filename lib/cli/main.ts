import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { seriesLabeller } from '../core/catalogue.ts';
import { type Config, parseConfig } from '../core/config.ts';
import { BackupValidatorError, LedgerError, SandboxError, StoreError, UsageError } from '../core/errors.ts';
import type { RunReport } from '../core/model.ts';
import {
  humanAge,
  humanBytes,
  renderFindings,
  renderMatrix,
  renderSummary,
  table,
  withSeriesRows,
} from '../core/render.ts';
import { renderCoverageAndCost } from '../core/render-coverage.ts';
import { parseCli, USAGE } from './args.ts';
import { checkInputs, unmatchedSeriesPatterns } from './inputs.ts';
import { locationsOf } from './locations.ts';
import { Progress } from './progress.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  cwd: string;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, crashed: 3 } as const;

export function newRunId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

async function loadConfigFile(
  path: string | undefined,
  cwd: string,
): Promise<{ config: Config; document: unknown }> {
  if (path === undefined) return { config: parseConfig(undefined), document: undefined };
  const file = resolve(cwd, path);
  let textContent: string;
  try {
    textContent = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read configuration file ${file}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  let document: unknown;
  try {
    document = JSON.parse(textContent);
  } catch (error) {
    throw new UsageError(
      `configuration file ${file} is not valid JSON: ${(error as Error).message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  try {
    return { config: parseConfig(document), document };
  } catch (error) {
    if (error instanceof UsageError)
      throw new UsageError(`${file}: ${error.message}`, error.key, { cause: error });
    throw error;
  }
}

export function exitCodeOf(report: RunReport): number {
  return report.status === 'FAIL' ? EXIT.failed : EXIT.ok;
}

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
  const rows = withSeriesRows(report, backupRows, (row) => [
    row.series === undefined ? '-' : label(row.series),
    row.series === undefined ? '(run)' : '(series)',
    'series',
    '-',
    '-',
    '-',
    row.status,
  ]);
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

export function printReport(io: CliIo, report: RunReport, now: Date, inventoryOnly: boolean): void {
  const out: string[] = [];
  if (report.backups.length === 0) out.push('No backups found.');
  else out.push(inventoryOnly ? renderInventory(report, now) : renderMatrix(report, now));
  const findings = renderFindings(report);
  if (findings) out.push('', findings);
  const coverage = renderCoverageAndCost(report, seriesLabeller(report.sources));
  if (coverage && !inventoryOnly) out.push('', coverage);
  out.push('', renderSummary(report));
  io.stdout.write(`${out.join('\n')}\n`);
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  try {
    const parsed = parseCli(argv);
    if (parsed === 'help') {
      io.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    if (parsed === 'version') {
      io.stdout.write('backup-validator 0.1.0\n');
      return EXIT.ok;
    }
    verbose = parsed.verbose;
    const { config, document } = await loadConfigFile(parsed.config, io.cwd);
    const now = io.now ?? (() => new Date());
    const progress = new Progress({ stream: io.stderr, quiet: parsed.quiet });
    const locations = locationsOf(parsed, io.cwd, io.env);
    await checkInputs(parsed, io.cwd, locations);
    const { runCommand, showHistory, runDemo } = await import('./commands.ts');
    if (parsed.command === 'history') return await showHistory(parsed, io, config, locations);
    if (parsed.command === 'report') {
      const { showReport } = await import('./report-command.ts');
      return await showReport(parsed, io, config, locations);
    }
    if (parsed.command === 'demo') return await runDemo(parsed, io, progress);
    if (parsed.command === 'plan') {
      const { runPlan } = await import('./plan-command.ts');
      return await runPlan(parsed, io, config, locations);
    }
    const { report, html } = await runCommand(parsed, io, { config, document, progress, now, locations });
    for (const pattern of unmatchedSeriesPatterns(
      config,
      report.backups.map((b) => b.series),
    ))
      io.stderr.write(
        `backup-validator: warning: configuration "series.${pattern}" matches no series of this run; its policy applies to nothing\n`,
      );
    // The verdict is shown before the report is written: a failed write must not hide it.
    printReport(io, report, now(), parsed.command === 'discover');
    if (parsed.json)
      await writeReportFile(resolve(io.cwd, parsed.json), report, `${JSON.stringify(report, null, 2)}\n`);
    if (parsed.html && html) {
      const { renderHtmlReport } = await import('../html-report/page.ts');
      await writeReportFile(resolve(io.cwd, parsed.html), report, renderHtmlReport(html));
    }
    return exitCodeOf(report);
  } catch (error) {
    return reportError(io, error, verbose);
  }
}

async function writeReportFile(file: string, report: RunReport, content: string): Promise<void> {
  try {
    await writeFile(file, content);
  } catch (error) {
    throw new BackupValidatorError(
      `the run finished (${report.status}) but its report could not be written to ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

export function reportError(io: CliIo, error: unknown, verbose: boolean): number {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UsageError) {
    io.stderr.write(`backup-validator: ${message}\nRun "backup-validator --help" for usage.\n`);
    return EXIT.usage;
  }
  const known =
    error instanceof StoreError ||
    error instanceof LedgerError ||
    error instanceof SandboxError ||
    error instanceof BackupValidatorError;
  io.stderr.write(`backup-validator: ${known ? '' : 'unexpected error: '}${message}\n`);
  if (verbose && error instanceof Error) io.stderr.write(`${error.stack ?? ''}\n`);
  else if (!known) io.stderr.write('Run again with --verbose for the stack trace.\n');
  return EXIT.crashed;
}
