import { dirname, join, resolve } from 'node:path';
import { type OpenedLedger, openLedger } from '../adapters/embedded-ledger.ts';
import { FolderStore } from '../adapters/folder-store.ts';
import { openCopyTarget, openStore, s3ClientConfigFromEnv } from '../adapters/stores.ts';
import { seriesIdOf } from '../core/catalogue.ts';
import { type Config, policyFor } from '../core/config.ts';
import { LedgerError } from '../core/errors.ts';
import type { LoadHistoryOptions } from '../core/history.ts';
import { refuseTargetsInSources } from '../core/locations.ts';
import type { RunReport } from '../core/model.ts';
import type { CopyTarget } from '../core/ports.ts';
import { redundancyTargetsOf } from '../core/redundancy.ts';
import {
  discoverStage,
  integrityStage,
  recordFailureStage,
  reportStage,
  type StageContext,
} from '../core/stages.ts';
import type { HtmlReportInput } from '../html-report/page.ts';
import type { LocalRunDeps } from '../pipeline/local-runner.ts';
import type { CliOptions } from './args.ts';
import type { DemoManifest } from './demo-data.ts';
import type { Locations } from './locations.ts';
import { type CliIo, EXIT, newRunId } from './main.ts';
import type { Progress } from './progress.ts';

export interface RunSetup {
  config: Config;
  locations: Locations;
  document: unknown;
  progress: Progress;
  now: () => Date;
}

export interface OpenedContext {
  ctx: StageContext;
  ledger: OpenedLedger;
  close(): Promise<void>;
}

export async function openContext(
  io: CliIo,
  config: Config,
  locations: Locations,
  progress?: Progress,
): Promise<OpenedContext> {
  const s3 = s3ClientConfigFromEnv(io.env);
  const runStoreUrl = locations.runStore;
  const runStore: CopyTarget = runStoreUrl.startsWith('s3://')
    ? openCopyTarget(runStoreUrl, { s3 })
    : new FolderStore(runStoreUrl);
  // Opened last: nothing after it can throw and leave the embedded ledger (and the process) running.
  const ledger = await openLedger(locations.ledger, {
    retentionDays: config.ledger.retentionDays,
    env: io.env,
  });
  const ctx: StageContext = {
    ledger,
    runStore,
    openSource: (url) => openStore(url.startsWith('s3://') ? url : resolve(io.cwd, url), { s3 }),
    now: () => new Date(),
  };
  if (progress) ctx.events = progress;
  return { ctx, ledger, close: () => ledger.close() };
}

/** Sources as the user gave them, folders made absolute so ids do not depend on the working folder. */
function normalizeSources(sources: string[], cwd: string): string[] {
  return sources.map((s) => (s.startsWith('s3://') ? s.replace(/\/+$/, '') : resolve(cwd, s)));
}

/** The restore sandbox and redundancy targets of a local run. */
export async function localDeps(io: CliIo): Promise<LocalRunDeps> {
  const { LocalSandbox } = await import('../adapters/local-sandbox.ts');
  const { localRestore } = await import('../pipeline/local-runner.ts');
  const s3 = s3ClientConfigFromEnv(io.env);
  return {
    restore: localRestore(new LocalSandbox({ env: io.env })),
    openTarget: (url) => openCopyTarget(url.startsWith('s3://') ? url : resolve(io.cwd, url), { s3 }),
    cwd: io.cwd,
  };
}

/** A command's report and, when `--html` asked for it, the page's input (trends read before the ledger closes). */
export interface RunOutcome {
  report: RunReport;
  html?: HtmlReportInput;
}

export async function runCommand(options: CliOptions, io: CliIo, setup: RunSetup): Promise<RunOutcome> {
  // A configuration error: refused (exit 2) before the ledger or anything else is opened.
  await refuseTargetsInSources(
    normalizeSources(options.sources, io.cwd),
    redundancyTargetsOf(setup.config),
    io.cwd,
  );
  const opened = await openContext(io, setup.config, setup.locations, setup.progress);
  const runId = newRunId(setup.now());
  try {
    let report: RunReport;
    if (options.command === 'comprehensive') {
      const { runPipelineLocally } = await import('../pipeline/local-runner.ts');
      report = await runPipelineLocally(
        opened.ctx,
        {
          runId,
          trigger: 'cli',
          sources: normalizeSources(options.sources, io.cwd),
          config: setup.document,
        },
        await localDeps(io),
      );
    } else report = await runStages(opened.ctx, runId, options, io, setup);
    if (options.html === undefined) return { report };
    const { htmlReportInput } = await import('../html-report/input.ts');
    return { report, html: await htmlReportInput(report, opened.ctx.ledger, setup.config) };
  } catch (error) {
    await markStopped(opened.ctx, runId, error);
    throw error;
  } finally {
    setup.progress.end();
    await opened.close();
  }
}

/** A run that stopped before its report is recorded as ERROR with why, never left RUNNING. */
export async function markStopped(ctx: StageContext, runId: string, error: unknown): Promise<void> {
  try {
    const detail = await ctx.ledger.getRun(runId);
    if (detail?.run.status !== 'RUNNING') return;
    await ctx.ledger.finishRun(runId, {
      status: 'ERROR',
      counts: { backups: 0, pass: 0, warn: 0, fail: 0, series: 0 },
      finishedAt: ctx.now().toISOString(),
      error: error instanceof Error ? error.message : String(error),
    });
  } catch {
    // The ledger itself failed: the error being reported already says so.
  }
}

