import type { Transform } from 'node:stream';

/** The native zlib handle under Node's zlib streams (`node:zlib`'s own sync path drives it the same way). */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Buffer,
    inOffset: number,
    inLength: number,
    output: Buffer,
    outOffset: number,
    outLength: number,
  ): void;
  onerror: (message: string, errno: number, code?: string) => void;
}

interface ZlibInternals {
  _handle?: ZlibHandle | null;
  _writeState?: Uint32Array;
  _chunkSize?: number;
  /** The stream's own flush flags (zstd's differ from zlib's constants). */
  _defaultFlushFlag?: number;
  _finishFlushFlag?: number;
}

/**
 * Drives a zlib decompressor synchronously on the calling thread, into one output buffer reused
 * for every piece. Node's zlib stream sends each piece of output from the thread pool back to
 * this thread through the event loop and allocates a fresh buffer for it: on the bench's 1 GiB
 * archive that round trip and the page faults of the fresh buffers doubled the time inflate took
 * (`npm run bench -- integrity`). Pieces are cut where the stream would cut them (the output buffer
 * full, or the input used up), so a consumer sees the same chunks; each piece is valid only until
 * `deliver` returns, so the consumer must copy what it keeps (the tar parser and the member sinks do).
 */
export class SyncDecompressor {
  /** Stored bytes zlib consumed in the calls that succeeded (the stream's `bytesWritten`). */
  consumed = 0;
  /** The error zlib reported; nothing more is decompressed after it. */
  error: (Error & { code?: string; errno?: number }) | undefined;
  private readonly output: Buffer;
  private outOffset = 0;
  private finished = false;

  private constructor(
    private readonly stream: Transform,
    private readonly handle: ZlibHandle,
    private readonly state: Uint32Array,
    chunkSize: number,
    private readonly flushFlags: { write: number; finish: number },
  ) {
    this.output = Buffer.allocUnsafe(chunkSize);
    // Replaces the stream's own handler, which would destroy the (unused) stream with the error.
    handle.onerror = (message, errno, code) => {
      this.error = Object.assign(new Error(message), { errno, ...(code !== undefined ? { code } : {}) });
    };
  }

  /** Takes over a zlib decompressing stream not yet written to; undefined when it is not one (the WebAssembly zstd). */
  static from(stream: Transform): SyncDecompressor | undefined {
    const internals = stream as Transform & ZlibInternals;
    const handle = internals._handle;
    const state = internals._writeState;
    const chunkSize = internals._chunkSize;
    const write = internals._defaultFlushFlag;
    const finish = internals._finishFlushFlag;
    if (
      !handle ||
      typeof handle.writeSync !== 'function' ||
      !(state instanceof Uint32Array) ||
      state.length < 2 ||
      typeof chunkSize !== 'number' ||
      typeof write !== 'number' ||
      typeof finish !== 'number'
    )
      return undefined;
    return new SyncDecompressor(stream, handle, state, chunkSize, { write, finish });
  }

  /**
   * Decompresses `input`, handing each piece of output to `deliver`, which returns false to stop
   * (a limit passed). Returns false once nothing more is to be decompressed: zlib failed (see
   * `error`) or `deliver` stopped it.
   */
  write(input: Buffer, deliver: (piece: Buffer) => boolean): boolean {
    return this.run(this.flushFlags.write, input, deliver);
  }

  /** The input ended: what zlib still holds, and its check that the stream was complete. */
  end(deliver: (piece: Buffer) => boolean): boolean {
    return this.run(this.flushFlags.finish, Buffer.alloc(0), deliver);
  }

  /** Frees zlib's memory; the decompressor cannot be used after. */
  close(): void {
    this.finished = true;
    this.stream.destroy();
  }

  private run(flush: number, input: Buffer, deliver: (piece: Buffer) => boolean): boolean {
    if (this.finished || this.error) return false;
    let inOffset = 0;
    let available = input.length;
    for (;;) {
      const room = this.output.length - this.outOffset;
      this.handle.writeSync(flush, input, inOffset, available, this.output, this.outOffset, room);
      if (this.error) {
        this.finished = true;
        return false;
      }
      const availableOut = this.state[0] as number;
      const availableIn = this.state[1] as number;
      const used = available - availableIn;
      this.consumed += used;
      inOffset += used;
      available = availableIn;
      const produced = room - availableOut;
      const piece = this.output.subarray(this.outOffset, this.outOffset + produced);
      this.outOffset += produced;
      // The buffer is full (or zlib has more to give): the next piece starts over at its beginning.
      if (availableOut === 0 || this.outOffset >= this.output.length) this.outOffset = 0;
      if (produced > 0 && !deliver(piece)) {
        this.finished = true;
        return false;
      }
      if (availableOut !== 0) return true;
    }
  }
}
