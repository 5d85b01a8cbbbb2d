import type { Policy, ProbeConfig } from '../config.ts';
import type { Backup, ContentDigest, RestoreResult } from '../model.ts';
import type { ChecksumHistory, ObjectStore } from '../ports.ts';

export type RestorePhase = 'download' | 'extract' | 'verify' | 'probes' | 'cleanup';

export interface RestoreProgress {
  phase: RestorePhase;
  /** Compressed (archive) or downloaded (directory) bytes read so far. */
  bytes: number;
  files: number;
}

export interface RestoreRequest {
  backup: Backup;
  store: ObjectStore;
  /** An empty (or absent) folder; everything restored stays below it. Its contents are removed afterwards. */
  root: string;
  policy: Policy;
  probes: ProbeConfig[];
  /** What the integrity pass recorded of each file (a complete listing: counts are compared too). */
  references?: ContentDigest[];
  /** SHA-256 of each stored object (key -> hex) as the integrity pass read it. */
  objectSha256?: Record<string, string>;
  /** The checksums recorded when the backup was first seen (the ledger's, or carried by the job). */
  history?: ChecksumHistory;
  /** `archives.patterns`: files of a directory backup that are archive backups of their own. */
  archivePatterns?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Leave the restored files in place (for debugging); the default removes them. */
  keep?: boolean;
}

export type Phases = RestoreResult['phases'];

export const READ_HIGH_WATER_MARK = 1024 * 1024;
export const PROGRESS_EVERY_BYTES = 16 * 1024 * 1024;
