import { type CatalogueStats, catalogue } from '../catalogue.ts';
import {
  futureTimestampFindings,
  isFutureDated,
  rpoChecks,
  rpoFindings,
  SeriesTracker,
  vanishedSeriesFinding,
} from '../compliance.ts';
import { type Config, parseConfig, policyFor } from '../config.ts';
import {
  type CoveragePlan,
  coverageCandidate,
  coverageEnabled,
  type ListedForCoverage,
  listedForCoverage,
  planCoverage,
} from '../coverage.ts';
import { sourceFindings } from '../discovery-findings.ts';
import { UsageError } from '../errors.ts';
import { type Finding, finding } from '../findings.ts';
import { ARCHIVED_CLASSES } from '../integrity/options.ts';
import type { KnownSeries, Ledger, RunTrigger, StageResultRecord } from '../ledger.ts';
import type { Backup } from '../model.ts';
import { runKeys, serializeBackup, writeJson } from '../run-store.ts';
import type { StageContext } from './context.ts';
import type { Discovery, RunInfo, ShardRef } from './run.ts';

export interface DiscoverInput {
  runId: string;
  trigger: RunTrigger;
  command: string;
  sources: string[];
  /** The configuration document (docs/contract.md); validated here, kept with the run. */
  config?: unknown;
  /**
   * A run started by objects' arrival (s3:// URLs): it checks only what is new in the sources (backups
   * the ledger never catalogued) and the backups holding these objects, and judges only their series.
   */
  arrivals?: string[];
}

/** Shards bound the work of one integrity invocation and the size of one artifact. */
export const SHARD_LIMITS = { backups: 100, bytes: 8 * 1024 ** 3, objects: 20_000 };

/** Catalogues the sources into shards, records the catalogue, and checks every series' RPO. */
export async function discoverStage(ctx: StageContext, input: DiscoverInput): Promise<Discovery> {
  const config = parseConfig(input.config);
  if (input.sources.length === 0) {
    throw new UsageError(
      'no source to validate: give --source DIR or --source s3://bucket/prefix',
      'sources',
    );
  }
  const startedAt = ctx.now().toISOString();
  const run: RunInfo = { ...input, config, startedAt };
  await ctx.ledger.startRun({
    runId: input.runId,
    trigger: input.trigger,
    sources: input.sources,
    command: input.command,
    startedAt,
  });
  await writeJson(ctx.runStore, runKeys.run(input.runId), run);

  const tracker = new SeriesTracker();
  const shards: ShardRef[] = [];
  const coverageBySeries = new Map<string, boolean>();
  const toCover: ListedForCoverage[] = [];
  const sources: Discovery['sources'] = [];
  let pending: Backup[] = [];
  let pendingBytes = 0;
  let pendingObjects = 0;
  let backups = 0;
  let bytes = 0;

  const flush = async () => {
    if (pending.length === 0) return;
    const ref = { runId: input.runId, shard: shards.length };
    await writeJson(ctx.runStore, runKeys.shard(ref.runId, ref.shard), pending.map(serializeBackup));
    await ctx.ledger.recordCatalogue(input.runId, pending);
    const found = pending.flatMap((b) => discoveryRecords(input.runId, b, new Date(startedAt), ctx.now()));
    if (found.length > 0) await ctx.ledger.recordResults(found);
    shards.push(ref);
    pending = [];
    pendingBytes = 0;
    pendingObjects = 0;
  };

  const runFindings: Finding[] = [];
  // Future-dated backups join the tracker once their first-seen time is recorded (rare: kept whole).
  const futureDated: Backup[] = [];
  const vanished: KnownSeries[] = [];
  const arrivalScope = input.arrivals ? arrivalScopeOf(ctx, input.arrivals) : undefined;
  for (const url of input.sources) {
    const stats: CatalogueStats = { objects: 0, ignored: 0, ignoredExamples: [] };
    let listed = 0;
    for await (const backup of catalogue(ctx.openSource(url), stats, {
      archivePatterns: config.archives.patterns,
    })) {
      ctx.signal?.throwIfAborted();
      listed++;
      if (arrivalScope && !(await arrivalScope(url, backup))) continue;
      if (futureTimestampFindings(backup, new Date(startedAt)).length > 0) futureDated.push(backup);
      else tracker.add(backup);
      ctx.events?.discovered?.(backup);
      let covered = coverageBySeries.get(backup.series);
      if (covered === undefined) {
        covered = coverageEnabled(policyFor(config, backup.series));
        coverageBySeries.set(backup.series, covered);
      }
      backups++;
      bytes += backup.bytes;
      if (
        pending.length > 0 &&
        (pending.length >= SHARD_LIMITS.backups ||
          pendingBytes + backup.bytes > SHARD_LIMITS.bytes ||
          pendingObjects + backup.objects > SHARD_LIMITS.objects)
      ) {
        await flush();
      }
      pending.push(backup);
      pendingBytes += backup.bytes;
      pendingObjects += backup.objects;
      // The shard it lands in (flushed later under this index): integrity reads only that shard's deferrals.
      if (covered) toCover.push({ ...listedForCoverage(backup), shard: shards.length });
    }
    // An arrival run judges the series of what arrived, not the source's other series.
    for (const known of arrivalScope ? [] : await ctx.ledger.seriesOfSource(url)) {
      if (!tracker.newest.has(known.series) && !futureDated.some((b) => b.series === known.series))
        vanished.push(known);
    }
    runFindings.push(...sourceFindings(url, listed, stats));
    const region = await sourceRegion(ctx, url);
    sources.push({ url, ...(region ? { region } : {}), ...stats });
  }
  await flush();

  const now = ctx.now();
  for (const backup of futureDated) tracker.add(backup, await firstSeenAt(ctx, backup.id, now));
  for (const known of vanished) {
    const createdAt = new Date(known.latestBackupCreatedAt);
    const at = isFutureDated(createdAt, now) ? await firstSeenAt(ctx, known.latestBackupId, now) : createdAt;
    tracker.addVanished(known, at);
    runFindings.push(vanishedSeriesFinding(known));
  }
  const rpo = rpoChecks(tracker, config, now);
  await ctx.ledger.recordSeriesRpo(input.runId, now.toISOString(), rpo);
  // Only commands that read backups have a budget to spend; `discover` and `restore` read none for integrity.
  const reads = input.command === 'integrity' || input.command === 'comprehensive';
  const plan = reads && toCover.length > 0 ? await coveragePlanOf(ctx, toCover, config) : undefined;
  if (plan) {
    await writeJson(ctx.runStore, runKeys.coverage(input.runId), plan);
    const byShard = new Map<number, Record<string, string>>();
    for (const c of plan.candidates) {
      const why = plan.deferred[c.id];
      if (why === undefined || c.shard === undefined) continue;
      const map = byShard.get(c.shard) ?? {};
      map[c.id] = why;
      byShard.set(c.shard, map);
    }
    for (const ref of shards) {
      await writeJson(ctx.runStore, runKeys.deferred(input.runId, ref.shard), byShard.get(ref.shard) ?? {});
    }
  }
  const discovery: Discovery = {
    runId: input.runId,
    shards,
    backups,
    series: tracker.listed,
    bytes,
    runFindings: [...runFindings, ...rpoFindings(rpo)],
    sources,
    durationMs: Math.max(0, ctx.now().getTime() - Date.parse(startedAt)),
    ...(plan
      ? {
          coverage: {
            candidates: plan.candidates.length,
            read: plan.candidates.filter((c) => c.read).length,
            deferred: Object.keys(plan.deferred).length,
          },
        }
      : {}),
  };
  await writeJson(ctx.runStore, runKeys.discovery(input.runId), discovery);
  return discovery;
}

