import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { FARGATE_EPHEMERAL_GIB } from '../../lib/core/restore/scratch.ts';
import { readJson, runKeys, writeJson } from '../../lib/core/run-store.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import type { Discovery } from '../../lib/core/stages/run.ts';
import { loadRestoreJob, selectRestoresStage } from '../../lib/core/stages/select-restores.ts';
import { packTar } from '../support/archives.ts';
import { freshLedger } from '../support/ledger.ts';

/** Issue 12: what the Fargate sandbox cannot take (too large, another region) is a finding, not a failed task. */

const GIB = 1024 ** 3;
let dir: string;
let ledger: DynamoDbLedger;
const now = new Date('2025-06-26T12:00:00Z');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-sandbox-bounds-'));
  ledger = await freshLedger(() => now);
});

afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

/** A folder source that says its bucket is in `region` (as S3Store.region() does for a bucket). */
function regional(url: string, region: string | undefined): FolderStore {
  const store = new FolderStore(url);
  if (region) Object.assign(store, { region: async () => region });
  return store;
}

function context(regions: Record<string, string> = {}): StageContext {
  return {
    ledger,
    runStore: new FolderStore(join(dir, 'runs')),
    openSource: (url) => regional(url, regions[url]),
    now: () => now,
    sandbox: { maxScratchGiB: FARGATE_EPHEMERAL_GIB.max, region: 'us-east-1' },
  };
}

async function source(name: string, archives: Record<string, Record<string, string>>): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (const [file, members] of Object.entries(archives)) {
    await writeFile(
      join(folder, file),
      gzipSync(await packTar(Object.entries(members).map(([n, content]) => ({ name: n, content })))),
    );
  }
  return folder;
}

async function discoverAndCheck(ctx: StageContext, runId: string, sources: string[]): Promise<Discovery> {
  const discovery = await discoverStage(ctx, {
    runId,
    trigger: 'console',
    command: 'comprehensive',
    sources,
  });
  for (const shard of discovery.shards) await integrityStage(ctx, shard);
  return discovery;
}

describe('issue 12: restores the sandbox cannot take', () => {
  it('hands each restore job the expanded size the integrity pass measured', async () => {
    const src = await source('src', {
      'db-20250626_110000.tar.gz': { 'dump.sql': 'x'.repeat(300_000), 'notes.txt': 'y'.repeat(1234) },
    });
    const ctx = context();
    await discoverAndCheck(ctx, 'run-measured', [src]);
    const selection = await selectRestoresStage(ctx, 'run-measured');
    expect(selection.restores).toEqual([0]);
    const job = await loadRestoreJob(ctx, 'run-measured', 0);
    expect(job.expandedBytes).toBe(301_234);
  });

  it('a backup whose measured expansion needs more than 200 GiB of scratch gets CHECK_FAILED, and no restore job', async () => {
    const src = await source('src', {
      'db-20250626_110000.tar.gz': { 'dump.sql': 'small' },
      'lake-20250626_110000.tar.gz': { 'part.parquet': 'pretend this expanded to 190 GiB' },
    });
    const ctx = context();
    const discovery = await discoverAndCheck(ctx, 'run-big', [src]);
    // The integrity pass measured 190 GiB for the lake backup (written as it would be; no test makes 190 GiB).
    const shard = discovery.shards[0]?.shard ?? 0;
    const measured = await readJson<Record<string, number>>(ctx.runStore, runKeys.expanded('run-big', shard));
    const lake = `${src}/lake-20250626_110000.tar.gz`;
    expect(Object.keys(measured).sort()).toEqual([`${src}/db-20250626_110000.tar.gz`, lake]);
    await writeJson(ctx.runStore, runKeys.expanded('run-big', shard), { ...measured, [lake]: 190 * GIB });

    const selection = await selectRestoresStage(ctx, 'run-big');
    expect(selection.restores).toEqual([0]);
    expect((await loadRestoreJob(ctx, 'run-big', 0)).backup.id).toBe(`${src}/db-20250626_110000.tar.gz`);
    const { report } = await reportStage(ctx, 'run-big');
    const big = report.backups.find((b) => b.id === lake);
    expect(big?.status).toBe('FAIL');
    // WARN: no reference checksum beside it, first sight; readable and whole.
    expect(big?.integrity.status).toBe('WARN');
    expect(big?.restore.status).toBe('FAIL');
    expect(
      big?.findings.filter((f) => f.code !== 'NO_REFERENCE_CHECKSUM').map((f) => [f.code, f.message]),
    ).toEqual([
      [
        'CHECK_FAILED',
        expect.stringMatching(
          /needs about 215 GiB of scratch storage .*more than the 200 GiB a Fargate task can have: it was not restored; restore it on a larger host/,
        ),
      ],
    ]);
  });

  it('a source bucket in another region than the sandbox: integrity runs, the restore is a CHECK_FAILED naming both regions', async () => {
    const home = await source('home', { 'db-20250626_110000.tar.gz': { 'a.txt': 'alpha' } });
    const away = await source('away', { 'db-20250626_110000.tar.gz': { 'a.txt': 'alpha' } });
    const ctx = context({ [home]: 'us-east-1', [away]: 'eu-west-1' });
    const discovery = await discoverAndCheck(ctx, 'run-regions', [home, away]);
    expect(discovery.sources.map((s) => [s.url, s.region])).toEqual([
      [home, 'us-east-1'],
      [away, 'eu-west-1'],
    ]);
    const selection = await selectRestoresStage(ctx, 'run-regions');
    expect(selection.restores).toEqual([0]);
    expect((await loadRestoreJob(ctx, 'run-regions', 0)).source).toBe(home);
    const { report } = await reportStage(ctx, 'run-regions');
    const abroad = report.backups.find((b) => b.id.startsWith(`${away}/`));
    expect(abroad?.integrity.status).toBe('WARN');
    expect(abroad?.restore.status).toBe('FAIL');
    const refused = abroad?.findings.find((f) => f.code === 'CHECK_FAILED');
    expect(refused?.message).toMatch(
      /its bucket is in eu-west-1, and the restore sandbox in us-east-1 reaches S3 only through that region's gateway endpoint.*deploy the stack in eu-west-1/,
    );
  });

  it('without a sandbox (the command line restores on this host) nothing is refused and no region is asked', async () => {
    const src = await source('src', { 'db-20250626_110000.tar.gz': { 'a.txt': 'alpha' } });
    const asked: string[] = [];
    const ctx: StageContext = {
      ...context(),
      openSource: (url) =>
        Object.assign(new FolderStore(url), {
          region: async () => {
            asked.push(url);
            return 'eu-west-1';
          },
        }),
    };
    delete ctx.sandbox;
    await discoverAndCheck(ctx, 'run-cli', [src]);
    expect(asked).toEqual([]);
    expect((await selectRestoresStage(ctx, 'run-cli')).restores).toEqual([0]);
  });
});
