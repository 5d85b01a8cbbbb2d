import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finding } from '../core/findings.ts';
import type { RestoreResult } from '../core/model.ts';
import type { RestoreJob, SandboxLauncher } from '../core/restore/launcher.ts';
import { killProcessTree } from '../core/restore/process-tree.ts';
import { removeSandboxFolder, sandboxFolderMade } from './sandbox-folders.ts';

const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SANDBOX_ENTRY = path.join(REPOSITORY_ROOT, 'containers/restore-sandbox/main.ts');
/** Jobs larger than this go through a file: environment variables have size limits. */
const INLINE_JOB_LIMIT = 64 * 1024;
const STDERR_TAIL = 2000;
/** A restore asked to stop (SIGTERM: it stops, cleans up, answers) is killed if still running after this. */
const STOP_GRACE_MS = 10_000;
/** close() waits this long at most for the killed workers to exit. */
const CLOSE_WAIT_MS = 2_000;
/**
 * V8's young generation capped at 4 MiB a semi-space (16 by default): a restore's stream of
 * short-lived objects otherwise keeps ~25 MiB more heap committed. Measured on the bench's 1 GiB
 * archive: peak RSS 128-138 MiB against 144-167 MiB, for about 2 % more CPU.
 */
export const SANDBOX_NODE_FLAGS = ['--max-semi-space-size=4'];

export interface LocalSandboxOptions {
  /** The entry point to run: the container's source by default, or its bundle (run with plain node). */
  entry?: string;
  /** Where the per-restore temporary folders are made (default the OS temp dir). */
  scratch?: string;
  /** Extra environment for the child (e.g. AWS_ENDPOINT_URL_S3, credentials, LEDGER_TABLE). */
  env?: NodeJS.ProcessEnv;
  /** Kill the child after this long (default: no limit beyond the caller's signal). */
  timeoutMs?: number;
  /** Lines the child writes to stderr (progress); default: kept only for failure messages. */
  onLog?: (line: string) => void;
  /**
   * Runs jobs on long-lived workers (one per concurrent launch), not a process per job; a worker
   * that crashed or timed out is replaced. Call close() when done.
   */
  reuse?: boolean;
  /** With reuse: at most this many workers; more restores at once wait for one to be free. */
  maxWorkers?: number;
}

interface Worker {
  child: ChildProcess;
  pendingLine: string;
}

/**
 * Runs the container's entry point as a child process over a fresh temporary folder: the
 * same code as the Fargate sandbox, with a process boundary so a crash (out of memory, a
 * native abort) is a RESTORE_FAILED result rather than the end of the run.
 */
export class LocalSandbox implements SandboxLauncher {
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<(worker: Worker) => void> = [];
  private workers = 0;

  constructor(private readonly options: LocalSandboxOptions = {}) {}

  async launch(job: RestoreJob, options: { signal?: AbortSignal } = {}): Promise<RestoreResult> {
    const started = performance.now();
    const scratchBase = this.options.scratch ?? tmpdir();
    await mkdir(scratchBase, { recursive: true });
    const folder = await mkdtemp(path.join(scratchBase, 'bv-sandbox-'));
    sandboxFolderMade(folder);
    try {
      const resultFile = path.join(folder, 'result.json');
      const sandboxRoot = path.join(folder, 'sandbox');
      await mkdir(sandboxRoot);
      const jobText = JSON.stringify(job);
      const jobEnv: Record<string, string> = { SANDBOX_ROOT: sandboxRoot, RESULT_FILE: resultFile };
      if (Buffer.byteLength(jobText) > INLINE_JOB_LIMIT) {
        const jobFile = path.join(folder, 'job.json');
        await writeFile(jobFile, jobText);
        jobEnv.JOB_FILE = jobFile;
      } else jobEnv.JOB = jobText;
      const outcome = this.options.reuse
        ? await this.serve(jobEnv, options.signal)
        : await this.run({ ...this.baseEnv(), ...jobEnv }, options.signal);
      const result =
        (await readFile(resultFile, 'utf8').then(parseResult, () => undefined)) ??
        parseResult(lastLine(outcome.stdout));
      if (outcome.code === 0 && result) return result;
      return crashed(job, performance.now() - started, outcome, result);
    } finally {
      await removeSandboxFolder(folder);
    }
  }

