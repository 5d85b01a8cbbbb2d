import { type CatalogueStats, catalogue } from './catalogue.ts';
import {
  futureTimestampFindings,
  isFutureDated,
  rpoChecks,
  rpoFindings,
  SeriesTracker,
  vanishedSeriesFinding,
} from './compliance.ts';
import { type Config, DEFAULT_CONFIG, parseConfig, policyFor } from './config.ts';
import { checkIntegrityConfirmed } from './confirm.ts';
import { addCompute, emptyUsage, listRequests, runCost, type Usage } from './cost.ts';
import {
  backupFingerprint,
  type CoveragePlan,
  coverageCandidate,
  coverageEnabled,
  coverageOf,
  type ListedForCoverage,
  listedForCoverage,
  planCoverage,
  readRequestsOf,
} from './coverage.ts';
import { sourceFindings } from './discovery-findings.ts';
import { UsageError } from './errors.ts';
import { type Finding, finding, type StageStatus, type Status } from './findings.ts';
import { ARCHIVED_CLASSES } from './integrity.ts';
import {
  type KnownSeries,
  type Ledger,
  type RunSummary,
  type RunTrigger,
  type StageResultRecord,
  sizeAnomaly,
} from './ledger.ts';
import { forEachLimited } from './limit.ts';
import type { Backup, IntegrityResult, RestoreResult, RunCost, RunReport } from './model.ts';
import type { ChecksumReader, CopyTarget, IntegrityPasses, ObjectStore, ProtectionProbe } from './ports.ts';
import { attachProtection } from './protection-report.ts';
import { type BackupOutcome, buildReport } from './report.ts';
import {
  deserializeBackup,
  readJson,
  runKeys,
  type SerializedBackup,
  serializeBackup,
  writeJson,
} from './run-store.ts';

/**
 * The pipeline's stages, shared by the Lambda handlers, the local state machine and the CLI.
 * Each stage reads what it needs from the run store and the ledger, so a stage's input and
 * output stay small references whatever the number of backups.
 */
export interface StageContext {
  ledger: Ledger;
  /** Run artifacts: shards, restore jobs, reports. Never a source. */
  runStore: CopyTarget;
  openSource(url: string): ObjectStore;
  /** Deletion protection of an S3 source (issue 15); undefined for folders. */
  openProtection?(url: string): ProtectionProbe | undefined;
  /** The stored checksums of a store's objects, where it keeps them (S3): copies are proven without reading them. */
  checksumsOf?(store: ObjectStore): ChecksumReader | undefined;
  now(): Date;
  events?: StageEvents;
  /** Aborts the run (Ctrl-C, SIGTERM): stages stop between backups and record nothing half-done. */
  signal?: AbortSignal;
  /** Where integrity passes run when not on this thread (the CLI's worker threads); default: here. */
  integrityPasses?: IntegrityPasses;
  /** Where restores run when it is not this host (the Fargate sandbox): what it can take. */
  sandbox?: SandboxBounds;
}

export interface SandboxBounds {
  /** The most scratch storage a restore can have (GiB). */
  maxScratchGiB: number;
  /** The sandbox's region: it reaches S3 only there (a same-region gateway endpoint, no internet route). */
  region?: string;
}

export interface StageEvents {
  discovered?(backup: Backup): void;
  backupStarted?(backup: Backup, stage: 'integrity' | 'restore'): void;
  bytesRead?(bytes: number): void;
  backupFinished?(backup: Backup, stage: 'integrity' | 'restore', status: StageStatus): void;
}

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

/**
 * The integrity pass runs at ~170 MB/s on 2 cores (`npm run bench`), but in a Lambda it reads one
 * S3 GET stream, which sustains tens of MB/s: 30 MB/s is the planning figure, the low end of
 * that. At that speed 12 of the 15 minutes read ~21 GB, so backups above 20 GiB are checked by the
 * sandbox task instead, which has no time limit.
 */
export const LAMBDA_S3_STREAM_BYTES_PER_SECOND = 30 * 1000 ** 2;
export const LAMBDA_INTEGRITY_MAX_BYTES =
  Math.floor((LAMBDA_S3_STREAM_BYTES_PER_SECOND * 12 * 60) / 1024 ** 3) * 1024 ** 3;

