/**
 * The corruption matrix: damage built at test time from archives the tests make. Every damaged
 * case FAILs with its code; every clean case does not. Each archive is also fed to the
 * inspector in odd-sized chunks, which must find the same problems.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import type { FindingCode } from '../../lib/core/findings.ts';
import { inspectArchive } from '../../lib/core/inspect/index.ts';
import { checkIntegrity } from '../../lib/core/integrity.ts';
import {
  archiveBackupOf,
  chunked,
  flipBit,
  formatOf,
  gzip,
  makeTempDir,
  packTar,
  sampleBytes,
  sha256Hex,
  sha256sums,
  systemTar,
  tarEndOffset,
  tarLayout,
  truncateAt,
  writeTree,
  zeroRange,
} from '../support/archives.ts';
import {
  manyEntriesTarGz,
  paxSparse10Member,
  rawMember,
  sparse10Map,
  tarOf,
  writeStream,
} from '../support/hostile-archives.ts';

interface Case {
  name: string;
  file: string;
  bytes: () => Buffer;
  sidecar?: () => string;
  /** Codes that must be among the findings. */
  expect: FindingCode[];
  status: 'PASS' | 'WARN' | 'FAIL';
}

let root: string;
let store: FolderStore;
let tar: Buffer;
let tarNoManifest: Buffer;
const tree: Record<string, Buffer> = {
  'etc/app.conf': Buffer.from('port = 8080\n'),
  'db/dump.sql': sampleBytes(40_000, 5),
  'db/blob.bin': sampleBytes(9_000, 6),
  'logs/today.log': sampleBytes(3_000, 7),
};

