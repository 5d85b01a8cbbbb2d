/**
 * gzip is inflated three ways (zlib's stream, zlib driven on the parsing thread, zlib driven in a
 * worker thread): every way gives the same inspection, damage and limits included.
 */
import { open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspectArchive } from '../../lib/core/inspect/index.ts';
import { SyncDecompressor } from '../../lib/core/inspect/sync-decompress.ts';
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
  truncateAt,
} from '../support/archives.ts';

const TGZ = formatOf('backup.tar.gz');
type Way = 'stream' | 'sync' | 'worker';

afterEach(() => {
  vi.restoreAllMocks();
});

async function inspect(
  data: Buffer,
  way: Way,
  chunkSize: number,
  options: {
    format?: ReturnType<typeof formatOf>;
    maxExpansionRatio?: number;
    intact?: ContentDigest[];
  } = {},
) {
  if (way === 'stream') vi.spyOn(SyncDecompressor, 'from').mockReturnValue(undefined);
  const digests: ContentDigest[] = [];
  try {
    const result = await inspectArchive(chunked(data, chunkSize), options.format ?? TGZ, {
      onEntry: (d) => digests.push(d),
      inflateInWorker: way === 'worker',
      ...(options.maxExpansionRatio
        ? { limits: { maxBytes: 1024 ** 3, maxExpansionRatio: options.maxExpansionRatio, maxEntries: 1000 } }
        : {}),
    });
    return { result, digests };
  } finally {
    vi.restoreAllMocks();
  }
}

const kinds = (r: Awaited<ReturnType<typeof inspect>>) =>
  r.result.problems.map((p) => [p.kind, p.layer, p.member]);

/**
 * Inspects every way in each chunk size. On a clean archive every way gives the same inspection.
 * On a damaged one they report the same problems, but how far each got before zlib failed or a
 * limit stopped it depends on how the input was cut (the output of zlib's failing call is never
 * handed on, and a for-await loop joins the chunks a stream buffered meanwhile), so each way's
 * entries are only checked to be a prefix of `intact`'s, when given.
 */
async function everyWay(
  data: Buffer,
  options: Parameters<typeof inspect>[3] & {
    intact?: ContentDigest[];
    /** Problems every way must report, with maybe others (the damaged output parsed up to zlib's failure). */
    someProblems?: unknown[][];
  } = {},
  chunkSizes = [509, 65536],
) {
  let first: Awaited<ReturnType<typeof inspect>> | undefined;
  for (const size of chunkSizes) {
    const reference = await inspect(data, 'stream', size, options);
    first ??= reference;
    for (const way of ['sync', 'worker'] as const) {
      const again = await inspect(data, way, size, options);
      if (reference.result.problems.length === 0)
        expect(again, `${way}, chunks of ${size}`).toEqual(reference);
      else if (options.someProblems)
        for (const problem of options.someProblems)
          expect(kinds(again), `${way}, chunks of ${size}`).toContainEqual(problem);
      else expect(kinds(again), `${way}, chunks of ${size}`).toEqual(kinds(reference));
      if (options.intact) expect(options.intact.slice(0, again.digests.length)).toEqual(again.digests);
      // The stored bytes are hashed whole whatever stopped the inflate (the worker hashes them itself).
      expect(again.result.storedSha256, `${way}, chunks of ${size}`).toBe(sha256Hex(data));
      expect(again.result.storedBytes).toBe(data.length);
    }
  }
  return (first as Awaited<ReturnType<typeof inspect>>).result;
}

async function sampleTar(): Promise<Buffer> {
  return packTar([
    { name: 'a.txt', content: 'hello\n' },
    { name: 'big.bin', content: sampleBytes(300_000, 4) },
    { name: 'zeros.bin', content: Buffer.alloc(200_000) },
    { name: 'dir', type: 'directory' },
    { name: 'dir/b.txt', content: 'b' },
  ]);
}