/** Shards bound the work of one integrity invocation and the size of one artifact. */
export const SHARD_LIMITS = { backups: 100, bytes: 8 * 1024 ** 3, objects: 20_000 };

export async function loadRun(ctx: Pick<StageContext, 'runStore'>, runId: string): Promise<RunInfo> {
  return readJson<RunInfo>(ctx.runStore, runKeys.run(runId));
}

export async function loadShard(ctx: Pick<StageContext, 'runStore'>, ref: ShardRef): Promise<Backup[]> {
  const raw = await readJson<SerializedBackup[]>(ctx.runStore, runKeys.shard(ref.runId, ref.shard));
  return raw.map(deserializeBackup);
}

export async function* backupsOfRun(
  ctx: Pick<StageContext, 'runStore'>,
  runId: string,
): AsyncGenerator<Backup> {
  const discovery = await readJson<Discovery>(ctx.runStore, runKeys.discovery(runId));
  for (const ref of discovery.shards) yield* await loadShard(ctx, ref);
}

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

/** The backups of one shard the coverage budget leaves unread this run, with why (none without a policy). */
async function deferredOfShard(
  ctx: Pick<StageContext, 'runStore'>,
  ref: ShardRef,
): Promise<Record<string, string>> {
  const discovery = await readJson<Discovery>(ctx.runStore, runKeys.discovery(ref.runId));
  return discovery.coverage
    ? readJson<Record<string, string>>(ctx.runStore, runKeys.deferred(ref.runId, ref.shard))
    : {};
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

function filesOf(backup: Backup, result: IntegrityResult): number {
  return backup.kind === 'directory' ? backup.objects : result.files;
}

/** Integrity of every backup of one shard, recorded in the ledger with the size-baseline check. */
export async function integrityStage(
  ctx: StageContext,
  ref: ShardRef,
  options: { maxBytes?: number; concurrency?: number } = {},
): Promise<{ runId: string; shard: number; results: Array<{ backupId: string; status: StageStatus }> }> {
  const run = await loadRun(ctx, ref.runId);
  const backups = await loadShard(ctx, ref);
  const deferred = await deferredOfShard(ctx, ref);
  const results: Array<{ backupId: string; status: StageStatus }> = [];
  const digests: Record<string, Record<string, string>> = {};
  const expanded: Record<string, number> = {};
  // Each pass streams with bounded buffers, so memory grows with the concurrency, not with the backups.
  await forEachLimited(backups, options.concurrency ?? 1, async (backup, index) => {
    if (Object.hasOwn(deferred, backup.id)) {
      // Not read this run: the coverage budget went to backups verified longer ago (the report says so).
      await ctx.ledger.recordResults([
        {
          runId: ref.runId,
          backupId: backup.id,
          series: backup.series,
          stage: 'integrity',
          status: 'SKIPPED',
          durationMs: 0,
          findings: [],
          at: ctx.now().toISOString(),
        },
      ]);
      results[index] = { backupId: backup.id, status: 'SKIPPED' };
      return;
    }
    if (options.maxBytes !== undefined && backup.bytes > options.maxBytes) {
      // Too large to read within one invocation: left to the sandbox, which checks it before restoring.
      await ctx.ledger.recordResults([
        {
          runId: ref.runId,
          backupId: backup.id,
          series: backup.series,
          stage: 'integrity',
          status: 'SKIPPED',
          durationMs: 0,
          bytes: backup.bytes,
          findings: [],
          at: ctx.now().toISOString(),
        },
      ]);
      results[index] = { backupId: backup.id, status: 'SKIPPED' };
      return;
    }
    ctx.signal?.throwIfAborted();
    ctx.events?.backupStarted?.(backup, 'integrity');
    const policy = policyFor(run.config, backup.series);
    const source = ctx.openSource(backup.source);
    const passOptions = {
      policy,
      history: ctx.ledger,
      archivePatterns: run.config.archives?.patterns ?? [],
      onProgress: (delta: number) => ctx.events?.bytesRead?.(delta),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    };
    const result = await (ctx.integrityPasses?.check(backup, source, passOptions) ??
      checkIntegrityConfirmed(backup, source, passOptions));
    // A check cut short by the abort is no verdict: nothing of it is recorded.
    ctx.signal?.throwIfAborted();
    const at = ctx.now().toISOString();
    const files = filesOf(backup, result);
    const records: StageResultRecord[] = [
      {
        runId: ref.runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'integrity',
        status: result.status,
        score: result.score,
        durationMs: result.durationMs,
        bytes: backup.bytes,
        files,
        findings: result.findings,
        at,
        fingerprint: backupFingerprint(backup),
      },
    ];
    if (result.status !== 'SKIPPED') {
      const anomaly = sizeAnomaly(await ctx.ledger.baseline(backup.series), backup.bytes, files, backup.id);
      const findings = anomaly
        ? [
            finding('SIZE_ANOMALY', `${anomaly}: check that the backup job still captures everything`, {
              backup: backup.id,
            }),
          ]
        : [];
      findings.push(...futureTimestampFindings(backup, new Date(run.startedAt)));
      records.push({
        runId: ref.runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'compliance',
        status: findings.length > 0 ? 'WARN' : 'PASS',
        durationMs: 0,
        findings,
        at,
      });
    }
    await ctx.ledger.recordResults(records);
    digests[backup.id] = result.objectSha256;
    if (result.contentBytes > 0) expanded[backup.id] = result.contentBytes;
    ctx.events?.backupFinished?.(backup, 'integrity', result.status);
    results[index] = { backupId: backup.id, status: result.status };
  });
  await writeJson(ctx.runStore, runKeys.digests(ref.runId, ref.shard), digests);
  await writeJson(ctx.runStore, runKeys.expanded(ref.runId, ref.shard), expanded);
  return { runId: ref.runId, shard: ref.shard, results };
}

export interface FailureInput {
  stage: 'integrity' | 'restore';
  /** The Map item that failed: a shard reference or a restore item. */
  item: { runId: string; shard?: number; restore?: number };
  error?: { Error?: string; Cause?: string };
}

/** A Step Functions error (`{Error, Cause}`, the cause maybe a Lambda's JSON) as one line. */
export function describeError(error: FailureInput['error']): string {
  if (!error) return 'unknown error';
  let cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (parsed.errorMessage) cause = parsed.errorMessage;
  } catch {
    // A plain-text cause is used as it is.
  }
  return [error.Error, cause].filter(Boolean).join(': ') || 'unknown error';
}

