import type { Finding } from './findings.ts';

/** Which column of the results matrix a finding belongs to. */
const CHECK_OF: Record<Finding['code'], string> = {
  ACCESS_DENIED: 'access',
  ARCHIVED_STORAGE: 'access',
  CHECKSUM_MISMATCH: 'checksum',
  CHECKSUM_CHANGED: 'checksum',
  MISSING_OBJECT: 'checksum',
  UNLISTED_OBJECT: 'checksum',
  NO_REFERENCE_CHECKSUM: 'checksum',
  ARCHIVE_CORRUPT: 'archive',
  ARCHIVE_TRUNCATED: 'archive',
  EMPTY_BACKUP: 'archive',
  UNSAFE_PATH: 'restore',
  DECOMPRESSION_LIMIT: 'restore',
  RESTORE_MISMATCH: 'restore',
  RESTORE_FAILED: 'restore',
  RTO_EXCEEDED: 'restore',
  PROBE_FAILED: 'probes',
  RPO_EXCEEDED: 'compliance',
  SIZE_ANOMALY: 'compliance',
  REDUNDANCY_MISSING: 'compliance',
  CHECK_FAILED: 'access',
  NO_BACKUPS: 'compliance',
  ORPHAN_REFERENCE: 'checksum',
  FUTURE_TIMESTAMP: 'compliance',
  IMMUTABILITY_MISSING: 'compliance',
  RETENTION_SHORT: 'compliance',
  COVERAGE_BEHIND: 'compliance',
};

export const MATRIX_CHECKS = ['access', 'checksum', 'archive', 'restore', 'probes', 'compliance'] as const;

/** The column of the results matrix a finding code belongs to. */
export function checkOf(code: Finding['code']): string {
  return CHECK_OF[code];
}
