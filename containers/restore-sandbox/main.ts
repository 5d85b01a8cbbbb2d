/**
 * The restore sandbox's entry point: the same program in a Fargate task and in a local child
 * process. Reads one restore job, restores it into a fresh folder, prints the result as the
 * last line of stdout and, when a task token is given, answers the waiting state machine step.
 *
 * Environment: JOB (the job as JSON, or `{"runId","restore"}` naming
 * `RUN_STORE/runs/<runId>/restores/<n>.json`), JOB_FILE (a file holding the job instead),
 * SANDBOX_ROOT (scratch folder, default a temp dir), RESULT_FILE (also write the result there),
 * TASK_TOKEN + HEARTBEAT_SECONDS (Step Functions callback), LEDGER_TABLE (record the result),
 * RUN_STORE, LOG_FORMAT (`json`; the default in a Fargate task, whose stderr goes to CloudWatch:
 * JSON lines with runId and backup. Locally, plain lines, which a crash's finding quotes).
 */
import { realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { createLogger } from '../../lib/adapters/json-log.ts';
import { abortableStore } from '../../lib/core/abortable-store.ts';
import type { RestoreResult } from '../../lib/core/model.ts';
import type { ObjectStore } from '../../lib/core/ports.ts';
import { parseRestoreJob, type RestoreJob, sandboxRecords } from '../../lib/core/restore/launcher.ts';
import { runSandboxJob } from '../../lib/core/restore/sandbox-job.ts';
import { runKeys } from '../../lib/core/run-store.ts';
import type { TaskTokenClient } from './task-token.ts';

export const RESTORE_FAILED_ERROR = 'Sandbox.RestoreFailed';

export interface SandboxIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Step Functions client for the task token (a recording fake in tests). */
  sfn?: () => TaskTokenClient;
  /** Records the result in the ledger; by default a DynamoDB ledger when LEDGER_TABLE is set. */
  record?: (job: RestoreJob, result: RestoreResult) => Promise<void>;
  signal?: AbortSignal;
}

/**
 * A folder is opened directly; a URL through the stores module, loaded only then: the AWS SDK
 * is ~20 MiB of the sandbox's RSS and a moment of its start, for nothing when the source is a folder.
 */
