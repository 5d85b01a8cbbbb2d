import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FolderBackupTarget, S3BackupTarget } from '../../lib/adapters/backup-targets.ts';
import { S3Store } from '../../lib/adapters/s3-store.ts';
import { planBackup } from '../../lib/core/backup/plan.ts';
import { writeArchive } from '../../lib/core/backup/write.ts';
import { createDecompressor } from '../../lib/core/compression.ts';
import { BackupFailedError } from '../../lib/core/errors.ts';
import { createCrc } from '../../lib/core/inspect/crc.ts';
import type { RunReport } from '../../lib/core/model.ts';
import { flipBit, sampleBytes, sha256Hex } from '../support/archives.ts';
import { runCli } from '../support/cli.ts';

let dir: string;
let data: string;

const S3_ENV = {
  AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
};

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'bv-backup-cmd-')));
  data = join(dir, 'data');
  await mkdir(join(data, 'notes', 'deep'), { recursive: true });
  await writeFile(join(data, 'app.json'), '{"memories": [1, 2, 3]}\n');
  await writeFile(join(data, 'notes', 'a.txt'), 'alpha\n');
  // A path over 100 bytes and not ASCII: only a pax header can carry it.
  await writeFile(join(data, 'notes', 'deep', `${'long-name-'.repeat(11)}é.txt`), 'pax\n');
  await writeFile(join(data, 'blob.bin'), sampleBytes(300_000, 7));
  await symlink('a.txt', join(data, 'notes', 'latest'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Member {
  name: string;
  type: string;
  content: Buffer;
}

/** Every member of a written archive, in order, read with tar-stream (pax aware). */
async function membersOf(archive: Buffer, compression: 'gzip' | 'zstd'): Promise<Member[]> {
  const members: Member[] = [];
  const reader = extract();
  reader.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      members.push({ name: header.name, type: header.type ?? 'file', content: Buffer.concat(chunks) });
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    reader.on('finish', resolve);
    reader.on('error', reject);
  });
  Readable.from([archive]).pipe(createDecompressor(compression)).pipe(reader);
  await done;
  return members;
}

async function backupFiles(folder: string): Promise<string[]> {
  return (await readdir(folder).catch(() => [] as string[])).sort();
}

async function validate(command: 'integrity' | 'restore', source: string, name: string, env = {}) {
  const json = join(dir, `${name}-${command}.json`);
  const result = await runCli(
    [command, '--source', source, '--ledger', join(dir, name, 'ledger'), '--json', json, '--quiet'],
    dir,
    env,
  );
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  return { ...result, report };
}

async function backup(args: string[], name: string, env = {}) {
  const json = join(dir, `${name}-backup.json`);
  const result = await runCli(
    ['backup', ...args, '--ledger', join(dir, name, 'ledger'), '--json', json, '--quiet'],
    dir,
    env,
  );
  const report =
    result.code <= 1
      ? (JSON.parse(await readFile(json, 'utf8').catch(() => 'null')) as
          | (RunReport & { backup: { key: string; sha256: string; bytes: number; checksum?: unknown } })
          | null)
      : null;
  return { ...result, report };
}

/** The backup validates again through integrity and restore, and a damaged copy of it FAILs. */
async function provenAndDamaged(to: string, key: string, name: string, env = {}): Promise<void> {
  const integrity = await validate('integrity', to, name, env);
  expect(integrity.code, integrity.stderr).toBe(0);
  expect(integrity.report.backups.map((b) => [b.location, b.status, b.findings])).toEqual([
    [`${to}/${key}`, 'PASS', []],
  ]);
  const restore = await validate('restore', to, name, env);
  expect(restore.code, restore.stderr).toBe(0);
  expect(restore.report.backups[0]?.restore).toMatchObject({ status: 'PASS' });
}

