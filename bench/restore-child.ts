/**
 * One restore of an archive in a process of its own, so its peak RSS is the restore's:
 * `node --import tsx bench/restore-child.ts STORE_DIR KEY ROOT` prints one JSON line.
 */

import { DEFAULT_POLICY } from '../lib/core/config.ts';
import { restoreBackup } from '../lib/core/restore/restore.ts';
import { archiveBackup } from './archive-backup.ts';

const [storeDir, key, root] = process.argv.slice(2);
if (!storeDir || !key || !root) throw new Error('usage: restore-child.ts STORE_DIR KEY ROOT');
const { store, backup } = await archiveBackup(storeDir, key);
const result = await restoreBackup({ backup, store, root, policy: DEFAULT_POLICY, probes: [] });
console.log(JSON.stringify({ result, maxRssKiB: process.resourceUsage().maxRSS }));
