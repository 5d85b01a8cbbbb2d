/**
 * One integrity pass of an archive in a process of its own, so its peak RSS is the pass's:
 * run bundled by bench/integrity.ts (`node bench-data/integrity-child.mjs STORE_DIR KEY`), or
 * `node --import tsx bench/integrity-child.ts STORE_DIR KEY`; prints one JSON line.
 */
import path from 'node:path';
import { FolderStore } from '../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../lib/core/config.ts';
import { checkIntegrity } from '../lib/core/integrity.ts';
import type { Backup } from '../lib/core/model.ts';

const [storeDir, key] = process.argv.slice(2);
if (!storeDir || !key) throw new Error('usage: integrity-child.ts STORE_DIR KEY');
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
  sidecarKey: `${key}.sha256`,
};
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
