import { availableParallelism } from 'node:os';
import { StoreError } from '../core/errors.ts';
import type { Backup, IntegrityResult } from '../core/model.ts';
import type { IntegrityPasses, IntegrityPassOptions, ObjectStore } from '../core/ports.ts';
import type { PassError, PassJob, PassOutcome } from './integrity-worker.ts';
import { WorkerPool } from './worker-pool.ts';

/**
 * Backups up to this size are checked in the pool. A small backup's pass is mostly JavaScript
 * (opening, parsing, hashing a few KiB), which only more threads speed up; a large one is bound by
 * inflate, which already runs off the main thread, and gains nothing but a worker's memory.
 */
export const POOLED_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The workers' share of the passes in flight; the main thread takes the rest, beside the ledger
 * and the stages. Measured on 200 small backups, 2 cores: with promise-based reads 6 of 8 in the
 * worker was the fastest mix; since the worker reads small files with blocking calls it is the
 * lighter thread, and all of them in the worker was faster (5 paired rounds: 1.09-1.14 s against
 * 1.12-1.20 s), the main thread keeping the ledger and the stages.
 */
const WORKER_SHARE = 1;
/** Passes in flight a core when every backup is small and the workers take them (see pooledConcurrency). */
const POOLED_IN_FLIGHT_PER_CORE = 4;
/** Small backups a run must have before the threads start: fewer are checked sooner than a thread loads. */
export const POOLED_MIN_BACKUPS_PER_CORE = 2;

/**
 * Backups in flight at once when all are small and the pool takes them: a small pass spends most
 * of its time waiting on its reads, so more in flight than cores keeps the threads busy; each
 * holds a few KiB, so memory stays bounded.
 */
export function pooledConcurrency(): number {
  return POOLED_IN_FLIGHT_PER_CORE * availableParallelism();
}

export interface IntegrityPoolOptions {
  /** The bundled worker entry (integrity-worker.ts compiled). */
  entry: string;
  /** Backups checked at once (the stage's concurrency). */
  concurrency: number;
  /** The folder a store reads, as FolderStore's url; undefined for stores a worker cannot open itself. */
  folderOf(store: ObjectStore): string | undefined;
  /** Worker threads at most (default: one a core but the main thread's). */
  threads?: number;
}

/** Worker threads by default: the main thread checks backups too, so it counts as one of the cores. */
export function defaultIntegrityThreads(): number {
  return availableParallelism() - 1;
}

/**
 * The integrity passes of small folder backups, run in worker threads: the main thread keeps the
 * stages, the ledger and the events, and checks a backup itself only when every worker is full
 * (nothing queues: the stage's concurrency bounds what is in flight). Each job takes the checksums the ledger recorded for the backup and brings
 * back the ones to record, which are written here, as checkIntegrityConfirmed itself would.
 */
export class IntegrityPool implements IntegrityPasses {
  private readonly pool: WorkerPool<PassJob, PassOutcome, PassError>;
  /** Passes the workers take at once; beyond, the caller's thread checks the backup. */
  private readonly capacity: number;
  private inFlight = 0;

  constructor(private readonly options: IntegrityPoolOptions) {
    const size = Math.max(1, Math.min(options.threads ?? defaultIntegrityThreads(), options.concurrency - 1));
    // The main thread also keeps the ledger and the stages (about half its work on small backups):
    // the workers take most of what is in flight, the main thread the rest.
    const perWorker = Math.max(1, Math.floor((options.concurrency * WORKER_SHARE) / size));
    this.capacity = size * perWorker;
    this.pool = new WorkerPool(
      { entry: options.entry, size, perWorker, maxWaiting: options.concurrency },
      passError,
    );
  }

  check(
    backup: Backup,
    store: ObjectStore,
    options: IntegrityPassOptions,
  ): Promise<IntegrityResult> | undefined {
    const folder = this.options.folderOf(store);
    if (folder === undefined || backup.bytes > POOLED_MAX_BYTES || this.inFlight >= this.capacity)
      return undefined;
    this.inFlight++;
    return this.checkInWorker(backup, folder, options).finally(() => {
      this.inFlight--;
    });
  }

  /** Starts the threads now, so their start overlaps the discovery. */
  warm(): void {
    this.pool.warm();
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** The most jobs that ever waited for a thread. */
  get peakWaiting(): number {
    return this.pool.peakWaiting;
  }

  private async checkInWorker(
    backup: Backup,
    folder: string,
    options: IntegrityPassOptions,
  ): Promise<IntegrityResult> {
    const { history, signal, onProgress } = options;
    const earlier = history ? await history.firstSeenOf(backup.id) : undefined;
    const job: PassJob = {
      backup,
      folder,
      policy: options.policy,
      archivePatterns: options.archivePatterns ?? [],
      ...(earlier ? { earlier } : {}),
    };
    const { result, firstSeen } = await this.pool.run(job, {
      ...(signal ? { signal } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
    if (history && firstSeen.length > 0) await history.recordFirstSeen(backup.id, firstSeen);
    return result;
  }
}

function passError(error: PassError): Error {
  if (error.kind !== undefined && error.location !== undefined)
    return new StoreError(error.message, error.kind, error.location);
  return Object.assign(new Error(error.message), { name: error.name });
}
