import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ArchiveFormat, archiveFormatOf } from '../compression.ts';
import { effectiveRestoreLimits, type Policy, type ProbeConfig } from '../config.ts';
import { StoreError } from '../errors.ts';
import { type Finding, type FindingCode, finding, statusOfFindings, withinBudget } from '../findings.ts';
import { type CrcAlgorithm, createCrc } from '../inspect/crc.ts';
import {
  type ArchiveInspection,
  inspectArchive,
  matchesArchivePattern,
  type RootManifestCheck,
  readHead,
  sniffArchiveFormat,
} from '../inspect/index.ts';
import { forEachLimited } from '../limit.ts';
import { MANIFEST_NAME, MAX_MANIFEST_BYTES, parseSha256Sums } from '../manifest.ts';
import type { Backup, BackupObject, ContentDigest, RestoreResult } from '../model.ts';
import type { ChecksumHistory, ObjectStore } from '../ports.ts';
import {
  compareArchiveReferences,
  emptyArchiveFinding,
  reportArchiveProblems,
} from '../references/archive.ts';
import { FindingList } from '../references/finding-list.ts';
import { finishReferences } from '../references/history.ts';
import {
  checkDirectoryNotEmpty,
  compareDirectoryManifests,
  readDirectoryManifests,
} from '../references/manifests.ts';
import { reportRootManifest } from '../references/nested.ts';
import { newState, type ObjectState } from '../references/object-state.ts';
import { hashObject } from '../references/reading.ts';
import { compareStoreChecksum, crcOf, lookUpStoreChecksum } from '../references/store-checksums.ts';
import { humanTime } from '../units.ts';
import { isOutOfSpace, RestoreAbort } from './abort.ts';
import { extractSingleFile, extractTar } from './extract.ts';
import { RestoreLimits } from './limits.ts';
import { probeMatches, runBuiltinProbe, runCustomProbe } from './probes.ts';
import { type RestoredFile, SandboxTree } from './sandbox-tree.ts';

export type RestorePhase = 'download' | 'extract' | 'verify' | 'probes' | 'cleanup';

export interface RestoreProgress {
  phase: RestorePhase;
  /** Compressed (archive) or downloaded (directory) bytes read so far. */
  bytes: number;
  files: number;
}

export interface RestoreRequest {
  backup: Backup;
  store: ObjectStore;
  /** An empty (or absent) folder; everything restored stays below it. Its contents are removed afterwards. */
  root: string;
  policy: Policy;
  probes: ProbeConfig[];
  /** What the integrity pass recorded of each file (a complete listing: counts are compared too). */
  references?: ContentDigest[];
  /** SHA-256 of each stored object (key -> hex) as the integrity pass read it. */
  objectSha256?: Record<string, string>;
  /** The checksums recorded when the backup was first seen (the ledger's, or carried by the job). */
  history?: ChecksumHistory;
  /** `archives.patterns`: files of a directory backup that are archive backups of their own. */
  archivePatterns?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Leave the restored files in place (for debugging); the default removes them. */
  keep?: boolean;
}

/** Objects of a directory backup downloaded at once. */
export const DOWNLOAD_PARALLELISM = 8;
const READ_HIGH_WATER_MARK = 1024 * 1024;
const PROGRESS_EVERY_BYTES = 16 * 1024 * 1024;

/**
 * Restores one backup into an empty sandbox root and proves it usable: safe extraction
 * under limits, every file hashed while written and again on disk, compared with the
 * catalogue and every reference checksum, then the application probes. Never a PASS for
 * what could not be restored or verified.
 */
