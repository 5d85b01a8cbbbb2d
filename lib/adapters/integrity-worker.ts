/**
 * A worker thread of the integrity pool (integrity-pool.ts): it runs checkIntegrityConfirmed on
 * backups of folder sources, reading the files itself. The ledger stays with the main thread:
 * the checksums recorded earlier come with the job, and the ones to record go back with the result.
 * The compiled CLI bundles this file as an entry of its own (scripts/build-cli.mjs).
 */
import { parentPort } from 'node:worker_threads';
import type { Policy } from '../core/config.ts';
import { checkIntegrityConfirmed } from '../core/confirm.ts';
import { StoreError } from '../core/errors.ts';
import type { Backup, IntegrityResult } from '../core/model.ts';
import type { ChecksumHistory, FirstSeenChecksum } from '../core/ports.ts';
import { FolderStore } from './folder-store.ts';
import type { WorkerReply } from './worker-pool.ts';

export type Offered = Omit<FirstSeenChecksum, 'firstSeenAt'>;

export interface PassJob {
  backup: Backup;
  /** The folder source, as its FolderStore's url. */
  folder: string;
  policy: Policy;
  archivePatterns: readonly string[];
  /** What the ledger recorded for this backup; undefined: the pass has no history. */
  earlier?: FirstSeenChecksum[];
}

export interface PassOutcome {
  result: IntegrityResult;
  /** First-seen checksums the pass would have recorded (at most one call's worth). */
  firstSeen: Offered[];
}

/** An error thrown out of a pass, as it crosses to the main thread. */
export interface PassError {
  name: string;
  message: string;
  kind?: StoreError['kind'];
  location?: string;
}

export type ToWorker = { type: 'run'; id: number; job: PassJob } | { type: 'abort'; id: number };
export type FromWorker = WorkerReply<PassOutcome, PassError>;

/** Progress is sent at most this often a job (a message costs more than a small backup's chunk). */
const PROGRESS_EVERY_MS = 100;

async function run(port: NonNullable<typeof parentPort>, id: number, job: PassJob, signal: AbortSignal) {
  const firstSeen: Offered[] = [];
  const earlier = job.earlier;
  const history: ChecksumHistory | undefined = earlier && {
    async firstSeenOf() {
      return earlier;
    },
    async recordFirstSeen(_backupId, checksums) {
      firstSeen.push(...checksums);
      return [];
    },
  };
  const post = (message: FromWorker) => port.postMessage(message);
  let unsent = 0;
  let sentAt = Date.now();
  const onProgress = (bytes: number) => {
    unsent += bytes;
    if (Date.now() - sentAt < PROGRESS_EVERY_MS) return;
    post({ type: 'progress', id, bytes: unsent });
    unsent = 0;
    sentAt = Date.now();
  };
  try {
    const result = await checkIntegrityConfirmed(job.backup, folder(job.folder), {
      policy: job.policy,
      archivePatterns: job.archivePatterns,
      signal,
      onProgress,
      ...(history ? { history } : {}),
    });
    post({ type: 'done', id, outcome: { result, firstSeen }, bytes: unsent });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    post({
      type: 'failed',
      id,
      bytes: unsent,
      error: {
        name: e.name,
        message: e.message,
        ...(e instanceof StoreError ? { kind: e.kind, location: e.location } : {}),
      },
    });
  }
}

/** Files this small are read with blocking calls: this thread has nothing else to run meanwhile. */
const BLOCKING_READS_UP_TO = 256 * 1024;

/** One store per folder: it keeps the folder's resolved root between backups. */
const stores = new Map<string, FolderStore>();
function folder(url: string): FolderStore {
  let store = stores.get(url);
  if (!store) {
    store = new FolderStore(url, { blockingReadsUpTo: BLOCKING_READS_UP_TO });
    stores.set(url, store);
  }
  return store;
}

if (parentPort) {
  const port = parentPort;
  const running = new Map<number, AbortController>();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'abort') {
      running.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    running.set(message.id, controller);
    void run(port, message.id, message.job, controller.signal).finally(() => running.delete(message.id));
  });
}
