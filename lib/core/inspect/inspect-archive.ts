import { createHash, type Hash } from 'node:crypto';
import type { Readable, Transform } from 'node:stream';
import { type ArchiveFormat, createDecompressor } from '../compression.ts';
import { SAFE_RESTORE_LIMITS } from '../config.ts';
import {
  forEachSha256SumsLine,
  MANIFEST_NAME,
  MAX_MANIFEST_BYTES,
  type ManifestLineError,
  normalizeRelativePath,
} from '../manifest.ts';
import type { ContentDigest } from '../model.ts';
import { RestoreAbort } from '../restore/abort.ts';
import { countsAsEntry, RestoreLimits, type RestoreLimitValues } from '../restore/limits.ts';
import { type CrcAlgorithm, createCrc } from './crc.ts';
import { MemberTable } from './member-table.ts';
import { type TarEntryHeader, type TarEntrySink, TarParser, type TarProblem } from './tar-parser.ts';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface ArchiveProblem {
  /** `limit`: the archive passed a restore limit (size, expansion ratio, entries) and was not read further. */
  kind: 'corrupt' | 'truncated' | 'limit';
  layer: 'gzip' | 'zstd' | 'tar';
  /**
   * Byte offset: in the decompressed tar stream for tar; for gzip/zstd, the stored bytes fed to
   * the decompressor when it failed (the damage lies at or before it). Absent when unknown.
   */
  offset?: number;
  member?: string;
  message: string;
}

/** What a `SHA256SUMS` at the root of a tar archive said about the archive's members. */
export interface RootManifestCheck {
  /** The member's name as stored in the archive. */
  memberPath: string;
  errors: ManifestLineError[];
  verified: number;
  mismatched: Array<{ path: string; expected: string; actual: string }>;
  /** Listed but not in the archive. */
  missing: Array<{ path: string; expected: string }>;
  /** Regular files (and hard links) in the archive the manifest does not list. */
  unlisted: string[];
  /**
   * The archive could not be read to its end (truncated, or decompression failed): files listed
   * but not reached are not counted as missing, nor are files reached counted as unlisted.
   */
  incomplete: boolean;
}

export interface ArchiveInspection {
  storedSha256: string;
  /** The CRC of the stored bytes asked for with `crc`, base64 as S3 reports it. */
  storedCrc?: string;
  storedBytes: number;
  decompressedBytes: number;
  /** Tar entries of every kind (files, directories, links, devices); 1 for a plain compressed file. */
  entries: number;
  /** Regular files (incl. hard links to them). */
  files: number;
  /** Bytes of file content (sparse files at their real size). */
  contentBytes: number;
  /** Bytes fed to member hashes, whole members or not (holes of sparse members included). */
  hashedBytes: number;
  rootManifest?: RootManifestCheck;
  /** Corruption or truncation; empty when the archive read cleanly. */
  problems: ArchiveProblem[];
  /** Decompression and tar parsing reached the end of the archive (damage may still have been skipped). */
  readToEnd: boolean;
}

export interface InspectOptions {
  onEntry?(digest: ContentDigest): void;
  /** SHA-256 of the stored bytes computed elsewhere (a worker reading the file); else hashed here. */
  wholeFileSha256?: Promise<string> | undefined;
  signal?: AbortSignal;
  /** Stored bytes read so far, as deltas. */
  onProgress?(bytesDelta: number): void;
  /** Name of the content of a plain compressed file (default: the format's stem). */
  contentName?: string;
  /** Also compute this CRC of the stored bytes (to compare with the store's full-object checksum). */
  crc?: CrcAlgorithm;
  /** The restore's limits, enforced while reading (default: the safe defaults). */
  limits?: RestoreLimitValues;
  /** Memory for the member records a root SHA256SUMS is checked against (default MAX_MEMBER_TABLE_BYTES). */
  memberTableBytes?: number;
}

class HashingSink implements TarEntrySink {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  constructor(
    private readonly path: string,
    private readonly limits: RestoreLimits,
    private readonly counter: { hashed: number },
    private readonly done: (digest: Buffer, size: number) => void,
  ) {}
  write(chunk: Buffer): void {
    // Counted before hashing: a chunk past the limit is never hashed.
    this.limits.add(chunk.length, this.path);
    this.size += chunk.length;
    this.counter.hashed += chunk.length;
    this.hash.update(chunk);
  }
  end(): void {
    this.done(this.hash.digest(), this.size);
  }
}