export async function restoreBackup(request: RestoreRequest): Promise<RestoreResult> {
  const { backup, policy } = request;
  const findings: Finding[] = [];
  const phases = { downloadMs: 0, extractMs: 0, verifyMs: 0, probesMs: 0, cleanupMs: 0 };
  const tree = new SandboxTree(request.root);
  const where = { backup: backup.id };
  const started = performance.now();
  let completed = false;
  try {
    await prepareRoot(tree.root);
    const limits = new RestoreLimits(effectiveRestoreLimits(policy));
    if (backup.kind === 'archive') await restoreArchive(request, tree, limits, phases, findings);
    else await restoreDirectory(request, tree, limits, phases, findings);

    request.onProgress?.({ phase: 'verify', bytes: limits.bytes, files: tree.files.size });
    const verifyStarted = performance.now();
    await verifyOnDisk(tree, backup, findings);
    await compareWithReferences(request, tree, findings);
    phases.verifyMs = performance.now() - verifyStarted;

    request.onProgress?.({ phase: 'probes', bytes: limits.bytes, files: tree.files.size });
    const probesStarted = performance.now();
    await runProbes(request, tree, findings);
    phases.probesMs = performance.now() - probesStarted;
    completed = true;
  } catch (error) {
    // Nothing may still be writing when the sandbox is cleaned.
    await tree.settle();
    // Archive damage names the archive, as the integrity pass does, so the report says it once.
    const archive = backup.kind === 'archive' ? (backup.members[0]?.path ?? backup.name) : undefined;
    findings.push(failureFinding(error, backup.id, tree.root, archive));
  }
  const durationMs = performance.now() - started;
  if (completed && policy.rtoMinutes > 0 && durationMs > policy.rtoMinutes * 60_000) {
    findings.push(
      finding(
        'RTO_EXCEEDED',
        `the restore took ${humanTime(durationMs)}, longer than the series' RTO of ${humanTime(policy.rtoMinutes * 60_000)}: a real recovery would miss its target; speed up the restore path or revisit the RTO`,
        where,
      ),
    );
  }
  let filesRestored = 0;
  let bytesRestored = 0;
  for (const file of tree.files.values()) {
    filesRestored += 1;
    bytesRestored += file.size;
  }
  if (completed && bytesRestored === 0 && !findings.some((f) => f.code === 'EMPTY_BACKUP')) {
    // The failure these operators were burned by: a backup that restores "fine" into nothing.
    const object = backup.kind === 'archive' ? (backup.members[0]?.path ?? backup.name) : undefined;
    findings.push(
      finding(
        'EMPTY_BACKUP',
        `the restore produced no file content (${filesRestored} files, 0 bytes): there is nothing to recover from this backup; check the backup job's source`,
        object === undefined ? where : { ...where, object },
      ),
    );
  }
  if (!request.keep) {
    request.onProgress?.({ phase: 'cleanup', bytes: bytesRestored, files: filesRestored });
    const cleanupStarted = performance.now();
    try {
      await emptyFolder(tree.root);
    } catch (error) {
      findings.push(
        finding(
          'RESTORE_FAILED',
          `the sandbox ${tree.root} could not be cleaned after the restore: ${(error as Error).message}; remove it by hand`,
          where,
        ),
      );
    }
    phases.cleanupMs = performance.now() - cleanupStarted;
  }
  const kept = withinBudget(findings);
  return {
    backupId: backup.id,
    status: statusOfFindings(kept),
    durationMs: Math.round(durationMs),
    filesRestored,
    bytesRestored,
    phases: {
      downloadMs: Math.round(phases.downloadMs),
      extractMs: Math.round(phases.extractMs),
      verifyMs: Math.round(phases.verifyMs),
      probesMs: Math.round(phases.probesMs),
      cleanupMs: Math.round(phases.cleanupMs),
    },
    findings: kept,
  };
}

type Phases = RestoreResult['phases'];

async function prepareRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  const present = await readdir(root);
  if (present.length > 0) {
    throw new RestoreAbort(
      'RESTORE_FAILED',
      `the sandbox root ${root} is not empty (${present.length} entries, e.g. "${present[0]}"): a restore needs an empty folder so nothing is mistaken for restored data`,
    );
  }
}

async function restoreArchive(
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
  const hashing = new StoredHash(crcOf(stored));
  let reported = 0;
  const options = {
    tree,
    limits,
    compression: format.compression,
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
    extracted = await extractFormat(hashing.from(source), format, options);
  } catch (error) {
    extractError = error;
  }
  phases.extractMs = performance.now() - extractStarted;
  if (request.signal?.aborted)
    throw extractError ?? new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
  let storedRead = hashing.result();
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
  private readonly hash = createHash('sha256');
  private readonly crc;
  private size = 0;
  private done = false;
  constructor(crc: CrcAlgorithm | undefined) {
    super({ readableHighWaterMark: READ_HIGH_WATER_MARK, writableHighWaterMark: READ_HIGH_WATER_MARK });
    this.crc = crc ? createCrc(crc) : undefined;
  }
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ): void {
    this.hash.update(chunk);
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

  /** The whole stored object's digest, or undefined when the read stopped before its end. */
  result(): { sha256: string; size: number; crc?: string } | undefined {
    if (!this.done) return undefined;
    return {
      sha256: this.hash.digest('hex'),
      size: this.size,
      ...(this.crc ? { crc: this.crc.digestBase64() } : {}),
    };
  }
}

