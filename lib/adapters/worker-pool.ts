import { Worker } from 'node:worker_threads';

export interface WorkerPoolOptions {
  /** The workers' entry file: plain JavaScript (the compiled CLI's bundle). */
  entry: string;
  /** Worker threads at most, started when jobs come. */
  size: number;
  /** Jobs one worker runs at once: its reads and its parsing overlap. */
  perWorker: number;
  /** Jobs waiting for a worker at most: beyond, `run` waits, so the pool's memory stays bounded. */
  maxWaiting: number;
}

/** What a worker answers about job `id` (the worker entry posts these). */
export type WorkerReply<Outcome, Failure> =
  | { type: 'progress'; id: number; bytes: number }
  | { type: 'done'; id: number; outcome: Outcome; bytes?: number }
  | { type: 'failed'; id: number; error: Failure; bytes?: number };

interface Task<Job, Outcome> {
  id: number;
  job: Job;
  settled: boolean;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
  onProgress?(bytes: number): void;
  slot?: Slot<Job, Outcome>;
}

interface Slot<Job, Outcome> {
  worker: Worker;
  running: Map<number, Task<Job, Outcome>>;
}

/**
 * A bounded pool of worker threads: jobs go to the least busy worker, at most `perWorker` each;
 * an aborted job is answered at once (its worker is told to stop it); a worker that dies fails
 * its jobs and is replaced for the next ones. Idle workers never keep the process alive.
 */
export class WorkerPool<Job, Outcome, Failure> {
  private readonly slots: Array<Slot<Job, Outcome>> = [];
  private readonly waiting: Array<Task<Job, Outcome>> = [];
  private readonly room: Array<() => void> = [];
  private nextId = 1;
  private closed = false;
  /** The most jobs that ever waited at once. */
  peakWaiting = 0;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly toError: (failure: Failure) => Error,
  ) {}

  /** Starts the workers ahead of the first job, so their start overlaps other work. */
  warm(): void {
    while (!this.closed && this.slots.length < this.options.size) this.spawn();
  }

  async run(
    job: Job,
    options: { signal?: AbortSignal; onProgress?(bytes: number): void } = {},
  ): Promise<Outcome> {
    while (!this.closed && this.waiting.length >= this.options.maxWaiting) {
      await new Promise<void>((resolve) => this.room.push(resolve));
    }
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.closed) throw new Error('the worker pool was closed');
    return new Promise<Outcome>((resolve, reject) => {
      const onAbort = () => this.abort(task, signal?.reason);
      const done = () => signal?.removeEventListener('abort', onAbort);
      const task: Task<Job, Outcome> = {
        id: this.nextId++,
        job,
        settled: false,
        resolve: (outcome) => {
          done();
          resolve(outcome);
        },
        reject: (error) => {
          done();
          reject(error);
        },
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(task);
      this.peakWaiting = Math.max(this.peakWaiting, this.waiting.length);
      this.dispatch();
    });
  }

  /** Fails what waits, stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) this.settle(task, new Error('the worker pool was closed'));
    for (const wake of this.room.splice(0)) wake();
    const slots = this.slots.splice(0);
    for (const slot of slots)
      for (const task of slot.running.values()) this.settle(task, new Error('the worker pool was closed'));
    await Promise.all(slots.map((slot) => stopWorker(slot.worker)));
  }

  private dispatch(): void {
    while (!this.closed && this.waiting.length > 0) {
      let slot = this.slots.reduce<Slot<Job, Outcome> | undefined>(
        (best, s) => (!best || s.running.size < best.running.size ? s : best),
        undefined,
      );
      if (!slot || (slot.running.size > 0 && this.slots.length < this.options.size)) slot = this.spawn();
      if (slot.running.size >= this.options.perWorker) return;
      const task = this.waiting.shift() as Task<Job, Outcome>;
      this.room.shift()?.();
      task.slot = slot;
      slot.running.set(task.id, task);
      slot.worker.ref();
      slot.worker.postMessage({ type: 'run', id: task.id, job: task.job });
    }
  }

  private spawn(): Slot<Job, Outcome> {
    const slot: Slot<Job, Outcome> = { worker: new Worker(this.options.entry), running: new Map() };
    slot.worker.unref();
    slot.worker.on('message', (reply: WorkerReply<Outcome, Failure>) => {
      const task = slot.running.get(reply.id);
      if (!task) return;
      if (reply.type === 'progress') {
        if (!task.settled) task.onProgress?.(reply.bytes);
        return;
      }
      slot.running.delete(reply.id);
      if (slot.running.size === 0) slot.worker.unref();
      if (reply.bytes && !task.settled) task.onProgress?.(reply.bytes);
      if (reply.type === 'done') {
        if (!task.settled) {
          task.settled = true;
          task.resolve(reply.outcome);
        }
      } else this.settle(task, this.toError(reply.error));
      this.dispatch();
    });
    const lost = (why: string) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      this.slots.splice(index, 1);
      for (const task of slot.running.values())
        this.settle(task, new Error(`an integrity worker thread stopped (${why}) during the check`));
      slot.running.clear();
      this.dispatch();
    };
    slot.worker.on('error', (error) => lost(error.message));
    slot.worker.on('exit', (code) => lost(`exit code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private abort(task: Task<Job, Outcome>, reason: unknown): void {
    const index = this.waiting.indexOf(task);
    if (index >= 0) {
      this.waiting.splice(index, 1);
      this.room.shift()?.();
    } else task.slot?.worker.postMessage({ type: 'abort', id: task.id });
    this.settle(task, reason);
  }

  private settle(task: Task<Job, Outcome>, error: unknown): void {
    if (task.settled) return;
    task.settled = true;
    task.reject(error);
  }
}

/** How long close() waits for a worker's termination to be confirmed. */
const TERMINATE_WAIT_MS = 2_000;

/**
 * Terminates a worker, waiting at most TERMINATE_WAIT_MS: under load, terminate()'s promise was
 * seen never to settle while nothing else held the event loop, so an awaited close() ended the
 * process mid-await (exit code 13) instead of letting an interrupted run finish (issue 13 test).
 * The timer holds the loop meanwhile.
 */
export function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, TERMINATE_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    worker.once('exit', done);
    worker.terminate().then(done, done);
  });
}
