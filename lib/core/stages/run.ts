import type { CatalogueStats } from '../catalogue.ts';
import type { Config } from '../config.ts';
import type { Finding } from '../findings.ts';
import type { RunTrigger } from '../ledger.ts';
import type { Backup } from '../model.ts';
import { deserializeBackup, readJson, runKeys, type SerializedBackup } from '../run-store.ts';
import type { StageContext } from './context.ts';

/** What the stages share of a run through the run store: the run, its discovery and its shards. */
export interface RunInfo {
  runId: string;
  trigger: RunTrigger;
  command: string;
  sources: string[];
  config: Config;
  startedAt: string;
}

export interface ShardRef {
  runId: string;
  shard: number;
}

export interface Discovery {
  runId: string;
  shards: ShardRef[];
  backups: number;
  series: number;
  bytes: number;
  runFindings: Finding[];
  sources: Array<{ url: string; region?: string } & CatalogueStats>;
  /** Milliseconds the discovery took (the cost estimate's discover time). */
  durationMs?: number;
  /** Present when a coverage policy chose what integrity reads: the plan is in the run store. */
  coverage?: { candidates: number; read: number; deferred: number };
}

export async function loadRun(ctx: Pick<StageContext, 'runStore'>, runId: string): Promise<RunInfo> {
  return readJson<RunInfo>(ctx.runStore, runKeys.run(runId));
}

export async function loadDiscovery(ctx: Pick<StageContext, 'runStore'>, runId: string): Promise<Discovery> {
  return readJson<Discovery>(ctx.runStore, runKeys.discovery(runId));
}

export async function loadShard(ctx: Pick<StageContext, 'runStore'>, ref: ShardRef): Promise<Backup[]> {
  const raw = await readJson<SerializedBackup[]>(ctx.runStore, runKeys.shard(ref.runId, ref.shard));
  return raw.map(deserializeBackup);
}

export async function* backupsOfRun(
  ctx: Pick<StageContext, 'runStore'>,
  runId: string,
): AsyncGenerator<Backup> {
  const discovery = await loadDiscovery(ctx, runId);
  for (const ref of discovery.shards) yield* await loadShard(ctx, ref);
}
