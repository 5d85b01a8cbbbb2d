import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { type ArchiveFormat, archiveFormatOf } from '../compression.ts';
import { StoreError } from '../errors.ts';
import { type Finding, finding } from '../findings.ts';
import { type CrcAlgorithm, createCrc } from '../inspect/crc.ts';
import { type RootManifestCheck, readHead, sniffArchiveFormat } from '../inspect/index.ts';
import { openLocalFile } from '../local-file.ts';
import { MANIFEST_NAME, MAX_MANIFEST_BYTES, parseSha256Sums } from '../manifest.ts';
import type { BackupObject } from '../model.ts';
import { compareArchiveReferences, emptyArchiveFinding } from '../references/archive.ts';
import { FindingList } from '../references/finding-list.ts';
import { finishReferences } from '../references/history.ts';
import { reportRootManifest } from '../references/nested.ts';
import { newState } from '../references/object-state.ts';
import { hashObject } from '../references/reading.ts';
import { crcOf, lookUpStoreChecksum } from '../references/store-checksums.ts';
import { RestoreAbort } from './abort.ts';
import { extractSingleFile, extractTar, inflatesInWorker } from './extract.ts';
import type { RestoreLimits } from './limits.ts';
import { type Phases, PROGRESS_EVERY_BYTES, READ_HIGH_WATER_MARK, type RestoreRequest } from './request.ts';
import type { SandboxTree } from './sandbox-tree.ts';

/**
 * An archive backup streamed from the store into the sandbox in one read: the stored bytes are
 * hashed on the way and compared with every reference the integrity pass compares them with.
 */
export async function restoreArchive(
  request: RestoreRequest,
  tree: SandboxTree,
  limits: RestoreLimits,
  phases: Phases,
  findings: Finding[],
): Promise<void> {
  const { backup, store } = request;
  const member: BackupObject = backup.members[0] ?? {
    key: backup.key,
    path: backup.name,
    size: backup.bytes,
    lastModified: backup.createdAt,
  };
  const checked = new FindingList(backup.id);
  const state = newState(member);
  const stored = await lookUpStoreChecksum(store, member, member.path, checked, request.signal);
  const compareStored = async (crc: string | undefined) => {
    await compareArchiveReferences(backup, store, state, stored, crc, checked, request.signal);
    await finishReferences(backup, [state], request.history, checked);
    findings.push(...checked.finish());
  };
  if (member.size === 0) {
    // The same fact the integrity pass reports, not a "truncated" stream of nothing.
    emptyArchiveFinding(state, checked);
    const crc = crcOf(stored);
    await compareStored(crc ? createCrc(crc).digestBase64() : undefined);
    return;
  }
  request.onProgress?.({ phase: 'download', bytes: 0, files: 0 });
  const downloadStarted = performance.now();
  const opened = await store.open(member.key, { highWaterMark: READ_HIGH_WATER_MARK });
  let format = archiveFormatOf(member.path) ?? archiveFormatOf(member.key);
  let source: Readable = opened;
  if (!format) {
    // Named as an archive by a configured pattern: its first bytes say which kind.
    const head = await readHead(opened);
    source = head.stream;
    format = sniffArchiveFormat(head.head, member.path);
    if (!format) {
      head.stream.destroy();
      throw new RestoreAbort(
        'ARCHIVE_CORRUPT',
        `${member.path} is named as an archive (archives.patterns) but holds no gzip, zstd or tar data: it is damaged from its first byte, or not an archive; restore it from another copy, or change archives.patterns`,
        member.path,
      );
    }
  }
  phases.downloadMs = performance.now() - downloadStarted;
  const extractStarted = performance.now();
  // A worker that inflates also hashes the stored bytes: hashing them here too would cost this busier thread a second pass.
  const hashedByExtraction = inflatesInWorker(format.compression, member.size);
  const hashing = new StoredHash(crcOf(stored), !hashedByExtraction);
  // A folder store's file goes straight into that worker's memory (the store opened and checked it above).
  const localPath = hashedByExtraction && !crcOf(stored) ? store.localPath?.(member.key) : undefined;
  const file = localPath ? await openLocalFile(localPath) : undefined;
  if (file) {
    // Neither the store's stream nor one that read its first bytes is read on.
    source.destroy();
    opened.destroy();
  }
  let reported = 0;
  const options = {
    tree,
    limits,
    compression: format.compression,
    storedBytes: member.size,
    hashStored: hashedByExtraction,
    ...(file ? { file } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
    onBytes: (bytes: number) => {
      if (bytes - reported >= PROGRESS_EVERY_BYTES) {
        reported = bytes;
        request.onProgress?.({ phase: 'extract', bytes, files: tree.files.size });
      }
    },
  };
  let extracted: Awaited<ReturnType<typeof extractTar>> | undefined;
  let extractError: unknown;
  try {
    extracted = await extractFormat(file ? source : hashing.from(source), format, options);
  } catch (error) {
    extractError = error;
  } finally {
    await file?.close();
  }
  phases.extractMs = performance.now() - extractStarted;
  if (request.signal?.aborted)
    throw extractError ?? new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
  let storedRead = file
    ? extracted?.storedSha256 !== undefined
      ? { sha256: extracted.storedSha256, size: extracted.compressedBytes }
      : undefined
    : hashing.result(extracted?.storedSha256);
  if (!storedRead && !(extractError instanceof StoreError)) {
    // The extraction stopped early (at damage, a limit): the object is read again so its references are compared too.
    storedRead = await hashObject(store, member.key, { signal: request.signal }, crcOf(stored)).catch(
      () => undefined,
    );
  }
  if (!extractError && format.tar) {
    const manifest = await rootManifestOf(tree);
    if (manifest) reportRootManifest(member.path, manifest, state, checked);
  }
  if (storedRead) {
    state.sha256 = storedRead.sha256;
    state.size = storedRead.size;
    state.readFully = true;
    if (extractError) state.damaged = true;
    await compareStored(storedRead.crc);
  } else findings.push(...checked.finish());
  if (extractError) throw extractError;
  const storedSha256 = request.objectSha256?.[member.key];
  if (storedSha256 !== undefined && storedRead && storedRead.sha256 !== storedSha256.toLowerCase()) {
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `"${member.path}" read for the restore has SHA-256 ${storedRead.sha256}, the integrity pass read ${storedSha256}: the object changed between the passes`,
        { backup: backup.id, object: member.path },
      ),
    );
  }
  if (member.size > 0 && extracted && extracted.compressedBytes !== member.size) {
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `read ${extracted.compressedBytes} bytes of "${member.path}" but the catalogue lists ${member.size}: the object changed or the read was cut short`,
        { backup: backup.id, object: member.path },
      ),
    );
  }
}

