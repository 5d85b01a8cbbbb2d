import { catalogue } from './catalogue.ts';
import { type Config, policyFor } from './config.ts';
import { addCompute, emptyUsage, listRequests, priceUsage, runCost } from './cost.ts';
import {
  coverageEnabled,
  coverageOf,
  type ListedForCoverage,
  listedForCoverage,
  readRequestsOf,
} from './coverage.ts';
import type { Finding } from './findings.ts';
import type { Backup, RunCost, SeriesCoverage } from './model.ts';
import type { StageContext } from './stages/context.ts';
import { coveragePlanOf, SHARD_LIMITS } from './stages/discover.ts';
import { LAMBDA_INTEGRITY_MAX_BYTES, LAMBDA_S3_STREAM_BYTES_PER_SECOND } from './stages/integrity.ts';

const DAYS_PER_MONTH = 30;

/** What `backup-validator plan` says of the next run and a month of runs, from the listing alone. */
export interface RunPlan {
  generatedAt: string;
  sources: string[];
  listing: { backups: number; series: number; objects: number; bytes: number; seconds: number };
  /** What the next run reads: every backup of series without coverage, and what the budget allows of the rest. */
  read: { backups: number; bytes: number; requests: number };
  restores: { backups: number; bytes: number };
  coverage: SeriesCoverage[];
  findings: Finding[];
  /** Whether every covered series' window can be held at its budget. */
  reachable: boolean;
  /** The next run in the deployed pipeline. */
  run: RunCost;
  /** Runs of the schedule in 30 days, each costed as the next one. */
  month: { runs: number; estimate: RunCost['estimate'] };
}

interface Reads {
  backups: number;
  bytes: number;
  requests: number;
  s3Requests: number;
  s3Bytes: number;
  s3Heads: number;
  /** Backups too large for a Lambda's 15 minutes: the sandbox checks them. */
  sandboxBackups: number;
  sandboxBytes: number;
}

function addRead(reads: Reads, backup: Pick<Backup, 'bytes' | 'source' | 'members'>, requests: number): void {
  reads.backups++;
  reads.bytes += backup.bytes;
  reads.requests += requests;
  if (backup.bytes > LAMBDA_INTEGRITY_MAX_BYTES) {
    reads.sandboxBackups++;
    reads.sandboxBytes += backup.bytes;
  }
  if (backup.source.startsWith('s3://')) {
    reads.s3Requests += requests;
    reads.s3Bytes += backup.bytes;
    reads.s3Heads += backup.members.filter((m) => m.checksumAlgorithms?.includes('SHA256')).length;
  }
}

/**
 * Lists the sources (reading no backup), asks the ledger what was verified when, and estimates
 * what the next run reads and costs in the deployed pipeline, and whether coverage is reachable.
 */