function member(archive: Buffer, name: string) {
  const entry = tarLayout(archive).find((e) => e.name.replace(/^\.\//, '') === name);
  if (!entry) throw new Error(`no member ${name}`);
  return entry;
}

beforeAll(async () => {
  root = await makeTempDir('bv-matrix-');
  const src = path.join(root, 'src');
  await writeTree(src, { ...tree, SHA256SUMS: sha256sums(tree) });
  tar = await systemTar(src, { format: 'gnu' });
  tarNoManifest = await systemTar(src, { format: 'gnu', paths: Object.keys(tree) });
  await mkdir(path.join(root, 'store'));
  store = new FolderStore(path.join(root, 'store'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const cases: Case[] = [
  // Clean cases.
  {
    name: 'clean tar.gz with a root SHA256SUMS',
    file: 'ok.tar.gz',
    bytes: () => gzip(tar),
    expect: [],
    status: 'PASS',
  },
  {
    name: 'clean tar.gz with a matching sidecar',
    file: 'side-ok.tar.gz',
    bytes: () => gzip(tarNoManifest),
    sidecar: () => `${sha256Hex(gzip(tarNoManifest))}  side-ok.tar.gz\n`,
    expect: [],
    status: 'PASS',
  },
  {
    name: 'clean plain tar padded with extra zero records',
    file: 'padded.tar',
    bytes: () => Buffer.concat([tar, Buffer.alloc(10240)]),
    expect: [],
    status: 'PASS',
  },
  {
    name: 'clean tar.gz with nothing to compare against',
    file: 'bare.tar.gz',
    bytes: () => gzip(tarNoManifest),
    expect: ['NO_REFERENCE_CHECKSUM'],
    status: 'WARN',
  },
  // The gzip layer.
  {
    name: 'one bit flipped in the deflate stream',
    file: 'deflate-bit.tar.gz',
    bytes: () => {
      const gz = gzip(tar);
      return flipBit(gz, Math.floor(gz.length / 2), 3);
    },
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  {
    name: 'one bit flipped in the gzip trailer CRC',
    file: 'crc.tar.gz',
    bytes: () => {
      const gz = gzip(tar);
      return flipBit(gz, gz.length - 6);
    },
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  {
    name: 'one bit flipped in the gzip trailer ISIZE',
    file: 'isize.tar.gz',
    bytes: () => {
      const gz = gzip(tar);
      return flipBit(gz, gz.length - 3);
    },
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  {
    name: 'a zeroed 512-byte block in the compressed stream',
    file: 'zeroed.tar.gz',
    bytes: () => zeroRange(gzip(tar), 600, 512),
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  {
    name: 'truncated inside the gzip header',
    file: 'cut-header.tar.gz',
    bytes: () => truncateAt(gzip(tar), 5),
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'truncated mid-deflate',
    file: 'cut-deflate.tar.gz',
    bytes: () => {
      const gz = gzip(tar);
      return truncateAt(gz, Math.floor(gz.length / 2));
    },
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'truncated just before the gzip trailer',
    file: 'cut-trailer.tar.gz',
    bytes: () => {
      const gz = gzip(tar);
      return truncateAt(gz, gz.length - 4);
    },
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'not gzip at all behind a .tar.gz name',
    file: 'garbage.tar.gz',
    bytes: () => sampleBytes(5000, 99),
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  // The tar layer.
  {
    name: 'one bit flipped in a tar header',
    file: 'header-bit.tar.gz',
    bytes: () => gzip(flipBit(tar, member(tar, 'db/blob.bin').headerOffset + 10)),
    expect: ['ARCHIVE_CORRUPT', 'MISSING_OBJECT'],
    status: 'FAIL',
  },
  {
    name: 'one bit flipped in member data, caught by the root SHA256SUMS',
    file: 'data-bit.tar.gz',
    bytes: () => gzip(flipBit(tar, member(tar, 'db/dump.sql').dataOffset + 1234, 5)),
    expect: ['CHECKSUM_MISMATCH'],
    status: 'FAIL',
  },
  {
    name: 'one bit flipped in member data, caught by the sidecar',
    file: 'data-bit-side.tar',
    bytes: () => flipBit(tarNoManifest, member(tarNoManifest, 'db/dump.sql').dataOffset + 77),
    sidecar: () => sha256Hex(tarNoManifest),
    expect: ['CHECKSUM_MISMATCH'],
    status: 'FAIL',
  },
  {
    name: 'a zeroed header block',
    file: 'zero-header.tar',
    bytes: () => zeroRange(tar, member(tar, 'etc/app.conf').headerOffset),
    expect: ['ARCHIVE_CORRUPT', 'MISSING_OBJECT'],
    status: 'FAIL',
  },
  {
    name: 'a zeroed data block',
    file: 'zero-data.tar',
    bytes: () => zeroRange(tar, member(tar, 'db/dump.sql').dataOffset + 1024),
    expect: ['CHECKSUM_MISMATCH'],
    status: 'FAIL',
  },
  {
    name: 'truncated mid-tar-header',
    file: 'cut-tar-header.tar',
    bytes: () => truncateAt(tar, member(tar, 'logs/today.log').headerOffset + 100),
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'truncated mid-member',
    file: 'cut-member.tar.gz',
    bytes: () => gzip(truncateAt(tar, member(tar, 'db/dump.sql').dataOffset + 5000)),
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'truncated before the end-of-archive blocks',
    file: 'cut-end.tar.gz',
    bytes: () => gzip(truncateAt(tar, tarEndOffset(tar))),
    expect: ['ARCHIVE_TRUNCATED'],
    status: 'FAIL',
  },
  {
    name: 'non-zero garbage after the end-of-archive blocks',
    file: 'trailing.tar',
    bytes: () => Buffer.concat([truncateAt(tar, tarEndOffset(tar) + 1024), Buffer.from('garbage')]),
    expect: ['ARCHIVE_CORRUPT'],
    status: 'FAIL',
  },
  // Empty backups.
  {
    name: 'a 0-byte archive',
    file: 'zero.tar.gz',
    bytes: () => Buffer.alloc(0),
    expect: ['EMPTY_BACKUP'],
    status: 'FAIL',
  },
  {
    name: 'gzip of an empty tar',
    file: 'empty-tar.tar.gz',
    bytes: () => gzip(Buffer.alloc(1024)),
    expect: ['EMPTY_BACKUP'],
    status: 'FAIL',
  },
  {
    name: 'gzip of nothing',
    file: 'nothing.tar.gz',
    bytes: () => gzip(Buffer.alloc(0)),
    expect: ['EMPTY_BACKUP'],
    status: 'FAIL',
  },
  // A sidecar that does not match, or does not name the archive.
  {
    name: 'a sidecar that does not match',
    file: 'side-bad.tar.gz',
    bytes: () => gzip(tarNoManifest),
    sidecar: () => `${sha256Hex('something else')}  side-bad.tar.gz\n`,
    expect: ['CHECKSUM_MISMATCH'],
    status: 'FAIL',
  },
  {
    name: 'a sidecar naming another file',
    file: 'side-other.tar.gz',
    bytes: () => gzip(tarNoManifest),
    sidecar: () => `${sha256Hex(gzip(tarNoManifest))}  other.tar.gz\n`,
    expect: ['CHECKSUM_MISMATCH'],
    status: 'FAIL',
  },
];

describe('corruption matrix (checkIntegrity over a folder store)', () => {
  for (const c of cases) {
    it(`${c.status}: ${c.name}`, async () => {
      const bytes = c.bytes();
      await writeFile(path.join(root, 'store', c.file), bytes);
      if (c.sidecar) await writeFile(path.join(root, 'store', `${c.file}.sha256`), c.sidecar());
      const backup = await archiveBackupOf(store, c.file);
      const result = await checkIntegrity(backup, store, { policy: DEFAULT_POLICY });
      const codes = result.findings.map((f) => f.code);
      expect(result.status, JSON.stringify(result.findings, null, 1)).toBe(c.status);
      for (const code of c.expect) expect(codes).toContain(code);
      if (c.status === 'PASS') expect(result.findings).toEqual([]);
      for (const f of result.findings) {
        expect(f.backup).toBe(backup.id);
        expect(f.message.length).toBeGreaterThan(20);
      }
      if (bytes.length > 0) expect(result.objectSha256[c.file]).toBe(sha256Hex(bytes));
      expect(result.bytesRead).toBe(bytes.length);

      const format = formatOf(c.file);
      const whole = await inspectArchive(Readable.from([bytes]), format);
      for (const size of [1, 7, 509, 65537]) {
        if (size === 1 && bytes.length > 40_000) continue; // 1-byte chunks run on the smaller inputs
        const again = await inspectArchive(chunked(bytes, size), format);
        expect(
          again.problems.map((p) => [p.kind, p.layer]),
          `chunks of ${size}`,
        ).toEqual(whole.problems.map((p) => [p.kind, p.layer]));
        // After a gzip-layer failure, how much Node's zlib emitted before failing depends on the chunking.
        if (!whole.problems.some((p) => p.layer !== 'tar')) {
          expect(again.rootManifest, `chunks of ${size}`).toEqual(whole.rootManifest);
        }
      }
    });
  }

  it('a corrupt member does not hide a missing file or a mismatch elsewhere', async () => {
    const damaged = flipBit(tar, member(tar, 'etc/app.conf').headerOffset + 3);
    const both = flipBit(damaged, member(tar, 'logs/today.log').dataOffset + 2);
    await writeFile(path.join(root, 'store', 'several.tar'), both);
    const result = await checkIntegrity(await archiveBackupOf(store, 'several.tar'), store, {
      policy: DEFAULT_POLICY,
    });
    const byCode = (code: FindingCode) => result.findings.filter((f) => f.code === code).map((f) => f.object);
    expect(byCode('ARCHIVE_CORRUPT')).toHaveLength(1);
    expect(byCode('MISSING_OBJECT')).toEqual(['etc/app.conf']);
    expect(byCode('CHECKSUM_MISMATCH')).toEqual(['logs/today.log']);
    expect(result.findings.find((f) => f.code === 'ARCHIVE_CORRUPT')?.message).toMatch(
      new RegExp(`byte ${member(tar, 'etc/app.conf').headerOffset}\\b`),
    );
  });

  it('names the byte where a gzip stream was cut and what to do', async () => {
    const gz = gzip(tar);
    const cut = truncateAt(gz, 700);
    await writeFile(path.join(root, 'store', 'cut.tar.gz'), cut);
    const result = await checkIntegrity(await archiveBackupOf(store, 'cut.tar.gz'), store, {
      policy: DEFAULT_POLICY,
    });
    expect(result.findings.map((f) => f.code)).toEqual(['ARCHIVE_TRUNCATED']);
    expect(result.findings[0]?.message).toMatch(/ends at byte 700 .*cut short; re-copy/);
  });

  it('regression: a small corrupt .tar.gz was reported "near byte 0" in the gzip trailer', async () => {
    const gz = gzip(tar);
    const bad = flipBit(gz, gz.length - 6);
    await writeFile(path.join(root, 'store', 'small-crc.tar.gz'), bad);
    const result = await checkIntegrity(await archiveBackupOf(store, 'small-crc.tar.gz'), store, {
      policy: DEFAULT_POLICY,
    });
    const corrupt = result.findings.find((f) => f.code === 'ARCHIVE_CORRUPT');
    expect(corrupt?.message).toMatch(/CRC-32 in a gzip trailer/);
    expect(corrupt?.message).not.toMatch(/byte 0\b/);
    expect(corrupt?.message).toContain(`within the first ${bad.length} compressed bytes`);
    // Fed in pieces, zlib had consumed part of the input when it failed: the span says where.
    const pieces = await inspectArchive(chunked(bad, 509), formatOf('x.tar.gz'));
    const problem = pieces.problems.find((p) => p.layer === 'gzip');
    expect(problem?.offset).toBe(bad.length);
    expect(problem?.message).not.toMatch(/byte 0\b/);
    expect(problem?.message).toMatch(
      new RegExp(`compressed bytes \\d+-${bad.length}|first ${bad.length} compressed bytes`),
    );
  });

  it('an archive of directories only is empty', async () => {
    const onlyDirs = await packTar([
      { name: 'a', type: 'directory' },
      { name: 'a/b', type: 'directory' },
    ]);
    await writeFile(path.join(root, 'store', 'dirs.tar'), onlyDirs);
    const result = await checkIntegrity(await archiveBackupOf(store, 'dirs.tar'), store, {
      policy: DEFAULT_POLICY,
    });
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => f.code)).toContain('EMPTY_BACKUP');
  });

  it('issue 10 (hostile): a 10 KiB tar declaring a 1 TiB sparse member FAILs with DECOMPRESSION_LIMIT, not CHECK_FAILED, and its checksum is still checked', async () => {
    const tib = 2 ** 40;
    const hostile = tarOf(
      rawMember({ name: 'note.txt', body: 'note\n' }),
      paxSparse10Member('disk.img', tib, sparse10Map([[tib - 5, 5]]), Buffer.from('hello')),
    );
    expect(hostile.length).toBeLessThan(10 * 1024);
    await writeFile(path.join(root, 'store', 'sparse-tib.tar.gz'), gzip(hostile));
    await writeFile(path.join(root, 'store', 'sparse-tib.tar.gz.sha256'), `${'0'.repeat(64)}\n`);
    const result = await checkIntegrity(await archiveBackupOf(store, 'sparse-tib.tar.gz'), store, {
      policy: DEFAULT_POLICY,
    });
    expect(result.status).toBe('FAIL');
    expect(result.findings.map((f) => f.code).sort()).toEqual(['CHECKSUM_MISMATCH', 'DECOMPRESSION_LIMIT']);
    const limit = result.findings.find((f) => f.code === 'DECOMPRESSION_LIMIT');
    expect(limit).toMatchObject({ object: 'disk.img' });
    expect(limit?.message).toMatch(
      /sparse-tib\.tar\.gz: "disk\.img" declares 1099511627776 bytes.*restore\.maxBytes/,
    );
    expect(limit?.message).not.toMatch(/offset in the decompressed tar/);
    // Only note.txt's 5 bytes were hashed as content.
    expect(result.contentBytes).toBe(5);
  });

  it("issue 10 (hostile): the integrity pass takes the series' restore.maxEntries: 3,000 entries FAIL at a 1,000-entry limit", async () => {
    await writeStream(path.join(root, 'store', 'many.tar.gz'), manyEntriesTarGz(3000));
    const policy = { ...DEFAULT_POLICY, restore: { ...DEFAULT_POLICY.restore, maxEntries: 1000 } };
    const result = await checkIntegrity(await archiveBackupOf(store, 'many.tar.gz'), store, { policy });
    expect(result.status).toBe('FAIL');
    const limits = result.findings.filter((f) => f.code === 'DECOMPRESSION_LIMIT');
    expect(limits).toHaveLength(1);
    expect(limits[0]?.message).toMatch(
      /more than 1000 entries \(stopped at "f\/1000\.txt"\).*restore\.maxEntries/,
    );
    expect(result.files).toBeLessThanOrEqual(1000);
    // The same archive passes the default limits.
    const relaxed = await checkIntegrity(await archiveBackupOf(store, 'many.tar.gz'), store, {
      policy: DEFAULT_POLICY,
    });
    expect(relaxed.findings.map((f) => f.code)).not.toContain('DECOMPRESSION_LIMIT');
    expect(relaxed.files).toBe(3000);
  });
});
