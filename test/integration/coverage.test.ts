import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import type { RunReport } from '../../lib/core/model.ts';
import type { RunPlan } from '../../lib/core/plan.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage, SHARD_LIMITS } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { runCli } from '../support/cli.ts';
import { folderStageContext, freshLedger } from '../support/ledger.ts';

const DAY = 86_400_000;
/** The day of an archive made by `archive()`, from its id. */
const dayOf = (id: string) => Number(/db-202501(\d\d)_/.exec(id)?.[1]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-coverage-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A gzip archive of `size` incompressible bytes with its sidecar, named for its day. */
function archive(day: number, size: number, seed = 'a'): { name: string; gz: Buffer; sidecar: string } {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += 32) createHash('sha256').update(`${seed}${day}:${i}`).digest().copy(body, i);
  const gz = gzipSync(body);
  const name = `db-202501${String(day).padStart(2, '0')}_020000.gz`;
  return { name, gz, sidecar: `${sha(gz)}  ${name}\n` };
}

async function writeArchives(source: string, days: number[], size: number, seed = 'a'): Promise<number> {
  await mkdir(source, { recursive: true });
  let bytes = 0;
  for (const day of days) {
    const a = archive(day, size, seed);
    await writeFile(join(source, a.name), a.gz);
    await writeFile(join(source, `${a.name}.sha256`), a.sidecar);
    bytes = a.gz.length;
  }
  return bytes;
}

