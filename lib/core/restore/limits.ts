import { RestoreAbort } from './abort.ts';

export interface RestoreLimitValues {
  maxBytes: number;
  maxExpansionRatio: number;
  maxEntries: number;
}

/**
 * Below this many expanded bytes the ratio is not judged: small, very repetitive files
 * (a log of one repeated line) compress far beyond any sane ratio without being a bomb.
 */
export const RATIO_GRACE_BYTES = 16 * 1024 * 1024;

/**
 * Which tar entries count towards `maxEntries`, in the restore and in the integrity pass alike:
 * what a restore creates (files, folders other than the root, links), not devices or fifos.
 */
export function countsAsEntry(
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other',
  relative: string,
): boolean {
  return type !== 'other' && !(type === 'directory' && relative === '');
}

/**
 * Counts what a restore has produced (or, with `reading`, what the integrity pass has expanded
 * and hashed: the same limits, so a backup the restore would refuse is refused before it) and
 * stops the moment a limit is passed.
 */
export class RestoreLimits {
  entries = 0;
  bytes = 0;

  constructor(
    readonly limits: RestoreLimitValues,
    private readonly reading = false,
  ) {}

  /** One more entry (file, folder, link) is about to be created. */
  entry(path: string): void {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      throw new RestoreAbort(
        'DECOMPRESSION_LIMIT',
        `the backup holds more than ${this.limits.maxEntries} entries (stopped at "${path}"): raise restore.maxEntries if this backup is genuine`,
        path,
      );
    }
  }

  /** A member announces its size: refuse it before writing a byte when it cannot fit. */
  declare(size: number, path: string): void {
    if (this.bytes + size > this.limits.maxBytes) {
      throw new RestoreAbort(
        'DECOMPRESSION_LIMIT',
        this.reading
          ? `"${path}" declares ${size} bytes, which would take the backup past the ${this.limits.maxBytes}-byte limit on restored size (${this.bytes} bytes of content before it): not expanded; raise restore.maxBytes if this backup is genuine`
          : `"${path}" declares ${size} bytes, which would take the restore past the ${this.limits.maxBytes}-byte limit (${this.bytes} bytes restored so far): raise restore.maxBytes if this backup is genuine`,
        path,
      );
    }
  }

  /** Bytes actually written; never trusts a declared size. */
  add(count: number, path: string): void {
    this.bytes += count;
    if (this.bytes > this.limits.maxBytes) {
      throw new RestoreAbort(
        'DECOMPRESSION_LIMIT',
        this.reading
          ? `the backup's content passed the ${this.limits.maxBytes}-byte limit on restored size while reading "${path}": raise restore.maxBytes if this backup is genuine`
          : `the restore passed the ${this.limits.maxBytes}-byte limit while writing "${path}": raise restore.maxBytes if this backup is genuine`,
        path,
      );
    }
  }

  /** Expanded bytes so far against compressed bytes read so far. */
  ratio(expanded: number, compressed: number): void {
    if (expanded <= RATIO_GRACE_BYTES || compressed <= 0) return;
    if (expanded > compressed * this.limits.maxExpansionRatio) {
      throw new RestoreAbort(
        'DECOMPRESSION_LIMIT',
        `the archive expanded to ${expanded} bytes from ${compressed} compressed bytes, past the ${this.limits.maxExpansionRatio}:1 expansion limit (a decompression bomb?): raise restore.maxExpansionRatio if this backup is genuine`,
      );
    }
  }
}
