import { randomBytes } from 'node:crypto';
import {
  BackupValidatorError,
  InterruptedError,
  LedgerError,
  SandboxError,
  StoreError,
  UsageError,
} from '../core/errors.ts';
import type { RunReport } from '../core/model.ts';
import { INTERRUPT_EXIT, type SignalSource } from './interrupt.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  cwd: string;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
  /** The restore sandbox's entry point; the compiled CLI gives its bundle (default: the sources, through tsx). */
  sandboxEntry?: string;
  /** The integrity worker threads' entry (the compiled CLI's bundle); without it passes run on the main thread. */
  integrityWorker?: string;
  /** SIGINT/SIGTERM (the process): a run they interrupt stops, cleans up and is recorded as ABORTED. */
  signals?: SignalSource;
}

export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  crashed: 3,
  interrupted: INTERRUPT_EXIT.SIGINT,
  terminated: INTERRUPT_EXIT.SIGTERM,
} as const;

export function newRunId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function exitCodeOf(report: RunReport): number {
  return report.status === 'FAIL' ? EXIT.failed : EXIT.ok;
}

/** The one mapping of an error to what the user reads and the exit code. */
export function reportError(io: CliIo, error: unknown, verbose: boolean, command?: string): number {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof InterruptedError) {
    io.stderr.write(`backup-validator: ${message}\n`);
    return INTERRUPT_EXIT[error.signal];
  }
  if (error instanceof UsageError) {
    const help = command ? `backup-validator help ${command}` : 'backup-validator --help';
    io.stderr.write(`backup-validator: ${message}\nRun "${help}" for usage.\n`);
    return EXIT.usage;
  }
  const known =
    error instanceof StoreError ||
    error instanceof LedgerError ||
    error instanceof SandboxError ||
    error instanceof BackupValidatorError;
  io.stderr.write(`backup-validator: ${known ? '' : 'unexpected error: '}${message}\n`);
  if (verbose && error instanceof Error) io.stderr.write(`${error.stack ?? ''}\n`);
  else if (!known) io.stderr.write('Run again with --verbose for the stack trace.\n');
  return EXIT.crashed;
}