/**
 * Whether an arrival run checks a backup: it holds an object that arrived (a re-upload is checked
 * again), or the ledger has never catalogued it (arrivals of a burst the run's own trigger did not
 * name, landed before this listing, are new too, so one run covers the whole burst).
 */
function arrivalScopeOf(
  ctx: StageContext,
  arrivals: string[],
): (source: string, backup: Backup) => Promise<boolean> {
  return async (source, backup) => {
    const root = `${source.replace(/\/+$/, '')}/`;
    const keys = new Set(arrivals.filter((a) => a.startsWith(root)).map((a) => a.slice(root.length)));
    const holds =
      backup.members.some((m) => keys.has(m.key)) ||
      backup.manifestKeys.some((k) => keys.has(k)) ||
      (backup.sidecarKey !== undefined && keys.has(backup.sidecarKey));
    return holds || (await ctx.ledger.catalogueEntry(backup.id)) === undefined;
  };
}

/**
 * The region of a source's bucket, asked only where restores run in a sandbox tied to one region.
 * Not knowing it is not a failure: the restore is then attempted as before.
 */
async function sourceRegion(ctx: StageContext, url: string): Promise<string | undefined> {
  if (!ctx.sandbox?.region) return undefined;
  const store = ctx.openSource(url);
  return store.region ? store.region().catch(() => undefined) : undefined;
}

/** What coverage reads this run: the ledger's verifications of each covered series (one Query each), then the budget. */
export async function coveragePlanOf(
  ctx: Pick<StageContext, 'ledger'>,
  listed: readonly ListedForCoverage[],
  config: Config,
): Promise<CoveragePlan> {
  const series = [...new Set(listed.map((l) => l.series))];
  const entries = new Map<string, Awaited<ReturnType<Ledger['verificationsOf']>>[number]>();
  for (const name of series) {
    for (const entry of await ctx.ledger.verificationsOf(name)) entries.set(entry.backupId, entry);
  }
  return planCoverage(
    listed.map((l) => coverageCandidate(l, entries.get(l.id))),
    config,
  );
}

/** When a backup was first seen (recorded with the catalogue), which a future-dated backup's RPO is judged from. */
async function firstSeenAt(ctx: StageContext, backupId: string, now: Date): Promise<Date> {
  const entry = await ctx.ledger.catalogueEntry(backupId);
  return entry?.firstSeenAt ? new Date(entry.firstSeenAt) : now;
}

/**
 * What discovery already knows of a backup, said at once so even `discover` shows it: objects in
 * an archive storage class, a time in the future. The integrity stage's compliance record of the
 * same run replaces this one (and says the future time again).
 */
function discoveryRecords(runId: string, backup: Backup, startedAt: Date, now: Date): StageResultRecord[] {
  const findings = futureTimestampFindings(backup, startedAt);
  const archived = backup.members.filter(
    (m) => m.storageClass && ARCHIVED_CLASSES.has(m.storageClass) && !m.restored,
  );
  const first = archived[0];
  if (first) {
    findings.push(
      finding(
        'ARCHIVED_STORAGE',
        `${archived.length} object(s) in storage class ${first.storageClass} (first: ${first.path}) cannot be read without a restore request: they will not be verified`,
        { backup: backup.id, object: first.path },
      ),
    );
  }
  if (findings.length === 0) return [];
  return [
    {
      runId,
      backupId: backup.id,
      series: backup.series,
      stage: 'compliance',
      status: 'WARN',
      durationMs: 0,
      findings,
      at: now.toISOString(),
    },
  ];
}
