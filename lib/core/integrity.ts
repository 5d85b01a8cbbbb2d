import { checkArchive } from './integrity/archive.ts';
import { checkDirectory } from './integrity/directory.ts';
import type { IntegrityOptions } from './integrity/options.ts';
import type { Backup, IntegrityResult } from './model.ts';
import type { ObjectStore } from './ports.ts';
import { FindingList } from './references/finding-list.ts';
import { finishReferences } from './references/history.ts';
import type { ObjectState } from './references/object-state.ts';
import { integrityScore, integrityVerdict, type ObjectTally } from './score.ts';

/**
 * Reads a backup once and checks it against every reference checksum that exists: the
 * SHA256SUMS manifests of a directory, an archive's sidecar and tar-root SHA256SUMS, the
 * store's own SHA-256, and what the ledger recorded when the backup was first seen.
 * Every finding is collected; damage never stops the pass early.
 */
export async function checkIntegrity(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
): Promise<IntegrityResult> {
  const started = Date.now();
  const findings = new FindingList(backup.id);
  const states: ObjectState[] = [];
  const tally: ObjectTally = {
    objects: 0,
    verified: 0,
    unreferenced: 0,
    readFully: 0,
    archives: 0,
    archivesClean: 0,
  };
  let bytesRead = 0;
  let files = 0;
  let contentBytes = 0;
  const progress = (delta: number) => {
    bytesRead += delta;
    options.onProgress?.(delta);
  };
  const scoped: IntegrityOptions = { ...options, onProgress: progress };

  if (backup.kind === 'archive') {
    const result = await checkArchive(backup, store, scoped, findings, states, tally);
    files = result.files;
    contentBytes = result.contentBytes;
  } else {
    await checkDirectory(backup, store, scoped, findings, states);
    for (const s of states) {
      if (s.readFully) {
        files++;
        contentBytes += s.size;
      }
    }
  }

  tally.unreferenced = await finishReferences(backup, states, options.history, findings);

  tally.objects = states.length;
  tally.readFully = states.filter((s) => s.readFully).length;
  tally.verified = states.filter((s) => s.readFully && s.references > 0 && !s.mismatch).length;

  const all = findings.finish();
  const score = integrityScore(tally, options.policy.weights);
  const objectSha256: Record<string, string> = {};
  for (const s of states) if (s.sha256 !== undefined && s.readFully) objectSha256[s.key] = s.sha256;
  return {
    backupId: backup.id,
    status: integrityVerdict(all, score, options.policy),
    score,
    findings: all,
    durationMs: Date.now() - started,
    bytesRead,
    objectSha256,
    files,
    contentBytes,
  };
}
