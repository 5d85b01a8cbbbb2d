import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { policyFor } from './config.ts';
import { StoreError, UsageError } from './errors.ts';
import { type Finding, finding, type StageStatus } from './findings.ts';
import type { StageResultRecord } from './ledger.ts';
import type { Backup } from './model.ts';
import type { CopyTarget, ObjectStore } from './ports.ts';
import { readJson, runKeys } from './run-store.ts';
import { type Discovery, loadRun, loadShard, type StageContext } from './stages.ts';

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

function isInside(target: string, source: string): boolean {
  const a = target.replace(/\/+$/, '');
  const b = source.replace(/\/+$/, '');
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/**
 * Makes sure each verified backup has the copies its policy asks for: copies what is missing
 * (server-side where the stores allow it), verifies every copy's checksum, records it.
 * Writes only to redundancy targets, never to a source.
 */
export async function redundancyStage(
  ctx: StageContext,
  runId: string,
  openTarget: (url: string) => CopyTarget,
): Promise<{ checked: number; copied: number; missing: number }> {
  const run = await loadRun(ctx, runId);
  const detail = await ctx.ledger.getRun(runId);
  const integrity = new Map(
    (detail?.results ?? [])
      .filter((r) => r.stage === 'integrity')
      .map((r) => [r.backupId, r.status] as const),
  );
  let checked = 0;
  let copied = 0;
  let missing = 0;
  const discovery = await readJson<Discovery>(ctx.runStore, runKeys.discovery(runId));
  for (const ref of discovery.shards) {
    let digests: RunDigests = {};
    try {
      digests = await readJson<RunDigests>(ctx.runStore, runKeys.digests(runId, ref.shard));
    } catch (error) {
      if (!(error instanceof StoreError && error.kind === 'not-found')) throw error;
    }
    for (const backup of await loadShard(ctx, ref)) {
      const policy = policyFor(run.config, backup.series).redundancy;
      const required = Math.max(policy.copies, policy.targets.length);
      if (required === 0) continue;
      for (const target of policy.targets) {
        const clash = run.sources.find((s) => isInside(target, s));
        if (clash) {
          throw new UsageError(
            `redundancy target ${target} overlaps the source ${clash}: a copy must never be written into a source`,
            'redundancy.targets',
          );
        }
      }
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
              const actual = await sha256Of(target, key);
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
    }
  }
  return { checked, copied, missing };
}
