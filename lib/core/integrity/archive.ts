import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type ArchiveFormat, archiveFormatOf } from '../compression.ts';
import { effectiveRestoreLimits } from '../config.ts';
import { createCrc } from '../inspect/crc.ts';
import {
  type ArchiveInspection,
  type ArchiveProblem,
  inspectArchive,
  readHead,
  sniffArchiveFormat,
} from '../inspect/index.ts';
import { INFLATE_WORKER_MIN_BYTES } from '../inspect/inflate-worker.ts';
import { openLocalFile } from '../local-file.ts';
import type { Backup } from '../model.ts';
import type { ObjectStore } from '../ports.ts';
import {
  compareArchiveReferences,
  emptyArchiveFinding,
  reportArchiveProblems,
} from '../references/archive.ts';
import type { FindingList } from '../references/finding-list.ts';
import { reportRootManifest } from '../references/nested.ts';
import { newState, type ObjectState } from '../references/object-state.ts';
import { isAbort, READ_HIGH_WATER_MARK } from '../references/reading.ts';
import { crcOf, lookUpStoreChecksum } from '../references/store-checksums.ts';
import type { ObjectTally } from '../score.ts';
import { ARCHIVED_CLASSES, type IntegrityOptions } from './options.ts';

/** An archive backup: one streamed pass (stored hash, decompression, tar, member hashes), then its references. */
export async function checkArchive(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
  findings: FindingList,
  states: ObjectState[],
  tally: ObjectTally,
): Promise<{ files: number; contentBytes: number }> {
  const none = { files: 0, contentBytes: 0 };
  let object = backup.members.find((m) => m.key === backup.key) ?? backup.members[0];
  const path = object?.path ?? backup.name;
  if (!object) {
    try {
      const info = await store.head(backup.key);
      object = { ...info, path };
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.unreadable(`the archive ${backup.key}`, error, path);
      states.push(newState({ key: backup.key, path, size: 0 }));
      return none;
    }
  }
  const state = newState({ key: object.key, path, size: object.size });
  states.push(state);
  tally.archives = 1;
  if (object.storageClass && ARCHIVED_CLASSES.has(object.storageClass)) {
    findings.add(
      'ARCHIVED_STORAGE',
      `${path} is in storage class ${object.storageClass} and was not read; request a restore of it (or keep backups in a readable class) to verify it`,
      path,
    );
    return none;
  }
  const stored = await lookUpStoreChecksum(store, object, path, findings, options.signal);
  if (object.size === 0) {
    // Nothing to inspect, but its references still say whether it was always empty.
    emptyArchiveFinding(state, findings);
    const crc = crcOf(stored);
    await compareArchiveReferences(
      backup,
      store,
      state,
      stored,
      crc ? createCrc(crc).digestBase64() : undefined,
      findings,
      options.signal,
    );
    return none;
  }

  let inspection: ArchiveInspection;
  let format: ArchiveFormat | undefined = archiveFormatOf(object.key) ?? archiveFormatOf(backup.name);
  let unrecognised = false;
  let read = 0;
  let file: FileHandle | undefined;
  try {
    let stream: Readable = await store.open(object.key, { highWaterMark: READ_HIGH_WATER_MARK });
    if (!format) {
      // Recognised by a configured name pattern: what it holds decides how it is read.
      const head = await readHead(stream);
      stream = head.stream;
      format = sniffArchiveFormat(head.head, path);
      unrecognised = format === undefined;
      format ??= { compression: 'none', tar: false, stem: path };
    }
    const inflateInWorker = object.size >= INFLATE_WORKER_MIN_BYTES;
    // Opened by the store first, which checks it (inside the root, a regular file, no symlink).
    const localPath = inflateInWorker ? store.localPath?.(object.key) : undefined;
    if (localPath) file = await openLocalFile(localPath);
    inspection = await inspectArchive(stream, format, {
      ...(file ? { file } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      contentName: format.stem.split('/').pop() ?? format.stem,
      inflateInWorker,
      limits: effectiveRestoreLimits(options.policy),
      ...(stored && 'crc' in stored ? { crc: stored.crc } : {}),
      onProgress: (delta) => {
        read += delta;
        options.onProgress?.(delta);
      },
      ...(options.onContent ? { onEntry: options.onContent } : {}),
    });
  } catch (error) {
    if (isAbort(error, options.signal)) throw error;
    findings.unreadable(path, error, path, read);
    return none;
  } finally {
    await file?.close();
  }
  state.sha256 = inspection.storedSha256;
  state.size = inspection.storedBytes;
  state.readFully = true;

  const problems = unrecognised ? [notAnArchive(path), ...inspection.problems] : inspection.problems;
  reportArchiveProblems(path, format, problems, findings, (p) => p.member ?? path);
  const clean = problems.length === 0;
  if (clean) tally.archivesClean = 1;
  else state.damaged = true;
  if (clean && inspection.contentBytes === 0) {
    findings.add(
      'EMPTY_BACKUP',
      `${path} holds no file content (${inspection.entries} entries, ${inspection.files} files, 0 bytes): the backup job archived nothing; check its source path`,
      path,
    );
  }

  await compareArchiveReferences(
    backup,
    store,
    state,
    stored,
    inspection.storedCrc,
    findings,
    options.signal,
  );

  if (inspection.rootManifest) reportRootManifest(path, inspection.rootManifest, state, findings);
  return { files: inspection.files, contentBytes: inspection.contentBytes };
}

function notAnArchive(path: string): ArchiveProblem {
  return {
    kind: 'corrupt',
    layer: 'tar',
    message: `${path} is named as an archive (archives.patterns) but holds no gzip, zstd or tar data: it is damaged from its first byte, or not an archive; restore it from another copy, or change archives.patterns`,
  };
}
