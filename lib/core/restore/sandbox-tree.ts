import { createHash, type Hash } from 'node:crypto';
import fs, { constants as fsConstants, lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { RestoreAbort } from './abort.ts';
import type { RestoreLimits } from './limits.ts';
import { readBackInWorker } from './off-thread.ts';
import { type BuiltinProbe, builtinProbeFor } from './probes.ts';

/** A regular file as restored: its content hash was computed from the bytes written. */
export interface RestoredFile {
  /** Normalised path relative to the sandbox root. */
  path: string;
  size: number;
  sha256: string;
  /** CRC-32 of the bytes written: the read-back from disk must give it again. */
  crc32: number;
  /** The built-in probe its name and first bytes call for (the bytes themselves are not kept: 20,000 files' heads are megabytes). */
  probe?: BuiltinProbe;
  /** For a hard link: the path it links to (same inode, verified once). */
  linkOf?: string;
}

export const HEAD_BYTES = 512;

const openFile = promisify(fs.open);
const closeFile = promisify(fs.close);
const writeFile = promisify(fs.write);
const truncateFile = promisify(fs.ftruncate);
const makeLink = promisify(fs.link);
const makeSymlinkAsync = promisify(fs.symlink);
const unlinkFile = promisify(fs.unlink);

/**
 * A new file is created and written in place with plain sequential calls, as tar does: going
 * through libuv's thread pool, for whole files or only for their large writes, was slower on
 * tmpfs and on disk. Links, symlinks, removals and a file replacing one still being handled go
 * through the pool, in order per path; bounded, so a fast stream never piles up in memory.
 */
const MAX_OPS_IN_FLIGHT = 64;
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/**
 * File-system calls running at once. libuv has 4 threads by default and inflate needs one:
 * with every thread blocked creating files, decompression would stall behind them.
 */
const MAX_ACTIVE_IO = 2;
/** Files read back per wait on the file system, so new operations are not held up for long. */
const VERIFY_BATCH = 8;
/**
 * Bytes read back on the main thread before it yields to the event loop (heartbeats, progress).
 * A file this large or larger is read back in a worker thread instead.
 */
export const READ_BACK_SLICE = 32 * 1024 * 1024;

const WRITE_FLAGS =
  fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0);
const ZEROS = Buffer.alloc(1024 * 1024);
/** Chunks of zeros at least this long are left as holes, so sparse members stay sparse. */
const HOLE_MIN = 4096;

/**
 * The restore root and everything created below it. Every entry goes through here, so
 * containment is decided in one place:
 * - names are normalised; absolute names and `..` components are refused;
 * - parents are created one component at a time and must be folders this restore made
 *   (a symlink or file on the way is refused, so nothing is ever written through a link);
 * - files are opened with O_CREAT|O_EXCL|O_NOFOLLOW;
 * - a symbolic link is data: it is recreated as a link with its target text as is (absolute
 *   or climbing out, as in `etc/localtime -> /usr/share/zoneinfo/UTC`) and never followed,
 *   not when writing (nothing is created through it), not when reading back (lstat and
 *   readlink), not by a probe (links are not probed; files are opened with O_NOFOLLOW);
 * - hard links must point at a regular file extracted earlier by this restore.
 */
export class SandboxTree {
  readonly root: string;
  readonly files = new Map<string, RestoredFile>();
  private readonly directories = new Set<string>(['']);
  /** Each symbolic link restored, with its target text. */
  private readonly symlinks = new Map<string, string>();
  /** The last queued operation on each path: operations on one path run in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly activeWriters = new Set<FileWriter>();
  private readonly waiters: Array<() => void> = [];
  private opsInFlight = 0;
  /** Bytes handed to writers and not yet on disk. */
  queuedBytes = 0;
  private failure: { error: unknown } | undefined;
  /** Files closed on disk and not yet read back. */
  private readonly unverified: RestoredFile[] = [];
  /** Files read back from disk, with what was found there. */
  private readonly onDisk = new Map<string, OnDisk>();
  private readBuffer: Buffer | undefined;
  private activeIo = 0;
  private readonly ioWaiters: Array<() => void> = [];

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get symlinkCount(): number {
    return this.symlinks.size;
  }

