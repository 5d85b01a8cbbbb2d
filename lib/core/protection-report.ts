import type { ImmutabilityRequirement } from './config.ts';
import { StoreError } from './errors.ts';
import type { Status } from './findings.ts';
import type { BackupReport, RunReport } from './model.ts';
import type { CopyTarget } from './ports.ts';
import { readJson } from './run-store.ts';

/** The report's `immutability` of one backup (docs/contract.md). */
export interface ImmutabilitySummary {
  /** NOT_APPLICABLE for folder sources: never a PASS. */
  status: Status | 'NOT_APPLICABLE';
  require: ImmutabilityRequirement;
  bucket?: string;
  versioning?: 'Enabled' | 'Suspended' | 'Off';
  objectLock?: boolean;
  /** Stored objects judged (content, manifests, sidecar). */
  objects?: number;
  /** Objects under an active retention or a legal hold. */
  locked?: number;
  /** Objects under an active COMPLIANCE-mode retention. */
  compliance?: number;
  legalHolds?: number;
  earliestRetainUntil?: string;
  /** When the earliest applicable lifecycle rule expires one of its objects. */
  lifecycleExpiresAt?: string;
  /** Why it is not applicable, or why the check could not complete. */
  reason?: string;
}

/** How one object's copy was proven equal to the verified backup. */
export type CopyProofMethod = 'checksum' | 'read';

/** The report's `copies` entry: one redundancy target of one backup. */
export interface CopyProof {
  target: string;
  /** Whether every object of the copy was proven. */
  verified: boolean;
  /** Objects proven by comparing stored checksums, without reading the copy. */
  provenByChecksum: number;
  /** Objects proven by reading the copy back. */
  provenByRead: number;
  /** How the checksum proofs compared, e.g. "SHA256 FULL_OBJECT = verified SHA-256". */
  comparisons: string[];
  /** Bytes of the copy not downloaded thanks to the checksum proofs. */
  bytesNotDownloaded: number;
}

export const protectionKeys = {
  immutability: (runId: string, shard: number) => `runs/${runId}/immutability/${shard}.json`,
  /** Per shard: the Redundancy map copies shards in parallel, each writing its own. */
  copies: (runId: string, shard: number) => `runs/${runId}/copies/${shard}.json`,
};
export const immutabilityKey = protectionKeys.immutability;

async function readOptional<T>(store: CopyTarget, key: string): Promise<T | undefined> {
  try {
    return await readJson<T>(store, key);
  } catch (error) {
    if (error instanceof StoreError && error.kind === 'not-found') return undefined;
    throw error;
  }
}

export type ProtectedBackupReport = BackupReport & {
  immutability?: ImmutabilitySummary;
  copies?: CopyProof[];
};

export type ProtectedRunReport = Omit<RunReport, 'backups'> & {
  backups: ProtectedBackupReport[];
  /** Run totals of the copy proofs (present when a backup needed copies). */
  copyProof?: { provenByChecksum: number; provenByRead: number; bytesNotDownloaded: number };
};

/**
 * Adds what the immutability check and the copy proofs recorded in the run store to the report:
 * `immutability` and `copies` per backup, `copyProof` totals for the run.
 */
export async function attachProtection(
  runStore: CopyTarget,
  runId: string,
  shards: readonly number[],
  report: RunReport,
): Promise<ProtectedRunReport> {
  const out = report as ProtectedRunReport;
  const immutability: Record<string, ImmutabilitySummary> = {};
  for (const shard of shards) {
    Object.assign(
      immutability,
      (await readOptional<Record<string, ImmutabilitySummary>>(
        runStore,
        protectionKeys.immutability(runId, shard),
      )) ?? {},
    );
  }
  const copies: Record<string, CopyProof[]> = {};
  for (const shard of shards) {
    Object.assign(
      copies,
      (await readOptional<Record<string, CopyProof[]>>(runStore, protectionKeys.copies(runId, shard))) ?? {},
    );
  }
  const totals = { provenByChecksum: 0, provenByRead: 0, bytesNotDownloaded: 0 };
  for (const backup of out.backups) {
    const summary = immutability[backup.id];
    if (summary) backup.immutability = summary;
    const proofs = copies[backup.id];
    if (!proofs) continue;
    backup.copies = proofs;
    for (const p of proofs) {
      totals.provenByChecksum += p.provenByChecksum;
      totals.provenByRead += p.provenByRead;
      totals.bytesNotDownloaded += p.bytesNotDownloaded;
    }
  }
  if (Object.keys(copies).length > 0) out.copyProof = totals;
  return out;
}
