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
  /** On the one finding that stands for those of its code left out by the budget: how many were left out. */
  omitted?: number;
}

export function finding(
  code: FindingCode,
  message: string,
  where: { backup?: string; series?: string; object?: string } = {},
  severity: Severity = FINDING_SEVERITY[code],
): Finding {
  return { code, severity, ...where, message };
}

/**
 * Findings about objects kept per code in one backup's result, by the integrity pass and the
 * restore alike. Past it, findings of that code are counted, and one finding says how many were
 * left out: never dropped silently. It bounds a result whatever the backup holds: a restore's
 * result must fit a task-token payload (Step Functions' 256 KB), and a pass over a million damaged
 * files holds a few hundred findings, not a million.
 */
export const FINDINGS_PER_CODE = 25;
const OMITTED_EXAMPLES = 5;

/** Findings as they are found, kept within {@link FINDINGS_PER_CODE} for each code. */
export class FindingBudget {
  private readonly kept: Finding[] = [];
  private readonly keptPerCode = new Map<FindingCode, number>();
  private readonly left = new Map<FindingCode, { like: Finding; omitted: number; examples: string[] }>();

  /** Findings about the backup as a whole (no object) are few and always kept; a budget's own summary is added up. */
  add(item: Finding): void {
    if (item.omitted !== undefined) {
      this.leaveOut(item, item.omitted);
      return;
    }
    const kept = this.keptPerCode.get(item.code) ?? 0;
    if (item.object === undefined || kept < FINDINGS_PER_CODE) {
      if (item.object !== undefined) this.keptPerCode.set(item.code, kept + 1);
      this.kept.push(item);
      return;
    }
    this.leaveOut(item, 1, item.object);
  }

  /** The findings kept, in the order found, then one per code saying how many were left out. */
  finish(): Finding[] {
    const summaries = [...this.left.entries()].map(([code, { like, omitted, examples }]) => {
      const { object: _object, message: _message, omitted: _omitted, ...where } = like;
      const eg = examples.length > 0 ? ` (e.g. ${examples.join(', ')})` : '';
      return {
        ...where,
        message: `${omitted} more ${code} findings like the ones above were left out${eg}`,
        omitted,
      };
    });
    return [...this.kept, ...summaries];
  }

  private leaveOut(item: Finding, count: number, example?: string): void {
    const entry = this.left.get(item.code) ?? { like: item, omitted: 0, examples: [] };
    entry.omitted += count;
    if (example !== undefined && entry.examples.length < OMITTED_EXAMPLES) entry.examples.push(example);
    this.left.set(item.code, entry);
  }
}

/** A whole list of findings within the budget. */
export function withinBudget(findings: Iterable<Finding>): Finding[] {
  const budget = new FindingBudget();
  for (const item of findings) budget.add(item);
  return budget.finish();
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
