import { seriesLabeller } from '../core/catalogue.ts';
import type { Ledger } from '../core/ledger.ts';
import type { RunReport } from '../core/model.ts';
import { humanAge } from '../core/units.ts';
import { summaryLine } from './page.ts';

export interface Notice {
  /** At most 100 characters: SNS's limit for an e-mail subject. */
  subject: string;
  body: string;
}

/** A message lists this many failed backups by name; the rest are counted (the report has them all). */
const LISTED = 40;

/**
 * The one message a failed run sends: which backups failed, with which finding, since when (the
 * first run of the unbroken streak of failures the ledger recorded), and where the report is.
 */
export async function failureNotice(
  report: RunReport,
  ledger: Pick<Ledger, 'seriesHistory'>,
  links: string[],
): Promise<Notice | undefined> {
  if (report.status !== 'FAIL') return undefined;
  const label = seriesLabeller(report.sources);
  const failed = report.backups.filter((b) => b.status === 'FAIL');
  const now = Date.parse(report.finishedAt);
  const lines: string[] = [];
  for (const b of failed.slice(0, LISTED)) {
    const first = b.findings.find((f) => f.severity === 'error');
    const since = await failingSince(ledger, b.series, b.id, report.startedAt);
    const name = b.id.split('/').filter(Boolean).pop() ?? b.id;
    lines.push(
      `- ${name} (series ${label(b.series)}): ${first ? `${first.code}: ${firstLine(first.message)}` : 'FAIL'}` +
        `\n  failing since ${since.slice(0, 16).replace('T', ' ')} UTC (${humanAge(now - Date.parse(since))})`,
    );
  }
  if (failed.length > LISTED)
    lines.push(`- and ${failed.length - LISTED} more failed backups: see the report`);
  const seriesProblems = report.findings
    .filter((f) => f.severity === 'error')
    .map(
      (f) => `- ${f.series ? `series ${label(f.series)}` : 'the run'}: ${f.code}: ${firstLine(f.message)}`,
    );
  const body = [
    `Backup validation FAILED: run ${report.runId} (${report.command}, ${report.trigger}), finished ${report.finishedAt}.`,
    '',
    summaryLine(report),
    ...(lines.length ? ['', 'Failed backups:', ...lines] : []),
    ...(seriesProblems.length ? ['', 'Problems with whole series or the run:', ...seriesProblems] : []),
    '',
    'The report:',
    ...links.map((l) => `  ${l}`),
  ].join('\n');
  const subject = `backup-validator FAIL: ${failed.length} backup(s)${seriesProblems.length ? ` and ${seriesProblems.length} series problem(s)` : ''}`;
  return { subject: subject.slice(0, 100), body };
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** When this backup's unbroken streak of failing runs began, from the ledger; this run when it is new. */
async function failingSince(
  ledger: Pick<Ledger, 'seriesHistory'>,
  series: string,
  backupId: string,
  thisRun: string,
): Promise<string> {
  // A run failed the backup when any of its stages did (compliance may pass where integrity failed).
  const runs = new Map<string, { at: string; failed: boolean }>();
  for (const r of await ledger.seriesHistory(series, 200)) {
    if (r.backupId !== backupId) continue;
    const run = runs.get(r.runId) ?? { at: r.at, failed: false };
    if (r.at < run.at) run.at = r.at;
    if (r.status === 'FAIL') run.failed = true;
    runs.set(r.runId, run);
  }
  let since = thisRun;
  for (const run of [...runs.values()].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))) {
    if (!run.failed) break;
    if (run.at < since) since = run.at;
  }
  return since;
}