async function restoreDirectory(
  request: RestoreRequest,
  tree: SandboxTree,
  limits: RestoreLimits,
  phases: Phases,
  findings: Finding[],
): Promise<void> {
  const { backup, store } = request;
  const started = performance.now();
  const checked = new FindingList(backup.id);
  const manifests = await readDirectoryManifests(backup, store, checked, { signal: request.signal });
  const controller = new AbortController();
  const stop = () => controller.abort();
  request.signal?.addEventListener('abort', stop, { once: true });
  let downloaded = 0;
  let reported = 0;
  let firstError: unknown;
  const states: ObjectState[] = [];
  const downloadOne = async (member: BackupObject) => {
    const relative = tree.relative(member.path, 'object');
    limits.entry(relative);
    limits.declare(member.size, relative);
    const stored = await lookUpStoreChecksum(store, member, member.path, checked, request.signal);
    const opened = await store.open(member.key, { highWaterMark: READ_HIGH_WATER_MARK });
    const { source, archive } = await sniffMember(opened, member, request);
    const writer = tree.createFile(relative, limits);
    const hash = createHash('sha256');
    const crc = crcOf(stored) ? createCrc(crcOf(stored) as CrcAlgorithm) : undefined;
    let size = 0;
    await pipeline(
      source,
      async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          hash.update(chunk);
          crc?.update(chunk);
          size += chunk.length;
          writer.write(chunk);
          await archive?.write(chunk);
          await tree.ready();
          downloaded += chunk.length;
          if (downloaded - reported >= PROGRESS_EVERY_BYTES) {
            reported = downloaded;
            request.onProgress?.({ phase: 'download', bytes: downloaded, files: tree.files.size });
          }
        }
      },
      { signal: controller.signal },
    ).catch((error: unknown) => {
      archive?.abort();
      throw error;
    });
    writer.end();
    const state = newState(member);
    const inspection = await archive?.end();
    if (archive && inspection) {
      reportArchiveProblems(member.path, archive.format, inspection.problems, checked, () => member.path);
      if (inspection.problems.length > 0) state.damaged = true;
    }
    state.sha256 = hash.digest('hex');
    state.size = size;
    state.readFully = true;
    compareStoreChecksum(state, stored, crc?.digestBase64(), checked);
    states.push(state);
  };
  try {
    request.onProgress?.({ phase: 'download', bytes: 0, files: 0 });
    await forEachLimited(
      backup.members,
      DOWNLOAD_PARALLELISM,
      async (member) => {
        try {
          await downloadOne(member);
        } catch (error) {
          firstError ??= error;
          controller.abort();
        }
      },
      { signal: controller.signal },
    );
  } finally {
    request.signal?.removeEventListener('abort', stop);
  }
  if (firstError) throw firstError;
  if (request.signal?.aborted) throw new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
  await tree.drain();
  phases.downloadMs = performance.now() - started;
  // The stored bytes as read, against every reference the integrity pass compares them with.
  states.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  await compareDirectoryManifests(backup, store, states, manifests, checked, { signal: request.signal });
  await finishReferences(backup, states, request.history, checked);
  checkDirectoryNotEmpty(backup, checked);
  findings.push(...checked.finish());
}

/** A file of a directory backup whose bytes are an archive, checked as one while it is downloaded. */
interface MemberArchive {
  format: ArchiveFormat;
  write(chunk: Buffer): Promise<void>;
  end(): Promise<ArchiveInspection | undefined>;
  abort(): void;
}

/**
 * As the integrity pass does: a file not named as an archive backup of its own whose first bytes
 * are gzip, zstd or tar is also read as an archive, so damage inside it is found by a restore too.
 */
async function sniffMember(
  opened: Readable,
  member: BackupObject,
  request: RestoreRequest,
): Promise<{ source: Readable; archive?: MemberArchive }> {
  const ownBackup =
    archiveFormatOf(member.path) !== undefined ||
    matchesArchivePattern(member.key, request.archivePatterns ?? []);
  if (ownBackup || member.size === 0) return { source: opened };
  const head = await readHead(opened);
  const format = sniffArchiveFormat(head.head, path.posix.basename(member.path));
  if (!format) return { source: head.stream };
  const feed = new PassThrough({ highWaterMark: READ_HIGH_WATER_MARK });
  const inspecting = inspectArchive(feed, format, {
    ...(request.signal ? { signal: request.signal } : {}),
    contentName: format.stem,
  });
  const settled = inspecting.then(
    () => undefined,
    () => undefined,
  );
  return {
    source: head.stream,
    archive: {
      format,
      async write(chunk) {
        if (!feed.write(chunk)) await Promise.race([once(feed, 'drain'), settled]);
      },
      async end() {
        feed.end();
        return inspecting.catch(() => undefined);
      },
      abort() {
        feed.destroy();
        inspecting.catch(() => {});
      },
    },
  };
}

