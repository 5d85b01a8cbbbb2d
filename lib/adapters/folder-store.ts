import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  type Dirent,
  constants as fsConstants,
  lstatSync,
  realpathSync,
  type Stats,
} from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { StoreError } from '../core/errors.ts';
import type { ObjectInfo } from '../core/model.ts';
import { TOOL_FOLDER } from '../core/paths.ts';
import type { CopyTarget, ObjectStore, ReadOptions } from '../core/ports.ts';
import { readSmallFileBlocking } from './blocking-read.ts';

/** Large reads: Node's 64 KiB default costs throughput on multi-GiB backups. */
export const DEFAULT_READ_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Files stat'ed per batch. Local file systems answer lstat in ~2 µs: synchronous calls in
 * batches match `find`, while one promise per file through libuv's 4 threads is 3-5x slower.
 * Between batches the event loop gets a turn, so a huge flat directory does not freeze it.
 */
const STAT_BATCH = 256;
/** A sync batch slower than this means a slow (network) file system: stat asynchronously from then on. */
const SLOW_BATCH_MS = 25;

interface WalkEntry {
  name: string;
  /** Name with a trailing `/` for directories, so siblings sort like the keys beneath them. */
  sortName: string;
  directory: boolean;
}

interface WalkFrame {
  /** Key prefix of the directory, '' for the root or ending in '/'. */
  prefix: string;
  entries: WalkEntry[];
  next: number;
  /** The next sibling directory, read while this one's files are stat'ed. */
  ahead?: { index: number; entries: Promise<WalkEntry[]> };
}

/** A local folder of backups. Symlinks are neither followed nor listed, nor is the tool's own `.backup-validator` folder. */
export class FolderStore implements ObjectStore, CopyTarget {
  readonly url: string;
  private readonly root: string;
  private realRoot: Promise<string> | undefined;
  private slowFileSystem = false;
  private realRootNow: string | undefined;

  /**
   * `blockingReadsUpTo`: listed files up to this size are read with blocking calls (see
   * readSmallFileBlocking); only for a thread that has nothing else to run meanwhile.
   */
  constructor(
    root: string,
    private readonly readMode: { blockingReadsUpTo?: number } = {},
  ) {
    this.url = root;
    this.root = path.resolve(root);
  }

  async *list(): AsyncIterable<ObjectInfo> {
    const stack: WalkFrame[] = [{ prefix: '', entries: await this.readDirectory(''), next: 0 }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as WalkFrame;
      const entry = frame.entries[frame.next];
      if (!entry) {
        stack.pop();
        continue;
      }
      if (entry.directory) {
        const index = frame.next;
        frame.next += 1;
        const prefix = `${frame.prefix}${entry.name}/`;
        const pending = frame.ahead?.index === index ? frame.ahead.entries : this.readDirectory(prefix);
        frame.ahead = this.readAhead(frame, index + 1);
        const entries = await pending;
        if (entries.length === 0) {
          // An empty folder is listed as `prefix/`, as S3 lists a folder marker: an empty backup must be seen.
          const marker = await this.folderMarker(prefix);
          if (marker) yield marker;
        }
        stack.push({ prefix, entries, next: 0 });
        continue;
      }
      // A run of files up to the next directory, stat'ed in one batch and yielded in order.
      const run: WalkEntry[] = [];
      while (run.length < STAT_BATCH) {
        const file = frame.entries[frame.next];
        if (!file || file.directory) break;
        run.push(file);
        frame.next += 1;
      }
      const infos = await this.statFiles(run.map((file) => `${frame.prefix}${file.name}`));
      for (const info of infos) {
        if (info) yield info;
      }
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    const file = this.pathOf(key);
    await this.assertInsideRoot(file);
    let stats: Stats;
    try {
      stats = await lstat(file);
    } catch (error) {
      throw this.translate(error, file, 'file');
    }
    if (!stats.isFile()) {
      throw new StoreError(`${file} is not a regular file (symlinks are not followed)`, 'not-found', file);
    }
    return { key, size: stats.size, lastModified: stats.mtime };
  }

  async open(key: string, options?: ReadOptions): Promise<Readable> {
    const file = this.pathOf(key);
    const listed = options?.listed;
    if (listed && listed.size <= (this.readMode.blockingReadsUpTo ?? -1)) {
      try {
        this.realRootNow ??= realpathSync.native(this.root);
        const realRoot = this.realRootNow;
        return readSmallFileBlocking(file, listed.size, {
          parent: (realParent) => this.assertParentInside(file, realParent, realRoot),
          changed: (size) => changedSinceListed(file, size, listed.size),
        });
      } catch (error) {
        throw this.translate(error, file, 'file');
      }
    }
    await this.assertInsideRoot(file);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      // O_NOFOLLOW: a symlink planted where a listed file was must not lead outside the root.
      handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (error) {
      throw this.translate(error, file, 'file');
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        throw new StoreError(`${file} is not a regular file`, 'not-found', file);
      }
      if (listed && stats.size !== listed.size) throw changedSinceListed(file, stats.size, listed.size);
    } catch (error) {
      await handle.close();
      throw error instanceof StoreError ? error : this.translate(error, file, 'file');
    }
    const raw = createReadStream(file, {
      fd: handle,
      highWaterMark: options?.highWaterMark ?? DEFAULT_READ_HIGH_WATER_MARK,
    });
    return translateStreamErrors(raw, (error) => this.translate(error, file, 'file'), options?.highWaterMark);
  }

