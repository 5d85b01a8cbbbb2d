import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  ftruncateSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { RestoreAbort } from './abort.ts';
import type { RestoreLimits } from './limits.ts';

/** A regular file as restored: its content hash was computed from the bytes written. */
export interface RestoredFile {
  /** Normalised path relative to the sandbox root. */
  path: string;
  size: number;
  sha256: string;
  /** The first bytes, kept to recognise files the built-in probes check. */
  head: Buffer;
  /** For a hard link: the path it links to (same inode, verified once). */
  linkOf?: string;
}

export const HEAD_BYTES = 512;

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
 * - symlink targets must be relative, have all their `..` first and stay below the root
 *   when resolved lexically from the link's folder. With `..` only at the front, the walk
 *   climbs real folders (never links) and then descends, so no chain of links can leave
 *   the root. Anything else is UNSAFE_PATH; links are recreated, never followed;
 * - hard links must point at a regular file extracted earlier by this restore.
 */
export class SandboxTree {
  readonly root: string;
  readonly files = new Map<string, RestoredFile>();
  private readonly directories = new Set<string>(['']);
  private readonly symlinks = new Set<string>();
  private readonly openDescriptors = new Set<number>();

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get symlinkCount(): number {
    return this.symlinks.size;
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
    this.removeNonDirectory(relative);
    this.createDirectoryComponent(relative);
  }

  /** Creates a new regular file and returns a writer that hashes what it writes. */
  createFile(relative: string, limits: RestoreLimits): FileWriter {
    if (relative === '') {
      throw new RestoreAbort('UNSAFE_PATH', 'a file entry names the restore root itself: refused', relative);
    }
    this.prepareParents(relative);
    this.removeNonDirectory(relative);
    const fd = openSync(this.absolute(relative), WRITE_FLAGS, 0o644);
    this.openDescriptors.add(fd);
    return new FileWriter(this, fd, relative, limits);
  }

  makeSymlink(relative: string, target: string): void {
    if (relative === '') {
      throw new RestoreAbort(
        'UNSAFE_PATH',
        'a symbolic link names the restore root itself: refused',
        relative,
      );
    }
    checkSymlinkTarget(relative, target);
    this.prepareParents(relative);
    this.removeNonDirectory(relative);
    symlinkSync(target, this.absolute(relative));
    this.symlinks.add(relative);
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
    linkSync(this.absolute(target), this.absolute(relative));
    this.files.set(relative, { ...file, path: relative, linkOf: file.linkOf ?? target });
  }

  /** Closes whatever an aborted restore left open. */
  closeAll(): void {
    for (const fd of this.openDescriptors) {
      try {
        closeSync(fd);
      } catch {
        // already closed by the failure that brought us here
      }
    }
    this.openDescriptors.clear();
  }

  /** Called by a writer once its file is complete. */
  finished(fd: number, file: RestoredFile): void {
    this.openDescriptors.delete(fd);
    this.files.set(file.path, file);
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
      unlinkSync(this.absolute(relative));
      this.files.delete(relative);
      this.symlinks.delete(relative);
    }
  }
}

function checkSymlinkTarget(relative: string, target: string): void {
  const refuse = (why: string) =>
    new RestoreAbort(
      'UNSAFE_PATH',
      `symbolic link "${relative}" -> "${printable(target)}" ${why}: refused (only relative targets that stay inside the backup are restored)`,
      relative,
    );
  if (target === '' || target.includes('\0')) throw refuse('has an empty or invalid target');
  if (target.startsWith('/') || /^[A-Za-z]:[\\/]/.test(target)) throw refuse('points at an absolute path');
  let climbs = 0;
  let descended = false;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (descended) throw refuse('has ".." after a name, which can escape through other links');
      climbs += 1;
    } else descended = true;
  }
  const depth = relative.split('/').length - 1;
  if (climbs > depth) throw refuse('points outside the restore root');
}

function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is being escaped
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Writes one file synchronously (page cache writes are fast; no promise per chunk) and hashes it. */
export class FileWriter {
  private readonly hash: Hash = createHash('sha256');
  private position = 0;
  private holeAtEnd = false;
  private readonly headChunks: Buffer[] = [];
  private headLength = 0;
  private closed = false;

  constructor(
    private readonly tree: SandboxTree,
    private readonly fd: number,
    readonly path: string,
    private readonly limits: RestoreLimits,
  ) {}

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.limits.add(chunk.length, this.path);
    this.hash.update(chunk);
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
    let written = 0;
    while (written < chunk.length) {
      written += writeSync(this.fd, chunk, written, chunk.length - written, this.position + written);
    }
    this.position += chunk.length;
    this.holeAtEnd = false;
  }

  end(): RestoredFile {
    if (this.holeAtEnd) ftruncateSync(this.fd, this.position);
    this.closed = true;
    closeSync(this.fd);
    const file: RestoredFile = {
      path: this.path,
      size: this.position,
      sha256: this.hash.digest('hex'),
      head: Buffer.concat(this.headChunks, this.headLength),
    };
    this.tree.finished(this.fd, file);
    return file;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