async function damagedCopyFails(folder: string, key: string, name: string): Promise<void> {
  const copy = join(dir, `${name}-damaged-copy`);
  await mkdir(copy);
  const archive = await readFile(join(folder, key));
  await writeFile(join(copy, key), flipBit(archive, Math.floor(archive.length / 2)));
  await copyFile(join(folder, `${key}.sha256`), join(copy, `${key}.sha256`));
  const damaged = await validate('integrity', copy, `${name}-damaged`);
  expect(damaged.code).toBe(1);
  expect(damaged.report.backups[0]?.status).toBe('FAIL');
  expect(damaged.report.backups[0]?.findings.map((f) => f.code)).toContain('CHECKSUM_MISMATCH');
}

async function backupToS3(s3: S3Client, bucket: string, to: string): Promise<void> {
  const run = await backup(['--from', 'big', '--to', to, '--series', 'big'], 's3', S3_ENV);
  expect(run.code, run.stderr).toBe(0);
  const key = run.report?.backup.key as string;
  expect(run.report?.backup.bytes).toBeGreaterThan(32 * 1024 * 1024);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `nightly/${key}` }));
  expect(head.ContentLength).toBe(run.report?.backup.bytes);
  const sidecar = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `nightly/${key}.sha256` }));
  expect(await sidecar.Body?.transformToString()).toBe(`${run.report?.backup.sha256}  ${key}\n`);
  await provenAndDamaged(to, key, 's3', S3_ENV);
}

