import { dirname, join, resolve } from 'node:path';
import { type OpenedLedger, openLedger } from '../adapters/embedded-ledger.ts';
import { FolderStore } from '../adapters/folder-store.ts';
import { removeLiveSandboxFolders } from '../adapters/sandbox-folders.ts';
import { abortableStore } from '../core/abortable-store.ts';
import { seriesIdOf } from '../core/catalogue.ts';
import { type Config, policyFor } from '../core/config.ts';
import { BackupValidatorError, InterruptedError, LedgerError } from '../core/errors.ts';
import { type StageStatus, type Status, worstStatus } from '../core/findings.ts';
import type { LoadHistoryOptions } from '../core/history.ts';
import { immutabilityStage } from '../core/immutability.ts';
import type { RunCounts } from '../core/ledger.ts';
import { refuseTargetsInSources } from '../core/locations.ts';
import type { RunReport } from '../core/model.ts';
import type { CopyTarget, ObjectStore } from '../core/ports.ts';
import { redundancyTargetsOf } from '../core/redundancy.ts';
import { readJson, runKeys } from '../core/run-store.ts';
import {
  type Discovery,
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
import { type CliIo, EXIT, newRunId } from './io.ts';
import type { Locations } from './locations.ts';
import type { Progress } from './progress.ts';

export interface RunSetup {
  config: Config;
  locations: Locations;
  document: unknown;
  progress: Progress;
  now: () => Date;
  /** Aborted by Ctrl-C / SIGTERM: the run stops, cleans up and is recorded as ABORTED. */
  signal?: AbortSignal;
}

export interface OpenedContext {
  ctx: StageContext;
  ledger: OpenedLedger;
  /** Opens a folder or URL the run named (source, run store, redundancy target). */
  open(url: string): CopyTarget;
  close(): Promise<void>;
}

/** A location with a scheme (`s3://`, `file://`) needs the stores module, and with it the S3 SDK. */
const URL_SCHEME = /^[a-z][a-z0-9+.-]+:\/\//i;

/**
 * Opens the run's folders and URLs; the AWS SDK is loaded only when one of `locations` (all the
 * run may open: sources, run store, redundancy targets) is a URL, so a folder run never pays for it.
 */
async function storeOpener(io: CliIo, locations: string[]): Promise<StoreOpener> {
  if (!locations.some((l) => URL_SCHEME.test(l))) {
    return {
      open: (url) => {
        if (URL_SCHEME.test(url)) throw new BackupValidatorError(`${url} was not among the run's locations`);
        return new FolderStore(resolve(io.cwd, url));
      },
    };
  }
  const [{ openCopyTarget, s3ClientConfigFromEnv }, { openProtection }, { checksumReaderOf }] =
    await Promise.all([
      import('../adapters/stores.ts'),
      import('../adapters/s3-immutability.ts'),
      import('../adapters/s3-checksums.ts'),
    ]);
  const s3 = s3ClientConfigFromEnv(io.env);
  return {
    open: (url) => openCopyTarget(url.startsWith('s3://') ? url : resolve(io.cwd, url), { s3 }),
    openProtection: (url) => openProtection(url, { s3 }),
    checksumsOf: checksumReaderOf,
  };
}

interface StoreOpener extends Pick<StageContext, 'openProtection' | 'checksumsOf'> {
  open(url: string): CopyTarget;
}

const unwrapped = new WeakMap<ObjectStore, ObjectStore>();

export async function openContext(
  io: CliIo,
  config: Config,
  locations: Locations,
  progress?: Progress,
  sources: string[] = [],
  signal?: AbortSignal,
): Promise<OpenedContext> {
  const opener = await storeOpener(io, [...sources, locations.runStore, ...redundancyTargetsOf(config)]);
  const { open } = opener;
  const runStore = open(locations.runStore);
  // Opened last: nothing after it can throw and leave the embedded ledger (and the process) running.
  const ledger = await openLedger(locations.ledger, {
    retentionDays: config.ledger.retentionDays,
    env: io.env,
  });
  const ctx: StageContext = {
    ledger,
    runStore,
    openSource: (url) => {
      const store = open(url);
      if (!signal) return store;
      const abortable = abortableStore(store, signal);
      unwrapped.set(abortable, store);
      return abortable;
    },
    now: () => new Date(),
  };
  if (opener.openProtection) ctx.openProtection = opener.openProtection;
  const { checksumsOf } = opener;
  // A source's stored checksums are read through the store itself, not its abortable wrapper.
  if (checksumsOf) ctx.checksumsOf = (store) => checksumsOf(unwrapped.get(store) ?? store);
  if (progress) ctx.events = progress;
  if (signal) ctx.signal = signal;
  return { ctx, ledger, open, close: () => ledger.close() };
}

/** Sources as the user gave them, folders made absolute so ids do not depend on the working folder. */
function normalizeSources(sources: string[], cwd: string): string[] {
  return sources.map((s) => (s.startsWith('s3://') ? s.replace(/\/+$/, '') : resolve(cwd, s)));
}

/** The restore sandbox and redundancy targets of a local run. */
async function localDeps(
  io: CliIo,
  opened: OpenedContext,
  runId: string,
  progress?: Progress,
): Promise<LocalRunDeps> {
  const { LocalSandbox } = await import('../adapters/local-sandbox.ts');
  const { localRestore } = await import('../pipeline/local-runner.ts');
  const { withStageProgress } = await import('./stage-progress.ts');
  return {
    ...(progress ? { wrapHandlers: (h) => withStageProgress(progress, opened.ctx, runId, h) } : {}),
    restore: localRestore(
      new LocalSandbox({ env: io.env, ...(io.sandboxEntry ? { entry: io.sandboxEntry } : {}) }),
    ),
    openTarget: opened.open,
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
  const opened = await openContext(
    io,
    setup.config,
    setup.locations,
    setup.progress,
    normalizeSources(options.sources, io.cwd),
    setup.signal,
  );
  const runId = newRunId(setup.now());
  try {
    const report = await untilAborted(runReport(opened, runId, options, io, setup), setup.signal);
    if (options.html === undefined) return { report };
    const { htmlReportInput } = await import('../html-report/input.ts');
    return { report, html: await htmlReportInput(report, opened.ctx.ledger, setup.config) };
  } catch (error) {
    if (setup.signal?.aborted) throw await markAborted(opened.ctx, runId, setup.signal.reason);
    await markStopped(opened.ctx, runId, error);
    throw error;
  } finally {
    setup.progress.end();
    await opened.close();
  }
}

async function runReport(
  opened: OpenedContext,
  runId: string,
  options: CliOptions,
  io: CliIo,
  setup: RunSetup,
): Promise<RunReport> {
  if (options.command !== 'comprehensive') return runStages(opened, runId, options, io, setup);
  const { runPipelineLocally } = await import('../pipeline/local-runner.ts');
  return runPipelineLocally(
    opened.ctx,
    { runId, trigger: 'cli', sources: normalizeSources(options.sources, io.cwd), config: setup.document },
    await localDeps(io, opened, runId, setup.progress),
  );
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

/** A run that stopped before its report is recorded as ERROR with why, never left RUNNING. */
async function markStopped(ctx: StageContext, runId: string, error: unknown): Promise<void> {
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
  opened: OpenedContext,
  runId: string,
  options: CliOptions,
  io: CliIo,
  setup: RunSetup,
): Promise<RunReport> {
  const { ctx } = opened;
  setup.progress.stage('discover');
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
        await immutabilityStage(ctx, shard);
        await integrityStage(ctx, shard);
      } catch (error) {
        // As the state machine's Catch does: the shard's unchecked backups FAIL, the rest go on.
        if (error instanceof LedgerError || ctx.signal?.aborted) throw error;
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
    const { beginRestores } = await import('./stage-progress.ts');
    await runRestoresLocally(ctx, runId, {
      ...(await localDeps(io, opened, runId)),
      selected: (selection) => beginRestores(setup.progress, ctx, runId, selection),
    });
  }
  setup.progress.stage('report');
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

export async function runDemo(
  options: CliOptions,
  io: CliIo,
  progress: Progress,
  main: (argv: string[], io: CliIo) => Promise<number>,
): Promise<number> {
  const { makeDemoBackups } = await import('./demo-data.ts');
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
      `Sample folder: ${dir}\nReport: ${json}\nHTML report (open it in a browser): ${html}\nNext: backup-validator history --ledger ${ledger}\n(from the clone without installing the command: npm start -- history --ledger ${ledger})\n`,
  );
  return EXIT.ok;
}