/** Keeps a copy of the root SHA256SUMS in one buffer sized from its header (no chunk list, no concat). */
class ManifestCapture implements TarEntrySink {
  private buffer: Buffer;
  private size = 0;
  overflow = false;
  constructor(
    private readonly inner: TarEntrySink,
    expectedSize: number,
    private readonly done: (text: Buffer | undefined) => void,
  ) {
    this.overflow = expectedSize > MAX_MANIFEST_BYTES;
    this.buffer = Buffer.allocUnsafe(this.overflow ? 0 : expectedSize);
  }
  write(chunk: Buffer): void {
    this.inner.write(chunk);
    if (this.overflow) return;
    const needed = this.size + chunk.length;
    if (needed > MAX_MANIFEST_BYTES) {
      this.overflow = true;
      this.buffer = Buffer.alloc(0);
      return;
    }
    if (needed > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(
        Math.min(MAX_MANIFEST_BYTES, Math.max(needed, this.buffer.length * 2)),
      );
      this.buffer.copy(bigger, 0, 0, this.size);
      this.buffer = bigger;
    }
    chunk.copy(this.buffer, this.size);
    this.size = needed;
  }
  end(): void {
    this.inner.end();
    this.done(this.overflow ? undefined : this.buffer.subarray(0, this.size));
  }
}

/**
 * Where zlib failed, as far as it is known: zlib reports no position, but it had consumed
 * `consumed` bytes in the calls that succeeded and had been given `fed` bytes, so the damage
 * lies in between (or earlier, for a trailer check that fails at the end of a member).
 */
function failureSpan(consumed: number, fed: number): string {
  if (fed <= 0) return '';
  return consumed > 0 && consumed < fed
    ? `compressed bytes ${consumed}-${fed}`
    : `the first ${fed} compressed bytes`;
}

function describeZlibError(
  error: Error & { code?: string },
  layer: 'gzip' | 'zstd',
  consumed: number,
  fed: number,
  storedBytes: number,
  producedOutput: boolean,
): ArchiveProblem {
  const message = error.message;
  if (/unexpected end of file/i.test(message) || error.code === 'Z_BUF_ERROR') {
    return {
      kind: 'truncated',
      layer,
      offset: storedBytes,
      message: `the ${layer} stream ends at byte ${storedBytes} (the end of the stored object) before its end: the upload or copy was cut short; re-copy the backup from its origin`,
    };
  }
  const span = failureSpan(consumed, fed);
  const within = span ? ` (zlib failed within ${span})` : '';
  let what: string;
  if (/incorrect header check/i.test(message)) {
    what = producedOutput
      ? `data that is not gzip follows a complete gzip member${within} (trailing garbage, or a damaged member header)`
      : `the object does not start with a valid ${layer} header (it is not ${layer}-compressed, or its first bytes are damaged)`;
  } else if (/incorrect data check/i.test(message)) {
    what = `the CRC-32 in a gzip trailer does not match the decompressed data${within}`;
  } else if (/incorrect length check/i.test(message)) {
    what = `the length (ISIZE) in a gzip trailer does not match the decompressed data${within}`;
  } else {
    what = `invalid ${layer} data${within} (${message})`;
  }
  return {
    kind: 'corrupt',
    layer,
    ...(fed > 0 ? { offset: fed } : {}),
    message: `${what}: the archive is damaged; restore it from another copy`,
  };
}

function waitForDrain(stream: Transform, settled: Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      resolve();
    };
    stream.once('drain', done);
    void settled.then(done);
  });
}

/**
 * Reads an archive once: SHA-256 of the stored bytes, decompression, tar parsing and a SHA-256
 * of each member, with memory bounded by the stream buffers whatever the archive's size.
 * Damage is reported in `problems`; the promise rejects only when the input cannot be read
 * (the store's error, unchanged), the signal aborts, or a callback throws.
 */
