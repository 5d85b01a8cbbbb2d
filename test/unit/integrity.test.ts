import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { StoreError } from '../../lib/core/errors.ts';
import type { FindingCode } from '../../lib/core/findings.ts';
import { inspectArchive } from '../../lib/core/inspect/index.ts';
import { checkIntegrity } from '../../lib/core/integrity.ts';
import type { Backup, IntegrityResult, ObjectInfo } from '../../lib/core/model.ts';
import {
  archiveBackupOf,
  chunked,
  directoryBackupOf,
  flipBit,
  formatOf,
  gzip,
  MemoryChecksumHistory,
  makeTempDir,
  sampleBytes,
  sha256Hex,
  sha256sums,
  systemTar,
  writeTree,
} from '../support/archives.ts';
import { zstd } from '../support/zstd.ts';

/** CRC-32C bit by bit (Castagnoli, reflected 0x82f63b78): a reference independent of the table-driven code. */
function crc32cReference(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

/** CRC-64/NVME bit by bit with BigInt (reflected 0x9a6c9329ac4bc9b5). */
function crc64nvmeReference(data: Buffer): string {
  let crc = 0xffffffffffffffffn;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ 0x9a6c9329ac4bc9b5n : crc >> 1n;
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(crc ^ 0xffffffffffffffffn);
  return out.toString('base64');
}

let root: string;
let store: FolderStore;
const PREFIX = 'backups/20250625_114622/';
const tree = {
  'app.conf': 'port = 8080\n',
  'db/dump.sql': sampleBytes(30_000, 3),
  'db/blob.bin': sampleBytes(5_000, 4),
};

beforeEach(async () => {
  root = await makeTempDir('bv-integrity-');
  store = new FolderStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeBackup(files: Record<string, string | Buffer>) {
  await writeTree(path.join(root, ...PREFIX.split('/')), files);
}

function codes(result: IntegrityResult): FindingCode[] {
  return result.findings.map((f) => f.code).sort();
}

function objectsWith(result: IntegrityResult, code: FindingCode): Array<string | undefined> {
  return result.findings.filter((f) => f.code === code).map((f) => f.object);
}

/** A store that refuses or breaks some reads, as S3 does without permissions or mid-download. */
class FlakyStore extends FolderStore {
  opened: string[] = [];
  constructor(
    dir: string,
    private readonly denied: Set<string>,
    private readonly breaks: Set<string> = new Set(),
    private readonly heads: Record<string, Partial<ObjectInfo>> = {},
  ) {
    super(dir);
  }
  override async open(key: string, options?: { highWaterMark?: number }): Promise<Readable> {
    this.opened.push(key);
    if (this.denied.has(key))
      throw new StoreError(`access denied to ${key} (AccessDenied)`, 'access-denied', key);
    const stream = await super.open(key, options);
    if (!this.breaks.has(key)) return stream;
    let sent = false;
    stream.destroy();
    return new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push(Buffer.from('first bytes'));
        } else this.destroy(new StoreError(`connection reset while reading ${key}`, 'io', key));
      },
    });
  }
  override async head(key: string): Promise<ObjectInfo> {
    return { ...(await super.head(key)), ...this.heads[key] };
  }
  override localPath(): string {
    return undefined as unknown as string;
  }
}

