import { randomBytes } from 'node:crypto';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  type BackupCompression,
  createCompressor,
  ZSTD_FRAME_INPUT,
  zstdCompressorKind,
} from '../../lib/core/backup/compress.ts';
import { createDecompressor } from '../../lib/core/compression.ts';
import { chunked, flipBit, sampleBytes } from '../support/archives.ts';

async function collect(source: NodeJS.ReadableStream, transform: Transform): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(source, transform, async (out: AsyncIterable<Buffer>) => {
    for await (const chunk of out) parts.push(chunk);
  });
  return Buffer.concat(parts);
}

// Past one WebAssembly frame (Node 20), so that frames are concatenated; text and random bytes.
const content = Buffer.concat([
  sampleBytes(ZSTD_FRAME_INPUT - 100_000, 3),
  randomBytes(300_000),
  sampleBytes(500_000, 4),
]);

/**
 * The backup command's compressors on this runtime (zstd: zlib's streaming one on Node 22.15+,
 * libzstd frames by WebAssembly before), read back by what the checks use.
 */
describe.each(['gzip', 'zstd'] as BackupCompression[])(
  `backup compression %s (zstd by ${zstdCompressorKind()})`,
  (compression) => {
    const compress = async () => collect(chunked(content, 65_537), await createCompressor(compression));

    it('reads back to the same bytes, from input fed in odd-sized chunks', async () => {
      const compressed = await compress();
      expect(compressed.length).toBeLessThan(content.length);
      const restored = await collect(chunked(compressed, 4099), createDecompressor(compression));
      expect(restored.equals(content)).toBe(true);
    });

    it('a cut is an error on reading (Z_BUF_ERROR), never a short stream', async () => {
      const cut = (await compress()).subarray(0, -7);
      await expect(collect(chunked(cut, 4099), createDecompressor(compression))).rejects.toMatchObject({
        code: 'Z_BUF_ERROR',
      });
    });

    // libzstd's one-shot compressor (WebAssembly, Node 20) writes frames without a content
    // checksum; the backup's SHA256SUMS and sidecar vouch for those bytes instead.
    it.runIf(compression === 'gzip' || zstdCompressorKind() === 'zlib')(
      'carries a content checksum: a flipped bit is an error on reading, never wrong bytes',
      async () => {
        const compressed = await compress();
        const flipped = flipBit(compressed, Math.floor(compressed.length * 0.6));
        const read = await collect(chunked(flipped, 4099), createDecompressor(compression)).then(
          () => 'read without error',
          (error: Error) => error.message,
        );
        expect(read).not.toBe('read without error');
      },
    );
  },
);
