import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Config, type Policy, policyFor } from '../config.ts';
import { copyProofTally, proveCopy } from '../copy-proof.ts';
import { StoreError } from '../errors.ts';
import { type Finding, finding, type StageStatus } from '../findings.ts';
import type { StageResultRecord } from '../ledger.ts';
import { forEachLimited } from '../limit.ts';
import { refuseTargetsInSources } from '../locations.ts';
import type { Backup } from '../model.ts';
import type { CopyTarget, ObjectStore } from '../ports.ts';
import { type CopyProof, protectionKeys } from '../protection-report.ts';
import { readJson, runKeys, writeJson } from '../run-store.ts';
import type { StageContext } from './context.ts';
import { describeError } from './record-failure.ts';
import { backupsOfRun, loadDiscovery, loadRun, loadShard } from './run.ts';

/** The SHA-256 of each stored object of a shard's backups (backup id -> key -> hex), from the integrity stage. */
export type RunDigests = Record<string, Record<string, string>>;

async function sha256Of(store: ObjectStore, key: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(await store.open(key), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest('hex');
}

/** Streams an object from a source to a target, hashing what went through. */
async function streamCopy(
  source: ObjectStore,
  key: string,
  target: CopyTarget,
  size: number,
): Promise<string> {
  const hash = createHash('sha256');
  const hashing = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const input = await source.open(key);
  input.once('error', (error) => hashing.destroy(error));
  await target.put(key, input.pipe(hashing), size);
  return hash.digest('hex');
}

function objectKeys(backup: Backup): Array<{ key: string; size: number }> {
  const keys = backup.members.map((m) => ({ key: m.key, size: m.size }));
  for (const key of [...backup.manifestKeys, ...(backup.sidecarKey ? [backup.sidecarKey] : [])]) {
    keys.push({ key, size: -1 });
  }
  return keys;
}

function treeDigest(objects: Array<{ key: string; sha256: string }>): string {
  const hash = createHash('sha256');
  for (const o of [...objects].sort((a, b) => (a.key < b.key ? -1 : 1)))
    hash.update(`${o.sha256}  ${o.key}\n`);
  return hash.digest('hex');
}

/** How many verified copies a policy asks for: its `copies`, and at least one per named target. */
export function copiesRequired(redundancy: Policy['redundancy']): number {
  return Math.max(redundancy.copies, redundancy.targets.length);
}

/** Every redundancy target a configuration names, defaults and series alike. */
export function redundancyTargetsOf(config: Config): string[] {
  return [
    ...new Set([
      ...config.defaults.redundancy.targets,
      ...Object.values(config.series).flatMap((o) => o.redundancy?.targets ?? []),
    ]),
  ];
}

/**
 * When redundancy failed outside one object's copy (a target overlapping a source, a bad target
 * URL, the ledger, a crash or timeout of the step): every backup that needed copies and has no
 * redundancy verdict yet FAILs with REDUNDANCY_MISSING and the cause, so the failure cannot vanish.
 */
export async function recordRedundancyFailure(
  ctx: StageContext,
  runId: string,
  why: string,
  shard?: number,
): Promise<{ recorded: number }> {
  const run = await loadRun(ctx, runId);
  const detail = await ctx.ledger.getRun(runId);
  const judged = new Set(
    (detail?.results ?? []).filter((r) => r.stage === 'redundancy').map((r) => r.backupId),
  );
  const records: StageResultRecord[] = [];
  const backups = shard === undefined ? backupsOfRun(ctx, runId) : await loadShard(ctx, { runId, shard });
  for await (const backup of backups) {
    if (judged.has(backup.id) || copiesRequired(policyFor(run.config, backup.series).redundancy) === 0)
      continue;
    records.push({
      runId,
      backupId: backup.id,
      series: backup.series,
      stage: 'redundancy',
      status: 'FAIL',
      durationMs: 0,
      findings: [
        finding('REDUNDANCY_MISSING', `no copy verified: redundancy could not run: ${why}`, {
          backup: backup.id,
        }),
      ],
      at: ctx.now().toISOString(),
    });
  }
  if (records.length > 0) await ctx.ledger.recordResults(records);
  return { recorded: records.length };
}

export interface RedundancyOptions {
  /** The folder relative targets are resolved against (the CLI's working folder). */
  cwd?: string;
  /** Only this shard's backups (the state machine maps over shards); every shard when absent. */
  shard?: number;
}

/**
 * Backups of a shard copied at once. A server-side copy costs the Lambda only waiting, but
 * verifying a copy still reads it, and a shard holds up to 8 GiB: four streams in parallel keep
 * a shard well inside the 15 minutes without throttling one target prefix.
 */
export const REDUNDANCY_CONCURRENCY = 4;

/**
 * Makes sure each verified backup has the copies its policy asks for: copies what is missing
 * (server-side where the stores allow it), verifies every copy's checksum, records it.
 * Writes only to redundancy targets, never to a source: targets overlapping a source are refused
 * before anything is copied. A failure outside one object's copy is recorded against every
 * backup still needing copies, then rethrown for the pipeline to report.
 */
export async function redundancyStage(
  ctx: StageContext,
  runId: string,
  openTarget: (url: string) => CopyTarget,
  options: RedundancyOptions = {},
): Promise<{ checked: number; copied: number; missing: number }> {
  try {
    return await copyAndVerify(ctx, runId, openTarget, options);
  } catch (error) {
    try {
      await recordRedundancyFailure(
        ctx,
        runId,
        describeError({ Error: (error as Error).name, Cause: (error as Error).message }),
        options.shard,
      );
    } catch {
      // The report records it once more from the step's caught error; the first failure is the story.
    }
    throw error;
  }
}

async function copyAndVerify(
  ctx: StageContext,
  runId: string,
  openTarget: (url: string) => CopyTarget,
  options: RedundancyOptions,
): Promise<{ checked: number; copied: number; missing: number }> {
  const run = await loadRun(ctx, runId);
  await refuseTargetsInSources(run.sources, redundancyTargetsOf(run.config), options.cwd ?? process.cwd());
  const detail = await ctx.ledger.getRun(runId);
  const integrity = new Map(
    (detail?.results ?? [])
      .filter((r) => r.stage === 'integrity')
      .map((r) => [r.backupId, r.status] as const),
  );
  let checked = 0;
  let copied = 0;
  let missing = 0;
  const discovery = await loadDiscovery(ctx, runId);
  const refs =
    options.shard === undefined
      ? discovery.shards
      : discovery.shards.filter((r) => r.shard === options.shard);
  for (const ref of refs) {
    const proofs: Record<string, CopyProof[]> = {};
    let digests: RunDigests = {};
    try {
      digests = await readJson<RunDigests>(ctx.runStore, runKeys.digests(runId, ref.shard));
    } catch (error) {
      if (!(error instanceof StoreError && error.kind === 'not-found')) throw error;
    }
    await forEachLimited(await loadShard(ctx, ref), REDUNDANCY_CONCURRENCY, async (backup) => {
      const policy = policyFor(run.config, backup.series).redundancy;
      const required = copiesRequired(policy);
      if (required === 0) return;
      checked++;
      const findings: Finding[] = [];
      const status = integrity.get(backup.id);
      let verified = 0;
      const started = Date.now();
      if (status !== 'PASS' && status !== 'WARN') {
        findings.push(
          finding(
            'REDUNDANCY_MISSING',
            `not copied: the backup did not pass its integrity check (${status ?? 'not checked'}), and a copy of damaged data is no copy`,
            { backup: backup.id },
          ),
        );
      } else {
        const source = ctx.openSource(backup.source);
        const known = digests[backup.id] ?? {};
        for (const url of policy.targets) {
          const target = openTarget(url);
          const verifiedObjects: Array<{ key: string; sha256: string }> = [];
          const proofOf = copyProofTally(url);
          proofs[backup.id] = [...(proofs[backup.id] ?? []), proofOf.proof];
          let ok = true;
          for (const { key, size } of objectKeys(backup)) {
            try {
              const expected = known[key] ?? (await sha256Of(source, key));
              let present: boolean;
              try {
                const head = await target.head(key);
                present = size < 0 || head.size === size;
              } catch (error) {
                if (!(error instanceof StoreError && error.kind === 'not-found')) throw error;
                present = false;
              }
              if (!present) {
                const serverSide = (await target.copyFrom?.(source, key, key)) ?? false;
                if (!serverSide) {
                  const streamed = await streamCopy(
                    source,
                    key,
                    target,
                    size < 0 ? (await source.head(key)).size : size,
                  );
                  if (streamed !== expected)
                    throw new Error(`source changed while copying (${streamed} != ${expected})`);
                }
                copied++;
              }
              const proof = await proveCopy(ctx, source, target, key, expected);
              if (proof) proofOf.record(proof);
              const actual = proof ? expected : await sha256Of(target, key);
              if (!proof) proofOf.read();
              if (actual !== expected) {
                ok = false;
                findings.push(
                  finding(
                    'REDUNDANCY_MISSING',
                    `copy at ${url} differs from the backup (sha256 ${actual}, expected ${expected})`,
                    {
                      backup: backup.id,
                      object: key,
                    },
                  ),
                );
                break;
              }
              verifiedObjects.push({ key, sha256: actual });
            } catch (error) {
              ok = false;
              findings.push(
                finding('REDUNDANCY_MISSING', `no verified copy at ${url}: ${(error as Error).message}`, {
                  backup: backup.id,
                  object: key,
                }),
              );
              break;
            }
          }
          if (!ok) continue;
          proofOf.proof.verified = true;
          verified++;
          await ctx.ledger.recordCopy({
            backupId: backup.id,
            location: `${url.replace(/\/+$/, '')}/${backup.key}`,
            sha256:
              backup.kind === 'archive' ? (verifiedObjects[0]?.sha256 ?? '') : treeDigest(verifiedObjects),
            bytes: backup.bytes,
            verifiedAt: ctx.now().toISOString(),
            runId,
          });
        }
        if (verified < required) {
          findings.push(
            finding(
              'REDUNDANCY_MISSING',
              `${verified} verified cop${verified === 1 ? 'y' : 'ies'}, the policy asks for ${required}` +
                (policy.targets.length < required
                  ? ` but names only ${policy.targets.length} target(s): add targets`
                  : ''),
              { backup: backup.id },
            ),
          );
        }
      }
      if (findings.length > 0) missing++;
      const record: StageResultRecord = {
        runId,
        backupId: backup.id,
        series: backup.series,
        stage: 'redundancy',
        status: (findings.length > 0 ? 'FAIL' : 'PASS') satisfies StageStatus,
        durationMs: Date.now() - started,
        findings,
        at: ctx.now().toISOString(),
      };
      await ctx.ledger.recordResults([record]);
    });
    if (Object.keys(proofs).length > 0)
      await writeJson(ctx.runStore, protectionKeys.copies(runId, ref.shard), proofs);
  }
  return { checked, copied, missing };
}
