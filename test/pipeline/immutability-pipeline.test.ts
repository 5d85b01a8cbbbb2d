import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { S3ChecksumReader } from '../../lib/adapters/s3-checksums.ts';
import { S3ProtectionProbe } from '../../lib/adapters/s3-immutability.ts';
import { S3_CLIENT_DEFAULTS, S3Store } from '../../lib/adapters/s3-store.ts';
import type { ProtectedRunReport } from '../../lib/core/protection-report.ts';
import { TASK_STATE_FUNCTIONS } from '../../lib/pipeline/definition.ts';
import { runPipelineLocally } from '../../lib/pipeline/local-runner.ts';
import { gzip, makeTempDir, packTar, sha256Hex } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';
import { freshLedger } from '../support/ledger.ts';
import { type ProtectionStub, startProtectionStub } from '../support/s3-protection-stub.ts';
import { stampHoursAgo as stamp } from '../support/time.ts';

const s3: S3ClientConfig = {
  ...S3_CLIENT_DEFAULTS,
  endpoint: inject('s3Endpoint'),
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};
const raw = new S3Client(s3);
const bucket = `bv-immpipe-${randomBytes(4).toString('hex')}`;
const copies = `${bucket}-copies`;
const name = `db-${stamp(2)}.tar.gz`;
let archive: Buffer;
let stub: ProtectionStub;
let stubClient: S3Client;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('bv-immpipe-');
  archive = gzip(await packTar([{ name: 'notes.txt', content: 'kept\n' }]));
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  await raw.send(new CreateBucketCommand({ Bucket: copies }));
  await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `db/${name}`, Body: archive }));
  await raw.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `db/${name}.sha256`,
      Body: `${sha256Hex(archive)}  ${name}\n`,
    }),
  );
  stub = await startProtectionStub({
    [bucket]: {
      versioning: 'Enabled',
      objectLock: {},
      objects: {
        [`db/${name}`]: { size: archive.length, legalHold: true },
        [`db/${name}.sha256`]: { size: 1, legalHold: false },
      },
    },
    [copies]: {
      objects: {
        [`mirror/${name}`]: {
          size: archive.length,
          checksums: { SHA256: Buffer.from(sha256Hex(archive), 'hex').toString('base64') },
        },
      },
    },
  });
  stubClient = new S3Client({ ...s3, endpoint: stub.endpoint });
});
afterAll(async () => {
  raw.destroy();
  stubClient.destroy();
  await stub.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('issue 15: immutability and copy proofs run in the state machine', () => {
  it('the local state machine checks each shard for immutability and proves copies by checksum', async () => {
    const ledger = await freshLedger();
    try {
      const ctx = {
        ledger,
        runStore: new FolderStore(join(dir, 'runs')),
        openSource: (url: string) => new S3Store(url, { clientConfig: s3 }),
        openProtection: (url: string) => new S3ProtectionProbe(new S3Store(url, { client: stubClient })),
        checksumsOf: (store: unknown) =>
          store instanceof S3Store && store.bucket === copies
            ? new S3ChecksumReader(new S3Store(store.url, { client: stubClient }))
            : undefined,
        now: () => new Date(),
      };
      const report = (await runPipelineLocally(
        ctx,
        {
          runId: 'immpipe-1',
          trigger: 'cli',
          sources: [`s3://${bucket}/db`],
          config: {
            defaults: {
              rpoMinutes: 0,
              immutability: { require: 'governance' },
              redundancy: { targets: [`s3://${copies}/mirror`] },
            },
          },
        },
        {
          // The restore sandbox is tested elsewhere: this run records no restore.
          restore: async () => ({}),
          openTarget: (url) => new S3Store(url, { clientConfig: s3 }),
          retryIntervals: Object.fromEntries(Object.keys(TASK_STATE_FUNCTIONS).map((s) => [s, 0])),
        },
      )) as ProtectedRunReport;
      const backup = report.backups[0];
      // The sidecar has neither a retention nor a legal hold: deletable, so the backup's proof is.
      expect(backup?.findings.map((f) => [f.code, f.severity, f.object])).toEqual([
        ['IMMUTABILITY_MISSING', 'error', `${name}.sha256`],
      ]);
      expect(backup?.immutability).toMatchObject({ status: 'FAIL', objects: 2, locked: 1, legalHolds: 1 });
      expect(backup?.copies?.[0]).toMatchObject({
        verified: true,
        provenByChecksum: 1,
        provenByRead: 1,
        bytesNotDownloaded: archive.length,
      });
      expect(report.status).toBe('FAIL');
    } finally {
      await ledger.close();
    }
  });

  it('from the CLI, `comprehensive` and `integrity` on a folder say not applicable, never PASS', async () => {
    const folder = join(dir, 'folder');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, name), archive);
    await writeFile(join(folder, `${name}.sha256`), `${sha256Hex(archive)}  ${name}\n`);
    const config = join(dir, 'policy.json');
    await writeFile(
      config,
      JSON.stringify({ defaults: { immutability: { require: 'compliance', minRetentionDays: 30 } } }),
    );
    for (const command of ['integrity', 'comprehensive']) {
      const json = join(dir, `${command}.json`);
      const result = await runCli(
        [
          command,
          '--source',
          folder,
          '--config',
          config,
          '--ledger',
          join(dir, `ledger-${command}`),
          '--json',
          json,
          '--quiet',
        ],
        dir,
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(
        'Immutability: 0 backup(s) protected as the policy asks, 0 warn, 0 fail, 1 not applicable (folders)',
      );
      const report = JSON.parse(await readFile(json, 'utf8')) as ProtectedRunReport;
      expect(report.backups[0]?.immutability).toMatchObject({
        status: 'NOT_APPLICABLE',
        require: 'compliance',
      });
      expect(report.backups[0]?.status).toBe('PASS');
    }
  });
});
