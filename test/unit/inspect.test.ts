import { link, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_SHA256, inspectArchive } from '../../lib/core/inspect/index.ts';
import { type TarEntryHeader, TarParser } from '../../lib/core/inspect/tar-parser.ts';
import type { ContentDigest } from '../../lib/core/model.ts';
import {
  chunked,
  flipBit,
  formatOf,
  gzip,
  makeTempDir,
  multiMemberGzip,
  packTar,
  sampleBytes,
  sha256Hex,
  sha256sums,
  systemTar,
  type TarFormat,
  writeSparseFile,
  writeTree,
} from '../support/archives.ts';
import { zstd } from '../support/zstd.ts';

const CHUNK_SIZES = [1, 7, 509, 65537];
const TAR = formatOf('backup.tar');
const TGZ = formatOf('backup.tar.gz');

async function inspect(data: Buffer, format = TAR, chunkSize?: number) {
  const digests: ContentDigest[] = [];
  const input = chunkSize ? chunked(data, chunkSize) : Readable.from([data]);
  const result = await inspectArchive(input, format, { onEntry: (d) => digests.push(d) });
  return { result, digests };
}

/** Every way of feeding the input gives the same answer. */
async function inspectAllWays(data: Buffer, format = TAR) {
  const whole = await inspect(data, format);
  for (const size of CHUNK_SIZES) {
    const again = await inspect(data, format, size);
    expect(again.result, `chunks of ${size}`).toEqual(whole.result);
    expect(again.digests, `chunks of ${size}`).toEqual(whole.digests);
  }
  return whole;
}

let dir: string;
const files: Record<string, Buffer> = {
  'a.txt': Buffer.from('hello\n'),
  'data/b.bin': sampleBytes(70_000, 2),
  'data/empty': Buffer.alloc(0),
  'data/exact-block': sampleBytes(1024, 3),
};
const longName = `${'deep-folder-name-'.repeat(5)}/${'very-long-file-name-'.repeat(7)}.txt`;
let sparseHash: string;