describe('issue 15: coverage through the stages and the ledger, weekly on a fake clock', () => {
  let ledger: DynamoDbLedger;
  let now = new Date('2025-01-07T03:00:00Z');
  let ctx: StageContext;
  beforeEach(async () => {
    ledger = await freshLedger(() => now);
    ctx = folderStageContext(ledger, join(dir, 'runs'), () => now);
  });
  afterEach(async () => {
    await ledger.close();
  });

  async function run(runId: string, source: string, config: unknown): Promise<RunReport> {
    const discovery = await discoverStage(ctx, {
      runId,
      trigger: 'schedule',
      command: 'integrity',
      sources: [source],
      config,
    });
    for (const shard of discovery.shards) await integrityStage(ctx, shard);
    return (await reportStage(ctx, runId)).report;
  }

  const read = (report: RunReport) =>
    report.backups.filter((b) => b.integrity.status !== 'SKIPPED').map((b) => dayOf(b.id));

  it('each run reads new and changed backups first, then the longest unverified, within the budget; the rest are SKIPPED, never PASS', async () => {
    const source = join(dir, 'src');
    const size = await writeArchives(source, [1, 2, 3, 4, 5, 6], 4000);
    const config = {
      defaults: {
        rpoMinutes: 0,
        coverage: { withinDays: 21, runEveryDays: 7, budget: { bytes: 3 * size + 10, requests: 100 } },
      },
    };
    const first = await run('w1', source, config);
    expect(read(first)).toEqual([1, 2, 3]);
    const deferred = first.backups.filter((b) => b.integrity.status === 'SKIPPED');
    expect(deferred).toHaveLength(3);
    for (const b of deferred) {
      expect(b.status).toBe('SKIPPED');
      expect(b.deferred).toMatch(/not read this run: the coverage budget of defaults/);
    }
    expect(first.coverage).toHaveLength(1);
    expect(first.coverage?.[0]).toMatchObject({ backups: 6, deferred: 3, reachable: true, behind: false });
    expect(first.coverage?.[0]?.share).toBeCloseTo(0.5, 2);
    expect(first.cost?.usage.s3GetRequests).toBe(0);

    now = new Date(now.getTime() + 7 * DAY);
    // A new nightly backup arrives and a verified one is rewritten: with the never-verified ones,
    // they come first, the longest waiting first.
    await writeArchives(source, [7], 4000);
    await writeArchives(source, [2], 4000, 'rewritten');
    const second = await run('w2', source, config);
    expect(read(second)).toEqual([2, 4, 5]);
    expect(second.backups.find((b) => dayOf(b.id) === 2)?.findings.map((f) => f.code)).toContain(
      'CHECKSUM_CHANGED',
    );

    now = new Date(now.getTime() + 7 * DAY);
    const third = await run('w3', source, config);
    // The changed backup failed, so its last verification is still of the old version: it stays first,
    // with the never verified (6, 7); the longest unverified (1, 3, verified in w1) wait.
    expect(read(third)).toEqual([2, 6, 7]);
    for (const report of [first, second, third]) {
      const bytes = report.backups
        .filter((b) => b.integrity.status !== 'SKIPPED')
        .reduce((s, b) => s + b.bytes, 0);
      expect(bytes).toBeLessThanOrEqual(3 * size + 10);
      expect(report.findings.filter((f) => f.code === 'COVERAGE_BEHIND')).toEqual([]);
    }
    // The ledger answers coverage's question with one Query per series, in reading order.
    // Verified in w1 (1, 2's old version, 3), w2 (4, 5), w3 (6, 7), oldest first.
    const order = (await ledger.verificationsOf(`${source}/db`)).map((e) => e.backupId);
    expect(order.map(dayOf)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const entries = await ledger.verificationsOf(`${source}/db`);
    expect(entries.every((e) => e.lastVerifiedFingerprint !== undefined)).toBe(true);
    const runs = await ledger.recentRuns(1);
    expect(runs[0]?.summary?.coverage?.[0]).toMatchObject({ series: `${source}/db`, behind: false });
  });

  it('backups spread over several integrity shards: each shard skips exactly its own deferred backups', async () => {
    const source = join(dir, 'src');
    const size = await writeArchives(source, [1, 2, 3, 4, 5, 6, 7], 3000);
    const saved = SHARD_LIMITS.backups;
    SHARD_LIMITS.backups = 2;
    try {
      const report = await run('shards', source, {
        defaults: { rpoMinutes: 0, coverage: { withinDays: 30, budget: { bytes: 4 * size + 10 } } },
      });
      expect(read(report)).toEqual([1, 2, 3, 4]);
      expect(report.backups.filter((b) => b.deferred !== undefined).map((b) => dayOf(b.id))).toEqual([
        5, 6, 7,
      ]);
    } finally {
      SHARD_LIMITS.backups = saved;
    }
  });

  it('a budget too small for the data is COVERAGE_BEHIND from the first run; an error when the policy says so', async () => {
    const source = join(dir, 'src');
    const size = await writeArchives(source, [1, 2, 3, 4, 5, 6], 4000);
    const report = await run('small', source, {
      defaults: {
        rpoMinutes: 0,
        coverage: { withinDays: 7, runEveryDays: 7, budget: { bytes: 2 * size }, behind: 'error' },
      },
    });
    const behind = report.findings.filter((f) => f.code === 'COVERAGE_BEHIND');
    expect(behind).toHaveLength(1);
    expect(behind[0]).toMatchObject({ severity: 'error', series: `${source}/db` });
    expect(report.status).toBe('FAIL');
    expect(report.coverage?.[0]).toMatchObject({ reachable: false, forecastMetAt: null, behind: true });
    expect(read(report)).toHaveLength(2);
  });
});

describe('issue 15: coverage, cost and plan from the CLI', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('on an s3:// source: plan says what a run reads and costs, the run keeps to it, history shows coverage and cost', async () => {
    const endpoint = inject('s3Endpoint');
    // The SDK's credential chain reads the process environment.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const bucket = `bv-coverage-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    let size = 0;
    for (const day of [1, 2, 3, 4]) {
      const a = archive(day, 3000);
      size = a.gz.length;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `nightly/${a.name}`, Body: a.gz }));
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `nightly/${a.name}.sha256`, Body: a.sidecar }),
      );
    }
    client.destroy();
    const config = join(dir, 'policy.json');
    await writeFile(
      config,
      JSON.stringify({
        defaults: {
          rpoMinutes: 0,
          coverage: { withinDays: 14, runEveryDays: 7, budget: { bytes: 2 * size + 1 } },
        },
        prices: { region: 'test-region' },
      }),
    );
    const env = {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    };
    const source = `s3://${bucket}/nightly`;
    const ledger = join(dir, 'ledger');
    const planned = await runCli(
      [
        'plan',
        '--source',
        source,
        '--config',
        config,
        '--ledger',
        ledger,
        '--json',
        join(dir, 'plan.json'),
        '--quiet',
      ],
      dir,
      env,
    );
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/The next run reads 2 backup\(s\)/);
    expect(planned.stdout).toMatch(/Coverage window reachable at this budget/);
    const plan = JSON.parse(await readFile(join(dir, 'plan.json'), 'utf8')) as RunPlan;
    expect(plan.read.backups).toBe(2);
    expect(plan.run.usage.s3ListRequests).toBe(1);
    expect(plan.run.usage.s3GetRequests).toBeGreaterThanOrEqual(4);
    expect(plan.run.estimate.total).toBeGreaterThan(0);
    expect(plan.month.runs).toBeCloseTo(30 / 7, 1);

    const checked = await runCli(
      [
        'integrity',
        '--source',
        source,
        '--config',
        config,
        '--ledger',
        ledger,
        '--json',
        join(dir, 'r.json'),
        '--quiet',
      ],
      dir,
      env,
    );
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain('DEFERRED');
    expect(checked.stdout).toMatch(/Cost estimate \(test-region prices\)/);
    const report = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8')) as RunReport;
    expect(report.backups.filter((b) => b.integrity.status !== 'SKIPPED')).toHaveLength(2);
    expect(report.backups.filter((b) => b.deferred !== undefined && b.status === 'SKIPPED')).toHaveLength(2);
    // What plan said this run would read is what it read: the two oldest, each object and sidecar a GET.
    expect(report.cost?.usage).toMatchObject({ s3GetRequests: 4, s3ListRequests: 1, s3BytesRead: 2 * size });

    const history = await runCli(['history', '--ledger', ledger], dir, env);
    expect(history.stdout).toContain('COST (EST.)');
    expect(history.stdout).toMatch(/Coverage \(run .*\)\n.*50\.0% verified within the window/);
  });

  it('on a folder through the local state machine (comprehensive): backups over the budget are DEFERRED, not PASS', async () => {
    const source = join(dir, 'src');
    const size = await writeArchives(source, [1, 2, 3], 3000);
    const config = join(dir, 'policy.json');
    await writeFile(
      config,
      JSON.stringify({
        defaults: { rpoMinutes: 0, coverage: { withinDays: 30, budget: { bytes: size + 1 } } },
      }),
    );
    const planned = await runCli(
      ['plan', '--source', source, '--config', config, '--ledger', join(dir, 'ledger')],
      dir,
    );
    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/The next run reads 1 backup\(s\).*restores 1/);
    const unbounded = await runCli(['plan', '--source', source, '--ledger', join(dir, 'ledger')], dir);
    expect(unbounded.stdout).toMatch(/The next run reads 3 backup\(s\)/);
    expect(unbounded.stdout).toContain('No coverage policy: every run reads every backup');
    const result = await runCli(
      [
        'comprehensive',
        '--source',
        source,
        '--config',
        config,
        '--ledger',
        join(dir, 'ledger'),
        '--json',
        join(dir, 'r.json'),
        '--quiet',
      ],
      dir,
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8')) as RunReport;
    // Day 1 fits the budget; days 2 and 3 do not. Day 3, the newest, is still restored (restore.select
    // latest), which reads it; day 2 is read by nothing: SKIPPED with the reason, never PASS.
    const byDay = Object.fromEntries(report.backups.map((b) => [dayOf(b.id), b]));
    expect(byDay[1]?.integrity.status).not.toBe('SKIPPED');
    expect(byDay[2]).toMatchObject({
      status: 'SKIPPED',
      integrity: { status: 'SKIPPED' },
      restore: { status: 'SKIPPED' },
    });
    expect(byDay[2]?.deferred).toMatch(/coverage budget/);
    expect(byDay[3]?.integrity.status).toBe('SKIPPED');
    expect(byDay[3]?.restore.status).not.toBe('SKIPPED');
    expect(byDay[3]?.deferred).toBeUndefined();
    expect(report.coverage?.[0]?.readThisRun.backups).toBe(1);
    expect(result.stdout).toContain('DEFERRED');
  });
});