/** What the file system holds must be what was written (most files were read back while extracting). */
async function verifyOnDisk(tree: SandboxTree, backup: Backup, findings: Finding[]): Promise<void> {
  for (const onDisk of await tree.verifyOnDisk()) {
    const { file } = onDisk;
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `"${file.path}" read back from disk (${onDisk.size} bytes, CRC-32 ${hex32(onDisk.crc32)}) differs from what was written (${file.size} bytes, CRC-32 ${hex32(file.crc32)}): the sandbox storage corrupted it`,
        { backup: backup.id, object: file.path },
      ),
    );
  }
  for (const link of tree.verifyLinksOnDisk()) {
    const found = link.found === undefined ? 'no symbolic link' : `a link to "${link.found}"`;
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `"${link.path}" read back from disk is ${found}, but the backup's link points at "${link.target}": the sandbox storage changed it`,
        { backup: backup.id, object: link.path },
      ),
    );
  }
}

async function compareWithReferences(request: RestoreRequest, tree: SandboxTree, findings: Finding[]) {
  const { backup } = request;
  const mismatch = (object: string, message: string) =>
    findings.push(finding('RESTORE_MISMATCH', message, { backup: backup.id, object }));
  const expect = (source: string, filePath: string, sha256: string | undefined, size: number | undefined) => {
    const file = tree.files.get(filePath);
    if (!file) {
      mismatch(filePath, `"${filePath}" is listed in ${source} but was not restored`);
      return;
    }
    if (size !== undefined && file.size !== size) {
      mismatch(filePath, `"${filePath}" restored with ${file.size} bytes; ${source} says ${size}`);
    } else if (sha256 !== undefined && sha256 !== '' && file.sha256 !== sha256.toLowerCase()) {
      mismatch(filePath, `"${filePath}" restored with SHA-256 ${file.sha256}; ${source} says ${sha256}`);
    }
  };

  if (backup.kind === 'directory') {
    for (const member of backup.members) {
      const filePath = tree.relative(member.path, 'object');
      expect('the catalogue', filePath, undefined, member.size);
      const integritySha256 = request.objectSha256?.[member.key];
      if (integritySha256) expect('the integrity pass', filePath, integritySha256, undefined);
    }
    if (tree.files.size !== backup.members.length) {
      mismatch(backup.key, `${tree.files.size} files restored, the catalogue lists ${backup.members.length}`);
    }
  }

  if (request.references && request.references.length > 0) {
    let listedFiles = 0;
    let listedLinks = 0;
    for (const digest of request.references) {
      if (digest.type === 'symlink') {
        listedLinks += 1;
        expectLink(tree, digest, mismatch);
        continue;
      }
      if (digest.type !== 'file' && digest.type !== 'hardlink') continue;
      const filePath = safeRelative(tree, digest.path);
      if (filePath === undefined) continue;
      listedFiles += 1;
      if (digest.type === 'file') expect('the integrity pass', filePath, digest.sha256, digest.size);
      else expect('the integrity pass', filePath, undefined, undefined);
    }
    if (listedFiles !== tree.files.size) {
      mismatch(
        backup.key,
        `${tree.files.size} files restored, the integrity pass read ${listedFiles}: the backup changed between the passes or the restore lost files`,
      );
    }
    if (listedLinks !== tree.links.size) {
      mismatch(
        backup.key,
        `${tree.links.size} symbolic links restored, the integrity pass read ${listedLinks}: the backup changed between the passes or the restore lost links`,
      );
    }
  }
}