  /**
   * With `reuse`: starts a worker now, while the caller still has other work (discovery), so the
   * first restore does not wait for the process to start and load (~0.4 s). No-op otherwise.
   */
  warm(): void {
    if (!this.options.reuse || this.workers > 0) return;
    this.releaseWorker(this.startWorker(), true);
  }

  /**
   * Stops the idle workers of `reuse` (a busy one ends with its job); settles once they exited,
   * so they are reaped (and counted as this process's children) before it exits, or after
   * CLOSE_WAIT_MS whatever they do.
   */
  close(): Promise<void> {
    const exits: Array<Promise<void>> = [];
    for (const worker of this.idle.splice(0)) {
      this.workers--;
      const { child } = worker;
      if (child.exitCode === null && child.signalCode === null)
        exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
      child.kill('SIGKILL');
    }
    if (exits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      Promise.all(exits).then(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  private baseEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.options.env };
    delete env.TASK_TOKEN;
    delete env.JOB;
    delete env.JOB_FILE;
    // The caller records the returned result; the child records only when asked to explicitly.
    if (this.options.env?.LEDGER_TABLE === undefined) delete env.LEDGER_TABLE;
    return env;
  }

  private spawnEntry(env: NodeJS.ProcessEnv, ipc: boolean): ChildProcess {
    const entry = this.options.entry ?? SANDBOX_ENTRY;
    // A bundled entry (.mjs/.js, as the image runs it) needs plain node; sources need tsx.
    const args = /\.[cm]?js$/.test(entry)
      ? [...SANDBOX_NODE_FLAGS, entry]
      : [...SANDBOX_NODE_FLAGS, '--import', 'tsx', entry];
    return spawn(process.execPath, args, {
      cwd: REPOSITORY_ROOT,
      env,
      stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
  }

  /** An idle worker, a new one below the limit, or the next one to become free. */
  private async acquire(): Promise<Worker> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.workers < (this.options.maxWorkers ?? Number.POSITIVE_INFINITY)) return this.startWorker();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A worker done with its job: to the next waiting job, or idle. A dead one makes room for a new one. */
  private releaseWorker(worker: Worker, reusable: boolean): void {
    if (!reusable) {
      if (worker.child.pid !== undefined) killProcessTree(worker.child.pid);
      this.workers--;
      const next = this.waiting.shift();
      if (next) next(this.startWorker());
      return;
    }
    const next = this.waiting.shift();
    if (next) {
      next(worker);
      return;
    }
    worker.child.unref();
    worker.child.channel?.unref();
    this.idle.push(worker);
  }

  private async serve(
    jobEnv: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<ChildOutcome> {
    const worker = await this.acquire();
    worker.child.ref();
    worker.child.channel?.ref();
    return new Promise((resolve) => {
      let stderr = '';
      let timedOut = false;
      const onStderr = (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-64 * 1024);
        this.forwardLines(worker, chunk);
      };
      const finish = (outcome: ChildOutcome, reusable: boolean) => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        worker.child.stderr?.off('data', onStderr);
        worker.child.off('message', onMessage);
        worker.child.off('close', onClose);
        this.releaseWorker(worker, reusable && worker.child.exitCode === null);
        resolve(outcome);
      };
      const onMessage = (message: { code: number; stdout: string }) =>
        finish({ code: message.code, signal: null, stdout: message.stdout, stderr, timedOut }, !timedOut);
      const onClose = (code: number | null, exitSignal: NodeJS.Signals | null) =>
        finish({ code, signal: exitSignal, stdout: '', stderr, timedOut }, false);
      const timer = this.timeLimit(worker.child, () => {
        timedOut = true;
      });
      // As a one-job process is stopped: the worker aborts the restore, cleans up and answers.
      const onAbort = () => worker.child.kill('SIGTERM');
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.child.stderr?.on('data', onStderr);
      worker.child.on('message', onMessage);
      worker.child.once('close', onClose);
      worker.child.send({ env: jobEnv });
    });
  }

  private startWorker(): Worker {
    this.workers++;
    const child = this.spawnEntry({ ...this.baseEnv(), SANDBOX_SERVE: '1' }, true);
    child.stdout?.resume();
    child.once('error', () => undefined);
    const worker: Worker = { child, pendingLine: '' };
    // An idle worker that dies (killed from outside) is simply not reused.
    child.once('close', () => {
      const at = this.idle.indexOf(worker);
      if (at >= 0) {
        this.idle.splice(at, 1);
        this.workers--;
      }
    });
    return worker;
  }

  /** Kills the child's process tree when the restore's time limit passes (none: no limit). */
  private timeLimit(child: ChildProcess, onTimeout: () => void): NodeJS.Timeout | undefined {
    const { timeoutMs } = this.options;
    if (!timeoutMs) return undefined;
    return setTimeout(() => {
      onTimeout();
      killTree(child);
    }, timeoutMs);
  }

  private forwardLines(worker: Worker, chunk: Buffer): void {
    if (!this.options.onLog) return;
    const lines = (worker.pendingLine + chunk.toString()).split('\n');
    worker.pendingLine = lines.pop() ?? '';
    for (const line of lines) this.options.onLog(line);
  }

  private run(env: NodeJS.ProcessEnv, signal: AbortSignal | undefined): Promise<ChildOutcome> {
    return new Promise((resolve) => {
      const child = this.spawnEntry(env, false);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let pendingLine = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.length > 1024 * 1024) stdout = stdout.slice(-512 * 1024);
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        const textChunk = chunk.toString();
        stderr = (stderr + textChunk).slice(-64 * 1024);
        if (this.options.onLog) {
          const lines = (pendingLine + textChunk).split('\n');
          pendingLine = lines.pop() ?? '';
          for (const line of lines) this.options.onLog(line);
        }
      });
      const timer = this.timeLimit(child, () => {
        timedOut = true;
      });
      let stopTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        child.kill('SIGTERM');
        stopTimer = setTimeout(() => killTree(child), STOP_GRACE_MS);
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      child.once('error', (error) => {
        stderr += `\n${error.message}`;
      });
      child.once('close', (code, exitSignal) => {
        if (timer) clearTimeout(timer);
        if (stopTimer) clearTimeout(stopTimer);
        signal?.removeEventListener('abort', onAbort);
        resolve({ code, signal: exitSignal, stdout, stderr, timedOut });
      });
    });
  }
}

