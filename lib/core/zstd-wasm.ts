import { Transform, type TransformCallback } from 'node:stream';
import { ZSTDDecoder } from 'zstddec/stream';

/**
 * zstd decompression on every runtime (see createDecompressor for why not zlib's): the reference libzstd
 * decoder (1.5.7, compiled to WebAssembly and shipped inside the `zstddec` package) driven
 * through its streaming API. zstddec's own streaming wrapper loops forever on damaged input
 * and cannot wait for more input, so only its WebAssembly instance is used, through the
 * `_init` hook its typings declare. libzstd checks each frame's content checksum, handles
 * concatenated and skippable frames, and refuses windows over 128 MiB as the zstd CLI does.
 */

interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(pointer: number): void;
  ZSTD_createDCtx(): number;
  ZSTD_freeDCtx(dctx: number): number;
  ZSTD_decompressStream(dctx: number, output: number, input: number): number;
}

let loading: Promise<ZstdExports> | undefined;

function loadZstd(): Promise<ZstdExports> {
  loading ??= (async () => {
    let exports: ZstdExports | undefined;
    const decoder = new ZSTDDecoder();
    const init = decoder._init;
    // zstddec passes the instantiated module to `this._init`; keep its exports, then let it set up.
    decoder._init = (result: { instance: { exports: unknown } }) => {
      exports = result.instance.exports as ZstdExports;
      init.call(decoder, result);
    };
    await decoder.init();
    if (!exports) throw new Error('the zstd WebAssembly module was instantiated before this hook was set');
    return exports;
  })();
  return loading;
}

/** libzstd's error codes (zstd_errors.h) that a damaged or unusual archive can raise. */
const ZSTD_ERRORS: Record<number, [code: string, message: string]> = {
  1: ['ERR_ZSTD_GENERIC', 'zstd decompression failed'],
  10: [
    'ERR_ZSTD_PREFIX_UNKNOWN',
    'unknown frame descriptor (not zstd data, or data that is not zstd follows a frame)',
  ],
  12: ['ERR_ZSTD_VERSION_UNSUPPORTED', 'unsupported zstd frame version'],
  14: ['ERR_ZSTD_FRAME_PARAMETER_UNSUPPORTED', 'unsupported zstd frame parameter'],
  16: [
    'ERR_ZSTD_WINDOW_TOO_LARGE',
    'the frame needs a window over 128 MiB (made with zstd --long=28 or more), which zstd refuses by default',
  ],
  20: ['ERR_ZSTD_CORRUPTION_DETECTED', 'corrupted block detected'],
  22: ['ERR_ZSTD_CHECKSUM_WRONG', 'the frame content checksum does not match the decompressed data'],
  24: ['ERR_ZSTD_LITERALS_HEADER_WRONG', 'corrupted literals header'],
  32: ['ERR_ZSTD_DICTIONARY_WRONG', 'the frame needs a zstd dictionary, which a backup archive cannot carry'],
  64: ['ERR_ZSTD_MEMORY_ALLOCATION', 'the decompressor ran out of memory'],
};

export class ZstdStreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ZstdStreamError';
  }
}

function zstdError(ret: number): ZstdStreamError {
  const [code, message] = ZSTD_ERRORS[-ret] ?? [`ERR_ZSTD_${-ret}`, `zstd error ${-ret}`];
  return new ZstdStreamError(message, code);
}

/** Compressed bytes handed to libzstd per call: bounds the output one call can make us hold. */
const INPUT_SLICE = 128 * 1024;
/** ZSTD_inBuffer / ZSTD_outBuffer: { pointer, size_t size, size_t pos }, 4 bytes each on wasm32. */
const BUFFER_STRUCT = 12;

/**
 * A zstd-decompressing Transform over the WebAssembly libzstd. It stops while its reader is
 * full, so a small input that expands hugely is never held whole. Errors carry `code`
 * `Z_BUF_ERROR` and "unexpected end of file" for a stream cut short (as zlib's do), and an
 * `ERR_ZSTD_*` code for damage. `bytesWritten` counts the compressed bytes consumed.
 */
