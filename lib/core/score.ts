import type { Policy } from './config.ts';
import { type Finding, type Status, statusOfFindings } from './findings.ts';

/** What the integrity pass learned of each stored object, reduced to what the score needs. */
export interface ObjectTally {
  /** Objects of the backup (files of a directory, or the archive). */
  objects: number;
  /** Objects that matched at least one reference checksum and mismatched none. */
  verified: number;
  /** Objects read fully for which no reference exists (each counts half). */
  unreferenced: number;
  /** Objects whose bytes were read to the end. */
  readFully: number;
  /** Archives read (0 for a plain directory of files). */
  archives: number;
  /** Archives whose decompression and tar parsing found no damage. */
  archivesClean: number;
}

export interface ScoreComponents {
  checksum: number;
  access: number;
  archive: number;
}

export function scoreComponents(tally: ObjectTally): ScoreComponents {
  if (tally.objects === 0) return { checksum: 0, access: 0, archive: tally.archives === 0 ? 1 : 0 };
  return {
    checksum: Math.min(1, (tally.verified + 0.5 * tally.unreferenced) / tally.objects),
    access: Math.min(1, tally.readFully / tally.objects),
    archive: tally.archives === 0 ? 1 : Math.min(1, tally.archivesClean / tally.archives),
  };
}

/** Weighted integrity score in [0, 1], for trends; weights from the policy (normalized). */
export function integrityScore(tally: ObjectTally, weights: Policy['weights']): number {
  const c = scoreComponents(tally);
  const total = weights.checksum + weights.access + weights.archive;
  if (total <= 0) return 0;
  const score =
    (c.checksum * weights.checksum + c.access * weights.access + c.archive * weights.archive) / total;
  return Math.round(score * 10_000) / 10_000;
}

/**
 * FAIL on any error finding whatever the score; WARN on any warning or a score under the
 * policy's threshold; otherwise PASS.
 */
export function integrityVerdict(findings: readonly Finding[], score: number, policy: Policy): Status {
  const status = statusOfFindings(findings);
  if (status === 'FAIL') return 'FAIL';
  if (status === 'WARN' || score < policy.integrityThreshold) return 'WARN';
  return 'PASS';
}