/** The restore's probes are its children, in its process group: they go with it. */
function killTree(child: ChildProcess): void {
  if (child.pid !== undefined) killProcessTree(child.pid);
  else child.kill('SIGKILL');
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function lastLine(output: string): string {
  const lines = output.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

function parseResult(textValue: string): RestoreResult | undefined {
  try {
    const value = JSON.parse(textValue) as RestoreResult;
    return typeof value === 'object' && value !== null && typeof value.status === 'string'
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

function crashed(
  job: RestoreJob,
  durationMs: number,
  outcome: ChildOutcome,
  partial: RestoreResult | undefined,
): RestoreResult {
  const how = outcome.timedOut
    ? 'was killed after its time limit'
    : outcome.signal
      ? `was killed by ${outcome.signal}`
      : outcome.code === 0
        ? 'exited without a result'
        : `exited with code ${outcome.code}`;
  const tail = outcome.stderr.trim().slice(-STDERR_TAIL);
  return {
    backupId: job.backup.id,
    status: 'FAIL',
    durationMs: Math.round(durationMs),
    filesRestored: partial?.filesRestored ?? 0,
    bytesRestored: partial?.bytesRestored ?? 0,
    phases: partial?.phases ?? { downloadMs: 0, extractMs: 0, verifyMs: 0, probesMs: 0, cleanupMs: 0 },
    findings: [
      ...(partial?.findings ?? []),
      finding(
        'RESTORE_FAILED',
        `the restore sandbox process ${how}${tail ? `; its last output: ${tail}` : ''}`,
        {
          backup: job.backup.id,
        },
      ),
    ],
  };
}
