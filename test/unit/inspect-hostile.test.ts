/**
 * Issue 10 (hostile): archives built to make the reader work without bound. Each must end
 * within its limits; the work done is asserted by counting (map bytes examined, bytes hashed,
 * entries read), never by timing.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import { type ArchiveInspection, inspectArchive } from '../../lib/core/inspect/index.ts';
import {
  MAX_SPARSE_SEGMENTS,
  type TarEntryHeader,
  TarParser,
  type TarProblem,
} from '../../lib/core/inspect/tar-parser.ts';
import type { RestoreLimitValues } from '../../lib/core/restore/limits.ts';
import { chunked, formatOf, gzip, sha256Hex } from '../support/archives.ts';
import {
  expandSparse,
  gnuSparseMember,
  gzipBombPlain,
  gzipBombTar,
  manyEntriesTarGz,
  paxHeader,
  paxSparse10Member,
  rawMember,
  sparse10Map,
  tarOf,
} from '../support/hostile-archives.ts';

const CHUNK_SIZES = [1, 7, 509, 65537];
const TAR = formatOf('x.tar');
const TGZ = formatOf('x.tar.gz');
const TIB = 2 ** 40;

interface Parsed {
  headers: TarEntryHeader[];
  problems: TarProblem[];
  digests: Map<string, string>;
  mapBytesScanned: number;
  complete: boolean;
}

/** Feeds a tar to the parser directly, in chunks of `size` (whole when absent), hashing each file. */
function parse(tar: Buffer, size?: number): Parsed {
  const headers: TarEntryHeader[] = [];
  const problems: TarProblem[] = [];
  const digests = new Map<string, string>();
  const parser = new TarParser({
    entry(header) {
      headers.push(header);
      if (header.type !== 'file') return undefined;
      const parts: Buffer[] = [];
      return {
        write: (chunk) => void parts.push(Buffer.from(chunk)),
        end: () => void digests.set(header.path, sha256Hex(Buffer.concat(parts))),
      };
    },
    problem: (p) => void problems.push(p),
  });
  const step = size ?? tar.length;
  for (let at = 0; at < tar.length; at += step) parser.write(tar.subarray(at, at + step));
  parser.end();
  return {
    headers,
    problems,
    digests,
    mapBytesScanned: parser.sparseMapBytesScanned,
    complete: parser.complete,
  };
}

/** Same answer whole and in every chunk size. */
function parseAllWays(tar: Buffer, sizes = CHUNK_SIZES): Parsed {
  const whole = parse(tar);
  for (const size of sizes) {
    const again = parse(tar, size);
    expect(again.problems, `chunks of ${size}`).toEqual(whole.problems);
    expect([...again.digests], `chunks of ${size}`).toEqual([...whole.digests]);
    expect(again.mapBytesScanned, `chunks of ${size}`).toBe(whole.mapBytesScanned);
  }
  return whole;
}

async function inspectAllWays(
  data: Buffer,
  format = TAR,
  limits?: RestoreLimitValues,
  sizes = CHUNK_SIZES,
): Promise<ArchiveInspection> {
  const options = limits ? { limits } : {};
  const whole = await inspectArchive(Readable.from([data]), format, options);
  for (const size of sizes) {
    const again = await inspectArchive(chunked(data, size), format, options);
    expect(
      again.problems.map((p) => [p.kind, p.member, p.message]),
      `chunks of ${size}`,
    ).toEqual(whole.problems.map((p) => [p.kind, p.member, p.message]));
    expect(again.hashedBytes, `chunks of ${size}`).toBe(whole.hashedBytes);
  }
  return whole;
}

/** `count` one-byte runs two bytes apart: a map of ~9 bytes a run for one stored byte each. */
function denseRuns(count: number): Array<[number, number]> {
  return Array.from({ length: count }, (_, i) => [i * 2, 1] as [number, number]);
}

