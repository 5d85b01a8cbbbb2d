import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/**
 * The local file a folder store keeps an object in (its `localPath`), opened without following a
 * link, or undefined: the store's stream is read instead. The store opened and checked the
 * object first (inside its root, a regular file, no symbolic link on the way).
 */
export async function openLocalFile(localPath: string): Promise<FileHandle | undefined> {
  try {
    return await open(localPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
}