/** A link is data: its target text must be what the integrity pass read (it is never followed). */
function expectLink(
  tree: SandboxTree,
  digest: ContentDigest,
  mismatch: (object: string, message: string) => void,
): void {
  const linkPath = safeRelative(tree, digest.path);
  if (linkPath === undefined) return;
  const target = tree.links.get(linkPath);
  if (target === undefined) {
    mismatch(
      linkPath,
      `symbolic link "${linkPath}" is listed in the integrity pass but was not restored as a link`,
    );
  } else if (digest.linkTarget !== undefined && target !== digest.linkTarget) {
    mismatch(
      linkPath,
      `symbolic link "${linkPath}" restored pointing at "${target}"; the integrity pass read "${digest.linkTarget}"`,
    );
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

function safeRelative(tree: SandboxTree, raw: string): string | undefined {
  try {
    return tree.relative(raw) || undefined;
  } catch {
    return undefined;
  }
}

async function runProbes(request: RestoreRequest, tree: SandboxTree, findings: Finding[]): Promise<void> {
  // Configured probes get HOME and TMPDIR in the sandbox, made after the restored tree was verified.
  const home = request.probes.length > 0 ? await mkdtemp(path.join(tree.root, '.probe-home-')) : undefined;
  try {
    await runProbeTasks(request, tree, findings, home);
  } finally {
    if (home) await rm(home, { recursive: true, force: true });
  }
}

async function runProbeTasks(
  request: RestoreRequest,
  tree: SandboxTree,
  findings: Finding[],
  home: string | undefined,
): Promise<void> {
  const tasks: Array<() => Promise<void>> = [];
  const failed = (file: RestoredFile, message: string) =>
    findings.push(
      finding('PROBE_FAILED', `"${file.path}": ${message}`, { backup: request.backup.id, object: file.path }),
    );
  for (const file of tree.files.values()) {
    if (file.linkOf !== undefined) continue;
    const absolute = tree.absolute(file.path);
    const builtin = file.probe;
    if (builtin) {
      tasks.push(async () => {
        const problem = await runBuiltinProbe(builtin, absolute, file.size);
        if (problem) failed(file, problem);
      });
    }
    for (const probe of request.probes) {
      if (!probeMatches(probe.match, file.path)) continue;
      tasks.push(async () => {
        const problem = await runCustomProbe(probe, absolute, tree.root, {
          ...(request.signal ? { signal: request.signal } : {}),
          ...(home ? { home } : {}),
        });
        if (problem) failed(file, problem);
      });
    }
  }
  await forEachLimited(tasks, 4, async (task) => {
    if (request.signal?.aborted) throw new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
    await task();
  });
}

function failureFinding(error: unknown, backupId: string, root: string, archive?: string): Finding {
  const damaged = archive === undefined ? { backup: backupId } : { backup: backupId, object: archive };
  if (error instanceof RestoreAbort) {
    if (
      error.object === undefined &&
      (error.code === 'ARCHIVE_TRUNCATED' || error.code === 'ARCHIVE_CORRUPT')
    )
      return finding(error.code, error.message, damaged);
    return finding(error.code, error.message, {
      backup: backupId,
      ...(error.object !== undefined ? { object: error.object } : {}),
    });
  }
  if (error instanceof StoreError) {
    if (error.kind === 'not-found') {
      return finding(
        'MISSING_OBJECT',
        `the backup is gone from the store since it was listed: ${error.message}`,
        {
          backup: backupId,
        },
      );
    }
    const code: FindingCode = error.kind === 'access-denied' ? 'ACCESS_DENIED' : 'RESTORE_FAILED';
    return finding(code, `the restore could not read the backup: ${error.message}`, { backup: backupId });
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (isOutOfSpace(error)) {
    return finding(
      'RESTORE_FAILED',
      `the sandbox ran out of space at ${root} (${message}): give the restore more scratch storage`,
      { backup: backupId },
    );
  }
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message)) {
    return finding('ARCHIVE_TRUNCATED', `the compressed stream ends early: ${message}`, damaged);
  }
  if (code === 'Z_DATA_ERROR' || code?.startsWith('ERR_ZSTD') || code === 'ERR__ERROR_CORRUPTION_DETECTED') {
    return finding('ARCHIVE_CORRUPT', `the compressed stream is invalid: ${message}`, damaged);
  }
  return finding('RESTORE_FAILED', `the restore failed unexpectedly: ${message}`, { backup: backupId });
}

async function emptyFolder(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (names.length === 0) return;
  // coreutils rm deletes a 20,000-file tree faster and in far less memory than fs.rm's JS walk.
  const removed = await new Promise<boolean>((resolve) => {
    const child = spawn('rm', ['-rf', '--', ...names.map((name) => path.join(root, name))], {
      stdio: 'ignore',
    });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
  if (removed) return;
  await Promise.all(
    names.map((name) => rm(path.join(root, name), { recursive: true, force: true, maxRetries: 2 })),
  );
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}