describe('issue 10 (hostile): sparse maps are read in linear time, their run count capped', () => {
  it('issue 10 (hostile): a pax sparse 1.0 map of 200,000 runs is read once, whole and in odd chunks', () => {
    const runs = denseRuns(200_000);
    const map = sparse10Map(runs);
    const data = Buffer.from(Array.from({ length: runs.length }, (_, i) => (i % 251) + 1));
    const realSize = runs.length * 2 + 10;
    const tar = tarOf(
      paxSparse10Member('big-map.img', realSize, map, data),
      rawMember({ name: 'after.txt', body: 'after\n' }),
    );
    const mapBlocks = Math.ceil(map.length / 512);
    // Re-reading the map from its start at every block would examine ~blocks²/2 × 512 bytes.
    expect(mapBlocks).toBeGreaterThan(3000);

    const parsed = parseAllWays(tar);
    expect(parsed.problems).toEqual([]);
    expect(parsed.complete).toBe(true);
    expect(parsed.digests.get('big-map.img')).toBe(sha256Hex(expandSparse(realSize, runs, data)));
    expect(parsed.digests.get('after.txt')).toBe(sha256Hex('after\n'));
    expect(parsed.headers.find((h) => h.path === 'big-map.img')).toMatchObject({
      size: realSize,
      sparse: true,
    });
    // Each map byte examined once: the map's length (up to its last block), not its square.
    expect(parsed.mapBytesScanned).toBeGreaterThanOrEqual(map.length);
    expect(parsed.mapBytesScanned).toBeLessThanOrEqual(mapBlocks * 512);
  });

  it(`issue 10 (hostile): a pax sparse 1.0 map declaring more than ${MAX_SPARSE_SEGMENTS} runs is refused at its first block; the archive is read on`, () => {
    const runs = denseRuns(100);
    const map = sparse10Map(runs, 2_000_000);
    const data = Buffer.alloc(runs.length, 7);
    const tar = tarOf(
      paxSparse10Member('liar.img', 400, map, data),
      rawMember({ name: 'after.txt', body: 'after\n' }),
    );
    const parsed = parseAllWays(tar);
    expect(parsed.problems).toHaveLength(1);
    expect(parsed.problems[0]).toMatchObject({ kind: 'corrupt', member: 'liar.img' });
    expect(parsed.problems[0]?.message).toMatch(/more than 1000000 data runs/);
    expect(parsed.mapBytesScanned).toBeLessThanOrEqual(8); // "2000000\n": nothing after the count
    expect(parsed.digests.has('liar.img')).toBe(false);
    expect(parsed.digests.get('after.txt')).toBe(sha256Hex('after\n'));
    expect(parsed.complete).toBe(true);
  });

  it('issue 10 (hostile): a pax sparse 1.0 map that is one endless number stops at its 17th digit', () => {
    const map = `1\n${'9'.repeat(600_000)}\n5\n`;
    const tar = tarOf(
      paxSparse10Member('endless.img', 100, map, Buffer.from('hello')),
      rawMember({ name: 'after.txt', body: 'x' }),
    );
    const parsed = parseAllWays(tar, [1, 509]);
    expect(parsed.problems).toHaveLength(1);
    expect(parsed.problems[0]?.message).toMatch(/sparse map is unreadable/);
    expect(parsed.mapBytesScanned).toBe(2 + 17);
    expect(parsed.digests.get('after.txt')).toBe(sha256Hex('x'));
  });

  it(`issue 10 (hostile): an old GNU sparse member with more than ${MAX_SPARSE_SEGMENTS} runs in extension blocks is refused; the archive is read on`, () => {
    const runs = denseRuns(MAX_SPARSE_SEGMENTS + 50);
    const tar = tarOf(
      gnuSparseMember('many-runs.img', runs.length * 2, runs, Buffer.alloc(64, 1)),
      rawMember({ name: 'after.txt', body: 'after\n' }),
    );
    const parsed = parseAllWays(tar, [509, 65537]);
    expect(parsed.problems).toHaveLength(1);
    expect(parsed.problems[0]).toMatchObject({ kind: 'corrupt', member: 'many-runs.img' });
    expect(parsed.problems[0]?.message).toMatch(/more than 1000000 data runs/);
    expect(parsed.digests.get('after.txt')).toBe(sha256Hex('after\n'));
    expect(parsed.complete).toBe(true);
  });

  it('issue 10 (hostile): a pax 0.1 map (GNU.sparse.map) past the run cap is refused; the archive is read on', () => {
    const map = Array.from({ length: MAX_SPARSE_SEGMENTS + 1 }, () => '0,0').join(',');
    const tar = tarOf(
      paxHeader([
        ['GNU.sparse.major', '0'],
        ['GNU.sparse.minor', '1'],
        ['GNU.sparse.name', 'zero-runs.img'],
        ['GNU.sparse.size', '10'],
        ['GNU.sparse.map', map],
      ]),
      rawMember({ name: 'GNUSparseFile.1/zero-runs.img', body: '' }),
      rawMember({ name: 'after.txt', body: 'after\n' }),
    );
    const parsed = parseAllWays(tar, [509, 65537]);
    expect(parsed.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/more than 1000000 data runs/),
    ]);
    expect(parsed.digests.get('after.txt')).toBe(sha256Hex('after\n'));
  });
});