export async function inspectArchive(
  input: Readable,
  format: ArchiveFormat,
  options: InspectOptions = {},
): Promise<ArchiveInspection> {
  const problems: ArchiveProblem[] = [];
  const storedHash = options.wholeFileSha256 ? undefined : createHash('sha256');
  const crc = options.crc ? createCrc(options.crc) : undefined;
  // A hashing worker that fails must not become an unhandled rejection while the stream is read.
  options.wholeFileSha256?.catch(() => {});
  let storedBytes = 0;
  let decompressedBytes = 0;
  let entries = 0;
  let files = 0;
  let contentBytes = 0;
  let callbackError: unknown;
  const limits = new RestoreLimits(options.limits ?? SAFE_RESTORE_LIMITS, true);
  const counter = { hashed: 0 };
  /** A limit was passed (or a callback failed): nothing more is decompressed or parsed. */
  let halted = false;
  let halt = () => {
    halted = true;
  };
  /** Runs a step of the parse; a limit it passes becomes a problem and halts the pass. */
  const guarded = (step: () => void, layer: ArchiveProblem['layer'], offset: () => number) => {
    if (halted) return;
    try {
      step();
    } catch (error) {
      if (error instanceof RestoreAbort) {
        problems.push({
          kind: 'limit',
          layer,
          offset: offset(),
          ...(error.object !== undefined ? { member: error.object } : {}),
          message: error.message,
        });
      } else callbackError ??= error;
      halt();
    }
  };

  const members = new MemberTable(options.memberTableBytes);
  let manifestText: Buffer | undefined;
  let manifestMemberPath: string | undefined;
  let manifestTooLarge = false;

  const emit = (digest: ContentDigest) => {
    try {
      options.onEntry?.(digest);
    } catch (error) {
      callbackError ??= error;
    }
  };

  let consumer: { write(chunk: Buffer): void; end(): void };
  let parser: TarParser | undefined;
  if (format.tar) {
    parser = new TarParser({
      problem: (p: TarProblem) => problems.push({ ...p, layer: 'tar' }),
      entry: (header: TarEntryHeader) => {
        entries++;
        const normalized = normalizeRelativePath(header.path);
        const path = normalized ?? header.path;
        if (countsAsEntry(header.type, normalized ?? '')) limits.entry(path);
        if (header.type === 'file') limits.declare(header.size, path);
        if (header.type !== 'file') {
          let size = 0;
          let digest: Buffer = MemberTable.EMPTY_DIGEST;
          if (header.type === 'hardlink') {
            const target = members.find(normalizeRelativePath(header.linkTarget ?? '') ?? '');
            const targetType = target === undefined ? undefined : members.type(target);
            if (target !== undefined && (targetType === 'file' || targetType === 'hardlink')) {
              files++;
              size = members.size(target);
              contentBytes += size;
              digest = members.digest(target);
            }
          }
          members.add(path, header.type, size, digest, header.linkTarget);
          if (options.onEntry) {
            emit({
              path,
              size,
              sha256: digest.toString('hex'),
              type: header.type,
              ...(header.linkTarget !== undefined ? { linkTarget: header.linkTarget } : {}),
            });
          }
          return undefined;
        }
        files++;
        const hashing = new HashingSink(path, limits, counter, (digest, size) => {
          contentBytes += size;
          members.add(path, 'file', size, digest);
          if (options.onEntry) emit({ path, size, sha256: digest.toString('hex'), type: 'file' });
        });
        if (path === MANIFEST_NAME) {
          manifestMemberPath = header.path;
          return new ManifestCapture(hashing, header.size, (text) => {
            manifestText = text;
            manifestTooLarge = text === undefined;
          });
        }
        return hashing;
      },
    });
    consumer = parser;
  } else {
    entries = 1;
    files = 1;
    const path = options.contentName ?? format.stem;
    limits.entry(path);
    consumer = new HashingSink(path, limits, counter, (digest, size) => {
      contentBytes = size;
      if (options.onEntry) emit({ path, size, sha256: digest.toString('hex'), type: 'file' });
    });
  }

  const decompressor = createDecompressor(format.compression);
  const layer = format.compression === 'zstd' ? 'zstd' : 'gzip';
  const tarLayer = format.tar ? 'tar' : layer;
  const consumedOffset = () => parser?.bytesConsumed ?? decompressedBytes;
  let decompressFailed = false;
  let fedToDecompressor = 0;
  let settled: Promise<void> = Promise.resolve();
  if (decompressor) {
    decompressor.on('data', (chunk: Buffer) => {
      if (halted) return;
      decompressedBytes += chunk.length;
      guarded(
        () => limits.ratio(decompressedBytes, fedToDecompressor),
        layer,
        () => fedToDecompressor,
      );
      guarded(() => consumer.write(chunk), tarLayer, consumedOffset);
    });
    halt = () => {
      halted = true;
      // A bomb inflates whatever was already fed; stop it now.
      decompressor.destroy();
    };
    settled = new Promise<void>((resolve) => {
      decompressor.once('end', resolve);
      decompressor.once('close', resolve);
      decompressor.once('error', (error: Error & { code?: string }) => {
        decompressFailed = true;
        problems.push(
          describeZlibError(
            error,
            layer,
            (decompressor as Transform & { bytesWritten: number }).bytesWritten,
            fedToDecompressor,
            storedBytes,
            decompressedBytes > 0,
          ),
        );
        resolve();
      });
    });
  }

  const signal = options.signal;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    signal?.throwIfAborted();
    storedHash?.update(chunk);
    crc?.update(chunk);
    storedBytes += chunk.length;
    options.onProgress?.(chunk.length);
    if (decompressor) {
      if (!decompressFailed && !halted) {
        fedToDecompressor += chunk.length;
        if (!decompressor.write(chunk)) await waitForDrain(decompressor, settled);
      }
    } else if (!decompressFailed && !halted) {
      decompressedBytes += chunk.length;
      guarded(() => consumer.write(chunk), tarLayer, consumedOffset);
    }
    // The stored bytes are still hashed after damage or a limit: their checksum is still checked.
    if ((decompressFailed || halted) && !storedHash && !crc) break;
    if (callbackError) break;
  }
  signal?.throwIfAborted();
  if (decompressor) {
    if (!decompressFailed && !halted) decompressor.end();
    await settled;
  }
  if (callbackError) throw callbackError;
  if (!decompressFailed) guarded(() => consumer.end(), tarLayer, consumedOffset);
  if (callbackError) throw callbackError;

  const storedSha256 = storedHash
    ? storedHash.digest('hex')
    : await (options.wholeFileSha256 as Promise<string>);

  const readToEnd = !decompressFailed && !halted && !problems.some((p) => p.kind === 'truncated');
  const inspection: ArchiveInspection = {
    readToEnd,
    storedSha256,
    storedBytes,
    decompressedBytes,
    entries,
    files,
    contentBytes,
    hashedBytes: counter.hashed,
    problems,
  };
  if (crc) inspection.storedCrc = crc.digestBase64();
  if (manifestMemberPath !== undefined) {
    inspection.rootManifest = checkRootManifest(
      manifestMemberPath,
      manifestText,
      manifestTooLarge,
      members,
      !readToEnd,
    );
  }
  return inspection;
}