describe('checkIntegrity of a directory backup', () => {
  it('passes a backup whose files match its SHA256SUMS, hashing each file once', async () => {
    await writeBackup({ ...tree, SHA256SUMS: sha256sums(tree, { binary: true }) });
    const backup = await directoryBackupOf(store, PREFIX);
    let progress = 0;
    const result = await checkIntegrity(backup, store, {
      policy: DEFAULT_POLICY,
      onProgress: (d) => {
        progress += d;
      },
    });
    expect(result.findings).toEqual([]);
    expect(result.status).toBe('PASS');
    expect(result.score).toBe(1);
    for (const [name, content] of Object.entries(tree)) {
      expect(result.objectSha256[`${PREFIX}${name}`]).toBe(sha256Hex(content));
    }
    expect(result.files).toBe(3);
    const contentBytes = Object.values(tree).reduce((n, c) => n + Buffer.byteLength(c), 0);
    expect(result.contentBytes).toBe(contentBytes);
    expect(progress).toBe(result.bytesRead);
    expect(result.bytesRead).toBe(contentBytes + Buffer.byteLength(sha256sums(tree, { binary: true })));
  });

  it('reports missing, extra and altered files and a malformed line, all in one pass', async () => {
    const manifest = `${sha256sums({ ...tree, 'gone.txt': 'was here' })}${'z'.repeat(64)}  broken.txt\n`;
    await writeBackup({ ...tree, 'db/dump.sql': 'altered', 'extra.txt': 'new', SHA256SUMS: manifest });
    const result = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
    });
    console.log(JSON.stringify(result.findings));
    expect(result.status).toBe('FAIL');
    expect(codes(result)).toEqual([
      'CHECKSUM_MISMATCH',
      'CHECKSUM_MISMATCH',
      'MISSING_OBJECT',
      'UNLISTED_OBJECT',
    ]);
    expect(objectsWith(result, 'MISSING_OBJECT')).toEqual(['gone.txt']);
    expect(objectsWith(result, 'UNLISTED_OBJECT')).toEqual(['extra.txt']);
    expect(objectsWith(result, 'CHECKSUM_MISMATCH').sort()).toEqual(['SHA256SUMS', 'db/dump.sql']);
    const malformed = result.findings.find((f) => f.object === 'SHA256SUMS');
    expect(malformed?.message).toMatch(/SHA256SUMS line 5 is malformed/);
    const altered = result.findings.find((f) => f.object === 'db/dump.sql');
    expect(altered?.message).toContain(sha256Hex('altered'));
    expect(altered?.message).toMatch(/SHA256SUMS \(line 2\)/);
  });

  it('warns (does not fail) on a file the manifest does not list', async () => {
    await writeBackup({ ...tree, 'late.log': 'late', SHA256SUMS: sha256sums(tree) });
    const result = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
    });
    expect(result.status).toBe('WARN');
    expect(codes(result)).toEqual(['UNLISTED_OBJECT']);
  });

  it('reads paths relative to the folder of each SHA256SUMS, and lists sidecars as files', async () => {
    const sub = { 'dump.sql': tree['db/dump.sql'], 'blob.bin': tree['db/blob.bin'] };
    const archive = gzip(Buffer.from('pretend archive'));
    await writeBackup({
      'app.conf': tree['app.conf'],
      'db/dump.sql': sub['dump.sql'],
      'db/blob.bin': sub['blob.bin'],
      'db/SHA256SUMS': sha256sums(sub),
      'vol.tar.gz': archive,
      'vol.tar.gz.sha256': `${sha256Hex(archive)}  vol.tar.gz\n`,
      SHA256SUMS: sha256sums({
        'vol.tar.gz': archive,
        'vol.tar.gz.sha256': `${sha256Hex(archive)}  vol.tar.gz\n`,
      }),
    });
    const backup = await directoryBackupOf(store, PREFIX);
    // Discovery leaves the sidecar out of the members: it is a reference, yet a manifest may list it.
    backup.members = backup.members.filter((m) => !m.path.endsWith('.sha256'));
    const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
    expect(codes(result)).toEqual(['UNLISTED_OBJECT']);
    expect(objectsWith(result, 'UNLISTED_OBJECT')).toEqual(['app.conf']);
  });

  it('says when nothing can be compared against', async () => {
    await writeBackup(tree);
    const result = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
    });
    expect(codes(result)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(result.status).toBe('WARN');
    expect(result.score).toBe(0.8);
  });

  it('fails an empty backup folder', async () => {
    await writeBackup({ 'empty.dat': '' });
    const result = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
    });
    console.log(JSON.stringify(result.findings));
    expect(result.status).toBe('FAIL');
    expect(codes(result)).toContain('EMPTY_BACKUP');
  });

  it('never passes a file it could not read, and goes on with the others', async () => {
    await writeBackup({ ...tree, SHA256SUMS: sha256sums(tree) });
    const flaky = new FlakyStore(root, new Set([`${PREFIX}app.conf`]), new Set([`${PREFIX}db/dump.sql`]));
    const result = await checkIntegrity(await directoryBackupOf(flaky, PREFIX), flaky, {
      policy: DEFAULT_POLICY,
    });
    console.log(JSON.stringify(result.findings));
    expect(result.status).toBe('FAIL');
    expect(codes(result)).toEqual(['ACCESS_DENIED', 'ACCESS_DENIED']);
    expect(result.findings.find((f) => f.object === 'app.conf')?.message).toMatch(
      /grant the validator read access/,
    );
    expect(result.findings.find((f) => f.object === 'db/dump.sql')?.message).toMatch(
      /after 11 bytes: connection reset/,
    );
    expect(result.objectSha256[`${PREFIX}db/blob.bin`]).toBe(sha256Hex(tree['db/blob.bin']));
    expect(result.score).toBeLessThan(0.9);
  });

  it('does not read objects in GLACIER or DEEP_ARCHIVE, and warns; GLACIER_IR is read', async () => {
    await writeBackup({ ...tree, SHA256SUMS: sha256sums(tree) });
    const spy = new FlakyStore(root, new Set());
    const backup = await directoryBackupOf(spy, PREFIX);
    for (const m of backup.members) {
      if (m.path === 'db/blob.bin') m.storageClass = 'DEEP_ARCHIVE';
      if (m.path === 'app.conf') m.storageClass = 'GLACIER_IR';
    }
    const result = await checkIntegrity(backup, spy, { policy: DEFAULT_POLICY });
    expect(codes(result)).toEqual(['ARCHIVED_STORAGE']);
    expect(result.status).toBe('WARN');
    expect(spy.opened).not.toContain(`${PREFIX}db/blob.bin`);
    expect(spy.opened).toContain(`${PREFIX}app.conf`);
  });

  it('compares with the store checksum, fetched by head() when only the algorithm is listed', async () => {
    await writeBackup(tree);
    const heads = {
      [`${PREFIX}app.conf`]: { checksumSha256: sha256Hex(tree['app.conf']) },
      [`${PREFIX}db/blob.bin`]: { checksumSha256: sha256Hex('not the blob') },
    };
    const s3ish = new FlakyStore(root, new Set(), new Set(), heads);
    const backup = await directoryBackupOf(s3ish, PREFIX);
    for (const m of backup.members) {
      if (m.path !== 'db/dump.sql') m.checksumAlgorithms = ['SHA256'];
      else m.checksumSha256 = sha256Hex(tree['db/dump.sql']).toUpperCase();
    }
    const result = await checkIntegrity(backup, s3ish, { policy: DEFAULT_POLICY });
    expect(codes(result)).toEqual(['CHECKSUM_MISMATCH']);
    expect(objectsWith(result, 'CHECKSUM_MISMATCH')).toEqual(['db/blob.bin']);
    expect(result.findings[0]?.message).toMatch(/ChecksumSHA256/);
  });

  it('compares with the store CRC64NVME / CRC32C when that is the only store checksum', async () => {
    await writeBackup(tree);
    const heads = {
      [`${PREFIX}app.conf`]: { checksumCrc64nvme: crc64nvmeReference(Buffer.from(tree['app.conf'])) },
      [`${PREFIX}db/blob.bin`]: { checksumCrc32c: crc32cReference(Buffer.from('not the blob')) },
      [`${PREFIX}db/dump.sql`]: { checksumCrc32c: crc32cReference(tree['db/dump.sql']) },
    };
    const s3ish = new FlakyStore(root, new Set(), new Set(), heads);
    const backup = await directoryBackupOf(s3ish, PREFIX);
    for (const m of backup.members) m.checksumAlgorithms = m.path === 'app.conf' ? ['CRC64NVME'] : ['CRC32C'];
    const result = await checkIntegrity(backup, s3ish, { policy: DEFAULT_POLICY });
    // A CRC that matches is a reference: no NO_REFERENCE_CHECKSUM for the two good files.
    expect(codes(result)).toEqual(['CHECKSUM_MISMATCH']);
    expect(objectsWith(result, 'CHECKSUM_MISMATCH')).toEqual(['db/blob.bin']);
    expect(result.findings[0]?.message).toContain(crc32cReference(tree['db/blob.bin']));
    expect(result.findings[0]?.message).toMatch(/ChecksumCRC32C/);
  });

  it('checks the CRC test vector: CRC-64/NVME of "123456789" is 0xAE8B14860A799888', async () => {
    await writeBackup({ 'check.txt': '123456789' });
    const vector = Buffer.from('ae8b14860a799888', 'hex').toString('base64');
    expect(crc64nvmeReference(Buffer.from('123456789'))).toBe(vector);
    const backup = await directoryBackupOf(store, PREFIX);
    (backup.members[0] as { checksumCrc64nvme?: string }).checksumCrc64nvme = vector;
    expect((await checkIntegrity(backup, store, { policy: DEFAULT_POLICY })).findings).toEqual([]);
    (backup.members[0] as { checksumCrc64nvme?: string }).checksumCrc64nvme = crc64nvmeReference(
      Buffer.from('123456780'),
    );
    const altered = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
    expect(codes(altered)).toEqual(['CHECKSUM_MISMATCH']);
    expect(altered.findings[0]?.message).toContain(vector);
  });

  it('records checksums when first seen and reports a later change as CHECKSUM_CHANGED', async () => {
    await writeBackup(tree);
    const history = new MemoryChecksumHistory();
    const first = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
      history,
    });
    expect(codes(first)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(history.records.size).toBe(3);
    const second = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
      history,
    });
    expect(second.findings).toEqual([]);
    expect(second.status).toBe('PASS');
    await writeBackup({ 'db/blob.bin': 'overwritten' });
    const third = await checkIntegrity(await directoryBackupOf(store, PREFIX), store, {
      policy: DEFAULT_POLICY,
      history,
    });
    expect(codes(third)).toEqual(['CHECKSUM_CHANGED']);
    expect(third.findings[0]?.message).toContain(sha256Hex(tree['db/blob.bin']));
    expect(third.status).toBe('FAIL');
  });
});

