import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INFLATE_CHUNK_SIZE } from '../../lib/core/compression.ts';
import { SAFE_RESTORE_LIMITS } from '../../lib/core/config.ts';
import { RestoreAbort } from '../../lib/core/restore/abort.ts';
import { extractTar } from '../../lib/core/restore/extract.ts';
import { RestoreLimits } from '../../lib/core/restore/limits.ts';
import { SandboxTree } from '../../lib/core/restore/sandbox-tree.ts';
import { type Arena, makeArena, rawTar } from '../support/hostile-archives.ts';

let arena: Arena;
beforeEach(async () => {
  arena = await makeArena('bv-rinflate-');
});
afterEach(async () => {
  await arena.cleanup();
});

/** The stored bytes as a store hands them over: chunks of an odd size. */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return Readable.from(chunks);
}

async function extract(gz: Buffer, chunkSize: number, name: string) {
  const tree = new SandboxTree(path.join(arena.root, name));
  mkdirSync(tree.root);
  const stats = await extractTar(chunked(gz, chunkSize), {
    tree,
    limits: new RestoreLimits(SAFE_RESTORE_LIMITS),
    compression: 'gzip',
    hashStored: true,
  });
  return { tree, stats };
}

async function failure(gz: Buffer, name: string): Promise<RestoreAbort> {
  const error = await extract(gz, 7_777, name).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(RestoreAbort);
  return error as RestoreAbort;
}

describe('restore extraction inflating in a worker, into shared slots reused piece after piece', () => {
  it('restores an archive many times the slot ring byte for byte, a replaced file (queued writes) too', async () => {
    const big = randomBytes(3 * INFLATE_CHUNK_SIZE + 12_345);
    const mixed = Buffer.concat([randomBytes(700_000), Buffer.alloc(600_000, 'a'), randomBytes(333_333)]);
    const replacement = randomBytes(2 * INFLATE_CHUNK_SIZE + 1);
    const small = Array.from({ length: 300 }, (_, i) => ({
      name: `many/f${i}.bin`,
      body: randomBytes(i * 37),
    }));
    const tar = rawTar([
      { name: 'big.bin', body: big },
      ...small,
      { name: 'same.bin', body: mixed },
      // A later entry of the same name: written through the thread pool, after the first is removed.
      { name: 'same.bin', body: replacement },
      { name: 'last.bin', body: big.subarray(0, 99_999) },
    ]);
    const gz = zlib.gzipSync(tar);
    expect(tar.length).toBeGreaterThan(8 * INFLATE_CHUNK_SIZE);
    const expected = new Map<string, Buffer>([
      ['big.bin', big],
      ['same.bin', replacement],
      ['last.bin', big.subarray(0, 99_999)],
      ...small.map((s) => [s.name, s.body] as [string, Buffer]),
    ]);
    for (const chunkSize of [4_093, 65_537, 1_000_003]) {
      const { tree, stats } = await extract(gz, chunkSize, `c${chunkSize}`);
      expect(stats.compressedBytes).toBe(gz.length);
      expect(stats.expandedBytes).toBe(tar.length);
      expect(stats.storedSha256).toBe(createHash('sha256').update(gz).digest('hex'));
      for (const [name, body] of expected) {
        expect(
          readFileSync(path.join(tree.root, name)).equals(body),
          `${name} (chunks of ${chunkSize})`,
        ).toBe(true);
      }
      expect(await tree.verifyOnDisk()).toEqual([]);
    }
  });

  it('a truncated gzip is ARCHIVE_TRUNCATED, a corrupt one ARCHIVE_CORRUPT, as zlib words them', async () => {
    const gz = zlib.gzipSync(rawTar([{ name: 'a.bin', body: randomBytes(1_500_000) }]));
    const truncated = await failure(gz.subarray(0, gz.length - 50_000), 'cut');
    expect(truncated.code).toBe('ARCHIVE_TRUNCATED');
    expect(truncated.message).toBe('the compressed stream ends early: unexpected end of file');

    const badCheck = Buffer.from(gz);
    badCheck[badCheck.length - 6] = (badCheck[badCheck.length - 6] as number) ^ 0xff;
    const corrupt = await failure(badCheck, 'crc');
    expect(corrupt.code).toBe('ARCHIVE_CORRUPT');
    expect(corrupt.message).toBe('the gzip stream is invalid: incorrect data check');

    const badHeader = Buffer.from(gz);
    badHeader[0] = 0x00;
    const notGzip = await failure(badHeader, 'header');
    expect(notGzip.code).toBe('ARCHIVE_CORRUPT');
    expect(notGzip.message).toBe('the gzip stream is invalid: incorrect header check');
  });

  it('a cancelled restore stops inflating with RESTORE_FAILED', async () => {
    const gz = zlib.gzipSync(rawTar([{ name: 'a.bin', body: randomBytes(3_000_000) }]));
    const controller = new AbortController();
    const chunks: Buffer[] = [];
    for (let at = 0; at < gz.length; at += 100_000) chunks.push(gz.subarray(at, at + 100_000));
    const source = Readable.from(
      (function* () {
        for (const [i, chunk] of chunks.entries()) {
          if (i === 3) controller.abort();
          yield chunk;
        }
      })(),
    );
    const tree = new SandboxTree(path.join(arena.root, 'cancel'));
    mkdirSync(tree.root);
    const error = await extractTar(source, {
      tree,
      limits: new RestoreLimits(SAFE_RESTORE_LIMITS),
      compression: 'gzip',
      signal: controller.signal,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RestoreAbort);
    expect((error as RestoreAbort).code).toBe('RESTORE_FAILED');
    expect((error as RestoreAbort).message).toBe('the restore was cancelled');
  });
});
