import { randomBytes } from 'node:crypto';
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