  /** The symbolic links restored (path -> target text as the archive gave it). */
  get links(): ReadonlyMap<string, string> {
    return this.symlinks;
  }

  /** `./a//b/` -> `a/b`; '' for the root itself. Throws UNSAFE_PATH for absolute or climbing names. */
  relative(raw: string, what = 'entry'): string {
    if (raw.includes('\0')) {
      throw new RestoreAbort('UNSAFE_PATH', `${what} "${printable(raw)}" contains a NUL byte: refused`, raw);
    }
    if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw) || raw.startsWith('\\\\')) {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `${what} "${printable(raw)}" is an absolute path: refused, nothing is written outside the restore root`,
        raw,
      );
    }
    const parts: string[] = [];
    for (const part of raw.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        throw new RestoreAbort(
          'UNSAFE_PATH',
          `${what} "${printable(raw)}" contains "..": refused, nothing is written outside the restore root`,
          raw,
        );
      }
      parts.push(part);
    }
    return parts.join('/');
  }

  absolute(relative: string): string {
    const absolute = path.join(this.root, ...relative.split('/'));
    if (absolute !== this.root && !absolute.startsWith(`${this.root}${path.sep}`)) {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `"${relative}" resolves outside the restore root: refused`,
        relative,
      );
    }
    return absolute;
  }

  makeDirectory(relative: string): void {
    if (relative === '' || this.directories.has(relative)) return;
    this.prepareParents(relative);
    if (this.files.has(relative) || this.symlinks.has(relative) || this.chains.has(relative)) {
      throw new RestoreAbort(
        'RESTORE_FAILED',
        `"${relative}" appears as a file or link and again as a folder`,
        relative,
      );
    }
    this.createDirectoryComponent(relative);
  }

  /** Creates a new regular file and returns a writer that hashes what it writes. */
  createFile(relative: string, limits: RestoreLimits): FileWriter {
    if (relative === '') {
      throw new RestoreAbort('UNSAFE_PATH', 'a file entry names the restore root itself: refused', relative);
    }
    this.prepareParents(relative);
    this.removeNonDirectory(relative);
    const writer = new FileWriter(this, this.absolute(relative), relative, limits);
    this.activeWriters.add(writer);
    // A path with nothing queued is written in place, as tar does: on a real disk, file creation
    // through the thread pool lost to plain sequential calls. A path still being replaced queues.
    if (!this.chains.has(relative) && !this.failure) writer.openInPlace();
    else this.enqueue(relative, () => writer.run());
    return writer;
  }

  makeSymlink(relative: string, target: string): void {
    if (relative === '') {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        'a symbolic link names the restore root itself: refused',
        relative,
      );
    }
    if (target === '' || target.includes('\0')) {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `symbolic link "${relative}" -> "${printable(target)}" has an empty or invalid target: refused`,
        relative,
      );
    }
    this.prepareParents(relative);
    this.removeNonDirectory(relative);
    const absolute = this.absolute(relative);
    this.enqueue(relative, () => this.io(() => makeSymlinkAsync(target, absolute)));
    this.symlinks.set(relative, target);
  }

  makeHardlink(relative: string, rawTarget: string): void {
    const target = this.relative(rawTarget, `hard link target of "${relative}"`);
    const file = this.files.get(target);
    if (!file || this.symlinks.has(target)) {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        `hard link "${relative}" points at "${printable(rawTarget)}", which is not a regular file extracted earlier from this backup: refused`,
        relative,
      );
    }
    if (target === relative) return;
    this.prepareParents(relative);
    this.removeNonDirectory(relative);
    const from = this.absolute(target);
    const to = this.absolute(relative);
    const targetWritten = this.chains.get(target) ?? Promise.resolve();
    this.enqueue(relative, async () => {
      await targetWritten;
      await this.io(() => makeLink(from, to));
    });
    this.files.set(relative, { ...file, path: relative, linkOf: file.linkOf ?? target });
  }

  /** Waits while too much is queued; throws the first failed file operation (e.g. ENOSPC). */
  async ready(): Promise<void> {
    while (!this.failure && (this.opsInFlight >= MAX_OPS_IN_FLIGHT || this.queuedBytes >= MAX_QUEUED_BYTES)) {
      // The wait is for the file system: read back what is already closed meanwhile.
      this.verifySome(VERIFY_BATCH);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every queued operation; throws the first that failed. */
  async drain(): Promise<void> {
    while (this.chains.size > 0) {
      this.verifySome(VERIFY_BATCH);
      await Promise.race([
        Promise.all([...this.chains.values()]),
        new Promise((resolve) => setImmediate(resolve)),
      ]);
    }
    if (this.failure) throw this.failure.error;
  }

  /** Runs one file-system call when a slot is free (see MAX_ACTIVE_IO). */
  async io<T>(call: () => Promise<T>): Promise<T> {
    while (this.activeIo >= MAX_ACTIVE_IO) await new Promise<void>((resolve) => this.ioWaiters.push(resolve));
    this.activeIo += 1;
    try {
      return await call();
    } finally {
      this.activeIo -= 1;
      this.ioWaiters.shift()?.();
    }
  }

  /** A writer's file is complete and closed: it can be read back. */
  closedOnDisk(file: RestoredFile): void {
    this.unverified.push(file);
  }

  /**
   * Reads every restored file back from disk (those not read while waiting on the file
   * system), hard links included, and returns the ones whose bytes on disk differ from what
   * was written. SHA-256 of the written bytes is what the references are checked against;
   * CRC-32 of the read-back (a third of SHA-256's cost here) proves the disk holds those bytes.
   */
  async verifyOnDisk(): Promise<OnDisk[]> {
    // Whatever was not read while extracting is read below, yielding to the event loop as it goes.
    this.unverified.length = 0;
    const mismatches: OnDisk[] = [];
    let readSinceYield = 0;
    for (const file of this.files.values()) {
      let seen = this.onDisk.get(file.path);
      if (seen?.file !== file) {
        if (file.size >= READ_BACK_SLICE) {
          seen = { file, ...(await readBackInWorker(this.absolute(file.path))) };
        } else {
          if (readSinceYield >= READ_BACK_SLICE) {
            readSinceYield = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
          seen = { file, ...this.readBack(file.path) };
          readSinceYield += seen.size;
        }
        this.onDisk.set(file.path, seen);
      }
      if (seen.crc32 !== file.crc32 || seen.size !== file.size) mismatches.push(seen);
    }
    return mismatches;
  }

  /**
   * Reads every restored symbolic link back with lstat and readlink (never following it) and
   * returns those that are not a link with the target text the archive gave.
   */
  verifyLinksOnDisk(): LinkOnDisk[] {
    const mismatches: LinkOnDisk[] = [];
    for (const [relative, target] of this.symlinks) {
      let found: string | undefined;
      try {
        if (lstatSync(this.absolute(relative)).isSymbolicLink())
          found = fs.readlinkSync(this.absolute(relative));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
      if (found !== target)
        mismatches.push({ path: relative, target, ...(found !== undefined ? { found } : {}) });
    }
    return mismatches;
  }

  /** Reads back at most `limit` files and about READ_BACK_SLICE bytes; larger files wait for the worker at the end. */
  private verifySome(limit: number): void {
    let read = 0;
    for (let done = 0; done < limit; done++) {
      const file = this.unverified.shift();
      if (!file) return;
      // Replaced by a later entry of the same name, or still being written: checked at the end.
      if (this.files.get(file.path) !== file || this.chains.has(file.path)) continue;
      if (file.size >= READ_BACK_SLICE) continue;
      this.onDisk.set(file.path, { file, ...this.readBack(file.path) });
      read += file.size;
      if (read >= READ_BACK_SLICE) return;
    }
  }

  private readBack(relative: string): { size: number; crc32: number } {
    this.readBuffer ??= Buffer.allocUnsafe(1024 * 1024);
    const fd = fs.openSync(this.absolute(relative), fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    try {
      let crc = 0;
      let size = 0;
      for (;;) {
        const read = fs.readSync(fd, this.readBuffer, 0, this.readBuffer.length, null);
        if (read === 0) break;
        crc = crc32(this.readBuffer.subarray(0, read), crc);
        size += read;
      }
      return { size, crc32: crc };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** After an abort: ends unfinished files and waits until nothing touches the disk any more. */
  async settle(): Promise<void> {
    for (const writer of this.activeWriters) writer.abandon();
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  /** Called by a writer once its content is complete (the disk may still be catching up). */
  finished(writer: FileWriter, file: RestoredFile): void {
    this.activeWriters.delete(writer);
    this.files.set(file.path, file);
  }

  /** A file operation done in place failed (e.g. ENOSPC): the next ready() or drain() throws it. */
  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private enqueue(relative: string, operation: () => Promise<unknown>): void {
    const previous = this.chains.get(relative) ?? Promise.resolve();
    this.opsInFlight += 1;
    const chained: Promise<void> = previous
      .then(() => (this.failure ? undefined : operation()))
      .then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => {
        this.opsInFlight -= 1;
        if (this.chains.get(relative) === chained) this.chains.delete(relative);
        this.wake();
      });
    this.chains.set(relative, chained);
  }

  private prepareParents(relative: string): void {
    const parts = relative.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix === '' ? (parts[i] as string) : `${prefix}/${parts[i]}`;
      if (this.directories.has(prefix)) continue;
      if (this.symlinks.has(prefix)) {
        throw new RestoreAbort(
          'UNSAFE_PATH',
          `"${relative}" would be written through the symbolic link "${prefix}" restored earlier: refused`,
          relative,
        );
      }
      if (this.files.has(prefix) || this.chains.has(prefix)) {
        throw new RestoreAbort(
          'RESTORE_FAILED',
          `"${relative}" needs "${prefix}" to be a folder, but the backup made it a file`,
          relative,
        );
      }
      this.createDirectoryComponent(prefix, relative);
    }
  }

  private createDirectoryComponent(prefix: string, forEntry = prefix): void {
    const absolute = this.absolute(prefix);
    try {
      mkdirSync(absolute, { mode: 0o755 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stats = lstatSync(absolute);
      if (stats.isSymbolicLink()) {
        throw new RestoreAbort(
          'UNSAFE_PATH',
          `"${forEntry}" would be written through the symbolic link "${prefix}": refused`,
          forEntry,
        );
      }
      if (!stats.isDirectory()) {
        throw new RestoreAbort(
          'RESTORE_FAILED',
          `"${forEntry}" needs "${prefix}" to be a folder, but the backup made it a file`,
          forEntry,
        );
      }
    }
    this.directories.add(prefix);
  }

  /** A later entry of the same name replaces a file or link (as tar does); never a folder. */
  private removeNonDirectory(relative: string): void {
    if (this.directories.has(relative)) {
      throw new RestoreAbort(
        'RESTORE_FAILED',
        `"${relative}" appears as a folder and again as another kind of entry`,
        relative,
      );
    }
    if (this.files.has(relative) || this.symlinks.has(relative)) {
      const absolute = this.absolute(relative);
      this.enqueue(relative, () => this.io(() => unlinkFile(absolute)));
      this.files.delete(relative);
      this.symlinks.delete(relative);
    }
  }
}

/** A symbolic link as read back from disk: `found` is its text, absent when no link is there. */
export interface LinkOnDisk {
  path: string;
  target: string;
  found?: string;
}

/** A file as read back from disk. */
export interface OnDisk {
  file: RestoredFile;
  size: number;
  crc32: number;
}

function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is being escaped
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

interface PendingWrite {
  chunk: Buffer;
  position: number;
}

/**
 * One file being restored: hashes each chunk as it arrives (in order, on the main thread)
 * and writes it in place, or, for a path still being replaced, hands it to an operation in
 * the thread pool that creates and writes the file.
 */
export class FileWriter {
  private readonly hash: Hash = createHash('sha256');
  private crc = 0;
  private position = 0;
  private holeAtEnd = false;
  private readonly headChunks: Buffer[] = [];
  private headLength = 0;
  private readonly pending: PendingWrite[] = [];
  private ended = false;
  private abandoned = false;
  private wakeRun: (() => void) | undefined;
  private record: RestoredFile | undefined;
  /** Set when the file is written in place (synchronously) rather than by run(). */
  private fd: number | undefined;

  constructor(
    private readonly tree: SandboxTree,
    private readonly absolutePath: string,
    readonly path: string,
    private readonly limits: RestoreLimits,
  ) {}

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.limits.add(chunk.length, this.path);
    this.hash.update(chunk);
    this.crc = crc32(chunk, this.crc);
    if (this.headLength < HEAD_BYTES) {
      const take = chunk.subarray(0, HEAD_BYTES - this.headLength);
      this.headChunks.push(Buffer.from(take));
      this.headLength += take.length;
    }
    if (
      chunk.length >= HOLE_MIN &&
      chunk.length <= ZEROS.length &&
      chunk.equals(ZEROS.subarray(0, chunk.length))
    ) {
      this.position += chunk.length;
      this.holeAtEnd = true;
      return;
    }
    if (this.fd !== undefined) {
      this.writeInPlace(chunk, this.position);
      this.position += chunk.length;
      this.holeAtEnd = false;
      return;
    }
    this.pending.push({ chunk, position: this.position });
    this.tree.queuedBytes += chunk.length;
    this.position += chunk.length;
    this.holeAtEnd = false;
    this.wakeRun?.();
  }

  openInPlace(): void {
    try {
      this.fd = fs.openSync(this.absolutePath, WRITE_FLAGS, 0o644);
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    }
  }

  private writeInPlace(chunk: Buffer, position: number): void {
    if (this.abandoned || this.fd === undefined) return;
    try {
      let written = 0;
      while (written < chunk.length) {
        written += fs.writeSync(this.fd, chunk, written, chunk.length - written, position + written);
      }
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    }
  }

  private closeInPlace(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    try {
      if (this.holeAtEnd && !this.abandoned) fs.ftruncateSync(fd, this.position);
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    } finally {
      fs.closeSync(fd);
    }
    if (this.record && !this.abandoned) this.tree.closedOnDisk(this.record);
  }

  end(): RestoredFile {
    this.ended = true;
    this.wakeRun?.();
    const file: RestoredFile = {
      path: this.path,
      size: this.position,
      sha256: this.hash.digest('hex'),
      crc32: this.crc,
    };
    const probe = builtinProbeFor(this.path, Buffer.concat(this.headChunks, this.headLength));
    this.headChunks.length = 0;
    if (probe) file.probe = probe;
    this.record = file;
    this.tree.finished(this, file);
    this.closeInPlace();
    return file;
  }

  /** The restore stopped: write nothing more, let the operation close its file. */
  abandon(): void {
    this.abandoned = true;
    this.ended = true;
    this.closeInPlace();
    this.wakeRun?.();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** The thread-pool side: create, write in order, truncate for a trailing hole, close. */
  async run(): Promise<void> {
    const fd = await this.tree.io(() => openFile(this.absolutePath, WRITE_FLAGS, 0o644));
    try {
      for (;;) {
        const next = this.pending.shift();
        if (next) {
          try {
            if (!this.abandoned) {
              let written = 0;
              while (written < next.chunk.length) {
                written += (
                  await writeFile(
                    fd,
                    next.chunk,
                    written,
                    next.chunk.length - written,
                    next.position + written,
                  )
                ).bytesWritten;
              }
            }
          } finally {
            this.tree.queuedBytes -= next.chunk.length;
            this.tree.wake();
          }
          continue;
        }
        if (this.ended) break;
        await new Promise<void>((resolve) => {
          this.wakeRun = resolve;
        });
        this.wakeRun = undefined;
      }
      if (this.holeAtEnd && !this.abandoned) await this.tree.io(() => truncateFile(fd, this.position));
    } finally {
      for (const rest of this.pending.splice(0)) this.tree.queuedBytes -= rest.chunk.length;
      await this.tree.io(() => closeFile(fd));
    }
    if (this.record && !this.abandoned) this.tree.closedOnDisk(this.record);
  }
}