beforeAll(async () => {
  dir = await makeTempDir();
  await writeTree(path.join(dir, 'plain'), files);
  await writeTree(path.join(dir, 'long'), { ...files, [longName]: 'long name content' });
  await symlink('a.txt', path.join(dir, 'long', 'link-to-a'));
  await link(path.join(dir, 'long', 'data', 'b.bin'), path.join(dir, 'long', 'hard-b'));
  await symlink('a.txt', path.join(dir, 'plain', 'sym'));
  await link(path.join(dir, 'plain', 'a.txt'), path.join(dir, 'plain', 'hard-a'));
  // 30 data runs: more than the 4 an old GNU header holds and the 21 of one extension block.
  const runs: Array<[number, Buffer]> = Array.from({ length: 30 }, (_, i) => [
    i * 200_000 + 4096 * (i % 3),
    sampleBytes(3000 + i, i + 10),
  ]);
  await writeSparseFile(path.join(dir, 'sparse', 'holes.img'), 8_000_000, runs);
  await writeFile(path.join(dir, 'sparse', 'note.txt'), 'not sparse');
  sparseHash = sha256Hex(await readFile(path.join(dir, 'sparse', 'holes.img')));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectFilesMatch(digests: ContentDigest[], tree: Record<string, Buffer | string>) {
  for (const [name, content] of Object.entries(tree)) {
    const digest = digests.find((d) => d.path === name);
    expect(digest, name).toBeDefined();
    expect(digest?.sha256, name).toBe(sha256Hex(content));
    expect(digest?.size, name).toBe(Buffer.byteLength(content));
    expect(digest?.type).toBe('file');
  }
}

describe('inspectArchive on clean archives made by the system tar', () => {
  for (const format of ['v7', 'ustar', 'gnu', 'pax', 'oldgnu'] as TarFormat[]) {
    it(`reads a ${format} archive with hard and symbolic links, whole and in odd chunks`, async () => {
      const tar = await systemTar(path.join(dir, 'plain'), { format });
      const { result, digests } = await inspectAllWays(tar);
      expect(result.problems).toEqual([]);
      expectFilesMatch(digests, files);
      expect(result.files).toBe(5); // four files and the hard link
      expect(result.contentBytes).toBe(Object.values(files).reduce((n, f) => n + f.length, 0) + 6);
      const hard = digests.find((d) => d.path === 'hard-a' || (d.path === 'a.txt' && d.type === 'hardlink'));
      expect(hard?.sha256).toBe(sha256Hex(files['a.txt'] as Buffer));
      const sym = digests.find((d) => d.path === 'sym');
      expect(sym).toMatchObject({ type: 'symlink', linkTarget: 'a.txt', sha256: EMPTY_SHA256 });
      expect(result.storedSha256).toBe(sha256Hex(tar));
      expect(result.storedBytes).toBe(tar.length);
    });
  }

  for (const format of ['gnu', 'pax', 'oldgnu'] as TarFormat[]) {
    it(`reads long names and long link targets in ${format} format`, async () => {
      const tar = await systemTar(path.join(dir, 'long'), { format });
      const { result, digests } = await inspectAllWays(tar);
      expect(result.problems).toEqual([]);
      expectFilesMatch(digests, { ...files, [longName]: 'long name content' });
      expect(digests.find((d) => d.path === 'hard-b')?.sha256).toBe(sha256Hex(files['data/b.bin'] as Buffer));
    });
  }

  const sparseCases: Array<{ format: TarFormat; sparseVersion?: '0.0' | '0.1' | '1.0' }> = [
    { format: 'gnu' },
    { format: 'oldgnu' },
    { format: 'pax', sparseVersion: '0.0' },
    { format: 'pax', sparseVersion: '0.1' },
    { format: 'pax', sparseVersion: '1.0' },
  ];
  for (const c of sparseCases) {
    it(`hashes a sparse member (${c.format}${c.sparseVersion ? ` ${c.sparseVersion}` : ''}) as the file it restores to`, async () => {
      const tar = await systemTar(path.join(dir, 'sparse'), { ...c, sparse: true });
      const headers: TarEntryHeader[] = [];
      const parser = new TarParser({
        entry: (h) => void headers.push(h),
        problem: (p) => expect.fail(p.message),
      });
      parser.write(tar);
      parser.end();
      // The archive really is sparse: stored far smaller than the 8 MB file.
      expect(headers.find((h) => h.path.endsWith('holes.img'))?.sparse).toBe(true);
      expect(tar.length).toBeLessThan(1_000_000);
      const { result, digests } = await inspectAllWays(tar);
      expect(result.problems).toEqual([]);
      const img = digests.find((d) => d.path === 'holes.img');
      expect(img).toMatchObject({ size: 8_000_000, sha256: sparseHash, type: 'file' });
    });
  }

  it('reads a tar.gz made by tar -czf and one with several gzip members', async () => {
    const tar = await systemTar(path.join(dir, 'plain'), { format: 'gnu' });
    const single = await inspectAllWays(gzip(tar), TGZ);
    expect(single.result.problems).toEqual([]);
    // Split the tar at an odd place: members of a multi-member gzip need not align with tar blocks.
    const multi = multiMemberGzip([tar.subarray(0, 1000), tar.subarray(1000, 5001), tar.subarray(5001)]);
    const several = await inspectAllWays(multi, TGZ);
    expect(several.result.problems).toEqual([]);
    expect(several.digests).toEqual(single.digests);
    expect(several.result.storedSha256).toBe(sha256Hex(multi));
    expect(several.result.decompressedBytes).toBe(tar.length);
  });

  it('hashes the content of a plain .gz of a non-tar file', async () => {
    const content = sampleBytes(100_000, 9);
    const { result, digests } = await inspectAllWays(gzip(content), formatOf('dump.sql.gz'));
    expect(result.problems).toEqual([]);
    expect(digests).toEqual([
      { path: 'dump.sql', size: content.length, sha256: sha256Hex(content), type: 'file' },
    ]);
  });

  it('reads archives written by tar-stream', async () => {
    const tar = await packTar([
      { name: 'dir', type: 'directory' },
      { name: 'dir/x.txt', content: 'x' },
      { name: `${'n'.repeat(150)}/y.txt`, content: 'y' },
    ]);
    const { result, digests } = await inspectAllWays(tar);
    expect(result.problems).toEqual([]);
    expectFilesMatch(digests, { 'dir/x.txt': 'x', [`${'n'.repeat(150)}/y.txt`]: 'y' });
  });

  it('verifies a SHA256SUMS at the root of the archive while reading it', async () => {
    const tree = { 'one.txt': 'one', 'two/three.txt': 'three' };
    const tar = await packTar([
      { name: './SHA256SUMS', content: `${sha256sums({ ...tree, 'gone.txt': 'x' })}` },
      ...Object.entries(tree).map(([name, content]) => ({ name, content })),
      { name: 'extra.txt', content: 'extra' },
    ]);
    const { result } = await inspectAllWays(tar);
    expect(result.rootManifest).toEqual({
      memberPath: './SHA256SUMS',
      incomplete: false,
      errors: [],
      verified: 2,
      mismatched: [],
      missing: [{ path: 'gone.txt', expected: sha256Hex('x') }],
      unlisted: ['extra.txt'],
    });
  });

  it('reports a path the root SHA256SUMS lists twice with different checksums, and follows links', async () => {
    const manifest = [
      `${sha256Hex('one')}  one.txt`,
      `${sha256Hex('bad')}  two.txt`,
      `${sha256Hex('one')}  ./one.txt`,
      `${sha256Hex('other')}  one.txt`,
      `${sha256Hex('x')}  gone.txt`,
      `${sha256Hex('y')}  gone.txt`,
      `${sha256Hex('two')}  two.txt`,
      `${sha256Hex('one')}  link-to-one`,
      `${sha256Hex('one')}  hard-one`,
      '',
    ].join('\n');
    const tar = await packTar([
      { name: 'one.txt', content: 'one' },
      { name: 'link-to-one', type: 'symlink', linkname: 'one.txt' },
      { name: 'hard-one', type: 'link', linkname: 'one.txt' },
      { name: 'two.txt', content: 'two' },
      { name: 'SHA256SUMS', content: manifest },
    ]);
    const { result } = await inspectAllWays(tar);
    expect(result.rootManifest?.errors.map((e) => [e.line, e.message])).toEqual([
      [4, '"one.txt" is listed again with a different checksum (first on line 1)'],
      [6, '"gone.txt" is listed again with a different checksum (first on line 5)'],
      [7, '"two.txt" is listed again with a different checksum (first on line 2)'],
    ]);
    expect(result.rootManifest).toMatchObject({
      verified: 3,
      mismatched: [{ path: 'two.txt', expected: sha256Hex('bad'), actual: sha256Hex('two') }],
      missing: [{ path: 'gone.txt', expected: sha256Hex('x') }],
      unlisted: [],
    });
  });

  it('reads zstd archives on every runtime, fed whole or in odd-sized chunks', async () => {
    const tar = await systemTar(path.join(dir, 'plain'), { format: 'pax' });
    const compressed = await zstd(tar);
    const format = formatOf('z.tar.zst');
    const { result, digests } = await inspectAllWays(compressed, format);
    expect(result.storedSha256).toBe(sha256Hex(compressed));
    expect(result.problems).toEqual([]);
    expect(result.readToEnd).toBe(true);
    expectFilesMatch(digests, files);
  });

  it('says a truncated .tar.zst is truncated and a damaged one corrupt, on every runtime', async () => {
    const tar = await systemTar(path.join(dir, 'plain'), { format: 'pax' });
    const compressed = await zstd(tar);
    const format = formatOf('z.tar.zst');
    const cut = await inspectAllWays(compressed.subarray(0, compressed.length - 10), format);
    expect(cut.result.problems).toEqual([expect.objectContaining({ kind: 'truncated', layer: 'zstd' })]);
    expect(cut.result.readToEnd).toBe(false);
    const damaged = await inspect(flipBit(compressed, Math.floor(compressed.length / 2)), format);
    expect(damaged.result.problems).toEqual([expect.objectContaining({ kind: 'corrupt', layer: 'zstd' })]);
    expect(damaged.result.problems[0]?.message).toMatch(/invalid zstd data.*the archive is damaged/);
  });

  it('rejects with the input stream error (a read failure is not archive damage)', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(inspectArchive(failing, TGZ)).rejects.toThrow('connection reset');
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      inspectArchive(chunked(gzip(sampleBytes(10_000)), 100), TGZ, { signal: controller.signal }),
    ).rejects.toThrow();
  });
});