describe('issue 16: backup-validator backup', () => {
  it('issue 16: backs a folder up to a folder (gzip): SHA256SUMS first, metadata.json, sidecar; integrity and restore PASS; a damaged copy FAILs', async () => {
    const to = join(dir, 'out-folder');
    const run = await backup(['--from', 'data', '--to', to, '--series', 'memory'], 'folder');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Backup written: .*memory-\d{8}T\d{6}Z\.tar\.gz/);
    const key = run.report?.backup.key as string;
    expect(key).toMatch(/^memory-\d{8}T\d{6}Z\.tar\.gz$/);
    expect(run.report?.status).toBe('PASS');
    expect(run.report?.backups[0]?.findings).toEqual([]);
    expect(await backupFiles(to)).toEqual([key, `${key}.sha256`]);

    const archive = await readFile(join(to, key));
    expect(await readFile(join(to, `${key}.sha256`), 'utf8')).toBe(`${sha256Hex(archive)}  ${key}\n`);
    const members = await membersOf(archive, 'gzip');
    expect(members.map((m) => m.name).slice(0, 2)).toEqual(['SHA256SUMS', 'metadata.json']);
    const sums = (members[0] as Member).content.toString();
    for (const member of members.filter((m) => m.type === 'file' && m.name !== 'SHA256SUMS'))
      expect(sums).toContain(`${sha256Hex(member.content)}  ${member.name}\n`);
    expect(members.find((m) => m.name.endsWith('é.txt'))?.name).toBe(
      `data/notes/deep/${'long-name-'.repeat(11)}é.txt`,
    );
    expect(members.find((m) => m.name === 'data/notes/latest')?.type).toBe('symlink');
    const metadata = JSON.parse((members[1] as Member).content.toString());
    expect(metadata).toMatchObject({
      series: 'memory',
      compression: 'gzip',
      files: 4,
      tool: { name: 'backup-validator' },
      sources: [{ kind: 'folder', from: 'data', member: 'data', files: 4 }],
    });

    await provenAndDamaged(to, key, 'folder');
    await damagedCopyFails(to, key, 'folder');
  });

  it('issue 16: backs command output up with zstd, validated with --verify restore; integrity and restore PASS; a damaged copy FAILs', async () => {
    const to = join(dir, 'out-zstd');
    const run = await backup(
      [
        '--from',
        "command:printf -- '-- PostgreSQL database dump\\nSELECT 1;\\n-- PostgreSQL database dump complete\\n'",
        '--name',
        'db.sql',
        '--from',
        'data/notes',
        '--to',
        to,
        '--series',
        'db',
        '--compress',
        'zstd',
        '--verify',
        'restore',
      ],
      'zstd',
    );
    expect(run.code, run.stderr).toBe(0);
    const key = run.report?.backup.key as string;
    expect(key).toMatch(/^db-\d{8}T\d{6}Z\.tar\.zst$/);
    expect(run.report?.backups[0]?.restore).toMatchObject({ status: 'PASS' });
    const members = await membersOf(await readFile(join(to, key)), 'zstd');
    expect(members.map((m) => m.name)).toEqual([
      'SHA256SUMS',
      'metadata.json',
      'db.sql',
      'notes/',
      'notes/a.txt',
      'notes/deep/',
      `notes/deep/${'long-name-'.repeat(11)}é.txt`,
      'notes/latest',
    ]);
    expect(members.find((m) => m.name === 'db.sql')?.content.toString()).toMatch(/dump complete/);
    await provenAndDamaged(to, key, 'zstd');
    await damagedCopyFails(to, key, 'zstd');
  });

  it('issue 16: backs up to s3rver in several parts with a full-object CRC64NVME asked for; integrity and restore of the S3 copy PASS', async () => {
    const s3 = new S3Client({
      endpoint: S3_ENV.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    const bucket = `bv-backup-${Date.now()}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const big = join(dir, 'big');
    await mkdir(big);
    // Random bytes do not compress: 40 MB is three 16 MiB parts.
    await writeFile(join(big, 'random.bin'), randomBytes(40_000_000));
    const to = `s3://${bucket}/nightly`;
    // The SDK reads its credentials from the process's environment.
    const saved = { ...process.env };
    Object.assign(process.env, S3_ENV);
    try {
      await backupToS3(s3, bucket, to);
    } finally {
      for (const key of Object.keys(S3_ENV)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it('issue 16: the S3 upload asks for a full-object CRC64NVME: on CreateMultipartUpload, every part and CompleteMultipartUpload', async () => {
    const client = new S3Client({
      endpoint: S3_ENV.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const sent: Array<{ command: string; headers: Record<string, string> }> = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        sent.push({ command: String(context.commandName), headers: { ...request.headers } });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordChecksumHeaders' },
    );
    const bucket = `bv-backup-crc-${Date.now()}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const body = randomBytes(20 * 1024 * 1024);
    const target = new S3BackupTarget(new S3Store(`s3://${bucket}/p`, { client }));
    await target.write('x.tar.gz', Readable.from([body.subarray(0, 7_000_000), body.subarray(7_000_000)]));
    const crc = createCrc('CRC64NVME');
    crc.update(body);
    const of = (command: string) => sent.filter((r) => r.command === command).map((r) => r.headers);
    expect(of('CreateMultipartUploadCommand')[0]).toMatchObject({
      'x-amz-checksum-algorithm': 'CRC64NVME',
      'x-amz-checksum-type': 'FULL_OBJECT',
    });
    expect(of('UploadPartCommand').map((h) => typeof h['x-amz-checksum-crc64nvme'])).toEqual([
      'string',
      'string',
    ]);
    expect(of('CompleteMultipartUploadCommand')[0]).toMatchObject({
      'x-amz-checksum-crc64nvme': crc.digestBase64(),
      'x-amz-checksum-type': 'FULL_OBJECT',
    });
    const stored = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'p/x.tar.gz' }));
    expect(Buffer.from((await stored.Body?.transformToByteArray()) ?? []).equals(body)).toBe(true);
  });

  it('issue 16: backs a Docker volume up, resolved through the engine API on a Unix socket (DOCKER_HOST)', async () => {
    const volumes = join(dir, 'docker', 'volumes');
    const mountpoint = join(volumes, 'mem0_storage', '_data');
    await mkdir(mountpoint, { recursive: true });
    await writeFile(join(mountpoint, 'history.db'), sampleBytes(5000, 9));
    const socket = join(dir, 'docker', 'engine.sock');
    const requests: string[] = [];
    const engine: Server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/volumes/mem0_storage') {
        res.end(
          JSON.stringify({
            CreatedAt: '2025-06-25T11:46:22Z',
            Driver: 'local',
            Labels: null,
            Mountpoint: mountpoint,
            Name: 'mem0_storage',
            Options: null,
            Scope: 'local',
          }),
        );
      } else if (req.url === '/volumes/desktop') {
        // Docker Desktop: the mount point is a path inside its VM.
        res.end(
          JSON.stringify({
            Driver: 'local',
            Mountpoint: join(dir, 'docker', 'vm-only', '_data'),
            Name: 'desktop',
          }),
        );
      } else {
        res.statusCode = 404;
        res.end(JSON.stringify({ message: `get ${req.url?.split('/').pop()}: no such volume` }));
      }
    });
    await new Promise<void>((resolve) => engine.listen(socket, resolve));
    try {
      const env = { DOCKER_HOST: `unix://${socket}` };
      const to = join(dir, 'out-docker');
      const run = await backup(
        ['--from', 'docker-volume:mem0_storage', '--to', to, '--series', 'volumes'],
        'docker',
        env,
      );
      expect(run.code, run.stderr).toBe(0);
      expect(requests).toContain('GET /volumes/mem0_storage');
      const key = run.report?.backup.key as string;
      const members = await membersOf(await readFile(join(to, key)), 'gzip');
      expect(members.map((m) => m.name)).toContain('mem0_storage/history.db');
      await provenAndDamaged(to, key, 'docker');

      const missing = await backup(
        ['--from', 'docker-volume:nope', '--to', to, '--series', 'volumes'],
        'docker-missing',
        env,
      );
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/no such volume.*docker volume ls/);

      const inVm = await backup(
        ['--from', 'docker-volume:desktop', '--to', to, '--series', 'volumes'],
        'docker-vm',
        env,
      );
      expect(inVm.code).toBe(3);
      expect(inVm.stderr).toMatch(
        /its mount point .*vm-only\/_data cannot be read here.*command:docker run --rm -v desktop/,
      );
    } finally {
      await new Promise<void>((resolve) => engine.close(() => resolve()));
    }
    const noEngine = await backup(
      ['--from', 'docker-volume:mem0_storage', '--to', join(dir, 'out-docker-none'), '--series', 'volumes'],
      'docker-none',
      { DOCKER_HOST: `unix://${join(dir, 'docker', 'absent.sock')}` },
    );
    expect(noEngine.code).toBe(3);
    expect(noEngine.stderr).toMatch(/no Docker engine answers at unix:\/\/.*absent\.sock/);
    expect(noEngine.stderr).toMatch(/docker volume inspect -f/);
    expect(noEngine.stderr).toMatch(/command:docker run --rm -v mem0_storage/);
    expect(await backupFiles(join(dir, 'out-docker-none'))).toEqual([]);
  });

  it('issue 16: a command that fails, or writes nothing, fails the backup and leaves nothing at --to', async () => {
    const to = join(dir, 'out-failing');
    const failing = await backup(
      ['--from', 'command:echo partial; echo "connection refused" >&2; exit 3', '--to', to, '--series', 'db'],
      'failing',
    );
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/backup FAILED: command ".*" exited with code 3.*connection refused/s);
    const silent = await backup(['--from', 'command:true', '--to', to, '--series', 'db'], 'silent');
    expect(silent.code).toBe(1);
    expect(silent.stderr).toMatch(/wrote nothing.*0-byte/);
    expect(await backupFiles(to)).toEqual([]);
  });

  it('issue 16: a folder with no file content is never written as a success', async () => {
    const empty = join(dir, 'empty');
    await mkdir(join(empty, 'sub'), { recursive: true });
    await writeFile(join(empty, 'sub', 'zero'), '');
    const to = join(dir, 'out-empty');
    const run = await backup(['--from', empty, '--to', to, '--series', 'empty'], 'empty');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no file content.*EMPTY_BACKUP/);
    expect(await backupFiles(to)).toEqual([]);
  });

  it('issue 16: refuses a --to inside a --from, and a --from inside the --to', async () => {
    const inside = await backup(['--from', 'data', '--to', 'data/backups', '--series', 'memory'], 'inside');
    expect(inside.code).toBe(2);
    expect(inside.stderr).toMatch(/--to data\/backups lies inside --from data/);
    const around = await backup(['--from', 'data/notes', '--to', 'data', '--series', 'memory'], 'around');
    expect(around.code).toBe(2);
    expect(around.stderr).toMatch(/--from data\/notes lies inside --to data/);
    expect(await backupFiles(join(data, 'backups'))).toEqual([]);
  });

  it('issue 16: runs a named job of the configuration', async () => {
    const config = join(dir, 'jobs.json');
    const to = join(dir, 'out-job');
    await writeFile(
      config,
      JSON.stringify({ backups: { memory: { from: ['data/notes'], to, compress: 'zstd' } } }),
    );
    const run = await backup(['memory', '--config', config], 'job');
    expect(run.code, run.stderr).toBe(0);
    expect(run.report?.backup.key).toMatch(/^memory-\d{8}T\d{6}Z\.tar\.zst$/);
    const unknown = await backup(['nightly', '--config', config], 'job-unknown');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no backup job "nightly".*jobs: memory/);
    await writeFile(config, JSON.stringify({ backups: { memory: { from: ['x'], to, compress: 'xz' } } }));
    const bad = await backup(['memory', '--config', config], 'job-bad');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/backups\.memory\.compress/);
  });

  it('issue 16: a folder that vanishes mid-backup fails it and leaves nothing at the target', async () => {
    const source = join(dir, 'vanishing');
    await mkdir(source);
    for (const name of ['a', 'b', 'c']) await writeFile(join(source, name), `${name}\n`.repeat(1000));
    const spool = await mkdtemp(join(dir, 'spool-'));
    const plan = await planBackup(
      [{ kind: 'folder', path: source, member: 'vanishing', from: source }],
      spool,
    );
    const to = join(dir, 'out-vanishing');
    const written = writeArchive(plan, new FolderBackupTarget(to), {
      key: 'vanishing-20250625T114622Z.tar.gz',
      series: 'vanishing',
      compression: 'gzip',
      createdAt: new Date(),
      events: {
        archiving: (entry) => {
          // The folder goes away once the archive has begun.
          if (entry.member === 'vanishing/a') rmSync(source, { recursive: true, force: true });
        },
      },
    });
    await expect(written).rejects.toThrow(BackupFailedError);
    await expect(written).rejects.toThrow(/vanished while it was being backed up/);
    expect(await backupFiles(to)).toEqual([]);
  });

  it('issue 16: a file rewritten mid-backup (same size, other bytes) fails it: SHA256SUMS would not match the archive', async () => {
    const source = join(dir, 'changing');
    await mkdir(source);
    for (const name of ['a', 'b']) await writeFile(join(source, name), `${name}\n`.repeat(1000));
    const spool = await mkdtemp(join(dir, 'spool-'));
    const plan = await planBackup(
      [{ kind: 'folder', path: source, member: 'changing', from: source }],
      spool,
    );
    const to = join(dir, 'out-changing');
    const written = writeArchive(plan, new FolderBackupTarget(to), {
      key: 'changing-20250625T114622Z.tar.gz',
      series: 'changing',
      compression: 'gzip',
      createdAt: new Date(),
      events: {
        archiving: (entry) => {
          if (entry.member === 'changing/a') writeFileSync(join(source, 'b'), 'B\n'.repeat(1000));
        },
      },
    });
    await expect(written).rejects.toThrow(/changing\/b changed while it was being backed up \(its content\)/);
    expect(await backupFiles(to)).toEqual([]);
  });
});
