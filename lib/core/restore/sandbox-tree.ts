import fs, { lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { RestoreAbort } from './abort.ts';
import {
  checkLinkTarget,
  containedPath,
  parentsOf,
  printable,
  refuseRoot,
  refuseThroughLink,
  resolveUnder,
} from './containment.ts';
import { FileWriter, type RestoredFile, type WriterHost } from './file-writer.ts';
import type { RestoreLimits } from './limits.ts';
import { type LinkOnDisk, type OnDisk, ReadBack } from './read-back.ts';

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
 * The restore root and everything created below it. Every entry goes through here, with the
 * path rules of containment.ts, so containment is decided in one place:
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
export class SandboxTree implements WriterHost {
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
  private readonly readBack = new ReadBack((relative) => this.absolute(relative));
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
    return containedPath(raw, what);
  }

  absolute(relative: string): string {
    return resolveUnder(this.root, relative);
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
    refuseRoot(relative, 'a file entry');
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
    refuseRoot(relative, 'a symbolic link');
    checkLinkTarget(relative, target);
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
    const made = this.enqueue(relative, async () => {
      await targetWritten;
      await this.io(() => makeLink(from, to));
    });
    // A later entry replacing the target must not remove it before the link is made from it.
    this.after(target, made);
    this.files.set(relative, { ...file, path: relative, linkOf: file.linkOf ?? target });
  }

  /** Waits while too much is queued; throws the first failed file operation (e.g. ENOSPC). */
  async ready(): Promise<void> {
    while (!this.failure && (this.opsInFlight >= MAX_OPS_IN_FLIGHT || this.queuedBytes >= MAX_QUEUED_BYTES)) {
      // The wait is for the file system: read back what is already closed meanwhile.
      this.verifySome();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every queued operation; throws the first that failed. */
  async drain(): Promise<void> {
    while (this.chains.size > 0) {
      this.verifySome();
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
    this.readBack.closed(file);
  }

  /**
   * Reads every restored file back from disk (those not read while waiting on the file
   * system), hard links included, and returns the ones whose bytes on disk differ from what
   * was written.
   */
  verifyOnDisk(files: Iterable<RestoredFile> = this.files.values()): Promise<OnDisk[]> {
    return this.readBack.all(files);
  }

  /**
   * Reads every restored symbolic link back with lstat and readlink (never following it) and
   * returns those that are not a link with the target text the archive gave.
   */
  verifyLinksOnDisk(): LinkOnDisk[] {
    return this.readBack.links(this.symlinks);
  }

  /** Reads back a few closed files; one replaced by a later entry, or still being written, is checked at the end. */
  private verifySome(): void {
    this.readBack.some(
      VERIFY_BATCH,
      (file) => this.files.get(file.path) === file && !this.chains.has(file.path),
    );
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

  /** Later operations on `relative` wait for `done` too (it never rejects). */
  private after(relative: string, done: Promise<void>): void {
    const chained: Promise<void> = done.then(() => {
      if (this.chains.get(relative) === chained) this.chains.delete(relative);
    });
    this.chains.set(relative, chained);
  }

  private enqueue(relative: string, operation: () => Promise<unknown>): Promise<void> {
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
    return chained;
  }

  private prepareParents(relative: string): void {
    refuseThroughLink(relative, (prefix) => this.symlinks.has(prefix));
    for (const prefix of parentsOf(relative)) {
      if (this.directories.has(prefix)) continue;
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
