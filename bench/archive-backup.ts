import { FolderStore } from '../lib/adapters/folder-store.ts';
import { catalogue } from '../lib/core/catalogue.ts';
import type { Backup } from '../lib/core/model.ts';

/** The bench archive as the catalogue sees it (with its sidecar), and the store it lives in. */
export async function archiveBackup(
  storeDir: string,
  key: string,
): Promise<{ store: FolderStore; backup: Backup }> {
  const store = new FolderStore(storeDir);
  for await (const backup of catalogue(store)) {
    if (backup.key === key) return { store, backup };
  }
  throw new Error(`no archive backup ${key} in ${storeDir}`);
}