/**
 * What a Catch records when a step failed for good: a FAIL for each backup the step left
 * without a verdict, so an infrastructure failure can never read as a pass.
 */
export async function recordFailureStage(
  ctx: StageContext,
  input: FailureInput,
  loadRestoreBackup: (runId: string, restore: number) => Promise<Backup>,
): Promise<{ recorded: number }> {
  const why = describeError(input.error);
  const backups =
    input.stage === 'integrity'
      ? await loadShard(ctx, { runId: input.item.runId, shard: input.item.shard ?? -1 })
      : [await loadRestoreBackup(input.item.runId, input.item.restore ?? -1)];
  const detail = await ctx.ledger.getRun(input.item.runId);
  const done = new Set(
    (detail?.results ?? [])
      .filter((r) => r.stage === input.stage && r.status !== 'SKIPPED')
      .map((r) => r.backupId),
  );
  const at = ctx.now().toISOString();
  const records: StageResultRecord[] = backups
    .filter((b) => !done.has(b.id))
    .map((b) => ({
      runId: input.item.runId,
      backupId: b.id,
      series: b.series,
      stage: input.stage,
      status: 'FAIL',
      durationMs: 0,
      findings: [
        input.stage === 'restore'
          ? finding('RESTORE_FAILED', `the restore could not complete: ${why}`, { backup: b.id })
          : finding('CHECK_FAILED', `the integrity check could not complete: ${why}`, { backup: b.id }),
      ],
      at,
    }));
  if (records.length > 0) await ctx.ledger.recordResults(records);
  return { recorded: records.length };
}

function integrityFromRecord(record: StageResultRecord): IntegrityResult {
  return {
    backupId: record.backupId,
    status: record.status,
    score: record.score ?? 0,
    findings: record.findings,
    durationMs: record.durationMs,
    bytesRead: record.bytes ?? 0,
    objectSha256: {},
    files: record.files ?? 0,
    contentBytes: 0,
  };
}