function extractFormat(
  source: Readable,
  format: ArchiveFormat,
  options: Parameters<typeof extractTar>[1],
): ReturnType<typeof extractTar> {
  return format.tar
    ? extractTar(source, options)
    : extractSingleFile(source, path.posix.basename(format.stem), options);
}

/** Hashes the stored bytes as they stream to the extraction: the restore's own read is checked. */
class StoredHash extends Transform {
  private readonly hash;
  private readonly crc;
  private size = 0;
  private done = false;
  /** Without `sha256`, the SHA-256 comes from whoever else hashed the same bytes (see result()). */
  constructor(crc: CrcAlgorithm | undefined, sha256: boolean) {
    super({ readableHighWaterMark: READ_HIGH_WATER_MARK, writableHighWaterMark: READ_HIGH_WATER_MARK });
    this.hash = sha256 ? createHash('sha256') : undefined;
    this.crc = crc ? createCrc(crc) : undefined;
  }
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ): void {
    this.hash?.update(chunk);
    this.crc?.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }
  override _flush(callback: () => void): void {
    this.done = true;
    callback();
  }
  /** This hash fed by a source: the source's errors reach it, and its end stops the source. */
  from(source: Readable): Readable {
    source.once('error', (error) => this.destroy(error));
    this.once('close', () => source.destroy());
    return source.pipe(this);
  }

  /**
   * The whole stored object's digest, or undefined when the read stopped before its end (or,
   * hashed elsewhere, when that SHA-256 is missing: the extraction failed before it was known).
   */
  result(hashedElsewhere?: string): { sha256: string; size: number; crc?: string } | undefined {
    const sha256 = this.hash ? this.hash.digest('hex') : hashedElsewhere;
    if (!this.done || sha256 === undefined) return undefined;
    return {
      sha256,
      size: this.size,
      ...(this.crc ? { crc: this.crc.digestBase64() } : {}),
    };
  }
}

/** The archive's root SHA256SUMS against the restored files, as the integrity pass checks it in the stream. */
async function rootManifestOf(tree: SandboxTree): Promise<RootManifestCheck | undefined> {
  const file = tree.files.get(MANIFEST_NAME);
  if (!file) return undefined;
  const check: RootManifestCheck = {
    memberPath: MANIFEST_NAME,
    incomplete: false,
    errors: [],
    verified: 0,
    mismatched: [],
    missing: [],
    unlisted: [],
  };
  if (file.size > MAX_MANIFEST_BYTES) {
    check.errors.push({
      line: 0,
      text: '',
      message: `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes and was not read`,
    });
    return check;
  }
  const parsed = parseSha256Sums(await readFile(tree.absolute(MANIFEST_NAME), 'utf8'));
  check.errors.push(...parsed.errors);
  const listed = new Set<string>();
  for (const entry of parsed.entries) {
    listed.add(entry.path);
    const restored = tree.files.get(entry.path);
    if (!restored) check.missing.push({ path: entry.path, expected: entry.sha256 });
    else if (restored.sha256 !== entry.sha256)
      check.mismatched.push({ path: entry.path, expected: entry.sha256, actual: restored.sha256 });
    else check.verified++;
  }
  for (const restoredPath of tree.files.keys()) {
    if (restoredPath !== MANIFEST_NAME && !listed.has(restoredPath)) check.unlisted.push(restoredPath);
  }
  return check;
}
