import type { Readable } from 'node:stream';
import { type ArchiveFormat, archiveFormatOf } from './compression.ts';
import { effectiveRestoreLimits, type Policy } from './config.ts';
import { type CrcAlgorithm, createCrc } from './inspect/crc.ts';
import {
  type ArchiveInspection,
  type ArchiveProblem,
  hashFileInWorker,
  inspectArchive,
  matchesArchivePattern,
  readHead,
  sniffArchiveFormat,
} from './inspect/index.ts';
import { forEachLimited } from './limit.ts';
import type { Backup, BackupObject, ContentDigest, IntegrityResult } from './model.ts';
import type { ChecksumHistory, ObjectStore } from './ports.ts';
import {
  checkDirectoryNotEmpty,
  compareArchiveReferences,
  compareDirectoryManifests,
  compareStoreChecksum,
  crcOf,
  emptyArchiveFinding,
  FindingList,
  finishReferences,
  hashStream,
  isAbort,
  lookUpStoreChecksum,
  newState,
  type ObjectState,
  readDirectoryManifests,
  reportArchiveProblems,
  reportRootManifest,
} from './references.ts';
import { integrityScore, integrityVerdict, type ObjectTally } from './score.ts';

export interface IntegrityOptions {
  policy: Policy;
  history?: ChecksumHistory;
  onProgress?(bytesDelta: number): void;
  signal?: AbortSignal;
  /** Each archive member (or the content of a plain compressed file) as it is hashed. */
  onContent?(digest: ContentDigest): void;
  /** Files of a directory backup read at once (default 8). */
  concurrency?: number;
  /** `archives.patterns`: names checked as archive backups of their own, not sniffed again here. */
  archivePatterns?: readonly string[];
}

/** Storage classes whose objects need a restore request before they can be read. */
export const ARCHIVED_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const READ_HIGH_WATER_MARK = 1024 * 1024;
/** Below this a worker thread's start (tens of ms) costs more than hashing on the parsing thread saves. */
const WORKER_HASH_MIN_BYTES = 16 * 1024 * 1024;

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

async function checkDirectory(
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

async function checkArchive(
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
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  let read = 0;
  try {
    const localPath = store.localPath?.(object.key);
    const wholeFileSha256 =
      localPath && object.size >= WORKER_HASH_MIN_BYTES
        ? hashFileInWorker(localPath, { signal }).then((h) => h.sha256)
        : undefined;
    wholeFileSha256?.catch(() => {});
    let stream: Readable = await store.open(object.key, { highWaterMark: READ_HIGH_WATER_MARK });
    if (!format) {
      // Recognised by a configured name pattern: what it holds decides how it is read.
      const head = await readHead(stream);
      stream = head.stream;
      format = sniffArchiveFormat(head.head, path);
      unrecognised = format === undefined;
      format ??= { compression: 'none', tar: false, stem: path };
    }
    inspection = await inspectArchive(stream, format, {
      signal,
      wholeFileSha256,
      contentName: format.stem.split('/').pop() ?? format.stem,
      limits: effectiveRestoreLimits(options.policy),
      ...(stored && 'crc' in stored ? { crc: stored.crc } : {}),
      onProgress: (delta) => {
        read += delta;
        options.onProgress?.(delta);
      },
      ...(options.onContent ? { onEntry: options.onContent } : {}),
    });
  } catch (error) {
    controller.abort();
    if (isAbort(error, options.signal)) throw error;
    findings.unreadable(path, error, path, read);
    return none;
  } finally {
    controller.abort();
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
