import { StoreError } from '../errors.ts';
import {
  describeManifestError,
  MAX_MANIFEST_BYTES,
  normalizeRelativePath,
  parseSha256Sums,
} from '../manifest.ts';
import type { Backup } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import { compareReference, type ObjectState } from './object-state.ts';
import { accessMessage, hashObject, isAbort, type ReadOptions, readSmallObject } from './reading.ts';

/** The SHA256SUMS files of a directory backup, as references of the objects they list. */

export function folderOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash + 1);
}

function relativeTo(prefix: string, key: string): string {
  return key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

/** What SHA256SUMS files of a directory backup expect, read before its objects. */
export interface DirectoryManifests {
  expected: Map<string, Array<{ sha256: string; manifest: string; line: number }>>;
  folders: string[];
  hashes: Map<string, { sha256: string; size: number }>;
}

export async function readDirectoryManifests(
  backup: Backup,
  store: ObjectStore,
  findings: FindingList,
  options: ReadOptions,
): Promise<DirectoryManifests> {
  const manifests: DirectoryManifests = { expected: new Map(), folders: [], hashes: new Map() };
  for (const key of backup.manifestKeys) {
    const manifestPath = relativeTo(backup.key, key);
    let text: string;
    try {
      const read = await readSmallObject(store, key, MAX_MANIFEST_BYTES);
      text = read.text;
      manifests.hashes.set(manifestPath, { sha256: read.sha256, size: read.size });
      options.onProgress?.(read.size);
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.add('ACCESS_DENIED', accessMessage(`the manifest ${manifestPath}`, error), manifestPath);
      continue;
    }
    const folder = folderOf(manifestPath);
    manifests.folders.push(folder);
    const parsed = parseSha256Sums(text);
    for (const error of parsed.errors) {
      findings.add('CHECKSUM_MISMATCH', describeManifestError(manifestPath, error), manifestPath);
    }
    for (const entry of parsed.entries) {
      const path = normalizeRelativePath(`${folder}${entry.path}`) ?? entry.path;
      const list = manifests.expected.get(path) ?? [];
      list.push({ sha256: entry.sha256, manifest: manifestPath, line: entry.line });
      manifests.expected.set(path, list);
    }
  }
  return manifests;
}

/**
 * Compares the objects of a directory backup (sorted by path, as read) with its manifests:
 * listed objects against their lines, objects a manifest's folder holds but it does not list,
 * and listed paths that are not content objects (read here; missing ones are findings).
 */
export async function compareDirectoryManifests(
  backup: Backup,
  store: ObjectStore,
  states: readonly ObjectState[],
  manifests: DirectoryManifests,
  findings: FindingList,
  options: ReadOptions,
): Promise<void> {
  const byPath = new Map(states.map((s) => [s.path, s]));
  for (const state of states) {
    const references = manifests.expected.get(state.path);
    if (references && state.readFully) {
      for (const ref of references) {
        compareReference(
          state,
          ref.sha256,
          `${ref.manifest} (line ${ref.line})`,
          findings,
          'the file was changed or damaged after the manifest was written; restore it from another copy',
        );
      }
    } else if (!references && manifests.folders.some((folder) => state.path.startsWith(folder))) {
      const covering = manifests.folders.filter((folder) => state.path.startsWith(folder));
      state.unlisted = true;
      findings.add(
        'UNLISTED_OBJECT',
        `${state.path} is in the backup but not in ${covering.map((f) => `${f}SHA256SUMS`).join(', ')}: it was added after the manifest was written, or the manifest is incomplete; regenerate the manifest if the file belongs there`,
        state.path,
      );
    }
  }

  // Listed paths that are not content objects: manifests and sidecars can be listed too.
  for (const [path, references] of manifests.expected) {
    if (byPath.has(path)) continue;
    let actual = manifests.hashes.get(path);
    if (!actual) {
      try {
        actual = await hashObject(store, `${backup.key}${path}`, options);
      } catch (error) {
        if (isAbort(error, options.signal)) throw error;
        const first = references[0] as { manifest: string; line: number };
        if (error instanceof StoreError && error.kind === 'not-found') {
          findings.add(
            'MISSING_OBJECT',
            `${path} is listed in ${first.manifest} (line ${first.line}) but is not in the backup: it was lost or never copied; restore it from another copy`,
            path,
          );
        } else {
          findings.add('ACCESS_DENIED', accessMessage(path, error), path);
        }
        continue;
      }
    }
    for (const ref of references) {
      if (ref.sha256 !== actual.sha256) {
        findings.add(
          'CHECKSUM_MISMATCH',
          `${path}: SHA-256 is ${actual.sha256} but ${ref.manifest} (line ${ref.line}) says ${ref.sha256}; restore it from another copy`,
          path,
        );
      }
    }
  }
}

/** A directory backup with no content: said once, by whichever pass looks first. */
export function checkDirectoryNotEmpty(backup: Backup, findings: FindingList): void {
  if (backup.members.length === 0 || backup.members.every((m) => m.size === 0)) {
    findings.add(
      'EMPTY_BACKUP',
      backup.members.length === 0
        ? `the backup folder ${backup.key} holds no files: the backup job wrote nothing; check the job`
        : `the ${backup.members.length} files of ${backup.key} are all empty (0 bytes): the backup job wrote no content; check the job`,
    );
  }
}
