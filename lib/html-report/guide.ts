import type { FindingCode } from '../core/findings.ts';

/** What each finding means to an operator, and the first thing to do about it. */
export const FINDING_GUIDE: Record<FindingCode, { means: string; todo: string }> = {
  CHECKSUM_MISMATCH: {
    means: 'The stored bytes differ from a reference checksum: the backup is damaged.',
    todo: 'Restore from another copy or the previous backup; find what altered the file (disk, transfer, a job writing after its checksum).',
  },
  CHECKSUM_CHANGED: {
    means: 'The backup changed since it was first seen; backups should never change.',
    todo: 'Find who rewrote it (a job reusing a name, ransomware, a lifecycle rule); protect the bucket with Object Lock or versioning.',
  },
  MISSING_OBJECT: {
    means: 'Something the manifest or an earlier run listed is gone.',
    todo: 'Check deletions and lifecycle rules on the bucket; re-run the backup job.',
  },
  UNLISTED_OBJECT: {
    means: 'A file is present but its manifest does not list it, so nothing vouches for it.',
    todo: 'Have the backup job list every file it writes in SHA256SUMS.',
  },
  NO_REFERENCE_CHECKSUM: {
    means: 'There is nothing to compare against: the content is hashed but not verified.',
    todo: 'Have the backup job write a SHA256SUMS or a .sha256 sidecar (backup-validator backup does).',
  },
  ARCHIVE_CORRUPT: {
    means: 'The compressed or tar stream is invalid: the archive cannot be fully restored.',
    todo: 'Use another copy or the previous backup; check the job that wrote it.',
  },
  ARCHIVE_TRUNCATED: {
    means: 'The archive ends early: an upload or a job was cut short.',
    todo: 'Re-run the backup job and check its exit status and free space.',
  },
  EMPTY_BACKUP: {
    means: 'The backup holds no file content: the job "succeeded" without writing anything.',
    todo: 'Fix the backup job now: this is the failure that goes unnoticed for months.',
  },
  ACCESS_DENIED: {
    means: 'An object cannot be read because of permissions or encryption keys.',
    todo: "Grant the validator's role read access (and kms:Decrypt on the bucket's key).",
  },
  ARCHIVED_STORAGE: {
    means: 'The object is in an archive storage class and needs a restore request before it can be read.',
    todo: 'Restore it from Glacier to check it, or keep a recent copy in an instant-access class.',
  },
  UNSAFE_PATH: {
    means:
      'An entry would be written outside the restore folder or through a link: a hostile or broken archive.',
    todo: 'Do not extract this archive with ordinary tools; find out who wrote it.',
  },
  DECOMPRESSION_LIMIT: {
    means: 'The archive expands past the configured limits (size, ratio or entry count).',
    todo: 'Raise the limits for this series if the size is expected; otherwise treat it as a decompression bomb.',
  },
  RESTORE_MISMATCH: {
    means: 'A restored file differs from what the backup says it holds.',
    todo: 'Treat the backup as damaged; restore from another copy.',
  },
  PROBE_FAILED: {
    means:
      'The restored data is unusable by its application (a corrupt database, an incomplete dump, invalid JSON).',
    todo: 'Fix the backup job (dump with the right flags, stop writes during the copy) and take a new backup.',
  },
  RESTORE_FAILED: {
    means: 'The restore could not complete (crash, timeout, out of space).',
    todo: 'Read the message; re-run the restore, and give the sandbox more time or storage if needed.',
  },
  RTO_EXCEEDED: {
    means: 'The restore took longer than the recovery-time objective.',
    todo: 'Speed up restores (smaller archives, faster storage) or agree a realistic RTO.',
  },
  RPO_EXCEEDED: {
    means:
      'The newest backup of this series is older than the recovery-point objective: the job has stopped or fails.',
    todo: 'Check the backup job and its schedule first: new backups are not arriving.',
  },
  SIZE_ANOMALY: {
    means: "The backup's size or file count departs sharply from the series' usual values.",
    todo: 'Check whether data was deleted or the job changed what it backs up.',
  },
  REDUNDANCY_MISSING: {
    means: 'Fewer verified copies exist than the policy asks for.',
    todo: 'Check the copy targets and permissions; the next run copies what is missing.',
  },
  CHECK_FAILED: {
    means:
      'A check could not complete because of an infrastructure fault; this says nothing about the backup itself.',
    todo: 'Read the message; the next run checks again.',
  },
  NO_BACKUPS: {
    means: 'A source or a known series has no backup at all in this listing.',
    todo: 'Check the source path and the backup job; something deleted or stopped writing the backups.',
  },
  ORPHAN_REFERENCE: {
    means: 'A checksum file or manifest has nothing beside it to check.',
    todo: 'Look for the backup it belonged to: it may have been deleted or never uploaded.',
  },
  FUTURE_TIMESTAMP: {
    means: "The backup's name carries a time in the future; its age is judged from when it was first seen.",
    todo: "Fix the clock or the naming of the backup job's host.",
  },
  IMMUTABILITY_MISSING: {
    means:
      'Nothing stops a credential that can write to the bucket from deleting or overwriting this backup: no Object Lock retention or legal hold (or, where the policy allows it, no versioning).',
    todo: 'Enable versioning and Object Lock on the bucket with a default retention in the mode the policy asks for; set retention on the existing objects.',
  },
  RETENTION_SHORT: {
    means:
      "The backup's Object Lock retention ends, or a lifecycle rule expires it, before the policy's minimum retention or the series' RPO window.",
    todo: 'Lengthen the default retention or the lifecycle expiration, or lower minRetentionDays if the policy is wrong.',
  },
  COVERAGE_BEHIND: {
    means:
      'Some backups were not read within the coverage window, and the per-run budget cannot catch up: damage there could go unnoticed.',
    todo: 'Raise coverage.budget, run more often, or lengthen coverage.withinDays; `backup-validator plan` shows what is needed.',
  },
};
