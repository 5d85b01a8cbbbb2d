import { randomBytes } from 'node:crypto';
import type { RunReport } from '../core/model.ts';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  cwd: string;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
  /** The restore sandbox's entry point; the compiled CLI gives its bundle (default: the sources, through tsx). */
  sandboxEntry?: string;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, crashed: 3 } as const;

export function newRunId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function exitCodeOf(report: RunReport): number {
  return report.status === 'FAIL' ? EXIT.failed : EXIT.ok;
}
