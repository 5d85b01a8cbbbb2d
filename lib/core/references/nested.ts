import type { RootManifestCheck } from '../inspect/inspect-archive.ts';
import { describeManifestError, forEachSha256SumsLine, MAX_MANIFEST_BYTES } from '../manifest.ts';
import type { Backup } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import { folderOf } from './manifests.ts';
import { compareReference, type ObjectState } from './object-state.ts';
import { accessMessage, isAbort, readSmallObject } from './reading.ts';

/** References one level away: a directory backup's manifests listing an archive in it, an archive's own root SHA256SUMS. */

/**
 * An archive found inside a directory backup: the SHA256SUMS files of that backup that may list
 * it (paths relative to each manifest's folder) are references for its stored bytes too.
 */
export async function compareParentManifests(
  backup: Backup,
  store: ObjectStore,
  state: ObjectState,
  findings: FindingList,
  signal?: AbortSignal,
): Promise<void> {
  for (const manifestKey of backup.manifestKeys) {
    const folder = folderOf(manifestKey);
    if (!backup.key.startsWith(folder)) continue;
    const listedAs = backup.key.slice(folder.length);
    let text: string;
    try {
      text = (await readSmallObject(store, manifestKey, MAX_MANIFEST_BYTES)).text;
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      findings.add(
        'ACCESS_DENIED',
        accessMessage(`the manifest ${manifestKey} of the backup holding ${state.path}`, error),
        state.path,
      );
      continue;
    }
    // Malformed lines are the parent backup's findings; here only the line naming this archive counts.
    forEachSha256SumsLine(
      text,
      (entry) => {
        if (entry.path !== listedAs) return;
        compareReference(
          state,
          entry.sha256,
          `${manifestKey} (line ${entry.line})`,
          findings,
          'the archive was changed or damaged after the manifest was written; restore it from another copy',
        );
      },
      () => {},
    );
  }
}

/** What the SHA256SUMS at an archive's root said of its members, as findings; a clean one vouches for the archive. */
export function reportRootManifest(
  path: string,
  manifest: RootManifestCheck,
  state: ObjectState,
  findings: FindingList,
): void {
  const where = `${path}!${manifest.memberPath}`;
  for (const error of manifest.errors)
    findings.add('CHECKSUM_MISMATCH', describeManifestError(where, error), manifest.memberPath);
  for (const m of manifest.mismatched) {
    findings.add(
      'CHECKSUM_MISMATCH',
      `${path}: member ${m.path} has SHA-256 ${m.actual} but the archive's SHA256SUMS says ${m.expected}: the member was damaged before or after archiving; restore it from another copy`,
      m.path,
    );
  }
  for (const m of manifest.missing) {
    findings.add(
      'MISSING_OBJECT',
      `${path}: ${m.path} is listed in the archive's SHA256SUMS but is not in the archive (as a file): it was lost before archiving or the archive is incomplete`,
      m.path,
    );
  }
  for (const m of manifest.unlisted) {
    findings.add(
      'UNLISTED_OBJECT',
      `${path}: member ${m} is not in the archive's SHA256SUMS: it was added after the manifest was written, or the manifest is incomplete`,
      m,
    );
  }
  if (manifest.mismatched.length > 0 || manifest.errors.length > 0 || manifest.missing.length > 0)
    state.mismatch = true;
  else if (manifest.verified > 0) state.references++;
}
