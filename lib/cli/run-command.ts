import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { removeLiveSandboxFolders } from '../adapters/sandbox-folders.ts';
import { BackupValidatorError, InterruptedError, LedgerError } from '../core/errors.ts';
import { type StageStatus, type Status, worstStatus } from '../core/findings.ts';
import { immutabilityStage } from '../core/immutability.ts';
import type { RunCounts } from '../core/ledger.ts';
import { defaultConcurrency } from '../core/limit.ts';
import { refuseTargetsInSources } from '../core/locations.ts';
import type { RunReport } from '../core/model.ts';
import { readJson, runKeys } from '../core/run-store.ts';
import type { StageContext } from '../core/stages/context.ts';
import { discoverStage } from '../core/stages/discover.ts';
import { integrityStage } from '../core/stages/integrity.ts';
import { recordFailureStage } from '../core/stages/record-failure.ts';
import { redundancyTargetsOf } from '../core/stages/redundancy.ts';
import { reportStage } from '../core/stages/report.ts';
import type { Discovery } from '../core/stages/run.ts';
import type { HtmlReportInput } from '../html-report/page.ts';
import type { CliOptions } from './args.ts';
import { unmatchedSeriesPatterns } from './inputs.ts';
import { Interrupts } from './interrupt.ts';
import { type CliIo, exitCodeOf, newRunId } from './io.ts';
import { printReport } from './print.ts';
import {
  attachIntegrityWorkers,
  type IntegrityWorkers,
  localDeps,
  markStopped,
  type OpenedContext,
  openContext,
  type RunSetup,
} from './run-context.ts';

/** Sources as the user gave them, folders made absolute so ids do not depend on the working folder. */
function normalizeSources(sources: string[], cwd: string): string[] {
  return sources.map((s) => (s.startsWith('s3://') ? s.replace(/\/+$/, '') : resolve(cwd, s)));
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
  const opened = await openContext(
    io,
    setup.config,
    setup.locations,
    setup.progress,
    normalizeSources(options.sources, io.cwd),
    setup.signal,
  );
  const runId = newRunId(setup.now());
  let workers: IntegrityWorkers | undefined;
  try {
    // Not for comprehensive: its restores' sandbox processes hold the memory and the cores; a thread
    // beside them made a 20-backup nightly tree no faster, 15-18 MiB larger (157 MiB at peak).
    if (options.command === 'integrity')
      workers = await attachIntegrityWorkers(io, opened, options.concurrency);
    const report = await untilAborted(runReport(opened, runId, options, io, setup, workers), setup.signal);
    if (options.html === undefined) return { report };
    const { htmlReportInput } = await import('../html-report/input.ts');
    return { report, html: await htmlReportInput(report, opened.ctx.ledger, setup.config) };
  } catch (error) {
    if (setup.signal?.aborted) throw await markAborted(opened.ctx, runId, setup.signal.reason);
    await markStopped(opened.ctx, runId, error);
    throw error;
  } finally {
    setup.progress.end();
    await workers?.close();
    await opened.close();
  }
}

async function runReport(
  opened: OpenedContext,
  runId: string,
  options: CliOptions,
  io: CliIo,
  setup: RunSetup,
  workers: IntegrityWorkers | undefined,
): Promise<RunReport> {
  if (options.command !== 'comprehensive') return runStages(opened, runId, options, io, setup, workers);
  const { runPipelineLocally } = await import('../pipeline/local-runner.ts');
  const deps = await localDeps(io, opened, runId, options, setup.progress);
  try {
    return await runPipelineLocally(
      opened.ctx,
      { runId, trigger: 'cli', sources: normalizeSources(options.sources, io.cwd), config: setup.document },
      deps,
    );
  } finally {
    await deps.close();
  }
}

/**
 * How long an aborted run waits for its work to stop (reads destroyed, restores asked to stop
 * and killed after their own grace) before it is recorded as ABORTED anyway.
 */
const ABORT_GRACE_MS = 20_000;

/** The work's outcome; once aborted, at most ABORT_GRACE_MS more (a report finished meanwhile still counts). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  return new Promise<T>((resolveWork, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => reject(signal.reason), ABORT_GRACE_MS);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolveWork, reject).finally(() => {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

/**
 * An interrupted run: recorded as ABORTED with what it had checked, the sandbox folders it left
 * removed; the returned error says what was done (and gives the exit code).
 */
async function markAborted(ctx: StageContext, runId: string, reason: unknown): Promise<InterruptedError> {
  const signal = reason instanceof InterruptedError ? reason.signal : 'SIGINT';
  const removed = await removeLiveSandboxFolders();
  const cleaned = removed > 0 ? `; removed ${removed} sandbox folder(s)` : '';
  let done: string;
  try {
    const detail = await ctx.ledger.getRun(runId);
    if (detail?.run.status !== 'RUNNING') {
      const why = detail ? `run ${runId} had already ended as ${detail.run.status}` : 'no run was recorded';
      return new InterruptedError(signal, `interrupted by ${signal} before any check: ${why}${cleaned}`);
    }
    const discovery = await readJson<Discovery>(ctx.runStore, runKeys.discovery(runId)).catch(
      () => undefined,
    );
    const counts = abortedCounts(detail.results, discovery);
    const checked = counts.pass + counts.warn + counts.fail;
    const tally = (['pass', 'warn', 'fail'] as const)
      .filter((k) => counts[k] > 0)
      .map((k) => `${counts[k]} ${k}`);
    done = discovery
      ? `${checked} of ${discovery.backups} backups checked${tally.length > 0 ? ` (${tally.join(', ')})` : ''}`
      : 'during discovery, before any backup was checked';
    await ctx.ledger.finishRun(runId, {
      status: 'ABORTED',
      counts,
      finishedAt: ctx.now().toISOString(),
      error: `interrupted by ${signal}: ${done}`,
    });
  } catch (error) {
    return new InterruptedError(
      signal,
      `interrupted by ${signal}; run ${runId} could not be recorded as ABORTED: ${(error as Error).message}${cleaned}`,
    );
  }
  return new InterruptedError(signal, `interrupted: ${done}; run ${runId} recorded as ABORTED${cleaned}`);
}

