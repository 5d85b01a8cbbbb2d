import type { Policy } from '../config.ts';
import type { ContentDigest } from '../model.ts';
import type { ChecksumHistory } from '../ports.ts';

export interface IntegrityOptions {
  policy: Policy;
  history?: ChecksumHistory;
  onProgress?(bytesDelta: number): void;
  signal?: AbortSignal;
  /** Each archive member (or the content of a plain compressed file) as it is hashed. */
  onContent?(digest: ContentDigest): void;
  /** Files of a directory backup read at once (default 8). */
  concurrency?: number;
  /** `archives.patterns`: names checked as archive backups of their own, not sniffed again here. */
  archivePatterns?: readonly string[];
}

/** Storage classes whose objects need a restore request before they can be read. */
export const ARCHIVED_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
