import { createHash, type Hash } from 'node:crypto';
import type { Readable, Transform } from 'node:stream';
import { type ArchiveFormat, createDecompressor } from '../compression.ts';
import {
  MANIFEST_NAME,
  MAX_MANIFEST_BYTES,
  type ManifestLineError,
  normalizeRelativePath,
  parseSha256Sums,
} from '../manifest.ts';
import type { ContentDigest } from '../model.ts';
import { type TarEntryHeader, type TarEntrySink, TarParser, type TarProblem } from './tar-parser.ts';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface ArchiveProblem {
  /** `unsupported`: the runtime cannot decompress this format (zstd before Node 22.15). */
  kind: 'corrupt' | 'truncated' | 'unsupported';
  layer: 'gzip' | 'zstd' | 'tar';
  /** Byte offset: in the stored object for gzip/zstd, in the decompressed tar stream for tar. */
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
  storedBytes: number;
  decompressedBytes: number;
  /** Tar entries of every kind (files, directories, links, devices); 1 for a plain compressed file. */
  entries: number;
  /** Regular files (incl. hard links to them). */
  files: number;
  /** Bytes of file content (sparse files at their real size). */
  contentBytes: number;
  rootManifest?: RootManifestCheck;
  /** Corruption, truncation or an unsupported format; empty when the archive read cleanly. */
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
}

interface MemberRecord {
  sha256: string;
  size: number;
  type: ContentDigest['type'];
  linkTarget?: string;
}

class HashingSink implements TarEntrySink {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  constructor(private readonly done: (sha256: string, size: number) => void) {}
  write(chunk: Buffer): void {
    this.size += chunk.length;
    this.hash.update(chunk);
  }
  end(): void {
    this.done(this.hash.digest('hex'), this.size);
  }
}

class ManifestCapture implements TarEntrySink {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflow = false;
  constructor(
    private readonly inner: TarEntrySink,
    private readonly done: (text: string | undefined) => void,
  ) {}
  write(chunk: Buffer): void {
    this.inner.write(chunk);
    this.size += chunk.length;
    if (this.size > MAX_MANIFEST_BYTES) this.overflow = true;
    else this.chunks.push(Buffer.from(chunk));
  }
  end(): void {
    this.inner.end();
    this.done(this.overflow ? undefined : Buffer.concat(this.chunks).toString('utf8'));
  }
}