  /** For keys the listing gave: it never leads through a symlink. */
  localPath(key: string): string {
    return this.pathOf(key);
  }

  /** Writes atomically: readers see the old object or the whole new one, never a partial file. */
  async put(key: string, body: Readable, size: number): Promise<void> {
    const file = this.pathOf(key);
    const directory = path.dirname(file);
    const temporary = path.join(
      directory,
      `.${path.basename(file)}.${randomBytes(6).toString('hex')}.partial`,
    );
    try {
      await mkdir(directory, { recursive: true });
      const handle = await open(temporary, 'wx');
      let written = 0;
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          written += chunk.length;
          await handle.write(chunk);
        }
        if (written !== size) {
          throw new StoreError(
            `copy to ${file} received ${written} bytes, expected ${size}: the source changed or was cut short; retry`,
            'io',
            file,
          );
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true });
      if (error instanceof StoreError) throw error;
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreError(
        `cannot write ${file}: ${reason}${code === 'ENOSPC' ? ': free some space' : ''}`,
        code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'access-denied' : 'io',
        file,
        { cause: error },
      );
    }
  }

  async copyFrom(): Promise<boolean> {
    return false;
  }

  private pathOf(key: string): string {
    const segments = key.split('/');
    if (
      key === '' ||
      key.includes('\0') ||
      path.isAbsolute(key) ||
      key.startsWith('/') ||
      segments.some((segment) => segment === '..' || segment === '')
    ) {
      throw new StoreError(
        `refused key "${key}" for folder ${this.url}: keys are relative paths without "..", empty or absolute parts`,
        'not-found',
        this.root,
      );
    }
    return path.join(this.root, ...segments);
  }

  /** Parent directories must not be symlinks leading out of the root (keys are checked, links are not). */
  private async assertInsideRoot(file: string): Promise<void> {
    this.realRoot ??= realpath(this.root);
    let realRoot: string;
    let realParent: string;
    try {
      [realRoot, realParent] = await Promise.all([this.realRoot, realpath(path.dirname(file))]);
    } catch (error) {
      this.realRoot = undefined;
      throw this.translate(error, file, 'file');
    }
    this.assertParentInside(file, realParent, realRoot);
  }

  private assertParentInside(file: string, realParent: string, realRoot: string): void {
    if (realParent !== realRoot && !realParent.startsWith(`${realRoot}${path.sep}`)) {
      throw new StoreError(
        `${file} lies outside folder ${this.url} through a symbolic link; links are not followed`,
        'access-denied',
        file,
      );
    }
  }

  private readAhead(frame: WalkFrame, from: number): WalkFrame['ahead'] {
    for (let index = from; index < frame.entries.length; index += 1) {
      const entry = frame.entries[index] as WalkEntry;
      if (!entry.directory) continue;
      const entries = this.readDirectory(`${frame.prefix}${entry.name}/`);
      // Its error surfaces when the walk gets there, or never if the caller stops first.
      entries.catch(() => {});
      return { index, entries };
    }
    return undefined;
  }

  private async readDirectory(prefix: string): Promise<WalkEntry[]> {
    const directory = prefix === '' ? this.root : path.join(this.root, prefix.slice(0, -1));
    let dirents: Dirent[];
    try {
      dirents = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      // Deleted since its parent was read: like a deleted file, no longer part of the source.
      if (prefix !== '' && (error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.translate(error, directory, prefix === '' ? 'root' : 'folder');
    }
    const entries: WalkEntry[] = [];
    for (const dirent of dirents) {
      // The tool's own folder (a ledger, run files) is never a backup, wherever a run left it.
      if (dirent.name === TOOL_FOLDER) continue;
      let directoryEntry = dirent.isDirectory();
      let fileEntry = dirent.isFile();
      if (!directoryEntry && !fileEntry && !dirent.isSymbolicLink() && isUnknownType(dirent)) {
        // Some file systems do not report entry types in readdir.
        const stats = await lstat(path.join(directory, dirent.name)).catch(() => undefined);
        directoryEntry = stats?.isDirectory() ?? false;
        fileEntry = stats?.isFile() ?? false;
      }
      if (directoryEntry || fileEntry) {
        entries.push({
          name: dirent.name,
          sortName: directoryEntry ? `${dirent.name}/` : dirent.name,
          directory: directoryEntry,
        });
      }
    }
    entries.sort((a, b) => (a.sortName < b.sortName ? -1 : a.sortName > b.sortName ? 1 : 0));
    return entries;
  }

  private async statFiles(keys: string[]): Promise<Array<ObjectInfo | undefined>> {
    if (this.slowFileSystem) {
      return Promise.all(
        keys.map((key) =>
          lstat(path.join(this.root, key)).then(
            (stats) => this.fileInfo(key, stats),
            (error) => this.statFailed(key, error),
          ),
        ),
      );
    }
    const started = performance.now();
    const infos = keys.map((key) => {
      try {
        return this.fileInfo(key, lstatSync(path.join(this.root, key)));
      } catch (error) {
        return this.statFailed(key, error);
      }
    });
    if (performance.now() - started > SLOW_BATCH_MS) this.slowFileSystem = true;
    await new Promise((resolve) => setImmediate(resolve));
    return infos;
  }

  private async folderMarker(prefix: string): Promise<ObjectInfo | undefined> {
    const folder = path.join(this.root, prefix.slice(0, -1));
    try {
      const stats = await lstat(folder);
      return stats.isDirectory() ? { key: prefix, size: 0, lastModified: stats.mtime } : undefined;
    } catch (error) {
      return this.statFailed(prefix, error);
    }
  }

  private fileInfo(key: string, stats: Stats): ObjectInfo | undefined {
    return stats.isFile() ? { key, size: stats.size, lastModified: stats.mtime } : undefined;
  }

  private statFailed(key: string, error: unknown): undefined {
    // Deleted between readdir and lstat: it is no longer part of the source.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw this.translate(error, path.join(this.root, key), 'file');
  }

  private translate(error: unknown, where: string, what: 'root' | 'folder' | 'file'): StoreError {
    if (error instanceof StoreError) return error;
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const reason = error instanceof Error ? error.message : String(error);
    switch (code) {
      case 'ENOENT':
        return new StoreError(
          what === 'root'
            ? `folder ${where} does not exist: check the path`
            : `${what} ${where} does not exist (in folder ${this.url})`,
          'not-found',
          where,
          { cause: error },
        );
      case 'ENOTDIR':
        return new StoreError(
          what === 'root'
            ? `${where} is not a folder: give the folder that holds the backups`
            : `${where} does not exist (a parent is not a folder)`,
          'not-found',
          where,
          { cause: error },
        );
      case 'ELOOP':
        return new StoreError(`${where} is a symbolic link; links are not followed`, 'access-denied', where, {
          cause: error,
        });
      case 'EACCES':
      case 'EPERM':
        return new StoreError(
          `cannot read ${what === 'root' ? 'folder' : what} ${where} (permission denied): run as a user who can read it`,
          'access-denied',
          where,
          { cause: error },
        );
      case 'EISDIR':
        return new StoreError(`${where} is a folder, not a file`, 'not-found', where, { cause: error });
      default:
        return new StoreError(`cannot read ${where}: ${reason}`, 'io', where, { cause: error });
    }
  }
}

function isUnknownType(dirent: Dirent): boolean {
  return !(dirent.isBlockDevice() || dirent.isCharacterDevice() || dirent.isFIFO() || dirent.isSocket());
}

/**
 * Re-emits a stream's errors as StoreErrors, so readers of any store see domain errors
 * even when the failure comes mid-read.
 */
function changedSinceListed(file: string, size: number, listedSize: number): StoreError {
  return new StoreError(
    `${file} changed since it was listed (it is ${size} bytes now, ${listedSize} when listed): it is judged on its new content next run`,
    'changed',
    file,
  );
}

export function translateStreamErrors(
  source: Readable,
  translate: (error: unknown) => StoreError,
  highWaterMark?: number,
): Readable {
  const output = new PassThrough({ highWaterMark: highWaterMark ?? source.readableHighWaterMark });
  source.once('error', (error) => output.destroy(translate(error)));
  output.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(output);
  return output;
}