describe('inflating gzip: the stream, this thread and a worker agree', () => {
  it('drives zlib on this thread on this runtime: the internals it needs are there (npm test runs this on Node 20 and 22)', () => {
    expect(SyncDecompressor.from(zlib.createGunzip())).toBeInstanceOf(SyncDecompressor);
  });

  it('on clean archives, one gzip member or several', async () => {
    const tar = await sampleTar();
    expect((await everyWay(gzip(tar))).problems).toEqual([]);
    const multi = multiMemberGzip([
      tar.subarray(0, 1000),
      tar.subarray(1000, 300_001),
      tar.subarray(300_001),
    ]);
    const result = await everyWay(multi);
    expect(result.problems).toEqual([]);
    expect(result.storedSha256).toBe(sha256Hex(multi));
    expect(result.decompressedBytes).toBe(tar.length);
  });

  it('on a plain .gz, trailing zeros after the member, and an empty input', async () => {
    const content = sampleBytes(100_000, 9);
    const format = formatOf('dump.sql.gz');
    expect((await everyWay(gzip(content), { format })).problems).toEqual([]);
    expect((await everyWay(Buffer.concat([gzip(content), Buffer.alloc(700)]), { format })).problems).toEqual(
      [],
    );
    expect((await everyWay(Buffer.alloc(0))).problems).toEqual([
      expect.objectContaining({ kind: 'truncated', layer: 'gzip' }),
    ]);
  });

  it('on truncated, bit-flipped and garbage-followed archives', async () => {
    const compressed = gzip(await sampleTar());
    const { digests: intact } = await inspect(compressed, 'stream', 65536);
    const cut = await everyWay(truncateAt(compressed, Math.floor(compressed.length / 2)), { intact });
    expect(cut.problems).toEqual([expect.objectContaining({ kind: 'truncated', layer: 'gzip' })]);
    expect(cut.readToEnd).toBe(false);
    const trailer = await everyWay(flipBit(compressed, compressed.length - 6), { intact });
    expect(trailer.problems).toEqual([expect.objectContaining({ kind: 'corrupt', layer: 'gzip' })]);
    // A flipped literal is found by the trailer's CRC; what zlib made of it before may upset the tar too.
    const middle = await everyWay(flipBit(compressed, Math.floor(compressed.length / 3), 3), {
      someProblems: [['corrupt', 'gzip', undefined]],
    });
    expect(middle.problems.length).toBeGreaterThan(0);
    const garbage = await everyWay(Buffer.concat([compressed, Buffer.from('not gzip at all')]), { intact });
    expect(garbage.problems).toEqual([expect.objectContaining({ kind: 'corrupt', layer: 'gzip' })]);
    expect(garbage.problems[0]?.message).toMatch(/data that is not gzip follows a complete gzip member/);
    const notGzip = await everyWay(Buffer.from('plain text, not gzip'.repeat(50)));
    expect(notGzip.problems[0]?.message).toMatch(/does not start with a valid gzip header/);
  });

  it('on a gzip bomb stopped by the expansion-ratio limit', async () => {
    const bomb = gzip(await packTar([{ name: 'zeros', content: Buffer.alloc(20 * 1024 * 1024) }]), 9);
    const result = await everyWay(bomb, { maxExpansionRatio: 50 }, [4096, 65536]);
    expect(result.problems).toEqual([expect.objectContaining({ kind: 'limit', layer: 'gzip' })]);
    expect(result.readToEnd).toBe(false);
    expect(result.storedSha256).toBe(sha256Hex(bomb));
  });

  it('on an archive larger than the worker ring, fed in chunks larger than its input slots', async () => {
    const content = sampleBytes(6 * 1024 * 1024, 11);
    const tar = await packTar([
      { name: 'large.bin', content },
      { name: 'small.txt', content: 'small' },
    ]);
    const compressed = gzip(tar, 1);
    const { result, digests } = await inspect(compressed, 'worker', 3 * 1024 * 1024);
    expect(result.problems).toEqual([]);
    expect(result.decompressedBytes).toBe(tar.length);
    expect(digests.find((d) => d.path === 'large.bin')?.sha256).toBe(sha256Hex(content));
    expect(await inspect(compressed, 'sync', 1024 * 1024)).toEqual(
      await inspect(compressed, 'worker', 1024 * 1024),
    );
  });

  it('reads a local file straight into the worker, as its stream would be read', async () => {
    const tar = await sampleTar();
    const dir = await makeTempDir('bv-inflate-');
    try {
      for (const data of [gzip(tar), truncateAt(gzip(tar), 20_000)]) {
        const file = path.join(dir, 'a.tar.gz');
        await writeFile(file, data);
        const handle = await open(file, 'r');
        try {
          const digests: ContentDigest[] = [];
          const result = await inspectArchive(Readable.from([]), TGZ, {
            file: handle,
            inflateInWorker: true,
            onEntry: (d) => digests.push(d),
          });
          const streamed = await inspect(data, 'worker', 1024 * 1024);
          expect(kinds({ result, digests })).toEqual(kinds(streamed));
          expect(result.storedSha256).toBe(sha256Hex(data));
          if (streamed.result.problems.length === 0) expect({ result, digests }).toEqual(streamed);
        } finally {
          await handle.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops the worker when the pass is aborted or its input fails', async () => {
    const compressed = gzip(await sampleTar());
    const controller = new AbortController();
    const input = Readable.from(
      (async function* () {
        for (let at = 0; at < compressed.length; at += 4096) {
          if (at === 8192) controller.abort();
          yield compressed.subarray(at, at + 4096);
        }
      })(),
    );
    await expect(
      inspectArchive(input, TGZ, { inflateInWorker: true, signal: controller.signal }),
    ).rejects.toThrow();
    const failing = Readable.from(
      (async function* () {
        yield compressed.subarray(0, 1000);
        throw new Error('connection reset');
      })(),
    );
    await expect(inspectArchive(failing, TGZ, { inflateInWorker: true })).rejects.toThrow('connection reset');
  });
});
