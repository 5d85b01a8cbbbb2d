import type { Backup } from '../model.ts';
import type { ChecksumHistory, FirstSeenChecksum } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import type { ObjectState } from './object-state.ts';

/** The checksums recorded at first sight, read-only: what a restore job carries from the ledger. */
export function recordedHistory(records: readonly FirstSeenChecksum[]): ChecksumHistory {
  const byPath = new Map(records.map((r) => [r.path, r]));
  return {
    recordFirstSeen: async (_backupId, checksums) =>
      checksums.flatMap((c) => {
        const record = byPath.get(c.path);
        return record ? [record] : [];
      }),
    firstSeenOf: async () => [...records],
  };
}

async function compareWithHistory(
  backupId: string,
  states: readonly ObjectState[],
  history: ChecksumHistory,
  findings: FindingList,
): Promise<void> {
  // Damaged objects are not recorded: a corrupt first sight must not become the reference.
  const trusted = states.filter((s) => s.readFully && !s.mismatch && !s.damaged && s.sha256 !== undefined);
  if (trusted.length === 0) return;
  const earlier = await history.recordFirstSeen(
    backupId,
    trusted.map((s) => ({ path: s.path, sha256: s.sha256 as string, size: s.size })),
  );
  const byPath = new Map(trusted.map((s) => [s.path, s]));
  for (const record of earlier) {
    const state = byPath.get(record.path);
    if (!state) continue;
    if (record.sha256.toLowerCase() === state.sha256) {
      state.references++;
    } else {
      state.mismatch = true;
      findings.add(
        'CHECKSUM_CHANGED',
        `${state.path} changed since it was first seen on ${record.firstSeenAt}: SHA-256 was ${record.sha256} (${record.size} bytes), now ${state.sha256} (${state.size} bytes); backups are immutable, so this one was overwritten or damaged; restore it from another copy`,
        state.path,
      );
    }
  }
}

/**
 * The last references, once every other was compared: the first-seen checksums, then the
 * objects that no reference vouched for. Returns how many were left unreferenced.
 */
export async function finishReferences(
  backup: Backup,
  states: readonly ObjectState[],
  history: ChecksumHistory | undefined,
  findings: FindingList,
): Promise<number> {
  if (history) await compareWithHistory(backup.id, states, history, findings);
  const unreferenced = states.filter(
    (s) => s.readFully && s.references === 0 && !s.mismatch && !s.damaged && !s.unlisted && !s.empty,
  );
  if (unreferenced.length > 0) {
    const examples = unreferenced.slice(0, 5).map((s) => s.path);
    const lookedFor = backup.manifestKeys.length > 0 ? 'no line in SHA256SUMS' : 'no SHA256SUMS';
    findings.add(
      'NO_REFERENCE_CHECKSUM',
      unreferenced.length === 1
        ? `${examples[0]} has no reference checksum (${lookedFor}, sidecar, store checksum or earlier record): its content cannot be verified this time; add a SHA256SUMS or a .sha256 sidecar`
        : `${unreferenced.length} of ${states.length} objects have no reference checksum (e.g. ${examples.join(', ')}): their content cannot be verified this time; add a SHA256SUMS or .sha256 sidecars`,
      unreferenced.length === 1 ? examples[0] : undefined,
    );
  }
  return unreferenced.length;
}
