import type { Readable } from 'node:stream';
import { type ArchiveFormat, archiveFormatOf } from '../compression.ts';
import type { CrcAlgorithm } from '../inspect/crc.ts';
import { inspectArchive, matchesArchivePattern, readHead, sniffArchiveFormat } from '../inspect/index.ts';
import { forEachLimited } from '../limit.ts';
import type { Backup, BackupObject } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import { reportArchiveProblems } from '../references/archive.ts';
import type { FindingList } from '../references/finding-list.ts';
import {
  checkDirectoryNotEmpty,
  compareDirectoryManifests,
  readDirectoryManifests,
} from '../references/manifests.ts';
import { newState, type ObjectState } from '../references/object-state.ts';
import { hashStream, isAbort, READ_HIGH_WATER_MARK } from '../references/reading.ts';
import { compareStoreChecksum, crcOf, lookUpStoreChecksum } from '../references/store-checksums.ts';
import { ARCHIVED_CLASSES, type IntegrityOptions } from './options.ts';

/** A directory backup: each file read once (archives inside it inspected), then its SHA256SUMS compared. */
export async function checkDirectory(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
  findings: FindingList,
  states: ObjectState[],
): Promise<void> {
  // Manifests first: their expectations decide what is missing or unlisted.
  const manifests = await readDirectoryManifests(backup, store, findings, options);
  await forEachLimited(backup.members, options.concurrency ?? 8, async (object) => {
    options.signal?.throwIfAborted();
    const state = newState(object);
    states.push(state);
    if (object.storageClass && ARCHIVED_CLASSES.has(object.storageClass)) {
      findings.add(
        'ARCHIVED_STORAGE',
        `${object.path} is in storage class ${object.storageClass} and was not read; request a restore of it (or keep backups in a readable class) to verify it`,
        object.path,
      );
      return;
    }
    const stored = await lookUpStoreChecksum(store, object, object.path, findings, options.signal);
    let crc: string | undefined;
    try {
      crc = await readMember(store, object, state, crcOf(stored), options, findings);
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.unreadable(object.path, error, object.path, (error as { bytesRead?: number }).bytesRead);
      return;
    }
    compareStoreChecksum(state, stored, crc, findings);
  });
  states.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  await compareDirectoryManifests(backup, store, states, manifests, findings, options);
  checkDirectoryNotEmpty(backup, findings);
}

/**
 * Reads one file of a directory backup. A file whose name does not make it an archive backup
 * of its own but whose first bytes are gzip, zstd or tar is read as an archive, so damage
 * inside it is found; anything else is hashed. Returns the CRC when asked for one.
 */
async function readMember(
  store: ObjectStore,
  object: BackupObject,
  state: ObjectState,
  crc: CrcAlgorithm | undefined,
  options: IntegrityOptions,
  findings: FindingList,
): Promise<string | undefined> {
  let stream: Readable = await store.open(object.key, { highWaterMark: READ_HIGH_WATER_MARK });
  const ownBackup =
    archiveFormatOf(object.path) !== undefined ||
    matchesArchivePattern(object.key, options.archivePatterns ?? []);
  const format = ownBackup || object.size === 0 ? undefined : await sniffed(stream, object.path);
  if (format) stream = format.stream;
  if (!format?.format) {
    const read = await hashStream(stream, options, crc);
    state.sha256 = read.sha256;
    state.size = read.size;
    state.readFully = true;
    return read.crc;
  }
  let read = 0;
  const inspection = await inspectArchive(stream, format.format, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(crc ? { crc } : {}),
    contentName: format.format.stem,
    onProgress: (delta) => {
      read += delta;
      options.onProgress?.(delta);
    },
  }).catch((error: unknown) => {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { bytesRead: read });
  });
  state.sha256 = inspection.storedSha256;
  state.size = inspection.storedBytes;
  state.readFully = true;
  reportArchiveProblems(object.path, format.format, inspection.problems, findings, () => object.path);
  if (inspection.problems.length > 0) state.damaged = true;
  return inspection.storedCrc;
}

async function sniffed(
  stream: Readable,
  path: string,
): Promise<{ stream: Readable; format?: ArchiveFormat }> {
  const head = await readHead(stream);
  const format = sniffArchiveFormat(head.head, path.slice(path.lastIndexOf('/') + 1));
  return { stream: head.stream, ...(format ? { format } : {}) };
}
