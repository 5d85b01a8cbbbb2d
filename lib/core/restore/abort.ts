import type { FindingCode } from '../findings.ts';

/**
 * Stops a restore with one finding. Thrown from deep inside extraction (a tar entry, a
 * chunk) so the stream is abandoned at once instead of finishing a hostile archive.
 */
export class RestoreAbort extends Error {
  override name = 'RestoreAbort';
  constructor(
    readonly code: FindingCode,
    message: string,
    readonly object?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Whether an error is the file system running out of room (or quota). */
export function isOutOfSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