/** The member a manifest path names, following symbolic links inside the archive. */
function resolveMember(members: MemberTable, path: string): number | undefined {
  let slot = members.find(path);
  let current = path;
  for (let hops = 0; slot !== undefined && members.type(slot) === 'symlink' && hops < 16; hops++) {
    const target = members.linkTarget(slot) ?? '';
    const base = current.includes('/') ? current.slice(0, current.lastIndexOf('/') + 1) : '';
    const next = normalizeRelativePath(target.startsWith('/') ? '' : `${base}${target}`);
    if (next === undefined) return undefined;
    current = next;
    slot = members.find(next);
  }
  return slot;
}

/**
 * Checks the manifest line by line against the member table: no parsed copy of the manifest
 * is held, so the check adds little to the pass's memory at its end.
 */
function checkRootManifest(
  memberPath: string,
  text: Buffer | undefined,
  tooLarge: boolean,
  members: MemberTable,
  incomplete: boolean,
): RootManifestCheck {
  const check: RootManifestCheck = {
    memberPath,
    incomplete,
    errors: [],
    verified: 0,
    mismatched: [],
    missing: [],
    unlisted: [],
  };
  if (tooLarge || text === undefined) {
    check.errors.push({
      line: 0,
      text: '',
      message: `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes and was not read`,
    });
    return check;
  }
  if (members.dropped > 0) {
    check.errors.push({
      line: 0,
      text: '',
      message: `the archive's member list passed the ${members.maxBytes}-byte memory limit after ${members.recorded} members (${members.dropped} more were not recorded), so the manifest was not checked`,
    });
    return check;
  }
  // Paths listed that are not members (or not files): few, so kept by name for repeats.
  const listedElsewhere = new Map<string, { sha256: string; line: number }>();
  const listedAgain = (line: number, lineText: string, path: string, first: number) =>
    check.errors.push({
      line,
      text: lineText,
      message: `"${path}" is listed again with a different checksum (first on line ${first})`,
    });
  forEachSha256SumsLine(
    text,
    (entry, lineText) => {
      const direct = members.find(entry.path);
      if (direct !== undefined) {
        const first = members.listedLine(direct);
        if (first > 0) {
          // The first listing was compared already; a repeat only needs the same checksum.
          const earlier =
            check.mismatched.find((m) => m.path === entry.path)?.expected ?? members.sha256(direct);
          if (earlier !== entry.sha256) listedAgain(entry.line, lineText, entry.path, first);
          return;
        }
        members.markListed(direct, entry.line);
      } else {
        const earlier = listedElsewhere.get(entry.path);
        if (earlier) {
          if (earlier.sha256 !== entry.sha256) listedAgain(entry.line, lineText, entry.path, earlier.line);
          return;
        }
        listedElsewhere.set(entry.path, { sha256: entry.sha256, line: entry.line });
      }
      const slot = resolveMember(members, entry.path);
      const type = slot === undefined ? undefined : members.type(slot);
      if (slot === undefined || type === 'directory' || type === 'other' || type === 'symlink') {
        if (!incomplete) check.missing.push({ path: entry.path, expected: entry.sha256 });
        return;
      }
      const actual = members.sha256(slot);
      if (actual !== entry.sha256) {
        check.mismatched.push({ path: entry.path, expected: entry.sha256, actual });
      } else check.verified++;
    },
    (error) => check.errors.push(error),
  );
  if (incomplete) return check;
  for (const [path, slot] of members.entries()) {
    if (path === MANIFEST_NAME || members.listedLine(slot) > 0) continue;
    const type = members.type(slot);
    if (type === 'file' || type === 'hardlink') check.unlisted.push(path);
  }
  return check;
}
