import { Worker } from 'node:worker_threads';

/** Below this a worker thread's start (tens of ms) costs more than inflating beside the parse saves. */
export const INFLATE_WORKER_MIN_BYTES = 16 * 1024 * 1024;
/** Output slots (each one piece of output at most, as zlib's stream cuts them) shared with the worker. */
const OUTPUT_SLOTS = 8;
/** Stored bytes a slot takes: a larger chunk of the input goes in several. */
const INPUT_SLOT_BYTES = 1024 * 1024;
/** Enough stored bytes queued that the worker rarely waits while this thread parses (measured: 3 were too few). */
const INPUT_SLOTS = 6;
/** control[RELEASED]: output slots the parsing thread is done with; control[STOP]: 1 once it wants no more. */
const RELEASED = 0;
const STOP = 1;

/**
 * Plain JavaScript run with `eval`, so the worker survives bundling and needs no TypeScript
 * loader. It drives zlib's handle as SyncDecompressor does (see there), into slots of shared
 * memory: no buffer is allocated or copied per piece, and a full ring of slots blocks it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zlib = require('node:zlib');
const { control, input, output, slotBytes, slots } = workerData;
const inBuf = Buffer.from(input);
const outBuf = Buffer.from(output);
const stored = createHash('sha256');
const stream = zlib.createGunzip({ chunkSize: slotBytes });
const handle = stream._handle;
const state = stream._writeState;
let error;
handle.onerror = (message, errno, code) => { error = { message, errno, code }; };
let slot = 0, outOffset = 0, consumed = 0, fed = 0, inflating = true;
const stopped = () => Atomics.load(control, ${STOP}) !== 0;
function slotFree() {
  for (;;) {
    if (stopped()) return false;
    const released = Atomics.load(control, ${RELEASED});
    if (slot - released < slots) return true;
    Atomics.wait(control, ${RELEASED}, released, 1000);
  }
}
function run(flush, offset, length) {
  let inOffset = offset, available = length;
  for (;;) {
    if (!slotFree()) return false;
    const base = (slot % slots) * slotBytes;
    const room = slotBytes - outOffset;
    handle.writeSync(flush, inBuf, inOffset, available, outBuf, base + outOffset, room);
    if (error) {
      parentPort.postMessage({ error, consumed, fed });
      return false;
    }
    const availableOut = state[0], availableIn = state[1];
    const used = available - availableIn;
    consumed += used; inOffset += used; available = availableIn;
    const produced = room - availableOut;
    const full = availableOut === 0;
    if (produced > 0)
      parentPort.postMessage({ slot: slot % slots, start: base + outOffset, length: produced, fed, full });
    outOffset += produced;
    if (full) { outOffset = 0; slot++; }
    if (!full) return true;
  }
}
parentPort.on('message', (message) => {
  if (message.end) {
    if (inflating && message.inflate) run(zlib.constants.Z_FINISH, 0, 0);
    inflating = false;
    stream.destroy();
    parentPort.postMessage({ done: true, consumed, fed, sha256: stored.digest('hex') });
    return;
  }
  // Every stored byte is hashed, after damage or a limit too: the object's checksum is still checked.
  stored.update(inBuf.subarray(message.at, message.at + message.length));
  if (inflating) {
    fed += message.length;
    if (!run(zlib.constants.Z_NO_FLUSH, message.at, message.length)) inflating = false;
  }
  parentPort.postMessage({ inputDone: message.at });
});
`;

type WorkerMessage =
  | { slot: number; start: number; length: number; fed: number; full: boolean }
  | { inputDone: number }
  | { error: { message: string; errno: number; code?: string }; consumed: number; fed: number }
  | { done: true; consumed: number; fed: number; sha256: string };

/**
 * gzip inflated in a worker thread while this thread parses and hashes what comes out: the two
 * halves of a pass of a large archive on two cores. The worker also hashes the stored bytes (the
 * busier half is this one, with the members' hashes and the tar parse). Pieces arrive in order,
 * each handed to `deliver` with the stored bytes fed when it came out, and are valid until
 * `deliver` returns.
 */