function describeZlibError(
  error: Error & { code?: string },
  layer: 'gzip' | 'zstd',
  consumed: number,
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
  let what: string;
  if (/incorrect header check/i.test(message)) {
    what = producedOutput
      ? `data that is not gzip follows a complete gzip member near byte ${consumed} (trailing garbage, or a damaged member header)`
      : `the object does not start with a valid ${layer} header (it is not ${layer}-compressed, or its first bytes are damaged)`;
  } else if (/incorrect data check/i.test(message)) {
    what = `the CRC-32 in a gzip trailer (near byte ${consumed}) does not match the decompressed data`;
  } else if (/incorrect length check/i.test(message)) {
    what = `the length (ISIZE) in a gzip trailer (near byte ${consumed}) does not match the decompressed data`;
  } else {
    what = `invalid ${layer} data near byte ${consumed} (${message})`;
  }
  return {
    kind: 'corrupt',
    layer,
    offset: consumed,
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
  // A hashing worker that fails must not become an unhandled rejection while the stream is read.
  options.wholeFileSha256?.catch(() => {});
  let storedBytes = 0;
  let decompressedBytes = 0;
  let entries = 0;
  let files = 0;
  let contentBytes = 0;
  let callbackError: unknown;

  const members = new Map<string, MemberRecord>();
  let manifestText: string | undefined;
  let manifestMemberPath: string | undefined;
  let manifestTooLarge = false;

  const emit = (digest: ContentDigest) => {
    if (!options.onEntry) return;
    try {
      options.onEntry(digest);
    } catch (error) {
      callbackError ??= error;
    }
  };

  let consumer: { write(chunk: Buffer): void; end(): void };
  if (format.tar) {
    const parser = new TarParser({
      problem: (p: TarProblem) => problems.push({ ...p, layer: 'tar' }),
      entry: (header: TarEntryHeader) => {
        entries++;
        const path = normalizeRelativePath(header.path) ?? header.path;
        if (header.type !== 'file') {
          const record: MemberRecord = { sha256: EMPTY_SHA256, size: 0, type: header.type };
          if (header.type === 'hardlink') {
            const target = members.get(normalizeRelativePath(header.linkTarget ?? '') ?? '');
            if (target && (target.type === 'file' || target.type === 'hardlink')) {
              files++;
              contentBytes += target.size;
              record.size = target.size;
              record.sha256 = target.sha256;
            }
          }
          if (header.linkTarget !== undefined) record.linkTarget = header.linkTarget;
          members.set(path, record);
          emit({
            path,
            size: record.size,
            sha256: record.sha256,
            type: header.type,
            ...(header.linkTarget !== undefined ? { linkTarget: header.linkTarget } : {}),
          });
          return undefined;
        }
        files++;
        const hashing = new HashingSink((sha256, size) => {
          contentBytes += size;
          members.set(path, { sha256, type: 'file', size });
          emit({ path, size, sha256, type: 'file' });
        });
        if (path === MANIFEST_NAME) {
          manifestMemberPath = header.path;
          return new ManifestCapture(hashing, (text) => {
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
    consumer = new HashingSink((sha256, size) => {
      contentBytes = size;
      emit({ path, size, sha256, type: 'file' });
    });
  }

  const decompressor = createDecompressor(format.compression);
  const layer = format.compression === 'zstd' ? 'zstd' : 'gzip';
  let decompressFailed = false;
  let settled: Promise<void> = Promise.resolve();
  if (format.compression !== 'none' && !decompressor) {
    decompressFailed = true;
    problems.push({
      kind: 'unsupported',
      layer,
      message: `cannot decompress ${format.compression}: this Node.js runtime (${process.version}) has no ${format.compression} decompressor; run the validator on Node 22.15 or later`,
    });
  }
  if (decompressor) {
    decompressor.on('data', (chunk: Buffer) => {
      decompressedBytes += chunk.length;
      consumer.write(chunk);
    });
    settled = new Promise<void>((resolve) => {
      decompressor.once('end', resolve);
      decompressor.once('error', (error: Error & { code?: string }) => {
        decompressFailed = true;
        problems.push(
          describeZlibError(
            error,
            layer,
            (decompressor as Transform & { bytesWritten: number }).bytesWritten,
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
    storedBytes += chunk.length;
    options.onProgress?.(chunk.length);
    if (decompressor) {
      if (!decompressFailed && !decompressor.write(chunk)) await waitForDrain(decompressor, settled);
    } else if (!decompressFailed) {
      decompressedBytes += chunk.length;
      consumer.write(chunk);
    }
    if (decompressFailed && !storedHash) break;
    if (callbackError) break;
  }
  signal?.throwIfAborted();
  if (decompressor) {
    if (!decompressFailed) decompressor.end();
    await settled;
  }
  if (callbackError) throw callbackError;
  if (!decompressFailed) consumer.end();
  if (callbackError) throw callbackError;

  const storedSha256 = storedHash
    ? storedHash.digest('hex')
    : await (options.wholeFileSha256 as Promise<string>);

  const readToEnd = !decompressFailed && !problems.some((p) => p.kind === 'truncated');
  const inspection: ArchiveInspection = {
    readToEnd,
    storedSha256,
    storedBytes,
    decompressedBytes,
    entries,
    files,
    contentBytes,
    problems,
  };
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

function resolveRecord(members: Map<string, MemberRecord>, path: string): MemberRecord | undefined {
  let record = members.get(path);
  let current = path;
  for (let hops = 0; record?.type === 'symlink' && hops < 16; hops++) {
    const target = record.linkTarget ?? '';
    const base = current.includes('/') ? current.slice(0, current.lastIndexOf('/') + 1) : '';
    const next = normalizeRelativePath(target.startsWith('/') ? '' : `${base}${target}`);
    if (next === undefined) return undefined;
    current = next;
    record = members.get(next);
  }
  return record;
}

function checkRootManifest(
  memberPath: string,
  text: string | undefined,
  tooLarge: boolean,
  members: Map<string, MemberRecord>,
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
  const parsed = parseSha256Sums(text);
  check.errors = parsed.errors;
  const listed = new Set<string>();
  for (const entry of parsed.entries) {
    listed.add(entry.path);
    const record = resolveRecord(members, entry.path);
    if (!record || record.type === 'directory' || record.type === 'other' || record.type === 'symlink') {
      if (!incomplete) check.missing.push({ path: entry.path, expected: entry.sha256 });
    } else if (record.sha256 !== entry.sha256) {
      check.mismatched.push({ path: entry.path, expected: entry.sha256, actual: record.sha256 });
    } else check.verified++;
  }
  for (const [path, record] of members) {
    if (incomplete) break;
    if (path === MANIFEST_NAME || listed.has(path)) continue;
    if (record.type === 'file' || record.type === 'hardlink') check.unlisted.push(path);
  }
  return check;
}
