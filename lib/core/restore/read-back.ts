import fs, { constants as fsConstants, lstatSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { RestoredFile } from './file-writer.ts';
import { readBackInWorker } from './off-thread.ts';

/**
 * Bytes read back on the main thread before it yields to the event loop (heartbeats, progress).
 * A file this large or larger is read back in a worker thread instead.
 */
export const READ_BACK_SLICE = 32 * 1024 * 1024;

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

/**
 * Reads restored files back from disk: SHA-256 of the written bytes is what the references are
 * checked against; CRC-32 of the read-back (a third of SHA-256's cost here) proves the disk holds
 * those bytes. Files closed while the extraction waits on the file system are read then (large
 * ones in a worker thread, beside it); the rest at the end.
 */
export class ReadBack {
  /** Files closed on disk and not yet read back. */
  private readonly unverified: RestoredFile[] = [];
  /** Files read back from disk, with what was found there. */
  private readonly onDisk = new Map<string, OnDisk>();
  private readBuffer: Buffer | undefined;
  /** Large files waiting for the worker thread, read one at a time while the extraction goes on. */
  private readonly large: RestoredFile[] = [];
  private largeRead: Promise<void> | undefined;

  constructor(private readonly absolute: (relative: string) => string) {}

  /** A writer's file is complete and closed: it can be read back (a large one at once, in the worker). */
  closed(file: RestoredFile): void {
    if (file.size < READ_BACK_SLICE) {
      this.unverified.push(file);
      return;
    }
    this.large.push(file);
    this.readLarge();
  }

  /**
   * Reads back at most `limit` small files and about READ_BACK_SLICE bytes. Files `settled` says
   * are replaced or still being written are left to all().
   */
  some(limit: number, settled: (file: RestoredFile) => boolean): void {
    let read = 0;
    for (let done = 0; done < limit; done++) {
      const file = this.unverified.shift();
      if (!file) return;
      if (!settled(file)) continue;
      this.onDisk.set(file.path, { file, ...this.readBack(file.path) });
      read += file.size;
      if (read >= READ_BACK_SLICE) return;
    }
  }

  /** Reads back every file not read yet (hard links included); returns those whose bytes on disk differ. */
  async all(files: Iterable<RestoredFile>): Promise<OnDisk[]> {
    // Whatever was not read while extracting is read below, yielding to the event loop as it goes.
    this.unverified.length = 0;
    this.large.length = 0;
    await this.largeRead;
    const mismatches: OnDisk[] = [];
    let readSinceYield = 0;
    for (const file of files) {
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

  /** Reads each link back with lstat and readlink (never following it); returns those not as restored. */
  links(symlinks: ReadonlyMap<string, string>): LinkOnDisk[] {
    const mismatches: LinkOnDisk[] = [];
    for (const [relative, target] of symlinks) {
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

  /**
   * Reads the large files closed so far in the worker thread, one after another, beside the
   * extraction (inflate keeps one core busy; this uses the other). A read that fails, or a file
   * replaced meanwhile (its entry then names an older file), is read again by all().
   */
  private readLarge(): void {
    if (this.largeRead) return;
    const next = this.large.shift();
    if (!next) return;
    this.largeRead = readBackInWorker(this.absolute(next.path))
      .then(
        (seen) => {
          this.onDisk.set(next.path, { file: next, ...seen });
        },
        () => undefined,
      )
      .finally(() => {
        this.largeRead = undefined;
        this.readLarge();
      });
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
}