/** The CLI's discover / integrity / restore: the pipeline's stages run in this process, in order. */
async function runStages(
  ctx: StageContext,
  runId: string,
  options: CliOptions,
  io: CliIo,
  setup: RunSetup,
): Promise<RunReport> {
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'cli',
    command: options.command,
    sources: normalizeSources(options.sources, io.cwd),
    config: setup.document,
  });
  if (options.command === 'integrity') {
    setup.progress.begin('integrity', discovery.backups, discovery.bytes);
    for (const shard of discovery.shards) {
      try {
        await integrityStage(ctx, shard);
      } catch (error) {
        // As the state machine's Catch does: the shard's unchecked backups FAIL, the rest go on.
        if (error instanceof LedgerError) throw error;
        await recordFailureStage(
          ctx,
          {
            stage: 'integrity',
            item: shard,
            error: { Error: (error as Error).name, Cause: (error as Error).message },
          },
          async () => {
            throw error;
          },
        );
      }
    }
  }
  if (options.command === 'restore') {
    const { runRestoresLocally } = await import('../pipeline/local-runner.ts');
    await runRestoresLocally(ctx, runId, await localDeps(io));
  }
  return (await reportStage(ctx, runId)).report;
}

export async function showHistory(
  options: CliOptions,
  io: CliIo,
  config: Config,
  locations: Locations,
): Promise<number> {
  const { loadHistory, renderHistory, historyJson } = await import('../core/history.ts');
  const ledger = await openLedger(locations.ledger, {
    retentionDays: config.ledger.retentionDays,
    env: io.env,
  });
  try {
    const query: LoadHistoryOptions = {
      runs: options.runs,
      rpoMinutesFor: (series) => policyFor(config, series).rpoMinutes,
    };
    if (options.series) query.series = options.series;
    const data = await loadHistory(ledger, query);
    if (options.json) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(resolve(io.cwd, options.json), `${JSON.stringify(historyJson(data), null, 2)}\n`);
    }
    if (options.html) {
      const { writeFile } = await import('node:fs/promises');
      const { renderHistoryHtml } = await import('../html-report/history-page.ts');
      const page = renderHistoryHtml(data, (series) => {
        const policy = policyFor(config, series);
        return { rpoMinutes: policy.rpoMinutes, rtoMinutes: policy.rtoMinutes };
      });
      await writeFile(resolve(io.cwd, options.html), page);
    }
    io.stdout.write(
      `${renderHistory(data, { width: io.stdout.columns ?? 100, unicode: Boolean(io.stdout.isTTY) })}\n`,
    );
    return EXIT.ok;
  } finally {
    await ledger.close();
  }
}

/** The folder the last demo made, so a second demo may replace it and nothing else. */
const DEMO_MARKER = '.backup-validator/demo-folder';

/** Each sample backup must show the findings it was made to show, and healthy ones none. */
export function demoMismatches(manifest: DemoManifest, report: RunReport): string[] {
  const problems: string[] = [];
  const root = manifest.root.replace(/\/+$/, '');
  for (const sample of manifest.backups) {
    const entry = report.backups.find((b) => b.id === `${root}/${sample.path}`);
    if (!entry) {
      problems.push(`${sample.path}: not in the report`);
      continue;
    }
    const reported = new Set([
      ...entry.findings.map((f) => f.code),
      ...report.findings.filter((f) => f.series === seriesIdOf(root, sample.series)).map((f) => f.code),
    ]);
    const missing = sample.expect.filter((code) => !reported.has(code));
    if (missing.length > 0)
      problems.push(
        `${sample.path}: expected ${missing.join(', ')}, got ${[...reported].join(', ') || 'none'}`,
      );
    if (sample.expect.length === 0 && entry.status !== 'PASS')
      problems.push(`${sample.path}: healthy but ${entry.status}`);
  }
  return problems;
}

export async function runDemo(options: CliOptions, io: CliIo, progress: Progress): Promise<number> {
  const { makeDemoBackups } = await import('./demo-data.ts');
  const { main } = await import('./main.ts');
  const { mkdir, readFile, rm, writeFile } = await import('node:fs/promises');
  const dir = resolve(io.cwd, options.dir ?? 'backup-validator-demo');
  const marker = resolve(io.cwd, DEMO_MARKER);
  const previous = await readFile(marker, 'utf8').catch(() => '');
  if (previous.trim() === dir) await rm(dir, { recursive: true, force: true });
  const manifest = await makeDemoBackups(dir);
  await mkdir(dirname(marker), { recursive: true });
  await writeFile(marker, `${dir}\n`);
  progress.line(
    `demo: made ${manifest.backups.length} sample backups (healthy, damaged and stale) in ${dir}`,
  );
  const json = resolve(io.cwd, options.json ?? join(dirname(marker), 'demo-report.json'));
  // The demo keeps its runs out of the user's own ledger: beside its marker, unless told otherwise.
  const ledger = resolve(io.cwd, options.ledger ?? join(dirname(marker), 'ledger'));
  const html = resolve(io.cwd, options.html ?? join(dirname(marker), 'demo-report.html'));
  const argv = ['comprehensive', '--source', dir, '--ledger', ledger, '--json', json, '--html', html];
  if (options.quiet) argv.push('--quiet');
  if (options.verbose) argv.push('--verbose');
  if (options.runStore) argv.push('--run-store', options.runStore);
  const code = await main(argv, io);
  if (code !== EXIT.ok && code !== EXIT.failed) return code;
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  const problems = demoMismatches(manifest, report);
  if (problems.length > 0) {
    io.stdout.write(
      `\ndemo: some sample backups did not get the verdict they were made for:\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
    );
    return EXIT.failed;
  }
  io.stdout.write(
    `\ndemo: as intended. The healthy backups PASS; each damaged or stale one FAILs with the finding it was made to show.\n` +
      `Sample folder: ${dir}\nReport: ${json}\nHTML report (open it in a browser): ${html}\nNext: npx backup-validator history --ledger ${ledger}\n`,
  );
  return EXIT.ok;
}