/** Backups with an integrity or restore verdict in this run, each counted once at its worst. */
function abortedCounts(
  results: ReadonlyArray<{ backupId: string; stage: string; status: StageStatus }>,
  discovery: Discovery | undefined,
): RunCounts {
  const verdicts = new Map<string, Status>();
  for (const r of results) {
    if ((r.stage !== 'integrity' && r.stage !== 'restore') || r.status === 'SKIPPED') continue;
    verdicts.set(r.backupId, worstStatus([verdicts.get(r.backupId) ?? 'PASS', r.status]));
  }
  const statuses = [...verdicts.values()];
  const count = (status: Status) => statuses.filter((s) => s === status).length;
  const backups = discovery?.backups ?? verdicts.size;
  return {
    backups,
    pass: count('PASS'),
    warn: count('WARN'),
    fail: count('FAIL'),
    series: discovery?.series ?? 0,
    skipped: Math.max(0, backups - verdicts.size),
  };
}

async function warmedLocalDeps(...args: Parameters<typeof localDeps>) {
  const deps = await localDeps(...args);
  deps.warm();
  return deps;
}

/** The CLI's discover / integrity / restore: the pipeline's stages run in this process, in order. */
async function runStages(
  opened: OpenedContext,
  runId: string,
  options: CliOptions,
  io: CliIo,
  setup: RunSetup,
  workers: IntegrityWorkers | undefined,
): Promise<RunReport> {
  const { ctx } = opened;
  setup.progress.stage('discover');
  // `restore`: its sandbox process starts and loads (~0.4 s) while discovery runs, not after it.
  const restoring = options.command === 'restore' ? warmedLocalDeps(io, opened, runId, options) : undefined;
  // Its failure is thrown where it is awaited, not as an unhandled rejection meanwhile.
  restoring?.catch(() => undefined);
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'cli',
    command: options.command,
    sources: normalizeSources(options.sources, io.cwd),
    config: setup.document,
  }).catch(async (error: unknown) => {
    await restoring?.then(
      (deps) => deps.close(),
      () => undefined,
    );
    throw error;
  });
  if (options.command === 'integrity') {
    setup.progress.begin('integrity', discovery.backups, discovery.bytes);
    // Known once discovery has seen every backup: how many the worker threads keep busy.
    const concurrency = options.concurrency ?? workers?.inFlight() ?? defaultConcurrency();
    for (const shard of discovery.shards) {
      try {
        await immutabilityStage(ctx, shard);
        await integrityStage(ctx, shard, { concurrency });
      } catch (error) {
        // As the state machine's Catch does: the shard's unchecked backups FAIL, the rest go on.
        if (error instanceof LedgerError || ctx.signal?.aborted) throw error;
        await recordFailureStage(ctx, {
          stage: 'integrity',
          item: shard,
          error: { Error: (error as Error).name, Cause: (error as Error).message },
        });
      }
    }
  }
  // The threads' termination takes tens of ms (measured ~40 ms on 2 cores): it overlaps the report.
  const stopping = workers?.close();
  if (restoring) {
    const { runRestoresLocally } = await import('../pipeline/local-restores.ts');
    const { beginRestores } = await import('./stage-progress.ts');
    const deps = await restoring;
    try {
      await runRestoresLocally(ctx, runId, {
        ...deps,
        selected: (selection) => beginRestores(setup.progress, ctx, runId, selection),
      });
    } finally {
      await deps.close();
    }
  }
  setup.progress.stage('report');
  const { report } = await reportStage(ctx, runId);
  await stopping;
  return report;
}

/**
 * discover, integrity, restore and comprehensive as the command line runs them: the run (Ctrl-C
 * stops it), its verdict printed, then its report files written; `code` is the run's exit code.
 */
export async function runCheckCommand(
  options: CliOptions,
  io: CliIo,
  setup: Omit<RunSetup, 'signal'>,
): Promise<{ code: number; report: RunReport }> {
  const interrupts = io.signals ? new Interrupts(io.signals, io.stderr) : undefined;
  let outcome: RunOutcome;
  try {
    outcome = await runCommand(options, io, {
      ...setup,
      ...(interrupts ? { signal: interrupts.signal } : {}),
    });
  } finally {
    interrupts?.dispose();
  }
  const { report, html } = outcome;
  for (const pattern of unmatchedSeriesPatterns(
    setup.config,
    report.backups.map((b) => b.series),
  ))
    io.stderr.write(
      `backup-validator: warning: configuration "series.${pattern}" matches no series of this run; its policy applies to nothing\n`,
    );
  // The verdict is shown before the report is written: a failed write must not hide it.
  printReport(io, report, setup.now(), {
    inventoryOnly: options.command === 'discover',
    weights: setup.config.defaults.weights,
  });
  if (options.json)
    await writeReportFile(resolve(io.cwd, options.json), report, `${JSON.stringify(report, null, 2)}\n`);
  if (options.html && html) {
    const { renderHtmlReport } = await import('../html-report/page.ts');
    await writeReportFile(resolve(io.cwd, options.html), report, renderHtmlReport(html));
  }
  return { code: exitCodeOf(report), report };
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
