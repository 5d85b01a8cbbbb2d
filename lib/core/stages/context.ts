import type { StageStatus } from '../findings.ts';
import type { Ledger } from '../ledger.ts';
import type { Backup } from '../model.ts';
import type { ChecksumReader, CopyTarget, IntegrityPasses, ObjectStore, ProtectionProbe } from '../ports.ts';

/**
 * What every stage of the pipeline is given, by the Lambda handlers, the local state machine and
 * the CLI alike. Each stage reads what it needs from the run store and the ledger, so a stage's
 * input and output stay small references whatever the number of backups.
 */
export interface StageContext {
  ledger: Ledger;
  /** Run artifacts: shards, restore jobs, reports. Never a source. */
  runStore: CopyTarget;
  openSource(url: string): ObjectStore;
  /** Deletion protection of an S3 source (issue 15); undefined for folders. */
  openProtection?(url: string): ProtectionProbe | undefined;
  /** The stored checksums of a store's objects, where it keeps them (S3): copies are proven without reading them. */
  checksumsOf?(store: ObjectStore): ChecksumReader | undefined;
  now(): Date;
  events?: StageEvents;
  /** Aborts the run (Ctrl-C, SIGTERM): stages stop between backups and record nothing half-done. */
  signal?: AbortSignal;
  /** Where integrity passes run when not on this thread (the CLI's worker threads); default: here. */
  integrityPasses?: IntegrityPasses;
  /** Where restores run when it is not this host (the Fargate sandbox): what it can take. */
  sandbox?: SandboxBounds;
}

export interface SandboxBounds {
  /** The most scratch storage a restore can have (GiB). */
  maxScratchGiB: number;
  /** The sandbox's region: it reaches S3 only there (a same-region gateway endpoint, no internet route). */
  region?: string;
}

export interface StageEvents {
  discovered?(backup: Backup): void;
  backupStarted?(backup: Backup, stage: 'integrity' | 'restore'): void;
  bytesRead?(bytes: number): void;
  backupFinished?(backup: Backup, stage: 'integrity' | 'restore', status: StageStatus): void;
}
