import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from '../core/config.ts';
import { StoreError, UsageError } from '../core/errors.ts';
import type { RunReport } from '../core/model.ts';
import { readJson, runKeys } from '../core/run-store.ts';
import { type CliIo, exitCodeOf } from './io.ts';
import type { Locations } from './locations.ts';
import { printReport } from './print.ts';
import { openContext } from './run-context.ts';

/**
 * `report RUN_ID|latest`: a past run as the run printed it, from the report its Report step kept in
 * the run store, and as HTML or JSON again. The exit code is that run's verdict.
 */
export async function showReport(
  options: { runRef?: string; json?: string; html?: string },
  io: CliIo,
  config: Config,
  locations: Locations,
): Promise<number> {
  const opened = await openContext(io, config, locations);
  try {
    const { ledger, runStore } = opened.ctx;
    const ref = options.runRef ?? 'latest';
    const runId =
      ref === 'latest'
        ? (await ledger.recentRuns(50)).find(
            (r) => r.status !== 'RUNNING' && r.status !== 'ERROR' && r.status !== 'ABORTED',
          )?.runId
        : ref;
    if (runId === undefined)
      throw new UsageError(
        `the ledger ${ledger.location} holds no finished run yet; run a check first`,
        'report',
      );
    let report: RunReport;
    try {
      report = await readJson<RunReport>(runStore, runKeys.report(runId));
    } catch (error) {
      if (error instanceof StoreError && error.kind === 'not-found')
        throw new UsageError(
          `run ${runId} has no report in the run store ${locations.runStore} (it did not finish, or its artifacts expired); "backup-validator history" lists the runs`,
          'report',
          { cause: error },
        );
      throw error;
    }
    printReport(io, report, new Date(report.finishedAt), {
      inventoryOnly: report.command === 'discover',
      weights: config.defaults.weights,
    });
    if (options.json) await writeFile(resolve(io.cwd, options.json), `${JSON.stringify(report, null, 2)}\n`);
    if (options.html) {
      const { htmlReportInput } = await import('../html-report/input.ts');
      const { renderHtmlReport } = await import('../html-report/page.ts');
      await writeFile(
        resolve(io.cwd, options.html),
        renderHtmlReport(await htmlReportInput(report, ledger, config)),
      );
    }
    return exitCodeOf(report);
  } finally {
    await opened.close();
  }
}
