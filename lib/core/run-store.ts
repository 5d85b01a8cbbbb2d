import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { Backup, BackupObject } from './model.ts';
import type { CopyTarget } from './ports.ts';

/** Run artifacts (shards, restore jobs, reports) kept in the run store, as JSON. */
export async function writeJson(store: CopyTarget, key: string, value: unknown): Promise<void> {
  await writeText(store, key, JSON.stringify(value));
}

export async function writeText(store: CopyTarget, key: string, value: string): Promise<void> {
  const body = Buffer.from(value);
  await store.put(key, Readable.from([body]), body.length);
}

export async function readJson<T>(store: CopyTarget, key: string): Promise<T> {
  const stream = await store.open(key);
  return JSON.parse(await text(stream)) as T;
}

export type SerializedBackup = Omit<Backup, 'createdAt' | 'members'> & {
  createdAt: string;
  members: Array<Omit<BackupObject, 'lastModified'> & { lastModified: string }>;
};

export function serializeBackup(backup: Backup): SerializedBackup {
  return {
    ...backup,
    createdAt: backup.createdAt.toISOString(),
    members: backup.members.map((m) => ({ ...m, lastModified: m.lastModified.toISOString() })),
  };
}

export function deserializeBackup(raw: SerializedBackup): Backup {
  return {
    ...raw,
    createdAt: new Date(raw.createdAt),
    members: raw.members.map((m) => ({ ...m, lastModified: new Date(m.lastModified) })),
  };
}

export const runKeys = {
  run: (runId: string) => `runs/${runId}/run.json`,
  discovery: (runId: string) => `runs/${runId}/discovery.json`,
  shard: (runId: string, shard: number) => `runs/${runId}/shards/${shard}.json`,
  restore: (runId: string, restore: number) => `runs/${runId}/restores/${restore}.json`,
  digests: (runId: string, shard: number) => `runs/${runId}/digests/${shard}.json`,
  /** Bytes each backup of a shard expanded to in the integrity pass (backup id -> bytes): sizes the restore's scratch. */
  expanded: (runId: string, shard: number) => `runs/${runId}/expanded/${shard}.json`,
  /** The coverage plan: every candidate and whether it is read (docs/contract.md, coverage). */
  coverage: (runId: string) => `runs/${runId}/coverage.json`,
  /** One shard's backups left unread by the coverage budget (id -> why). */
  deferred: (runId: string, shard: number) => `runs/${runId}/deferred/${shard}.json`,
  report: (runId: string) => `reports/${runId}.json`,
  reportHtml: (runId: string) => `reports/${runId}.html`,
};
