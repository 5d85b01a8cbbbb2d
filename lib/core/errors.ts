/**
 * Domain errors. Adapters translate SDK and system errors into these at their boundary,
 * so the edges (CLI, handlers) decide exit codes and statuses without knowing the SDKs.
 */
export class BackupValidatorError extends Error {
  override name = 'BackupValidatorError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bad usage or configuration: exit 2, nothing runs. */
export class UsageError extends BackupValidatorError {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The one wording of a configuration value that is not valid: what `key` must be, and what it was when that helps. */
export function invalidConfig(key: string, what: string, ...got: [] | [unknown]): UsageError {
  return new UsageError(
    `configuration key "${key}" must be ${what}${got.length > 0 ? `, got ${JSON.stringify(got[0])}` : ''}`,
    key,
  );
}

export type StoreErrorKind =
  | 'not-found'
  | 'access-denied'
  | 'archived'
  | 'unreachable'
  | 'credentials'
  /** The object is no longer the version that was listed (overwritten or shortened since). */
  | 'changed'
  | 'io';

/** An object store could not do what was asked. */
export class StoreError extends BackupValidatorError {
  override name = 'StoreError';
  constructor(
    message: string,
    readonly kind: StoreErrorKind,
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The ledger could not be reached, read or written. */
export class LedgerError extends BackupValidatorError {
  override name = 'LedgerError';
  constructor(
    message: string,
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The sandbox could not run a restore (launch failure, crash, timeout). */
export class SandboxError extends BackupValidatorError {
  override name = 'SandboxError';
  constructor(
    message: string,
    readonly backupId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The run was stopped by a signal (Ctrl-C, SIGTERM): recorded as ABORTED, never a verdict. */
export class InterruptedError extends BackupValidatorError {
  override name = 'InterruptedError';
  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    message = `interrupted by ${signal}`,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `backup` could not make a backup from its sources (a command failed or wrote nothing, a
 * folder vanished or changed while it was read): nothing is left at the target; exit 1.
 */
export class BackupFailedError extends BackupValidatorError {
  override name = 'BackupFailedError';
}