describe('checkIntegrity of an archive backup', () => {
  async function archive(name: string, bytes: Buffer): Promise<Backup> {
    await mkdir(path.join(root, 'arch'), { recursive: true });
    await writeFile(path.join(root, 'arch', name), bytes);
    return archiveBackupOf(store, `arch/${name}`);
  }

  it('passes with the archive checksum recorded, and reports members to onContent', async () => {
    await writeBackup(tree);
    const tgz = await systemTar(path.join(root, ...PREFIX.split('/')), { format: 'pax', gzip: true });
    const backup = await archive('db-nightly-20250625_114622.tar.gz', tgz);
    const history = new MemoryChecksumHistory();
    const seen: string[] = [];
    const result = await checkIntegrity(backup, store, {
      policy: DEFAULT_POLICY,
      history,
      onContent: (d) => seen.push(d.path),
    });
    expect(codes(result)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(seen.sort()).toEqual(['./', 'app.conf', 'db', 'db/blob.bin', 'db/dump.sql']);
    expect(result.files).toBe(3);
    expect([...history.records.values()]).toEqual([
      expect.objectContaining({
        path: 'db-nightly-20250625_114622.tar.gz',
        sha256: sha256Hex(tgz),
        size: tgz.length,
      }),
    ]);
    const again = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY, history });
    expect(again.status).toBe('PASS');
  });

  it('does not record a damaged archive as its first-seen checksum', async () => {
    await writeBackup(tree);
    const tgz = await systemTar(path.join(root, ...PREFIX.split('/')), { format: 'gnu', gzip: true });
    const backup = await archive('cut.tar.gz', tgz.subarray(0, tgz.length - 100));
    const history = new MemoryChecksumHistory();
    const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY, history });
    expect(codes(result)).toEqual(['ARCHIVE_TRUNCATED']);
    expect(history.records.size).toBe(0);
  });

  it('fails an archive it may not read', async () => {
    const backup = await archive('x.tar.gz', gzip(Buffer.alloc(1024)));
    const denied = new FlakyStore(root, new Set(['arch/x.tar.gz']));
    const result = await checkIntegrity(backup, denied, { policy: DEFAULT_POLICY });
    console.log(JSON.stringify(result.findings));
    expect(result.status).toBe('FAIL');
    expect(codes(result)).toEqual(['ACCESS_DENIED']);
    expect(result.score).toBeLessThan(DEFAULT_POLICY.integrityThreshold);
  });

  it('warns and does not read an archive in DEEP_ARCHIVE', async () => {
    const backup = await archive('cold.tar.gz', gzip(Buffer.alloc(1024)));
    (backup.members[0] as { storageClass?: string }).storageClass = 'GLACIER';
    const spy = new FlakyStore(root, new Set());
    const result = await checkIntegrity(backup, spy, { policy: DEFAULT_POLICY });
    expect(codes(result)).toEqual(['ARCHIVED_STORAGE']);
    expect(result.status).toBe('WARN');
    expect(spy.opened).toEqual([]);
  });

  it('compares an archive with its store CRC64NVME, computed while the bytes stream past', async () => {
    await writeBackup(tree);
    const tgz = await systemTar(path.join(root, ...PREFIX.split('/')), { format: 'gnu', gzip: true });
    const backup = await archive('crc.tar.gz', tgz);
    const heads = { 'arch/crc.tar.gz': { checksumCrc64nvme: crc64nvmeReference(tgz) } };
    const s3ish = new FlakyStore(root, new Set(), new Set(), heads);
    (backup.members[0] as { checksumAlgorithms?: string[] }).checksumAlgorithms = ['CRC64NVME'];
    const clean = await checkIntegrity(backup, s3ish, { policy: DEFAULT_POLICY });
    expect(clean.findings).toEqual([]);
    expect(clean.status).toBe('PASS');

    heads['arch/crc.tar.gz'].checksumCrc64nvme = crc64nvmeReference(flipBit(tgz, 100));
    const changed = await checkIntegrity(backup, s3ish, { policy: DEFAULT_POLICY });
    expect(codes(changed)).toEqual(['CHECKSUM_MISMATCH']);
    expect(changed.findings[0]?.message).toMatch(/ChecksumCRC64NVME/);

    for (const [algorithm, reference] of [
      ['CRC64NVME', crc64nvmeReference],
      ['CRC32C', crc32cReference],
    ] as const) {
      for (const size of [7, 509, 65537]) {
        const inspection = await inspectArchive(chunked(tgz, size), formatOf('x.tar.gz'), { crc: algorithm });
        expect(inspection.storedCrc, `${algorithm} in chunks of ${size}`).toBe(reference(tgz));
      }
    }
  });

  it('verifies an archive inside a directory backup against the SHA256SUMS of that backup', async () => {
    await writeTree(path.join(root, 'src'), tree);
    const vol = await systemTar(path.join(root, 'src'), { format: 'pax', gzip: true });
    await writeBackup({ 'app.conf': tree['app.conf'], 'vol.tar.gz': vol });
    await writeBackup({ SHA256SUMS: sha256sums({ 'app.conf': tree['app.conf'], 'vol.tar.gz': vol }) });
    const parent = await directoryBackupOf(store, PREFIX);
    const nested = async (): Promise<Backup> => ({
      ...(await archiveBackupOf(store, `${PREFIX}vol.tar.gz`)),
      parentId: parent.id,
      manifestKeys: [`${PREFIX}SHA256SUMS`],
    });
    const clean = await checkIntegrity(await nested(), store, { policy: DEFAULT_POLICY });
    expect(clean.findings).toEqual([]);
    expect(clean.status).toBe('PASS');

    await writeBackup({
      'vol.tar.gz': await systemTar(path.join(root, 'src'), { format: 'gnu', gzip: true }),
    });
    const altered = await checkIntegrity(await nested(), store, { policy: DEFAULT_POLICY });
    expect(codes(altered)).toEqual(['CHECKSUM_MISMATCH']);
    expect(altered.findings[0]?.message).toContain(`${PREFIX}SHA256SUMS (line 2)`);
    expect(altered.findings[0]?.message).toContain(sha256Hex(vol));
  });

  it('a nested archive its parent manifest does not list still has no reference', async () => {
    const vol = gzip(Buffer.alloc(2048));
    await writeBackup({ 'app.conf': tree['app.conf'], 'vol.tar.gz': vol, 'sub/SHA256SUMS': '' });
    const backup: Backup = {
      ...(await archiveBackupOf(store, `${PREFIX}vol.tar.gz`)),
      parentId: `${store.url}/${PREFIX}`,
      manifestKeys: [`${PREFIX}sub/SHA256SUMS`],
    };
    const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
    expect(codes(result)).toContain('NO_REFERENCE_CHECKSUM');
  });

  it('checks a .tar.zst on every runtime, and says a truncated or damaged one is truncated or corrupt (was CHECK_FAILED on Node 20)', async () => {
    await writeBackup(tree);
    const tar = await systemTar(path.join(root, ...PREFIX.split('/')), { format: 'pax' });
    const compressed = await zstd(tar);
    const clean = await checkIntegrity(await archive('z-20250625_114622.tar.zst', compressed), store, {
      policy: DEFAULT_POLICY,
    });
    expect(codes(clean)).toEqual(['NO_REFERENCE_CHECKSUM']);
    expect(clean.files).toBe(Object.keys(tree).length);

    const cut = await checkIntegrity(
      await archive('cut-20250625_114622.tar.zst', compressed.subarray(0, compressed.length - 7)),
      store,
      { policy: DEFAULT_POLICY },
    );
    expect(codes(cut)).toContain('ARCHIVE_TRUNCATED');
    expect(codes(cut)).not.toContain('CHECK_FAILED');
    expect(cut.status).toBe('FAIL');

    const bad = await checkIntegrity(
      await archive('bad-20250625_114622.tar.zst', flipBit(compressed, Math.floor(compressed.length / 2))),
      store,
      { policy: DEFAULT_POLICY },
    );
    expect(codes(bad)).toContain('ARCHIVE_CORRUPT');
    expect(codes(bad)).not.toContain('CHECK_FAILED');
    expect(bad.status).toBe('FAIL');
  });
});

