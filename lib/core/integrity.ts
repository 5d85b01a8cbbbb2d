import { createHash } from 'node:crypto';
import { archiveFormatOf } from './compression.ts';
import { effectiveRestoreLimits, type Policy } from './config.ts';
import { StoreError } from './errors.ts';
import { type Finding, type FindingCode, finding } from './findings.ts';
import { type CrcAlgorithm, createCrc } from './inspect/crc.ts';
import { type ArchiveInspection, hashFileInWorker, inspectArchive } from './inspect/index.ts';
import {
  describeManifestError,
  forEachSha256SumsLine,
  MAX_MANIFEST_BYTES,
  normalizeRelativePath,
  parseSha256Sums,
  parseSidecar,
} from './manifest.ts';
import type { Backup, BackupObject, ContentDigest, IntegrityResult } from './model.ts';
import type { ChecksumHistory, ObjectStore } from './ports.ts';
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
}

/** Storage classes whose objects need a restore request before they can be read. */
/** Storage classes whose objects need a restore request before they can be read. */
export const ARCHIVED_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const READ_HIGH_WATER_MARK = 1024 * 1024;
const MAX_SIDECAR_BYTES = 64 * 1024;
/** Per-object findings of one code beyond this are summed up in one finding. */
const MAX_FINDINGS_PER_CODE = 100;

interface ObjectState {
  key: string;
  path: string;
  size: number;
  sha256?: string;
  readFully: boolean;
  references: number;
  mismatch: boolean;
  /** Read, but found damaged (corrupt or truncated archive). */
  damaged?: boolean;
  /** Already reported as not in the manifest covering its folder. */
  unlisted?: boolean;
}

class FindingList {
  readonly all: Finding[] = [];
  private readonly overflow = new Map<FindingCode, { count: number; examples: string[] }>();
  private readonly perCode = new Map<FindingCode, number>();
  constructor(private readonly backupId: string) {}

  add(code: FindingCode, message: string, object?: string): void {
    const sameCode = this.perCode.get(code) ?? 0;
    if (object !== undefined && sameCode >= MAX_FINDINGS_PER_CODE) {
      const entry = this.overflow.get(code) ?? { count: 0, examples: [] };
      entry.count++;
      if (entry.examples.length < 5) entry.examples.push(object);
      this.overflow.set(code, entry);
      return;
    }
    this.perCode.set(code, sameCode + 1);
    this.all.push(
      finding(code, message, { backup: this.backupId, ...(object !== undefined ? { object } : {}) }),
    );
  }

  /** An object that could not be read: gone from the store, or refused (never a pass either way). */
  unreadable(what: string, error: unknown, object: string, bytesRead?: number): void {
    const missing = error instanceof StoreError && error.kind === 'not-found';
    this.add(
      missing ? 'MISSING_OBJECT' : 'ACCESS_DENIED',
      missing
        ? `${what} is gone from the store since it was listed (${errorText(error)}): a backup was deleted or moved; find out by whom`
        : accessMessage(what, error, bytesRead),
      object,
    );
  }

  finish(): Finding[] {
    for (const [code, { count, examples }] of this.overflow) {
      this.all.push(
        finding(code, `${count} more objects have the same finding (${examples.join(', ')}, ...)`, {
          backup: this.backupId,
        }),
      );
    }
    return this.all;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

function accessMessage(what: string, error: unknown, bytesRead?: number): string {
  const kind = error instanceof StoreError ? error.kind : undefined;
  const after = bytesRead ? ` after ${bytesRead} bytes` : '';
  const advice =
    kind === 'access-denied'
      ? 'grant the validator read access (and KMS decrypt) to it'
      : kind === 'archived'
        ? 'restore it from its archive storage class first'
        : 'check the store and retry';
  return `cannot read ${what}${after}: ${errorText(error)}; ${advice}`;
}

async function readSmallObject(
  store: ObjectStore,
  key: string,
  limit: number,
): Promise<{ text: string; sha256: string; size: number }> {
  const stream = await store.open(key);
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new StoreError(`${key} is larger than ${limit} bytes: not a checksum file`, 'io', key);
    }
    hash.update(chunk);
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), sha256: hash.digest('hex'), size };
}

async function hashObject(
  store: ObjectStore,
  key: string,
  options: IntegrityOptions,
  crcAlgorithm?: CrcAlgorithm,
): Promise<{ sha256: string; size: number; crc?: string }> {
  const stream = await store.open(key, { highWaterMark: READ_HIGH_WATER_MARK });
  const hash = createHash('sha256');
  const crc = crcAlgorithm ? createCrc(crcAlgorithm) : undefined;
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      crc?.update(chunk);
      size += chunk.length;
      options.onProgress?.(chunk.length);
    }
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { bytesRead: size });
  }
  return { sha256: hash.digest('hex'), size, ...(crc ? { crc: crc.digestBase64() } : {}) };
}

