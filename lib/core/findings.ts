export type Severity = 'error' | 'warning';

export const FINDING_SEVERITY = {
  CHECKSUM_MISMATCH: 'error',
  CHECKSUM_CHANGED: 'error',
  MISSING_OBJECT: 'error',
  UNLISTED_OBJECT: 'warning',
  NO_REFERENCE_CHECKSUM: 'warning',
  ARCHIVE_CORRUPT: 'error',
  ARCHIVE_TRUNCATED: 'error',
  EMPTY_BACKUP: 'error',
  ACCESS_DENIED: 'error',
  ARCHIVED_STORAGE: 'warning',
  UNSAFE_PATH: 'error',
  DECOMPRESSION_LIMIT: 'error',
  RESTORE_MISMATCH: 'error',
  PROBE_FAILED: 'error',
  RESTORE_FAILED: 'error',
  RTO_EXCEEDED: 'warning',
  RPO_EXCEEDED: 'error',
  SIZE_ANOMALY: 'warning',
  REDUNDANCY_MISSING: 'error',
  /** Added to the contract: a check could not complete (infrastructure failure, timeout); never a pass. */
  CHECK_FAILED: 'error',
  /** Added: a source, or a series the ledger knows, has no backup in this listing. */
  NO_BACKUPS: 'error',
  /** Added: a sidecar or manifest with nothing beside it to check. */
  ORPHAN_REFERENCE: 'warning',
  /** Added: a name timestamp later than now beyond the clock-skew allowance. */
  FUTURE_TIMESTAMP: 'warning',
  /** Added (issue 15): no Object Lock / versioning protection where the policy asks for it; an error when required. */
  IMMUTABILITY_MISSING: 'warning',
  /** Added (issue 15): retention or lifecycle would remove a backup before the policy allows; an error when required. */
  RETENTION_SHORT: 'warning',
  /** Added: an object passed its coverage window unverified and the budget cannot catch up (error when the policy says so). */
  COVERAGE_BEHIND: 'warning',
} as const satisfies Record<string, Severity>;

export type FindingCode = keyof typeof FINDING_SEVERITY;

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** Backup id, for findings about one backup. */
  backup?: string;
  /** Series name, for findings about a whole series (RPO). */
  series?: string;
  /** Path inside the backup. */
  object?: string;
  message: string;
}

export function finding(
  code: FindingCode,
  message: string,
  where: { backup?: string; series?: string; object?: string } = {},
  severity: Severity = FINDING_SEVERITY[code],
): Finding {
  return { code, severity, ...where, message };
}

export type Status = 'PASS' | 'WARN' | 'FAIL';
export type StageStatus = Status | 'SKIPPED';

const STATUS_RANK: Record<Status, number> = { PASS: 0, WARN: 1, FAIL: 2 };

export function worstStatus(statuses: Iterable<Status>): Status {
  let worst: Status = 'PASS';
  for (const s of statuses) if (STATUS_RANK[s] > STATUS_RANK[worst]) worst = s;
  return worst;
}

/** The status findings alone imply: any error fails, any warning warns. */
export function statusOfFindings(findings: readonly Finding[]): Status {
  if (findings.some((f) => f.severity === 'error')) return 'FAIL';
  if (findings.some((f) => f.severity === 'warning')) return 'WARN';
  return 'PASS';
}