describe('objects that vanish between the listing and the read', () => {
  it('regression: an archive deleted after cataloguing is MISSING_OBJECT (it was ACCESS_DENIED), saying it does not exist', async () => {
    const archive = gzip(Buffer.from('not read'));
    await writeTree(root, {
      'db-20250625.tar.gz': archive,
      'db-20250625.tar.gz.sha256': `${sha256Hex(archive)}\n`,
    });
    const backup = await archiveBackupOf(store, 'db-20250625.tar.gz');
    backup.sidecarKey = 'db-20250625.tar.gz.sha256';
    await rm(path.join(root, 'db-20250625.tar.gz'));
    await rm(path.join(root, 'db-20250625.tar.gz.sha256'));
    const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
    expect(result.status).toBe('FAIL');
    expect(result.findings).toContainEqual(
      expect.objectContaining({
        code: 'MISSING_OBJECT',
        severity: 'error',
        message: expect.stringContaining('does not exist'),
      }),
    );
  });

  it('a file of a directory backup deleted after cataloguing is MISSING_OBJECT; the rest is still checked', async () => {
    await writeBackup({ ...tree, SHA256SUMS: sha256sums(tree) });
    const backup = await directoryBackupOf(store, PREFIX);
    await rm(path.join(root, ...PREFIX.split('/'), 'db', 'blob.bin'));
    const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
    expect(result.status).toBe('FAIL');
    expect(objectsWith(result, 'MISSING_OBJECT')).toEqual(['db/blob.bin']);
    expect(objectsWith(result, 'ACCESS_DENIED')).toEqual([]);
    expect(objectsWith(result, 'CHECKSUM_MISMATCH')).toEqual([]);
  });
});
