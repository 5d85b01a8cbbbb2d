import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createDecompressor } from '../../lib/core/compression.ts';
import { WasmZstdDecompress } from '../../lib/core/zstd-wasm.ts';
import { chunked, flipBit, sampleBytes } from '../support/archives.ts';
import { skippableFrame, zstd } from '../support/zstd.ts';

const CHUNK_SIZES = [7, 509, 65537, 300_001];

/** What the checks use, and the WebAssembly decompressor with a small output chunk. */
const DECOMPRESSORS: Array<[string, () => Transform]> = [
  ['createDecompressor', () => createDecompressor('zstd')],
  ['WasmZstdDecompress', () => new WasmZstdDecompress(64 * 1024)],
];

async function decompress(
  make: () => Transform,
  data: Buffer,
  chunkSize?: number,
): Promise<{ output: Buffer; error?: Error & { code?: string } }> {
  const parts: Buffer[] = [];
  const input = chunkSize ? chunked(data, chunkSize) : Readable.from([data]);
  try {
    await pipeline(input, make(), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) parts.push(chunk);
    });
    return { output: Buffer.concat(parts) };
  } catch (error) {
    return { output: Buffer.concat(parts), error: error as Error & { code?: string } };
  }
}

// Text that compresses into real (FSE/Huffman) blocks, random data into raw blocks, over several 128 KiB blocks.
const content = Buffer.concat([sampleBytes(700_000, 5), randomBytes(200_000), sampleBytes(100_000, 6)]);

describe.each(DECOMPRESSORS)('zstd streaming: %s', (_name, make) => {
  it('gives the same bytes for the whole input and for odd-sized chunks', async () => {
    const compressed = await zstd(content, { level: 9 });
    expect(compressed.length).toBeLessThan(content.length / 2);
    for (const size of [undefined, ...CHUNK_SIZES]) {
      const { output, error } = await decompress(make, compressed, size);
      expect(error, `chunks of ${size}`).toBeUndefined();
      expect(output.equals(content), `chunks of ${size}`).toBe(true);
    }
  });

  it('reads concatenated frames and skips skippable frames, as `zstd -dc` does', async () => {
    const a = sampleBytes(50_000, 1);
    const b = sampleBytes(30_000, 2);
    const data = Buffer.concat([
      skippableFrame(Buffer.from('index')),
      await zstd(a),
      await zstd(b, { checksum: false }),
      skippableFrame(Buffer.alloc(0)),
    ]);
    for (const size of [undefined, 1, 4099]) {
      const { output, error } = await decompress(make, data, size);
      expect(error).toBeUndefined();
      expect(output.equals(Buffer.concat([a, b]))).toBe(true);
    }
  });

  it('reports a stream cut short as zlib does: Z_BUF_ERROR, "unexpected end of file"', async () => {
    const compressed = await zstd(content);
    for (const cut of [0, 3, 10, Math.floor(compressed.length / 2), compressed.length - 1]) {
      const { error } = await decompress(make, compressed.subarray(0, cut), 1000);
      expect(error, `cut at ${cut}`).toMatchObject({ code: 'Z_BUF_ERROR' });
      expect(error?.message, `cut at ${cut}`).toMatch(/unexpected end of file/);
    }
  });

  it('reports damage (bad block, bad checksum, trailing garbage) as an error that is not a truncation', async () => {
    const compressed = await zstd(sampleBytes(200_000, 9), { level: 9 });
    const raw = randomBytes(10_000);
    const rawFrame = await zstd(raw);
    const damaged = [
      ['a damaged block', flipBit(compressed, 40, 3)],
      ['a flipped byte in a raw block (only the checksum sees it)', flipBit(rawFrame, 5000)],
      ['a damaged checksum', flipBit(rawFrame, rawFrame.length - 2)],
      ['garbage after a frame', Buffer.concat([rawFrame, Buffer.from('not zstd at all')])],
      ['data that is not zstd', Buffer.from('hello, this is plain text and not a zstd frame')],
    ] as const;
    for (const [what, data] of damaged) {
      const { error } = await decompress(make, data);
      expect(error, what).toBeInstanceOf(Error);
      expect(error?.code, what).not.toBe('Z_BUF_ERROR');
      expect(error?.message, what).not.toMatch(/unexpected end of file/);
    }
  });
});

describe('the WebAssembly zstd decompressor', () => {
  it('names the damage it finds with an ERR_ZSTD_ code', async () => {
    const raw = randomBytes(10_000);
    const rawFrame = await zstd(raw);
    const bad = async (data: Buffer) => (await decompress(() => new WasmZstdDecompress(), data)).error;
    expect(await bad(flipBit(rawFrame, 5000))).toMatchObject({
      code: 'ERR_ZSTD_CHECKSUM_WRONG',
      message: expect.stringMatching(/checksum does not match/),
    });
    expect(await bad(Buffer.from('plain text, no zstd here'))).toMatchObject({
      code: 'ERR_ZSTD_PREFIX_UNKNOWN',
    });
    expect(await bad(flipBit(await zstd(sampleBytes(200_000, 9), { level: 9 }), 40, 3))).toMatchObject({
      code: expect.stringMatching(/^ERR_ZSTD_/),
    });
  });

  it('holds no more than its buffers while its reader does not read (a 256 MiB bomb of 8 KiB)', async () => {
    // 2,048 RLE blocks of 128 KiB of zeros: 256 MiB from 8 KiB. A block header is 3 bytes,
    // little-endian: last-block bit, type (1 = RLE) in bits 1-2, size from bit 3; then the byte.
    const block = Buffer.from([0x02, 0x00, 0x10, 0x00]);
    const last = Buffer.from([0x03, 0x00, 0x10, 0x00]);
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]); // no checksum, 2 MiB window
    const blocks = 2048;
    const bomb = Buffer.concat([header, ...Array.from({ length: blocks - 1 }, () => block), last]);
    const decompressor = new WasmZstdDecompress(64 * 1024);
    decompressor.end(bomb);
    // Let it run until it waits for its reader.
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(decompressor.readableLength).toBeGreaterThan(0);
    expect(decompressor.readableLength).toBeLessThanOrEqual(decompressor.readableHighWaterMark + 64 * 1024);
    let total = 0;
    decompressor.on('data', (chunk: Buffer) => {
      total += chunk.length;
    });
    await once(decompressor, 'end');
    expect(total).toBe(blocks * 131_072);
  });

  it('frees its decoder when destroyed while waiting for its reader', async () => {
    const decompressor = new WasmZstdDecompress(64 * 1024);
    decompressor.write(await zstd(Buffer.alloc(4 * 1024 * 1024)));
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    decompressor.destroy();
    await once(decompressor, 'close');
    expect(decompressor.destroyed).toBe(true);
    // The shared WebAssembly module still works for the next stream.
    const again = await decompress(() => new WasmZstdDecompress(), await zstd(Buffer.from('after')));
    expect(again.output.toString()).toBe('after');
  });
});

describe('which zstd decompressor the checks use', () => {
  it("regression: not zlib's of Node 22.15+, which read a multi-frame file's first frame only and passed input cut short", () => {
    expect(createDecompressor('zstd')).toBeInstanceOf(WasmZstdDecompress);
  });
});
