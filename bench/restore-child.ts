/**
 * One restore of an archive in a process of its own, so its peak RSS is the restore's:
 * `node --import tsx bench/restore-child.ts STORE_DIR KEY ROOT` prints one JSON line.
 */
import path from 'node:path';
import { FolderStore } from '../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../lib/core/config.ts';
import type { Backup } from '../lib/core/model.ts';
import { restoreBackup } from '../lib/core/restore/restore.ts';

const [storeDir, key, root] = process.argv.slice(2);
if (!storeDir || !key || !root) throw new Error('usage: restore-child.ts STORE_DIR KEY ROOT');
const store = new FolderStore(storeDir);
const info = await store.head(key);
const name = path.basename(key);
const backup: Backup = {
  id: `${storeDir}/${key}`,
  source: storeDir,
  series: 'bench',
  kind: 'archive',
  key,
  name,
  createdAt: info.lastModified,
  createdFrom: 'mtime',
  objects: 1,
  bytes: info.size,
  members: [{ ...info, path: name }],
  manifestKeys: [],
};
const result = await restoreBackup({ backup, store, root, policy: DEFAULT_POLICY, probes: [] });
console.log(JSON.stringify({ result, maxRssKiB: process.resourceUsage().maxRSS }));
