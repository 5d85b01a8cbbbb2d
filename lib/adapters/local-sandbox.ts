import { spawn } from 'node:child_process';
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
}

/**
 * Runs the container's entry point as a child process over a fresh temporary folder: the
 * same code as the Fargate sandbox, with a process boundary so a crash (out of memory, a
 * native abort) is a RESTORE_FAILED result rather than the end of the run.
 */
export class LocalSandbox implements SandboxLauncher {
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
      const env: NodeJS.ProcessEnv = { ...process.env, ...this.options.env };
      delete env.TASK_TOKEN;
      delete env.JOB;
      delete env.JOB_FILE;
      // The caller records the returned result; the child records only when asked to explicitly.
      if (this.options.env?.LEDGER_TABLE === undefined) delete env.LEDGER_TABLE;
      if (Buffer.byteLength(jobText) > INLINE_JOB_LIMIT) {
        const jobFile = path.join(folder, 'job.json');
        await writeFile(jobFile, jobText);
        env.JOB_FILE = jobFile;
      } else env.JOB = jobText;
      env.SANDBOX_ROOT = sandboxRoot;
      env.RESULT_FILE = resultFile;
      const outcome = await this.run(env, options.signal);
      const result =
        (await readFile(resultFile, 'utf8').then(parseResult, () => undefined)) ??
        parseResult(lastLine(outcome.stdout));
      if (outcome.code === 0 && result) return result;
      return crashed(job, performance.now() - started, outcome, result);
    } finally {
      await removeSandboxFolder(folder);
    }
  }

  private run(env: NodeJS.ProcessEnv, signal: AbortSignal | undefined): Promise<ChildOutcome> {
    return new Promise((resolve) => {
      const entry = this.options.entry ?? SANDBOX_ENTRY;
      // A bundled entry (.mjs/.js, as the image runs it) needs plain node; sources need tsx.
      const args = /\.[cm]?js$/.test(entry) ? [entry] : ['--import', 'tsx', entry];
      const child = spawn(process.execPath, args, {
        cwd: REPOSITORY_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let pendingLine = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.length > 1024 * 1024) stdout = stdout.slice(-512 * 1024);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        const textChunk = chunk.toString();
        stderr = (stderr + textChunk).slice(-64 * 1024);
        if (this.options.onLog) {
          const lines = (pendingLine + textChunk).split('\n');
          pendingLine = lines.pop() ?? '';
          for (const line of lines) this.options.onLog(line);
        }
      });
      // The restore's probes are its children, in its process group: they go with it.
      const kill = () => {
        if (child.pid !== undefined) killProcessTree(child.pid);
        else child.kill('SIGKILL');
      };
      const timer = this.options.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, this.options.timeoutMs)
        : undefined;
      let stopTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        child.kill('SIGTERM');
        stopTimer = setTimeout(kill, STOP_GRACE_MS);
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