function restoreFromRecord(record: StageResultRecord): RestoreResult {
  return {
    backupId: record.backupId,
    status: record.status,
    durationMs: record.durationMs,
    filesRestored: record.files ?? 0,
    bytesRestored: record.bytes ?? 0,
    phases: { downloadMs: 0, extractMs: 0, verifyMs: 0, probesMs: 0, cleanupMs: 0 },
    findings: record.findings,
  };
}

/** A pipeline step that failed for good (a Catch caught it): the run cannot pass. */
export interface FailedStep {
  /** The state that failed, as the definition names it. */
  state: string;
  /** What the failure left undone, for the reader of the report. */
  consequence?: string;
  error?: FailureInput['error'];
  /** The stage whose verdicts the failure may have left missing: each backup without one FAILs. */
  stage?: 'integrity';
}

export function failedStepFinding(step: FailedStep): Finding {
  return finding(
    'CHECK_FAILED',
    `pipeline step ${step.state} failed: ${describeError(step.error)}` +
      (step.consequence ? ` (${step.consequence})` : ''),
  );
}

/**
 * The run report from the run's catalogue and the ledger's results; written to the run store.
 * Each failed step is a run-level CHECK_FAILED, so the run FAILs.
 */
export async function reportStage(
  ctx: StageContext,
  runId: string,
  failedSteps: readonly FailedStep[] = [],
): Promise<{ status: Status; reportKey: string; report: RunReport }> {
  const run = await loadRun(ctx, runId);
  const discovery = await readJson<Discovery>(ctx.runStore, runKeys.discovery(runId));
  const detail = await ctx.ledger.getRun(runId);
  const byBackup = new Map<string, StageResultRecord[]>();
  for (const r of detail?.results ?? []) {
    const list = byBackup.get(r.backupId) ?? [];
    list.push(r);
    byBackup.set(r.backupId, list);
  }
  const outcomes: BackupOutcome[] = [];
  const plan = discovery.coverage
    ? await readJson<CoveragePlan>(ctx.runStore, runKeys.coverage(runId))
    : undefined;
  const passed = new Set<string>();
  const spent = new Spending();
  for await (const backup of backupsOfRun(ctx, runId)) {
    const records = byBackup.get(backup.id) ?? [];
    const integrity = records.find((r) => r.stage === 'integrity');
    spent.add(
      backup,
      integrity,
      records.find((r) => r.stage === 'restore'),
    );
    const restored = records.find((r) => r.stage === 'restore')?.status;
    if (
      integrity?.status === 'PASS' ||
      integrity?.status === 'WARN' ||
      restored === 'PASS' ||
      restored === 'WARN'
    )
      passed.add(backup.id);
    const unchecked = integrity ? undefined : failedSteps.find((s) => s.stage === 'integrity');
    const restore = records.find((r) => r.stage === 'restore');
    const outcome: BackupOutcome = {
      backup,
      findings: records
        .filter((r) => r.stage !== 'integrity' && r.stage !== 'restore')
        .flatMap((r) => r.findings),
    };
    if (integrity) outcome.integrity = integrityFromRecord(integrity);
    if (unchecked) {
      outcome.findings.push(
        finding('CHECK_FAILED', `no integrity verdict: ${failedStepFinding(unchecked).message}`, {
          backup: backup.id,
        }),
      );
    }
    if (restore) outcome.restore = restoreFromRecord(restore);
    const deferred = plan?.deferred[backup.id];
    if (
      deferred !== undefined &&
      integrity?.status === 'SKIPPED' &&
      (!restore || restore.status === 'SKIPPED')
    )
      outcome.deferred = deferred;
    outcomes.push(outcome);
  }
  const finishedAt = ctx.now();
  const coverage = plan ? coverageOf(plan, run.config, finishedAt, (c) => passed.has(c.id)) : undefined;
  const report = buildReport({
    runId,
    command: run.command,
    trigger: run.trigger,
    sources: run.sources,
    startedAt: new Date(run.startedAt),
    finishedAt,
    outcomes,
    runFindings: [
      ...discovery.runFindings,
      ...(coverage?.findings ?? []),
      ...failedSteps.map(failedStepFinding),
    ],
  });
  if (coverage) report.coverage = coverage.series;
  report.cost = spent.cost(run, discovery);
  const { copyProof } = await attachProtection(
    ctx.runStore,
    runId,
    discovery.shards.map((s) => s.shard),
    report,
  );
  const reportKey = runKeys.report(runId);
  await writeJson(ctx.runStore, reportKey, report);
  await ctx.ledger.finishRun(runId, {
    status: report.status,
    counts: report.counts,
    finishedAt: report.finishedAt,
    summary: { ...runSummaryOf(report), ...(copyProof ? { copies: copyProof } : {}) },
  });
  return { status: report.status, reportKey, report };
}

