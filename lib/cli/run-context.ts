import { resolve } from 'node:path';
import { type OpenedLedger, openLedger } from '../adapters/embedded-ledger.ts';
import { FolderStore } from '../adapters/folder-store.ts';
import { abortableStore } from '../core/abortable-store.ts';
import type { Config } from '../core/config.ts';
import { BackupValidatorError } from '../core/errors.ts';
import { defaultConcurrency } from '../core/limit.ts';
import type { CopyTarget, ObjectStore } from '../core/ports.ts';
import type { StageContext } from '../core/stages/context.ts';
import { redundancyTargetsOf } from '../core/stages/redundancy.ts';
import type { LocalRunDeps } from '../pipeline/local-runner.ts';
import type { CliOptions } from './args.ts';
import type { CliIo } from './io.ts';
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

/** The integrity worker threads of a run, once attached to its context. */
export interface IntegrityWorkers {
  /**
   * Backups to check at once when the user set no concurrency: more than the cores once the
   * threads take them and every backup of the run is small (a small pass mostly waits on its
   * reads); undefined otherwise, for the stage's default.
   */
  inFlight(): number | undefined;
  close(): Promise<void>;
}

/**
 * Integrity passes of small folder backups in worker threads, one a core beside the main thread's,
 * when the compiled CLI runs (it ships their entry) and more than one backup is checked at once.
 * The threads start as discovery finds the run's POOLED_MIN_BACKUPS_PER_CORE-th small backup a
 * core, so their start overlaps it; a run of a few backups starts none, as they are checked
 * sooner on the main thread than a thread loads. close() stops them.
 */
export async function attachIntegrityWorkers(
  io: CliIo,
  opened: OpenedContext,
  /** The user's --concurrency; undefined: none was given. */
  concurrency: number | undefined,
): Promise<IntegrityWorkers | undefined> {
  if (!io.integrityWorker || (concurrency ?? defaultConcurrency()) < 2) return undefined;
  const {
    defaultIntegrityThreads,
    IntegrityPool,
    POOLED_MAX_BYTES,
    POOLED_MIN_BACKUPS_PER_CORE,
    pooledConcurrency,
  } = await import('../adapters/integrity-pool.ts');
  // One core: the main thread is all there is.
  if (defaultIntegrityThreads() < 1) return undefined;
  const inFlight = concurrency ?? pooledConcurrency();
  const pool = new IntegrityPool({
    entry: io.integrityWorker,
    concurrency: inFlight,
    folderOf: (store) => {
      const inner = unwrapped.get(store) ?? store;
      return inner instanceof FolderStore ? inner.url : undefined;
    },
  });
  const { ctx } = opened;
  const events = ctx.events;
  const enough = POOLED_MIN_BACKUPS_PER_CORE * (defaultIntegrityThreads() + 1);
  let small = 0;
  let large = 0;
  ctx.events = {
    discovered: (backup) => {
      events?.discovered?.(backup);
      if (backup.bytes > POOLED_MAX_BYTES) {
        large++;
        return;
      }
      if (++small !== enough) return;
      pool.warm();
      ctx.integrityPasses = pool;
    },
    backupStarted: (backup, stage) => events?.backupStarted?.(backup, stage),
    bytesRead: (bytes) => events?.bytesRead?.(bytes),
    backupFinished: (backup, stage, status) => events?.backupFinished?.(backup, stage, status),
  };
  return {
    // Large backups are read on the main thread, each with buffers of some MiB: they keep the default.
    inFlight: () =>
      concurrency === undefined && ctx.integrityPasses === pool && large === 0 ? inFlight : undefined,
    close: () => pool.close(),
  };
}

/**
 * The restore sandbox and redundancy targets of a local run; warm() starts a sandbox worker ahead
 * of the first restore, close() stops the sandbox's workers.
 */
export async function localDeps(
  io: CliIo,
  opened: OpenedContext,
  runId: string,
  options: Pick<CliOptions, 'concurrency'>,
  progress?: Progress,
): Promise<LocalRunDeps & { close(): Promise<void>; warm(): void }> {
  const { LocalSandbox } = await import('../adapters/local-sandbox.ts');
  const { localRestore } = await import('../pipeline/local-restores.ts');
  const { withStageProgress } = await import('./stage-progress.ts');
  const concurrency = options.concurrency ?? defaultConcurrency();
  // Long-lived sandbox processes, one per core (restores beyond wait), not one per backup.
  const sandbox = new LocalSandbox({
    env: io.env,
    reuse: true,
    maxWorkers: concurrency,
    ...(io.sandboxEntry ? { entry: io.sandboxEntry } : {}),
  });
  return {
    ...(progress ? { wrapHandlers: (h) => withStageProgress(progress, opened.ctx, runId, h) } : {}),
    restore: localRestore(sandbox),
    openTarget: opened.open,
    cwd: io.cwd,
    concurrency,
    close: () => sandbox.close(),
    warm: () => sandbox.warm(),
  };
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
