/**
 * One integrity pass of an archive in a process of its own, so its peak RSS is the pass's:
 * run bundled by bench/integrity.ts (`node bench-data/integrity-child.mjs STORE_DIR KEY`), or
 * `node --import tsx bench/integrity-child.ts STORE_DIR KEY`; prints one JSON line.
 */

import { DEFAULT_POLICY } from '../lib/core/config.ts';
import { checkIntegrity } from '../lib/core/integrity.ts';
import { archiveBackup } from './archive-backup.ts';

const [storeDir, key] = process.argv.slice(2);
if (!storeDir || !key) throw new Error('usage: integrity-child.ts STORE_DIR KEY');
const { store, backup } = await archiveBackup(storeDir, key);
const rssBefore = process.resourceUsage().maxRSS;
const started = process.hrtime.bigint();
const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(
  JSON.stringify({
    ms,
    maxRssKiB: process.resourceUsage().maxRSS,
    rssAtStartKiB: rssBefore,
    status: result.status,
    files: result.files,
    contentBytes: result.contentBytes,
    findings: result.findings.map((f) => `${f.code}: ${f.message}`),
  }),
);