export class WasmZstdDecompress extends Transform {
  bytesWritten = 0;
  private zstd: ZstdExports | undefined;
  private dctx = 0;
  private inPtr = 0;
  private outPtr = 0;
  private structs = 0;
  /** libzstd's hint after the last call: 0 when a frame has just ended. */
  private hint = 0;
  private sawInput = false;
  private resumeRead: (() => void) | undefined;

  constructor(private readonly outputSize = 512 * 1024) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.decompress(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    // Each chunk was decompressed until libzstd held nothing back; a frame still open at the end
    // of the input (or no frame at all) was cut short.
    if (this.hint !== 0 || !this.sawInput) {
      callback(Object.assign(new ZstdStreamError('unexpected end of file', 'Z_BUF_ERROR'), { errno: -5 }));
      return;
    }
    this.release();
    callback();
  }

  override _read(size: number): void {
    const resume = this.resumeRead;
    this.resumeRead = undefined;
    resume?.();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.release();
    const resume = this.resumeRead;
    this.resumeRead = undefined;
    resume?.();
    callback(error);
  }

  private async start(): Promise<ZstdExports> {
    if (this.zstd) return this.zstd;
    const zstd = await loadZstd();
    if (this.destroyed) throw new Error('the zstd decompressor was destroyed');
    this.dctx = zstd.ZSTD_createDCtx();
    this.inPtr = zstd.malloc(INPUT_SLICE);
    this.outPtr = zstd.malloc(this.outputSize);
    this.structs = zstd.malloc(2 * BUFFER_STRUCT);
    if (!this.dctx || !this.inPtr || !this.outPtr || !this.structs) {
      this.release();
      throw zstdError(-64);
    }
    this.zstd = zstd;
    return zstd;
  }

  private release(): void {
    const zstd = this.zstd;
    if (!zstd) return;
    this.zstd = undefined;
    zstd.ZSTD_freeDCtx(this.dctx);
    zstd.free(this.inPtr);
    zstd.free(this.outPtr);
    zstd.free(this.structs);
  }

  private async decompress(chunk: Buffer): Promise<void> {
    const zstd = await this.start();
    const input = this.structs;
    const output = this.structs + BUFFER_STRUCT;
    if (chunk.length > 0) this.sawInput = true;
    let offset = 0;
    while (offset < chunk.length) {
      const slice = chunk.subarray(offset, offset + INPUT_SLICE);
      offset += slice.length;
      new Uint8Array(zstd.memory.buffer, this.inPtr, slice.length).set(slice);
      let view = new DataView(zstd.memory.buffer);
      view.setUint32(input, this.inPtr, true);
      view.setUint32(input + 4, slice.length, true);
      view.setUint32(input + 8, 0, true);
      for (;;) {
        view.setUint32(output, this.outPtr, true);
        view.setUint32(output + 4, this.outputSize, true);
        view.setUint32(output + 8, 0, true);
        const ret = zstd.ZSTD_decompressStream(this.dctx, output, input);
        // The memory may have grown (a larger window): views over the old buffer are detached.
        view = new DataView(zstd.memory.buffer);
        const consumed = view.getUint32(input + 8, true);
        if (ret < 0) {
          this.bytesWritten += consumed;
          throw zstdError(ret);
        }
        this.hint = ret;
        const produced = view.getUint32(output + 8, true);
        if (produced > 0) {
          const out = Buffer.allocUnsafe(produced);
          out.set(new Uint8Array(zstd.memory.buffer, this.outPtr, produced));
          if (!this.push(out)) {
            await new Promise<void>((resolve) => {
              this.resumeRead = resolve;
            });
            if (this.destroyed) throw new Error('the zstd decompressor was destroyed');
            view = new DataView(zstd.memory.buffer);
          }
        }
        // Done with this slice once it is consumed and libzstd holds nothing back: it did not fill
        // the output, or it just ended a frame (calling again would start the next one).
        if (consumed === slice.length && (produced < this.outputSize || ret === 0)) {
          this.bytesWritten += consumed;
          break;
        }
      }
    }
  }
}