export async function planRun(
  ctx: Pick<StageContext, 'ledger' | 'openSource' | 'now'>,
  sources: readonly string[],
  config: Config,
): Promise<RunPlan> {
  const started = ctx.now();
  const reads: Reads = {
    backups: 0,
    bytes: 0,
    requests: 0,
    s3Requests: 0,
    s3Bytes: 0,
    s3Heads: 0,
    sandboxBackups: 0,
    sandboxBytes: 0,
  };
  const toCover: ListedForCoverage[] = [];
  const covered = new Map<string, { s3: boolean; heads: number }>();
  const newest = new Map<string, Backup>();
  const all = new Map<string, Backup[]>();
  const usage = emptyUsage();
  let backups = 0;
  let objects = 0;
  let bytes = 0;
  for (const url of sources) {
    const stats = { objects: 0, ignored: 0, ignoredExamples: [] as string[] };
    for await (const backup of catalogue(ctx.openSource(url), stats, {
      archivePatterns: config.archives.patterns,
    })) {
      backups++;
      bytes += backup.bytes;
      const policy = policyFor(config, backup.series);
      if (coverageEnabled(policy)) {
        toCover.push(listedForCoverage(backup));
        covered.set(backup.id, {
          s3: backup.source.startsWith('s3://'),
          heads: backup.members.filter((m) => m.checksumAlgorithms?.includes('SHA256')).length,
        });
      } else addRead(reads, backup, readRequestsOf(backup));
      const seen = newest.get(backup.series);
      if (!seen || backup.createdAt > seen.createdAt) newest.set(backup.series, backup);
      if (policy.restore.select === 'all') {
        const list = all.get(backup.series) ?? [];
        list.push({ ...backup, members: [] });
        all.set(backup.series, list);
      }
    }
    objects += stats.objects;
    if (url.startsWith('s3://')) usage.s3ListRequests += listRequests(stats.objects);
  }
  const seconds = (ctx.now().getTime() - started.getTime()) / 1000;
  const plan = toCover.length > 0 ? await coveragePlanOf(ctx, toCover, config) : undefined;
  for (const c of plan?.candidates ?? []) {
    if (!c.read) continue;
    const where = covered.get(c.id) ?? { s3: false, heads: 0 };
    reads.backups++;
    reads.bytes += c.bytes;
    reads.requests += c.requests;
    if (c.bytes > LAMBDA_INTEGRITY_MAX_BYTES) {
      reads.sandboxBackups++;
      reads.sandboxBytes += c.bytes;
    }
    if (where.s3) {
      reads.s3Requests += c.requests;
      reads.s3Bytes += c.bytes;
      reads.s3Heads += where.heads;
    }
  }
  const restored: Backup[] = [];
  for (const [series, backup] of newest) {
    restored.push(
      ...(policyFor(config, series).restore.select === 'all' ? (all.get(series) ?? []) : [backup]),
    );
  }
  const restoreBytes = restored.reduce((sum, b) => sum + b.bytes, 0);
  for (const b of restored) {
    if (!b.source.startsWith('s3://')) continue;
    usage.s3GetRequests += readRequestsOf(b);
    usage.s3BytesRead += b.bytes;
  }
  usage.s3GetRequests += reads.s3Requests;
  usage.s3BytesRead += reads.s3Bytes;
  usage.s3HeadRequests += reads.s3Heads;
  // A shard holds at least one backup, so never more shards than backups.
  const shards = Math.max(
    1,
    Math.min(
      backups,
      Math.max(
        Math.ceil(backups / SHARD_LIMITS.backups),
        Math.ceil(bytes / SHARD_LIMITS.bytes),
        Math.ceil(objects / SHARD_LIMITS.objects),
      ),
    ),
  );
  const withCompute = addCompute(usage, {
    discoverSeconds: seconds,
    integritySeconds: (reads.bytes - reads.sandboxBytes) / LAMBDA_S3_STREAM_BYTES_PER_SECOND,
    shards,
    restoreSeconds: restoreBytes / LAMBDA_S3_STREAM_BYTES_PER_SECOND,
    restores: restored.length,
    sandboxIntegritySeconds: reads.sandboxBytes / LAMBDA_S3_STREAM_BYTES_PER_SECOND,
    sandboxIntegrities: reads.sandboxBackups,
  });
  const run = runCost(withCompute, config.prices, [
    `reads and restores at ${LAMBDA_S3_STREAM_BYTES_PER_SECOND / 1e6} MB/s (the planning figure of one S3 stream), discovery as long as this listing took`,
    'S3 GET: one per object and reference file read; HEAD: one per object listing a SHA-256; LIST: one per 1,000 objects',
    'Lambda at the deployed sizes, 2 s for each small invocation; backups over the Lambda limit checked in the sandbox; Fargate from its start (60 s) to the end of the task; Step Functions transitions from the definition',
    'DynamoDB (the ledger), CloudWatch and the reports bucket are not counted',
  ]);
  const coverage = plan
    ? coverageOf(plan, config, ctx.now(), (c) => c.read === true)
    : { series: [], findings: [] };
  const runs = DAYS_PER_MONTH / config.defaults.coverage.runEveryDays;
  const monthUsage = Object.fromEntries(
    Object.entries(withCompute).map(([key, value]) => [key, value * runs]),
  ) as RunCost['usage'];
  return {
    generatedAt: ctx.now().toISOString(),
    sources: [...sources],
    listing: { backups, series: newest.size, objects, bytes, seconds },
    read: { backups: reads.backups, bytes: reads.bytes, requests: reads.requests },
    restores: { backups: restored.length, bytes: restoreBytes },
    coverage: coverage.series,
    findings: coverage.findings,
    reachable: coverage.series.every((c) => c.reachable),
    run,
    month: { runs: Math.round(runs * 10) / 10, estimate: priceUsage(monthUsage, config.prices) },
  };
}
