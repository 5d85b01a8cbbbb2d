import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { LocalSandbox } from '../../lib/adapters/local-sandbox.ts';
import { S3Store } from '../../lib/adapters/s3-store.ts';
import { demoStamp } from '../../lib/cli/demo-data.ts';
import type { Finding } from '../../lib/core/findings.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { selectRestoresStage } from '../../lib/core/stages/select-restores.ts';
import { localRestore, runPipelineLocally } from '../../lib/pipeline/local-runner.ts';
import { packTar } from '../support/archives.ts';
import { sandboxBundle } from '../support/cli.ts';
import { folderStageContext, freshLedger } from '../support/ledger.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let dir: string;
let ledger: DynamoDbLedger;
let ctx: StageContext;
/** The clock of the run and the ledger; tests move it between runs. */
let now: Date;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-discovery-'));
  now = new Date('2025-06-26T12:00:00Z');
  ledger = await freshLedger(() => now);
  ctx = folderStageContext(ledger, join(dir, 'runs'), () => now);
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

async function files(root: string, tree: Record<string, string | Buffer>): Promise<string> {
  for (const [path, content] of Object.entries(tree)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  await mkdir(root, { recursive: true });
  return root;
}

const stampAgo = (ms: number) => demoStamp(new Date(now.getTime() - ms));
const aTar = () => packTar([{ name: 'data.txt', content: 'some content\n' }]);
/** Finding codes, less the first-sight NO_REFERENCE_CHECKSUM of a backup without a sidecar. */
const codes = (findings: readonly Finding[]) =>
  findings.map((f) => f.code).filter((c) => c !== 'NO_REFERENCE_CHECKSUM');

async function discover(runId: string, sources: string[], config?: unknown) {
  return discoverStage(ctx, { runId, trigger: 'cli', command: 'integrity', sources, config });
}

async function integrityRun(runId: string, sources: string[], config?: unknown) {
  const discovery = await discover(runId, sources, config);
  for (const shard of discovery.shards) await integrityStage(ctx, shard);
  return { discovery, ...(await reportStage(ctx, runId)) };
}

describe('issue 9: no false pass at discovery (through the stages)', () => {
  it('issue 9.2: a timestamped backup folder holding only empty sub-folders is EMPTY_BACKUP, FAIL', async () => {
    const source = await files(join(dir, 'app'), {
      [`backups/${stampAgo(DAY)}/db/dump.sql`]: 'CREATE TABLE t (id int);\n',
    });
    const empty = stampAgo(HOUR);
    await mkdir(join(source, 'backups', empty, 'db'), { recursive: true });
    await mkdir(join(source, 'backups', empty, 'files'), { recursive: true });

    const { discovery, report, status } = await integrityRun('r1', [source]);
    expect(discovery.backups).toBe(2);
    expect(status).toBe('FAIL');
    const nightly = report.backups.find((b) => b.id === `${source}/backups/${empty}/`);
    expect(nightly).toMatchObject({ status: 'FAIL', series: `${source}/backups`, objects: 0, bytes: 0 });
    expect(codes(nightly?.findings as Finding[])).toEqual(['EMPTY_BACKUP']);
    const older = report.backups.find((b) => b.id !== nightly?.id);
    expect(older?.status).not.toBe('FAIL');
  });

  it('issue 9.2: on S3, a timestamped prefix holding only folder markers or 0-byte objects is EMPTY_BACKUP, FAIL', async () => {
    const client = new S3Client({
      endpoint: inject('s3Endpoint'),
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const bucket = `bv-discovery-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const put = (key: string, body: string) =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: `app/${key}`, Body: body }));
    const markers = stampAgo(HOUR);
    const zeroes = stampAgo(2 * HOUR);
    await put(`backups/${stampAgo(DAY)}/db/dump.sql`, 'CREATE TABLE t (id int);\n');
    await put(`backups/${markers}/`, '');
    await put(`backups/${markers}/db/`, '');
    await put(`backups/${zeroes}/db/.keep`, '');
    const source = `s3://${bucket}/app`;
    const s3 = { ...ctx, openSource: (url: string) => new S3Store(url, { client }) };
    const discovery = await discoverStage(s3, {
      runId: 's3',
      trigger: 'cli',
      command: 'integrity',
      sources: [source],
    });
    for (const shard of discovery.shards) await integrityStage(s3, shard);
    const { report, status } = await reportStage(s3, 's3');
    client.destroy();
    expect(status).toBe('FAIL');
    const verdicts = Object.fromEntries(
      report.backups.map((b) => [b.id.slice(source.length + 1), [b.status, codes(b.findings as Finding[])]]),
    );
    expect(verdicts[`backups/${markers}/`]).toEqual(['FAIL', ['EMPTY_BACKUP']]);
    expect(verdicts[`backups/${zeroes}/`]).toEqual(['FAIL', ['EMPTY_BACKUP']]);
    expect(verdicts[`backups/${stampAgo(DAY)}/`]?.[0]).not.toBe('FAIL');
    expect(report.backups.every((b) => b.series === `${source}/backups`)).toBe(true);
  });

  it('issue 9.3: a series the ledger knows with no backup now is MISSING_OBJECT and RPO_EXCEEDED; the emptied source is NO_BACKUPS', async () => {
    const name = `db-${stampAgo(HOUR)}.tar`;
    const source = await files(join(dir, 'db'), { [name]: 'x'.repeat(100), 'notes.txt': 'kept' });
    const first = await discover('r1', [source]);
    expect(first.runFindings).toEqual([]);

    await rm(join(source, name));
    now = new Date(now.getTime() + 2 * DAY);
    const { discovery, report, status } = await integrityRun('r2', [source]);
    expect(status).toBe('FAIL');
    expect(report.backups).toEqual([]);
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([
      ['NO_BACKUPS', source],
      ['MISSING_OBJECT', `${source}/db`],
      ['RPO_EXCEEDED', `${source}/db`],
    ]);
    const missing = discovery.runFindings.find((f) => f.code === 'MISSING_OBJECT');
    expect(missing?.message).toContain(`${source}/${name}`);
    const rpo = discovery.runFindings.find((f) => f.code === 'RPO_EXCEEDED');
    expect(rpo?.message).toMatch(/is 49 h old/);
    // History shows the verdict too.
    const series = (await ledger.latestBySeries()).find((s) => s.series === `${source}/db`);
    expect(series?.rpo).toMatchObject({ runId: 'r2', exceeded: true });
  });

  it('issue 9.3: the state machine fails an emptied source: NO_BACKUPS and MISSING_OBJECT, never an empty pass', async () => {
    const name = `db-${stampAgo(HOUR)}.tar`;
    const source = await files(join(dir, 'pipeline'), { [name]: await aTar() });
    const deps = {
      restore: localRestore(new LocalSandbox({ entry: await sandboxBundle() })),
      openTarget: (url: string) => new FolderStore(url),
    };
    const first = await runPipelineLocally(ctx, { runId: 'p1', trigger: 'console', sources: [source] }, deps);
    expect(first.findings).toEqual([]);
    await rm(join(source, name));
    now = new Date(now.getTime() + HOUR);
    const report = await runPipelineLocally(
      ctx,
      { runId: 'p2', trigger: 'console', sources: [source] },
      deps,
    );
    expect(report.status).toBe('FAIL');
    expect(report.backups).toEqual([]);
    expect(report.findings.map((f) => [f.code, f.series])).toEqual([
      ['NO_BACKUPS', source],
      ['MISSING_OBJECT', `${source}/db`],
    ]);
    expect((await ledger.getRun('p2'))?.run.status).toBe('FAIL');
  });

  it('issue 9.3: a vanished series beside a healthy one fails alone; within its RPO it is MISSING_OBJECT only', async () => {
    const gone = `web-${stampAgo(HOUR)}.tar`;
    const source = await files(join(dir, 'mixed'), {
      [`db-${stampAgo(HOUR)}.tar`]: 'x'.repeat(100),
      [gone]: 'y'.repeat(100),
    });
    await discover('r1', [source]);
    await rm(join(source, gone));
    now = new Date(now.getTime() + HOUR);
    const discovery = await discover('r2', [source]);
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([
      ['MISSING_OBJECT', `${source}/web`],
    ]);
    const { status } = await reportStage(ctx, 'r2');
    expect(status).toBe('FAIL');
  });

  it('issue 9.3: a source holding only an orphan .sha256 sidecar is NO_BACKUPS, with ORPHAN_REFERENCE naming it', async () => {
    const sidecar = `db-${stampAgo(HOUR)}.tar.gz.sha256`;
    const source = await files(join(dir, 'orphan'), { [sidecar]: `${'a'.repeat(64)}\n` });
    const { discovery, report, status } = await integrityRun('r1', [source]);
    expect(status).toBe('FAIL');
    expect(report.backups).toEqual([]);
    expect(discovery.runFindings.map((f) => [f.code, f.severity, f.object])).toEqual([
      ['NO_BACKUPS', 'error', undefined],
      ['ORPHAN_REFERENCE', 'warning', sidecar],
    ]);
    expect(discovery.runFindings[1]?.message).toContain(`${source}/${sidecar}`);
    expect(discovery.runFindings[1]?.series).toBe(`${source}/db`);
  });

  it('issue 9.3: an empty source is NO_BACKUPS, FAIL', async () => {
    const source = await files(join(dir, 'nothing'), {});
    const { discovery, status } = await integrityRun('r1', [source]);
    expect(codes(discovery.runFindings)).toEqual(['NO_BACKUPS']);
    expect(status).toBe('FAIL');
  });

  it('issue 9.7: a backup dated in the future is FUTURE_TIMESTAMP, and its RPO runs from when it was first seen', async () => {
    const ahead = `db-${demoStamp(new Date(now.getTime() + 10 * DAY))}.tar`;
    const source = await files(join(dir, 'future'), { [ahead]: await aTar() });

    const first = await integrityRun('r1', [source]);
    expect(first.status).toBe('WARN');
    expect(codes(first.discovery.runFindings)).toEqual([]);
    expect(codes(first.report.backups[0]?.findings as Finding[])).toEqual(['FUTURE_TIMESTAMP']);
    expect(first.report.backups[0]?.findings[0]?.message).toContain(ahead);

    // Two days on, no new backup: the job stopped; the future name must not hide it.
    now = new Date(now.getTime() + 2 * DAY);
    const second = await integrityRun('r2', [source]);
    expect(second.status).toBe('FAIL');
    expect(second.discovery.runFindings.map((f) => [f.code, f.series])).toEqual([
      ['RPO_EXCEEDED', `${source}/db`],
    ]);
    expect(second.discovery.runFindings[0]?.message).toMatch(/is 48 h old .*first seen 2025-06-26T12:00:00/);
    expect(codes(second.report.backups[0]?.findings as Finding[])).toEqual(['FUTURE_TIMESTAMP']);
  });

  it('issue 9.7: a time within the 5-minute clock-skew allowance is no finding', async () => {
    const source = await files(join(dir, 'skew'), {
      [`db-${demoStamp(new Date(now.getTime() + 4 * 60_000))}.tar`]: await aTar(),
    });
    const { report, status } = await integrityRun('r1', [source]);
    expect(codes(report.backups[0]?.findings as Finding[])).toEqual([]);
    expect(status).not.toBe('FAIL');
  });

  it('issue 9.8: two sources cut at the same folder name keep their own series: staging is stale, restored, and not a size anomaly of prod', async () => {
    const prod = join(dir, 'prod', 'backups');
    const staging = join(dir, 'staging', 'backups');
    for (let day = 4; day >= 1; day--) {
      await files(prod, { [`${stampAgo(day * HOUR)}/data.bin`]: 'p'.repeat(5000) });
    }
    await files(staging, { [`${stampAgo(6 * DAY)}/data.bin`]: 's'.repeat(10) });

    // Prod first, alone, so its series has a size baseline a merged series would compare staging with.
    await integrityRun('r0', [prod]);
    const { discovery, report, status } = await integrityRun('r1', [prod, staging]);
    expect(discovery.series).toBe(2);
    expect(report.counts.series).toBe(2);
    expect([...new Set(report.backups.map((b) => b.series))].sort()).toEqual([prod, staging]);
    expect(report.backups.map((b) => b.series)).not.toContain('default');
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([['RPO_EXCEEDED', staging]]);
    expect(report.backups.flatMap((b) => codes(b.findings as Finding[]))).not.toContain('SIZE_ANOMALY');
    expect(status).toBe('FAIL');

    const selection = await selectRestoresStage(ctx, 'r1');
    expect(selection.restores).toHaveLength(2);
    const baselines = [await ledger.baseline(prod), await ledger.baseline(staging)];
    expect(baselines.map((b) => b.sizes.length)).toEqual([4, 1]);
  });

  it('issue 9.8: a series pattern in the configuration still matches by name, and by source', async () => {
    const prod = await files(join(dir, 'p2', 'backups'), { [`db-${stampAgo(2 * HOUR)}.tar`]: 'x' });
    const staging = await files(join(dir, 's2', 'backups'), { [`db-${stampAgo(2 * HOUR)}.tar`]: 'x' });
    const config = { series: { 'db*': { rpoMinutes: 60 }, [`${staging}/**`]: { rpoMinutes: 0 } } };
    const discovery = await discover('r1', [prod, staging], config);
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([['RPO_EXCEEDED', `${prod}/db`]]);
  });

  it('issue 9.12: one stale nightly folder holding three archives raises RPO_EXCEEDED once', async () => {
    const stale = stampAgo(3 * DAY);
    const source = await files(join(dir, 'nightly'), {
      [`backups/${stale}/db.tar.gz`]: 'a',
      [`backups/${stale}/files.tar.gz`]: 'b',
      [`backups/${stale}/mem0_storage.tar.gz`]: 'c',
      [`backups/${stale}/config.json`]: '{}',
    });
    const discovery = await discover('r1', [source]);
    expect(discovery.backups).toBe(4);
    expect(discovery.runFindings.map((f) => [f.code, f.series])).toEqual([
      ['RPO_EXCEEDED', `${source}/backups`],
    ]);

    // Deleted the next day: one MISSING_OBJECT and one RPO_EXCEEDED for the job, not one per archive.
    await rm(join(source, 'backups'), { recursive: true });
    now = new Date(now.getTime() + DAY);
    const after = await discover('r2', [source]);
    expect(after.runFindings.map((f) => [f.code, f.series])).toEqual([
      ['NO_BACKUPS', source],
      ['MISSING_OBJECT', `${source}/backups`],
      ['RPO_EXCEEDED', `${source}/backups`],
    ]);
  });
});