/**
 * The full-object checksum the store kept for an object: its SHA-256 when there is one (the
 * pass computes it anyway), else its CRC64NVME or CRC32C, which the pass then computes while
 * the bytes stream past (~1 GB/s, slower than SHA-256, so only when it is the only reference
 * the store has).
 */
type StoreChecksum = { sha256: string } | { crc: CrcAlgorithm; expected: string };

const STORE_ALGORITHMS = new Set(['SHA256', 'CRC64NVME', 'CRC32C']);

function storeChecksumOf(object: {
  checksumSha256?: string;
  checksumCrc64nvme?: string;
  checksumCrc32c?: string;
}): StoreChecksum | undefined {
  if (object.checksumSha256) return { sha256: object.checksumSha256.toLowerCase() };
  if (object.checksumCrc64nvme) return { crc: 'CRC64NVME', expected: object.checksumCrc64nvme };
  if (object.checksumCrc32c) return { crc: 'CRC32C', expected: object.checksumCrc32c };
  return undefined;
}

/** Asks the store (head) only when its listing names an algorithm whose value it did not give. */
async function storeChecksum(store: ObjectStore, object: BackupObject): Promise<StoreChecksum | undefined> {
  const known = storeChecksumOf(object);
  if (known && 'sha256' in known) return known;
  const listed = object.checksumAlgorithms?.map((a) => a.toUpperCase()) ?? [];
  const unfetched =
    (listed.includes('SHA256') && !object.checksumSha256) ||
    (!known && listed.some((a) => STORE_ALGORITHMS.has(a)));
  if (!unfetched) return known;
  return storeChecksumOf(await store.head(object.key)) ?? known;
}

/** Looks the store's checksum up before the read, so a CRC can be computed during it. */
async function lookUpStoreChecksum(
  store: ObjectStore,
  object: BackupObject,
  path: string,
  findings: FindingList,
  options: IntegrityOptions,
): Promise<StoreChecksum | undefined> {
  try {
    return await storeChecksum(store, object);
  } catch (error) {
    if (isAbort(error, options.signal)) throw error;
    findings.unreadable(`the stored checksum of ${path}`, error, path);
    return undefined;
  }
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

function relativeTo(prefix: string, key: string): string {
  return key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

function folderOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash + 1);
}

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

  await compareWithHistory(backup, states, options.history, findings);

  const unreferenced = states.filter(
    (s) => s.readFully && s.references === 0 && !s.mismatch && !s.damaged && !s.unlisted,
  );
  if (unreferenced.length > 0) {
    const examples = unreferenced.slice(0, 5).map((s) => s.path);
    findings.add(
      'NO_REFERENCE_CHECKSUM',
      unreferenced.length === 1
        ? `${examples[0]} has no reference checksum (no SHA256SUMS, sidecar, store checksum or earlier record): its content cannot be verified this time; add a SHA256SUMS or a .sha256 sidecar`
        : `${unreferenced.length} of ${states.length} objects have no reference checksum (e.g. ${examples.join(', ')}): their content cannot be verified this time; add a SHA256SUMS or .sha256 sidecars`,
      unreferenced.length === 1 ? examples[0] : undefined,
    );
  }

  tally.objects = states.length;
  tally.readFully = states.filter((s) => s.readFully).length;
  tally.verified = states.filter((s) => s.readFully && s.references > 0 && !s.mismatch).length;
  tally.unreferenced = unreferenced.length;

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

