import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

export type BackupCompression = 'gzip' | 'zstd';

export const BACKUP_SUFFIX: Record<BackupCompression, string> = { gzip: '.tar.gz', zstd: '.tar.zst' };

/** gzip -6 and zstd -3: the levels `tar -czf` and `zstd` use by default. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;
const CHUNK_SIZE = 512 * 1024;
/**
 * The input of one zstd frame when libzstd's streaming compressor is not at hand. 8 MiB is four
 * times zstd -3's 2 MiB window, so independent frames cost ~1 % of ratio, and memory stays bounded.
 */
export const ZSTD_FRAME_INPUT = 8 * 1024 * 1024;

type ZstdZlib = typeof zlib & {
  createZstdCompress?: (options?: { chunkSize?: number; params?: Record<number, number> }) => Transform;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number; ZSTD_c_checksumFlag?: number };
};

/** Which zstd compressor this runtime has: zlib's streaming one (Node 22.15+), else frames by WebAssembly. */
export function zstdCompressorKind(): 'zlib' | 'wasm-frames' {
  return typeof (zlib as ZstdZlib).createZstdCompress === 'function' ? 'zlib' : 'wasm-frames';
}

/** A compressing transform with bounded memory whatever the input's size. */
export async function createCompressor(compression: BackupCompression): Promise<Transform> {
  if (compression === 'gzip') return zlib.createGzip({ level: GZIP_LEVEL, chunkSize: CHUNK_SIZE });
  const z = zlib as ZstdZlib;
  if (z.createZstdCompress && z.constants.ZSTD_c_compressionLevel !== undefined) {
    const params: Record<number, number> = { [z.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL };
    if (z.constants.ZSTD_c_checksumFlag !== undefined) params[z.constants.ZSTD_c_checksumFlag] = 1;
    return z.createZstdCompress({ chunkSize: CHUNK_SIZE, params });
  }
  return new ZstdFrameCompress(await loadWasmCompress());
}

type CompressFn = (data: Uint8Array, level: number) => Uint8Array;
let wasm: Promise<CompressFn> | undefined;

/**
 * @bokuweb/zstd-wasm exports libzstd's one-shot ZSTD_compress only (no ZSTD_compressStream2), so
 * the stream is cut into frames of ZSTD_FRAME_INPUT bytes: concatenated frames are one valid
 * zstd stream to every decompressor (zstd -d, zlib, libzstd).
 */
function loadWasmCompress(): Promise<CompressFn> {
  wasm ??= (async () => {
    const require = createRequire(import.meta.url);
    const zstd = require('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress: CompressFn };
    await zstd.init();
    return zstd.compress;
  })();
  return wasm;
}

class ZstdFrameCompress extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly compress: CompressFn) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(chunk.length - offset, ZSTD_FRAME_INPUT - this.pendingBytes);
        this.pending.push(chunk.subarray(offset, offset + take));
        this.pendingBytes += take;
        offset += take;
        if (this.pendingBytes === ZSTD_FRAME_INPUT) this.frame();
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.pendingBytes > 0) this.frame();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private frame(): void {
    const input = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const out = this.compress(input, ZSTD_LEVEL);
    this.push(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }
}
