import { DEFAULT_CONFIG } from '../config.ts';
import { addCompute, emptyUsage, listRequests, runCost, type Usage } from '../cost.ts';
import { type CoveragePlan, coverageOf, readRequestsOf } from '../coverage.ts';
import { type Finding, finding, type Status } from '../findings.ts';
import type { RunSummary, StageResultRecord } from '../ledger.ts';
import type { Backup, IntegrityResult, RestoreResult, RunCost, RunReport } from '../model.ts';
import { attachProtection } from '../protection-report.ts';
import { type BackupOutcome, buildReport } from '../report.ts';
import { readJson, runKeys, writeJson } from '../run-store.ts';
import type { StageContext } from './context.ts';
import { LAMBDA_INTEGRITY_MAX_BYTES } from './integrity.ts';
import { describeError, type FailureInput } from './record-failure.ts';
import { backupsOfRun, type Discovery, loadDiscovery, loadRun, type RunInfo } from './run.ts';

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
  const discovery = await loadDiscovery(ctx, runId);
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