/** The run's cost and coverage as `history` shows them (a bounded number of series: the item has a size limit). */
function runSummaryOf(report: RunReport): RunSummary {
  return {
    ...(report.cost ? { costUsd: report.cost.estimate.total } : {}),
    ...(report.coverage
      ? {
          coverage: report.coverage.slice(0, SUMMARY_SERIES).map((c) => ({
            series: c.series,
            share: c.share,
            ...(c.oldestUnverified ? { oldestUnverifiedDays: c.oldestUnverified.ageDays } : {}),
            forecastMetAt: c.forecastMetAt,
            behind: c.behind,
          })),
        }
      : {}),
  };
}

/** Series whose coverage a run's ledger item keeps (the report has them all). */
const SUMMARY_SERIES = 500;

/** What a run spent, counted from what its stages recorded (docs/cost.md says what is estimated). */
class Spending {
  private usage: Usage = emptyUsage();
  private integritySeconds = 0;
  private restoreSeconds = 0;
  private restores = 0;
  private sandboxIntegritySeconds = 0;
  private sandboxIntegrities = 0;

  add(backup: Backup, integrity?: StageResultRecord, restore?: StageResultRecord): void {
    const s3 = backup.source.startsWith('s3://');
    for (const record of [integrity, restore]) {
      if (record === undefined || record.status === 'SKIPPED') continue;
      if (s3) {
        this.usage.s3GetRequests += readRequestsOf(backup);
        this.usage.s3BytesRead += backup.bytes;
        this.usage.s3HeadRequests += backup.members.filter((m) =>
          m.checksumAlgorithms?.includes('SHA256'),
        ).length;
      }
      if (record === integrity && backup.bytes > LAMBDA_INTEGRITY_MAX_BYTES) {
        // Too large for a Lambda: the sandbox checked it (one task, counted with the restores).
        this.sandboxIntegritySeconds += record.durationMs / 1000;
        this.sandboxIntegrities++;
      } else if (record === integrity) this.integritySeconds += record.durationMs / 1000;
      else {
        this.restoreSeconds += record.durationMs / 1000;
        this.restores++;
      }
    }
  }

  cost(run: RunInfo, discovery: Discovery): RunCost {
    for (const source of discovery.sources) {
      if (source.url.startsWith('s3://')) this.usage.s3ListRequests += listRequests(source.objects);
    }
    const estimated = [
      'S3 GET: one request per object and reference file read; retried, resumed and confirming second reads are not counted',
      'S3 HEAD: one per object that lists a SHA-256 checksum; LIST: one per 1,000 objects listed',
      'folder sources cost no S3 requests; DynamoDB (the ledger), CloudWatch and the reports bucket are not counted',
    ];
    if (run.trigger === 'cli') {
      estimated.push('this run computed on this machine: no Lambda, Fargate or Step Functions usage');
      return runCost(this.usage, run.config.prices ?? DEFAULT_CONFIG.prices, estimated);
    }
    estimated.push(
      'Lambda: measured discover and read times at the deployed sizes, 2 s for each other invocation',
      "Fargate: measured restore times plus 60 s start-up per task; Step Functions: transitions from the definition's shape",
    );
    const usage = addCompute(this.usage, {
      discoverSeconds: (discovery.durationMs ?? 0) / 1000,
      integritySeconds: this.integritySeconds,
      shards: discovery.shards.length,
      restoreSeconds: this.restoreSeconds,
      restores: this.restores,
      sandboxIntegritySeconds: this.sandboxIntegritySeconds,
      sandboxIntegrities: this.sandboxIntegrities,
    });
    return runCost(usage, run.config.prices ?? DEFAULT_CONFIG.prices, estimated);
  }
}
