import type { ArchiveFormat } from '../compression.ts';
import type { FindingCode } from '../findings.ts';
import { type ArchiveProblem, EMPTY_SHA256 } from '../inspect/inspect-archive.ts';
import type { Backup } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import { compareParentManifests } from './nested.ts';
import type { ObjectState } from './object-state.ts';
import { compareSidecar } from './sidecars.ts';
import { compareStoreChecksum, type StoreChecksum } from './store-checksums.ts';

/** A 0-byte archive object: the same finding whether the integrity pass or a restore meets it. */
export function emptyArchiveFinding(state: ObjectState, findings: FindingList): void {
  const path = state.path;
  state.readFully = true;
  state.sha256 = EMPTY_SHA256;
  state.size = 0;
  state.empty = true;
  findings.add(
    'EMPTY_BACKUP',
    `${path} is 0 bytes: the backup job wrote nothing (disk full, crash or failed upload); check the job`,
    path,
  );
}

/**
 * The references of an archive's stored bytes: its sidecar, the store's full-object checksum
 * and, for an archive inside a directory backup, the SHA256SUMS files that may list it.
 */
export async function compareArchiveReferences(
  backup: Backup,
  store: ObjectStore,
  state: ObjectState,
  stored: StoreChecksum | undefined,
  actualCrc: string | undefined,
  findings: FindingList,
  signal?: AbortSignal,
): Promise<void> {
  if (state.sha256 === undefined) return;
  if (backup.sidecarKey) await compareSidecar(backup.sidecarKey, store, state, findings, signal);
  compareStoreChecksum(state, stored, actualCrc, findings);
  await compareParentManifests(backup, store, state, findings, signal);
}

const ARCHIVE_PROBLEM_CODE: Record<ArchiveProblem['kind'], FindingCode> = {
  truncated: 'ARCHIVE_TRUNCATED',
  corrupt: 'ARCHIVE_CORRUPT',
  limit: 'DECOMPRESSION_LIMIT',
};

/** Damage an archive read showed, as the findings both passes give. */
export function reportArchiveProblems(
  path: string,
  format: ArchiveFormat,
  problems: readonly ArchiveProblem[],
  findings: FindingList,
  objectOf: (problem: ArchiveProblem) => string,
): void {
  for (const problem of problems) {
    const code = ARCHIVE_PROBLEM_CODE[problem.kind];
    const where =
      problem.layer === 'tar' && problem.kind !== 'limit' && format.compression !== 'none'
        ? ' (offset in the decompressed tar)'
        : '';
    findings.add(code, `${path}: ${problem.message}${where}`, objectOf(problem));
  }
}
