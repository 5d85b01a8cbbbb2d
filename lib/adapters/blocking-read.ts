import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StoreError } from '../core/errors.ts';

/**
 * A small file of a folder store read with blocking calls, for a thread with nothing else to do
 * meanwhile (an integrity worker): the same checks as FolderStore.open (the parent inside the
 * root, O_NOFOLLOW, a regular file of the listed size) without the five thread-pool round trips
 * of a promise-based read, which cost more than reading a few KiB (issue 13: on 200 small
 * backups the worker spent most of its samples in them). Errors are thrown raw, for the store
 * to translate.
 */
export function readSmallFileBlocking(
  file: string,
  listedSize: number,
  checks: { parent(realParent: string): void; changed(size: number): StoreError },
): Readable {
  checks.parent(realpathSync.native(path.dirname(file)));
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new StoreError(`${file} is not a regular file`, 'not-found', file);
    if (stats.size !== listedSize) throw checks.changed(stats.size);
    // One byte more than listed, so a file that grew since the fstat is not silently cut short.
    const buffer = Buffer.allocUnsafe(listedSize + 1);
    let filled = 0;
    for (;;) {
      const read = readSync(fd, buffer, filled, buffer.length - filled, null);
      if (read === 0) break;
      filled += read;
      if (filled === buffer.length) break;
    }
    return Readable.from(filled === 0 ? [] : [buffer.subarray(0, filled)], { objectMode: false });
  } finally {
    closeSync(fd);
  }
}
