import { StoreError } from '../errors.ts';
import { type Finding, type FindingCode, finding } from '../findings.ts';
import { isOutOfSpace, RestoreAbort } from './abort.ts';

/** The one finding for what stopped a restore. */
export function failureFinding(error: unknown, backupId: string, root: string, archive?: string): Finding {
  const damaged = archive === undefined ? { backup: backupId } : { backup: backupId, object: archive };
  if (error instanceof RestoreAbort) {
    if (
      error.object === undefined &&
      (error.code === 'ARCHIVE_TRUNCATED' || error.code === 'ARCHIVE_CORRUPT')
    )
      return finding(error.code, error.message, damaged);
    return finding(error.code, error.message, {
      backup: backupId,
      ...(error.object !== undefined ? { object: error.object } : {}),
    });
  }
  if (error instanceof StoreError) {
    if (error.kind === 'not-found') {
      return finding(
        'MISSING_OBJECT',
        `the backup is gone from the store since it was listed: ${error.message}`,
        {
          backup: backupId,
        },
      );
    }
    const code: FindingCode = error.kind === 'access-denied' ? 'ACCESS_DENIED' : 'RESTORE_FAILED';
    return finding(code, `the restore could not read the backup: ${error.message}`, { backup: backupId });
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (isOutOfSpace(error)) {
    return finding(
      'RESTORE_FAILED',
      `the sandbox ran out of space at ${root} (${message}): give the restore more scratch storage`,
      { backup: backupId },
    );
  }
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message)) {
    return finding('ARCHIVE_TRUNCATED', `the compressed stream ends early: ${message}`, damaged);
  }
  if (code === 'Z_DATA_ERROR' || code?.startsWith('ERR_ZSTD') || code === 'ERR__ERROR_CORRUPTION_DETECTED') {
    return finding('ARCHIVE_CORRUPT', `the compressed stream is invalid: ${message}`, damaged);
  }
  return finding('RESTORE_FAILED', `the restore failed unexpectedly: ${message}`, { backup: backupId });
}
