/**
 * One restore of an archive in a process of its own, so its peak RSS is the restore's:
 * `node --import tsx bench/restore-child.ts STORE_DIR KEY ROOT [keep]` prints one JSON line.
 * With `keep` the restored files stay for the caller to delete later.
 */

import { DEFAULT_POLICY } from '../lib/core/config.ts';
import { restoreBackup } from '../lib/core/restore/restore.ts';
import { archiveBackup } from './archive-backup.ts';

const [storeDir, key, root, keep] = process.argv.slice(2);
if (!storeDir || !key || !root) throw new Error('usage: restore-child.ts STORE_DIR KEY ROOT [keep]');
const { store, backup } = await archiveBackup(storeDir, key);
const result = await restoreBackup({
  backup,
  store,
  root,
  policy: DEFAULT_POLICY,
  probes: [],
  keep: keep === 'keep',
});
console.log(JSON.stringify({ result, maxRssKiB: process.resourceUsage().maxRSS }));