async function openLocation(url: string): Promise<ObjectStore> {
  if (!/^[a-z][a-z0-9+.-]+:\/\//i.test(url)) return new FolderStore(path.resolve(url));
  const { openStore } = await import('../../lib/adapters/stores.ts');
  return openStore(url);
}

/** Loads the job: a file, inline JSON, or a reference to the run store. */
export async function loadJob(env: NodeJS.ProcessEnv): Promise<RestoreJob> {
  if (env.JOB_FILE) return parseRestoreJob(await readFile(env.JOB_FILE, 'utf8'), `file ${env.JOB_FILE}`);
  const raw = env.JOB;
  if (!raw)
    throw new Error('environment variable JOB (or JOB_FILE) is not set: the sandbox has nothing to restore');
  const parsed = JSON.parse(raw) as { runId?: unknown; restore?: unknown; backup?: unknown };
  if (parsed.backup === undefined && typeof parsed.runId === 'string' && typeof parsed.restore === 'number') {
    const runStore = env.RUN_STORE;
    if (!runStore) {
      throw new Error(
        'JOB names a stored restore job but RUN_STORE is not set: the task definition is incomplete',
      );
    }
    const key = runKeys.restore(parsed.runId, parsed.restore);
    const body = await text(await (await openLocation(runStore)).open(key));
    return parseRestoreJob(body, `${runStore}/${key}`);
  }
  return parseRestoreJob(raw, 'environment variable JOB');
}

async function dynamoHistory(table: string) {
  const { DynamoDbLedger } = await import('../../lib/adapters/dynamodb-ledger.ts');
  return new DynamoDbLedger({ tableName: table });
}

async function recordInDynamo(table: string, job: RestoreJob, result: RestoreResult): Promise<void> {
  const { DynamoDbLedger } = await import('../../lib/adapters/dynamodb-ledger.ts');
  const ledger = new DynamoDbLedger({ tableName: table });
  try {
    await ledger.recordResults(sandboxRecords(job, result, new Date()));
  } finally {
    await ledger.close();
  }
}

/** Runs one restore; the exit code is 0 when a result (PASS, WARN or FAIL) was produced and delivered. */
export async function runSandbox(env: NodeJS.ProcessEnv, io: SandboxIo): Promise<number> {
  const controller = new AbortController();
  const json =
    env.LOG_FORMAT === 'json' || (env.LOG_FORMAT === undefined && !!env.ECS_CONTAINER_METADATA_URI_V4);
  // Progress and errors go to stderr: stdout's last line is the result the local sandbox reads.
  let log = createLogger({ stage: 'restore', write: io.stderr, format: json ? 'json' : 'text' });
  io.signal?.addEventListener('abort', () => controller.abort(), { once: true });
  const token = env.TASK_TOKEN;
  // The Step Functions client is loaded only for a task token: most of the SDK, for a local restore's start.
  const reporter = token
    ? new (await import('./task-token.ts')).TaskTokenReporter(
        io.sfn?.() ?? new (await import('@aws-sdk/client-sfn')).SFNClient({}),
        token,
        {
          heartbeatSeconds: Number(env.HEARTBEAT_SECONDS) > 0 ? Number(env.HEARTBEAT_SECONDS) : 60,
          onGone: (reason) => {
            log.warn(`stopping: ${reason}`);
            controller.abort();
          },
          log: (line) => log.info(line),
        },
      )
    : undefined;
  reporter?.startHeartbeats();
  let scratch: string | undefined;
  try {
    const job = await loadJob(env);
    log = log.with({ runId: job.runId, backup: job.backup.id });
    const base = env.SANDBOX_ROOT || tmpdir();
    scratch = await mkdtemp(path.join(base, 'restore-'));
    log.info(`restoring ${job.backup.id} from ${job.source} into ${scratch}`);
    const history =
      job.checkIntegrity && env.LEDGER_TABLE ? await dynamoHistory(env.LEDGER_TABLE) : undefined;
    let result: RestoreResult;
    try {
      result = await runSandboxJob(job, {
        // A stop (SIGTERM, the token gone) ends a read in flight at once, however slow the store.
        store: abortableStore(await openLocation(job.source), controller.signal),
        root: scratch,
        signal: controller.signal,
        onProgress: (p) =>
          log.info(`${p.phase}: ${p.files} files, ${p.bytes} bytes`, {
            phase: p.phase,
            files: p.files,
            bytes: p.bytes,
          }),
        ...(history ? { history } : {}),
      });
    } finally {
      await history?.close();
    }
    log.info(`restore ${result.status} in ${result.durationMs} ms (${result.filesRestored} files)`, {
      status: result.status,
      durationMs: result.durationMs,
    });
    const record =
      io.record ??
      (env.LEDGER_TABLE ? (j, r) => recordInDynamo(env.LEDGER_TABLE as string, j, r) : undefined);
    await record?.(job, result);
    if (env.RESULT_FILE) await writeFile(env.RESULT_FILE, JSON.stringify(result));
    io.stdout(JSON.stringify(result));
    // The ledger holds the whole result; the token's output stays small (Step Functions' 256 KB).
    await reporter?.succeed({
      ...result,
      integrity: result.integrity ? { status: result.integrity.status } : undefined,
    });
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error(`the restore sandbox failed: ${message}`);
    try {
      await reporter?.fail(RESTORE_FAILED_ERROR, message);
    } catch (answerError) {
      log.error(`could not report the failure to the state machine: ${(answerError as Error).message}`);
    }
    return 1;
  } finally {
    reporter?.stopHeartbeats();
    if (scratch) await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  // Through a symlinked folder (a worktree's node_modules) argv names the link, the module its target.
  const real = (() => {
    try {
      return realpathSync(path.resolve(entry));
    } catch {
      return path.resolve(entry);
    }
  })();
  return (
    import.meta.url === pathToFileURL(real).href ||
    import.meta.url === pathToFileURL(path.resolve(entry)).href
  );
}

/** A job for a long-lived sandbox process: the per-job variables (JOB or JOB_FILE, SANDBOX_ROOT, RESULT_FILE). */
export interface ServedJob {
  env: Record<string, string>;
}

/** The answer to a served job: what a one-job process would have exited with and printed. */
export interface ServedResult {
  code: number;
  stdout: string;
}

/**
 * SANDBOX_SERVE=1 with an IPC channel (the local sandbox's workers): restores one job after
 * another, each into its own folder, without paying the process start and module loading each
 * time. A job that fails is answered like any other; the parent replaces a worker that timed out
 * or crashed (the process tree goes, as with a one-job process).
 */
function serve(): void {
  let controller: AbortController | undefined;
  const stop = () => controller?.abort();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent is gone (it ended, or crashed): so is its worker.
  process.on('disconnect', () => process.exit(0));
  process.stderr.write(`sandbox worker pid ${process.pid}\n`);
  process.on('message', (message: ServedJob) => {
    controller = new AbortController();
    let stdout = '';
    runSandbox(
      { ...process.env, ...message.env },
      {
        stdout: (line) => {
          stdout += `${line}\n`;
        },
        stderr: (line) => process.stderr.write(`${line}\n`),
        signal: controller.signal,
      },
    ).then(
      (code) => process.send?.({ code, stdout } satisfies ServedResult),
      (error) => {
        process.stderr.write(`${(error as Error).stack ?? error}\n`);
        process.send?.({ code: 1, stdout } satisfies ServedResult);
      },
    );
  });
}

if (isMain() && process.env.SANDBOX_SERVE === '1' && process.send) serve();
else if (isMain()) {
  const controller = new AbortController();
  // ECS stops a task with SIGTERM: stop the restore, clean up, answer the token.
  process.once('SIGTERM', () => controller.abort());
  process.once('SIGINT', () => controller.abort());
  runSandbox(process.env, {
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    signal: controller.signal,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`${(error as Error).stack ?? error}\n`);
      process.exitCode = 1;
    },
  );
}