export class WorkerInflater {
  /** Stored bytes zlib consumed (known once it ended or failed). */
  consumed = 0;
  /** Stored bytes handed to zlib when it ended or failed. */
  fed = 0;
  error: (Error & { code?: string; errno?: number }) | undefined;
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  private readonly input = Buffer.from(new SharedArrayBuffer(INPUT_SLOTS * INPUT_SLOT_BYTES));
  private readonly output: Buffer;
  private readonly freeInput: number[] = [];
  private inputWaiter: (() => void) | undefined;
  /** No more pieces are wanted. */
  private stopped = false;
  private failure: Error | undefined;
  private sha256: string | undefined;
  private settle: (() => void) | undefined;
  /** Settles when the worker is done (the stored bytes' hash known) or failed. */
  private readonly settled: Promise<void>;

  constructor(
    slotBytes: number,
    private readonly deliver: (piece: Buffer, fed: number) => boolean,
    /** Called when zlib fails (see `error`), as soon as it is known. */
    private readonly onError: () => void,
  ) {
    for (let i = 0; i < INPUT_SLOTS; i++) this.freeInput.push(i * INPUT_SLOT_BYTES);
    const output = new SharedArrayBuffer(OUTPUT_SLOTS * slotBytes);
    this.output = Buffer.from(output);
    this.settled = new Promise<void>((resolve) => {
      this.settle = resolve;
    });
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        control: this.control,
        input: this.input.buffer,
        output,
        slotBytes,
        slots: OUTPUT_SLOTS,
      },
    });
    this.worker.on('message', (message: WorkerMessage) => this.onMessage(message));
    this.worker.once('error', (error) => this.fail(error));
    this.worker.once('exit', (code) =>
      this.fail(new Error(`the inflating worker stopped (exit code ${code})`)),
    );
  }

  /** A free input slot, to read stored bytes into and `submit`; valid until then. */
  async nextSlot(): Promise<Buffer> {
    while (this.freeInput.length === 0 && !this.failure) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.inputWaiter = resolve;
        }),
        this.settled,
      ]);
    }
    if (this.failure) throw this.failure;
    const at = this.freeInput.pop() as number;
    return this.input.subarray(at, at + INPUT_SLOT_BYTES);
  }

  /** Hands over the stored bytes read into the start of a slot from `nextSlot` (to hash, and to inflate unless stopped). */
  submit(slot: Buffer, length: number): void {
    this.worker.postMessage({ at: slot.byteOffset, length });
  }

  /** Gives back a slot from `nextSlot` that was not submitted. */
  release(slot: Buffer): void {
    this.freeInput.push(slot.byteOffset);
  }

  /** Copies a chunk of stored bytes into slots and hands them over. */
  async write(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += INPUT_SLOT_BYTES) {
      const part = chunk.subarray(at, at + INPUT_SLOT_BYTES);
      const slot = await this.nextSlot();
      part.copy(slot);
      this.submit(slot, part.length);
    }
  }

  /**
   * The input ended: once every piece was delivered (and, with `inflate`, zlib checked the
   * stream's end), resolves to the SHA-256 of the stored bytes.
   */
  async finish(inflate: boolean): Promise<string> {
    if (!this.failure) this.worker.postMessage({ end: true, inflate: inflate && !this.stopped });
    await this.settled;
    if (this.failure) throw this.failure;
    return this.sha256 as string;
  }

  /** Nothing more is to be inflated (a limit was passed): the worker stops at its next piece. */
  stop(): void {
    this.stopped = true;
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, RELEASED);
  }

  close(): void {
    this.stop();
    this.failure ??= new Error('the inflating worker was closed');
    this.settle?.();
    void this.worker.terminate();
  }

  private onMessage(message: WorkerMessage): void {
    if ('slot' in message) {
      if (
        !this.stopped &&
        !this.deliver(this.output.subarray(message.start, message.start + message.length), message.fed)
      )
        this.stop();
      if (message.full) {
        Atomics.add(this.control, RELEASED, 1);
        Atomics.notify(this.control, RELEASED);
      }
    } else if ('inputDone' in message) {
      this.freeInput.push(message.inputDone);
      const waiter = this.inputWaiter;
      this.inputWaiter = undefined;
      waiter?.();
    } else if ('error' in message) {
      this.consumed = message.consumed;
      this.fed = message.fed;
      this.error = Object.assign(new Error(message.error.message), {
        errno: message.error.errno,
        ...(message.error.code !== undefined ? { code: message.error.code } : {}),
      });
      this.stopped = true;
      this.onError();
    } else {
      this.consumed = message.consumed;
      this.fed = message.fed;
      this.sha256 = message.sha256;
      this.settle?.();
    }
  }

  private fail(error: Error): void {
    if (this.sha256 !== undefined) return;
    this.failure ??= error;
    this.settle?.();
  }
}
