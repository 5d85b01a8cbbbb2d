import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ArchiveFormat } from './compression.ts';
import { StoreError } from './errors.ts';
import { type Finding, type FindingCode, finding } from './findings.ts';
import { type CrcAlgorithm, createCrc } from './inspect/crc.ts';
import { type ArchiveProblem, EMPTY_SHA256, type RootManifestCheck } from './inspect/inspect-archive.ts';
import {
  describeManifestError,
  forEachSha256SumsLine,
  MAX_MANIFEST_BYTES,
  normalizeRelativePath,
  parseSha256Sums,
  parseSidecar,
} from './manifest.ts';
import type { Backup, BackupObject } from './model.ts';
import type { ChecksumHistory, FirstSeenChecksum, ObjectStore } from './ports.ts';

/**
 * The reference checksums of a backup's stored bytes and the findings they give, shared by the
 * integrity pass and the restore: whichever reads the bytes, the same rules and the same codes.
 */

const READ_HIGH_WATER_MARK = 1024 * 1024;
const MAX_SIDECAR_BYTES = 64 * 1024;
/** Per-object findings of one code beyond this are summed up in one finding. */
const MAX_FINDINGS_PER_CODE = 100;

/** One stored object as a pass read it, and what its references said. */
export interface ObjectState {
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
  /** A 0-byte archive, already EMPTY_BACKUP: nothing left to vouch for. */
  empty?: boolean;
}

export function newState(object: { key: string; path: string; size: number }): ObjectState {
  return {
    key: object.key,
    path: object.path,
    size: object.size,
    readFully: false,
    references: 0,
    mismatch: false,
  };
}

export class FindingList {
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
    this.overflow.clear();
    return this.all;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

export function accessMessage(what: string, error: unknown, bytesRead?: number): string {
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

export async function readSmallObject(
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

export interface ReadOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((bytesDelta: number) => void) | undefined;
}

/** Reads an object to its end: SHA-256, size and, when asked, the CRC the store may have kept. */
export async function hashObject(
  store: ObjectStore,
  key: string,
  options: ReadOptions,
  crcAlgorithm?: CrcAlgorithm,
): Promise<{ sha256: string; size: number; crc?: string }> {
  return hashStream(await store.open(key, { highWaterMark: READ_HIGH_WATER_MARK }), options, crcAlgorithm);
}

export async function hashStream(
  stream: Readable,
  options: ReadOptions,
  crcAlgorithm?: CrcAlgorithm,
): Promise<{ sha256: string; size: number; crc?: string }> {
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
export type StoreChecksum = { sha256: string } | { crc: CrcAlgorithm; expected: string };

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
export async function lookUpStoreChecksum(
  store: ObjectStore,
  object: BackupObject,
  path: string,
  findings: FindingList,
  signal?: AbortSignal,
): Promise<StoreChecksum | undefined> {
  try {
    return await storeChecksum(store, object);
  } catch (error) {
    if (isAbort(error, signal)) throw error;
    findings.unreadable(`the stored checksum of ${path}`, error, path);
    return undefined;
  }
}

export function crcOf(stored: StoreChecksum | undefined): CrcAlgorithm | undefined {
  return stored && 'crc' in stored ? stored.crc : undefined;
}

function folderOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash + 1);
}

function relativeTo(prefix: string, key: string): string {
  return key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

export function compareReference(
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

export function compareStoreChecksum(
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
  if (backup.sidecarKey) {
    const sidecarPath = backup.sidecarKey.split('/').pop() ?? backup.sidecarKey;
    try {
      const { text } = await readSmallObject(store, backup.sidecarKey, MAX_SIDECAR_BYTES);
      const parsed = parseSidecar(text, state.key);
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
          `the sidecar ${sidecarPath} cannot be used (${parsed.message}): ${state.path} cannot be verified against it; rewrite it with sha256sum`,
          sidecarPath,
        );
      }
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      findings.unreadable(`the sidecar ${sidecarPath}`, error, sidecarPath);
    }
  }
  compareStoreChecksum(state, stored, actualCrc, findings);
  await compareParentManifests(backup, store, state, findings, signal);
}

/**
 * An archive found inside a directory backup: the SHA256SUMS files of that backup that may list
 * it (paths relative to each manifest's folder) are references for its stored bytes too.
 */
async function compareParentManifests(
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