describe('issue 10 (hostile): the integrity pass enforces the restore limits', () => {
  it('issue 10 (hostile): a 10 KiB tar declaring a 1 TiB sparse member is DECOMPRESSION_LIMIT before any zero is hashed', async () => {
    const tar = tarOf(
      rawMember({ name: 'first.txt', body: 'first\n' }),
      paxSparse10Member('huge.img', TIB, sparse10Map([[TIB - 5, 5]]), Buffer.from('hello')),
    );
    expect(tar.length).toBeLessThan(10 * 1024);
    for (const [data, format] of [
      [tar, TAR],
      [gzip(tar), TGZ],
    ] as const) {
      const result = await inspectAllWays(data, format);
      expect(result.problems).toHaveLength(1);
      expect(result.problems[0]).toMatchObject({ kind: 'limit', layer: 'tar', member: 'huge.img' });
      expect(result.problems[0]?.message).toMatch(
        new RegExp(
          `"huge.img" declares ${TIB} bytes.*${SAFE_RESTORE_LIMITS.maxBytes}-byte limit.*restore.maxBytes`,
        ),
      );
      // Only first.txt was hashed: not one byte of the 1 TiB.
      expect(result.hashedBytes).toBe(6);
      expect(result.readToEnd).toBe(false);
    }
  });

  it('issue 10 (hostile): members whose content adds up past maxBytes stop at the member that would pass it', async () => {
    const limits = { ...SAFE_RESTORE_LIMITS, maxBytes: 3000 };
    const tar = tarOf(
      rawMember({ name: 'a.bin', body: Buffer.alloc(2000, 1) }),
      rawMember({ name: 'b.bin', body: Buffer.alloc(2000, 2) }),
      rawMember({ name: 'c.bin', body: Buffer.alloc(10, 3) }),
    );
    const result = await inspectAllWays(tar, TAR, limits);
    expect(result.problems.map((p) => [p.kind, p.member])).toEqual([['limit', 'b.bin']]);
    expect(result.hashedBytes).toBe(2000);
  });

  it('issue 10 (hostile): a plain .gz expanding past maxBytes is stopped within one chunk of the limit', async () => {
    const limits = { ...SAFE_RESTORE_LIMITS, maxBytes: 4 * 1024 * 1024 };
    const result = await inspectArchive(gzipBombPlain(64 * 1024 * 1024), formatOf('dump.sql.gz'), { limits });
    expect(result.problems.map((p) => p.kind)).toEqual(['limit']);
    expect(result.problems[0]?.message).toMatch(/passed the 4194304-byte limit.*restore.maxBytes/);
    expect(result.hashedBytes).toBeLessThanOrEqual(limits.maxBytes);
    expect(result.decompressedBytes).toBeLessThanOrEqual(limits.maxBytes + 1024 * 1024);
  });

  it('issue 10 (hostile): a gzip bomb in a tar stops on the expansion ratio soon after 16 MiB', async () => {
    const limits = { ...SAFE_RESTORE_LIMITS, maxExpansionRatio: 100 };
    const result = await inspectArchive(gzipBombTar(256 * 1024 * 1024), TGZ, { limits });
    expect(result.problems.map((p) => [p.kind, p.layer])).toEqual([['limit', 'gzip']]);
    expect(result.problems[0]?.message).toMatch(/past the 100:1 expansion limit.*restore.maxExpansionRatio/);
    expect(result.decompressedBytes).toBeLessThan(32 * 1024 * 1024);
    expect(result.hashedBytes).toBeLessThan(32 * 1024 * 1024);
  });

  it('issue 10 (hostile): 5,000 entries stop at a 1,000-entry limit; no more entries are read or kept', async () => {
    const limits = { ...SAFE_RESTORE_LIMITS, maxEntries: 1000 };
    const chunks: Buffer[] = [];
    for await (const chunk of manyEntriesTarGz(5000)) chunks.push(chunk as Buffer);
    const gz = Buffer.concat(chunks);
    const seen: string[] = [];
    const result = await inspectArchive(Readable.from([gz]), TGZ, {
      limits,
      onEntry: (d) => seen.push(d.path),
    });
    expect(result.problems.map((p) => [p.kind, p.member])).toEqual([['limit', 'f/1000.txt']]);
    expect(result.problems[0]?.message).toMatch(/more than 1000 entries.*restore.maxEntries/);
    expect(result.entries).toBe(1001);
    expect(seen).toHaveLength(1000);
    expect(result.storedBytes).toBe(gz.length);
    const again = await inspectAllWays(gz, TGZ, limits, [509, 65537]);
    expect(again.entries).toBe(1001);
  });
});

describe('issue 10 (hostile): the member table is bounded', () => {
  it('issue 10 (hostile): past its memory budget the table stops recording and the root SHA256SUMS is reported unchecked, not as missing files', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `${'n'.repeat(90)}/${i}.txt`);
    const sums = names.map((name) => `${sha256Hex(name)}  ${name}\n`).join('');
    const tar = tarOf(
      ...names.map((name) => rawMember({ name, body: name })),
      rawMember({ name: 'SHA256SUMS', body: sums }),
    );
    const memberTableBytes = 8 * 1024;
    const whole = await inspectArchive(Readable.from([tar]), TAR, { memberTableBytes });
    for (const size of [1, 509]) {
      const again = await inspectArchive(chunked(tar, size), TAR, { memberTableBytes });
      expect(again.rootManifest, `chunks of ${size}`).toEqual(whole.rootManifest);
    }
    expect(whole.problems).toEqual([]);
    expect(whole.files).toBe(201);
    expect(whole.rootManifest?.errors).toEqual([
      expect.objectContaining({
        line: 0,
        message: expect.stringMatching(
          /member list passed the 8192-byte memory limit after \d+ members \(\d+ more were not recorded\)/,
        ),
      }),
    ]);
    expect(whole.rootManifest).toMatchObject({ verified: 0, mismatched: [], missing: [], unlisted: [] });
    // With room for every member, the same manifest verifies all 200 files.
    const roomy = await inspectArchive(Readable.from([tar]), TAR);
    expect(roomy.rootManifest).toMatchObject({ errors: [], verified: 200, missing: [], unlisted: [] });
  });
});