async function compareWithHistory(
  backup: Backup,
  states: ObjectState[],
  history: ChecksumHistory | undefined,
  findings: FindingList,
): Promise<void> {
  if (!history) return;
  // Damaged objects are not recorded: a corrupt first sight must not become the reference.
  const trusted = states.filter((s) => s.readFully && !s.mismatch && !s.damaged && s.sha256 !== undefined);
  if (trusted.length === 0) return;
  const earlier = await history.recordFirstSeen(
    backup.id,
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

function compareReference(
  state: ObjectState,
  expected: string,
  source: string,
  findings: FindingList,
  advice: string,
): void {
  if (state.sha256 === expected) {
    state.references++;
    return;
  }
  state.mismatch = true;
  findings.add(
    'CHECKSUM_MISMATCH',
    `${state.path}: SHA-256 is ${state.sha256} but ${source} says ${expected}; ${advice}`,
    state.path,
  );
}

function compareStoreChecksum(
  state: ObjectState,
  expected: StoreChecksum | undefined,
  actualCrc: string | undefined,
  findings: FindingList,
): void {
  if (!expected || state.sha256 === undefined) return;
  const advice = 'the object changed after upload or was damaged; restore it from another copy';
  if ('sha256' in expected) {
    compareReference(
      state,
      expected.sha256,
      'the checksum the store kept at upload (ChecksumSHA256)',
      findings,
      advice,
    );
    return;
  }
  if (actualCrc === undefined) return;
  if (actualCrc === expected.expected) {
    state.references++;
    return;
  }
  state.mismatch = true;
  findings.add(
    'CHECKSUM_MISMATCH',
    `${state.path}: ${expected.crc} is ${actualCrc} but the checksum the store kept at upload (Checksum${expected.crc}) is ${expected.expected}; ${advice}`,
    state.path,
  );
}

async function checkDirectory(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
  findings: FindingList,
  states: ObjectState[],
): Promise<void> {
  const prefix = backup.key;
  // Manifests first: their expectations decide what is missing or unlisted.
  const expected = new Map<string, Array<{ sha256: string; manifest: string; line: number }>>();
  const manifestFolders: string[] = [];
  const manifestHashes = new Map<string, { sha256: string; size: number }>();
  for (const key of backup.manifestKeys) {
    const manifestPath = relativeTo(prefix, key);
    let text: string;
    try {
      const read = await readSmallObject(store, key, MAX_MANIFEST_BYTES);
      text = read.text;
      manifestHashes.set(manifestPath, { sha256: read.sha256, size: read.size });
      options.onProgress?.(read.size);
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.add('ACCESS_DENIED', accessMessage(`the manifest ${manifestPath}`, error), manifestPath);
      continue;
    }
    const folder = folderOf(manifestPath);
    manifestFolders.push(folder);
    const parsed = parseSha256Sums(text);
    for (const error of parsed.errors) {
      findings.add('CHECKSUM_MISMATCH', describeManifestError(manifestPath, error), manifestPath);
    }
    for (const entry of parsed.entries) {
      const path = normalizeRelativePath(`${folder}${entry.path}`) ?? entry.path;
      const list = expected.get(path) ?? [];
      list.push({ sha256: entry.sha256, manifest: manifestPath, line: entry.line });
      expected.set(path, list);
    }
  }

  const byPath = new Map<string, ObjectState>();
  await forEachLimited(backup.members, options.concurrency ?? 8, async (object) => {
    options.signal?.throwIfAborted();
    const state: ObjectState = {
      key: object.key,
      path: object.path,
      size: object.size,
      readFully: false,
      references: 0,
      mismatch: false,
    };
    states.push(state);
    byPath.set(object.path, state);
    if (object.storageClass && ARCHIVED_CLASSES.has(object.storageClass)) {
      findings.add(
        'ARCHIVED_STORAGE',
        `${object.path} is in storage class ${object.storageClass} and was not read; request a restore of it (or keep backups in a readable class) to verify it`,
        object.path,
      );
      return;
    }
    const stored = await lookUpStoreChecksum(store, object, object.path, findings, options);
    const crcAlgorithm = stored && 'crc' in stored ? stored.crc : undefined;
    let crc: string | undefined;
    try {
      const read = await hashObject(store, object.key, options, crcAlgorithm);
      state.sha256 = read.sha256;
      state.size = read.size;
      state.readFully = true;
      crc = read.crc;
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.unreadable(object.path, error, object.path, (error as { bytesRead?: number }).bytesRead);
      return;
    }
    compareStoreChecksum(state, stored, crc, findings);
  });
  states.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  for (const state of states) {
    const references = expected.get(state.path);
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
    } else if (!references && manifestFolders.some((folder) => state.path.startsWith(folder))) {
      const covering = manifestFolders.filter((folder) => state.path.startsWith(folder));
      state.unlisted = true;
      findings.add(
        'UNLISTED_OBJECT',
        `${state.path} is in the backup but not in ${covering.map((f) => `${f}SHA256SUMS`).join(', ')}: it was added after the manifest was written, or the manifest is incomplete; regenerate the manifest if the file belongs there`,
        state.path,
      );
    }
  }

  // Listed paths that are not content objects: manifests and sidecars can be listed too.
  for (const [path, references] of expected) {
    if (byPath.has(path)) continue;
    let actual = manifestHashes.get(path);
    if (!actual) {
      try {
        actual = await hashObject(store, `${prefix}${path}`, options);
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

  if (backup.members.length === 0 || backup.members.every((m) => m.size === 0)) {
    findings.add(
      'EMPTY_BACKUP',
      backup.members.length === 0
        ? `the backup folder ${backup.key} holds no files: the backup job wrote nothing; check the job`
        : `the ${backup.members.length} files of ${backup.key} are all empty (0 bytes): the backup job wrote no content; check the job`,
    );
  }
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
      states.push({ key: backup.key, path, size: 0, readFully: false, references: 0, mismatch: false });
      return none;
    }
  }
  const state: ObjectState = {
    key: object.key,
    path,
    size: object.size,
    readFully: false,
    references: 0,
    mismatch: false,
  };
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
  const format = archiveFormatOf(object.key) ??
    archiveFormatOf(backup.name) ?? {
      compression: 'none' as const,
      tar: true,
      stem: backup.name,
    };
  if (object.size === 0) {
    state.readFully = true;
    state.sha256 = createHash('sha256').digest('hex');
    findings.add(
      'EMPTY_BACKUP',
      `${path} is 0 bytes: the backup job wrote nothing (disk full, crash or failed upload); check the job`,
      path,
    );
    return none;
  }

  const stored = await lookUpStoreChecksum(store, object, path, findings, options);
  let inspection: ArchiveInspection;
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  let read = 0;
  try {
    const localPath = store.localPath?.(object.key);
    const wholeFileSha256 = localPath
      ? hashFileInWorker(localPath, { signal }).then((h) => h.sha256)
      : undefined;
    wholeFileSha256?.catch(() => {});
    const stream = await store.open(object.key, { highWaterMark: READ_HIGH_WATER_MARK });
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

  for (const problem of inspection.problems) {
    const code: FindingCode =
      problem.kind === 'truncated'
        ? 'ARCHIVE_TRUNCATED'
        : problem.kind === 'corrupt'
          ? 'ARCHIVE_CORRUPT'
          : problem.kind === 'limit'
            ? 'DECOMPRESSION_LIMIT'
            : 'CHECK_FAILED';
    const where =
      problem.layer === 'tar' && problem.kind !== 'limit' && format.compression !== 'none'
        ? ' (offset in the decompressed tar)'
        : '';
    findings.add(code, `${path}: ${problem.message}${where}`, problem.member ?? path);
  }
  const clean = inspection.problems.length === 0;
  if (clean) tally.archivesClean = 1;
  else state.damaged = true;
  if (clean && inspection.contentBytes === 0) {
    findings.add(
      'EMPTY_BACKUP',
      `${path} holds no file content (${inspection.entries} entries, ${inspection.files} files, 0 bytes): the backup job archived nothing; check its source path`,
      path,
    );
  }

  if (backup.sidecarKey) {
    const sidecarPath = backup.sidecarKey.split('/').pop() ?? backup.sidecarKey;
    try {
      const { text } = await readSmallObject(store, backup.sidecarKey, MAX_SIDECAR_BYTES);
      const parsed = parseSidecar(text, object.key);
      if (parsed.ok) {
        compareReference(
          state,
          parsed.sha256,
          `the sidecar ${sidecarPath}`,
          findings,
          'the archive was changed or damaged after the sidecar was written; restore it from another copy',
        );
      } else {
        state.mismatch = true;
        findings.add(
          'CHECKSUM_MISMATCH',
          `the sidecar ${sidecarPath} cannot be used (${parsed.message}): ${path} cannot be verified against it; rewrite it with sha256sum`,
          sidecarPath,
        );
      }
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      findings.unreadable(`the sidecar ${sidecarPath}`, error, sidecarPath);
    }
  }

  compareStoreChecksum(state, stored, inspection.storedCrc, findings);
  await checkParentManifests(backup, store, options, state, findings);

  const manifest = inspection.rootManifest;
  if (manifest) {
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
  return { files: inspection.files, contentBytes: inspection.contentBytes };
}

/**
 * An archive found inside a directory backup: the SHA256SUMS files of that backup that may list
 * it (paths relative to each manifest's folder) are references for its stored bytes too.
 */
async function checkParentManifests(
  backup: Backup,
  store: ObjectStore,
  options: IntegrityOptions,
  state: ObjectState,
  findings: FindingList,
): Promise<void> {
  if (state.sha256 === undefined) return;
  for (const manifestKey of backup.manifestKeys) {
    const folder = folderOf(manifestKey);
    if (!backup.key.startsWith(folder)) continue;
    const listedAs = backup.key.slice(folder.length);
    let text: string;
    try {
      text = (await readSmallObject(store, manifestKey, MAX_MANIFEST_BYTES)).text;
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
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
