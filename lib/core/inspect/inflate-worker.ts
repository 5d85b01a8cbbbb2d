import { Worker } from 'node:worker_threads';

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
const zlib = require('node:zlib');
const { control, input, output, slotBytes, slots } = workerData;
const inBuf = Buffer.from(input);
const outBuf = Buffer.from(output);
const stream = zlib.createGunzip({ chunkSize: slotBytes });
const handle = stream._handle;
const state = stream._writeState;
let error;
handle.onerror = (message, errno, code) => { error = { message, errno, code }; };
let slot = 0, outOffset = 0, consumed = 0, fed = 0, finished = false;
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
  if (finished) return;
  if (message.end) {
    finished = true;
    if (run(zlib.constants.Z_FINISH, 0, 0)) parentPort.postMessage({ done: true, consumed, fed });
    stream.destroy();
    return;
  }
  fed += message.length;
  if (!run(zlib.constants.Z_NO_FLUSH, message.at, message.length)) finished = true;
  parentPort.postMessage({ inputDone: message.at });
});
`;

type WorkerMessage =
  | { slot: number; start: number; length: number; fed: number; full: boolean }
  | { inputDone: number }
  | { error: { message: string; errno: number; code?: string }; consumed: number; fed: number }
  | { done: true; consumed: number; fed: number };

/**
 * gzip inflated in a worker thread while this thread parses and hashes what comes out: the two
 * halves of a pass of a large archive on two cores. Pieces arrive in order, each handed to
 * `deliver` with the stored bytes fed when it came out, and are valid until `deliver` returns.
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
  private stopped = false;
  private settle: (() => void) | undefined;
  private readonly settled: Promise<void>;
  private failure: Error | undefined;
  private finished = false;

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

  /** Hands a chunk of stored bytes over; returns once it is in the worker's queue. */
  async write(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += INPUT_SLOT_BYTES) {
      const part = chunk.subarray(at, at + INPUT_SLOT_BYTES);
      while (this.freeInput.length === 0 && this.running) {
        await Promise.race([
          new Promise<void>((resolve) => {
            this.inputWaiter = resolve;
          }),
          this.settled,
        ]);
      }
      if (!this.running) return;
      const slot = this.freeInput.pop() as number;
      part.copy(this.input, slot);
      this.worker.postMessage({ at: slot, length: part.length });
    }
  }

  /** The input ended: resolves once every piece was delivered and zlib checked the stream's end. */
  async end(): Promise<void> {
    if (this.running) this.worker.postMessage({ end: true });
    await this.settled;
    if (this.failure) throw this.failure;
  }

  /** Nothing more is wanted (a limit was passed): the worker stops at its next piece. */
  stop(): void {
    this.stopped = true;
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, RELEASED);
    this.settle?.();
  }

  close(): void {
    this.stop();
    void this.worker.terminate();
  }

  private get running(): boolean {
    return !this.stopped && !this.error && !this.failure;
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
      this.onError();
      this.settle?.();
    } else {
      this.consumed = message.consumed;
      this.fed = message.fed;
      this.finished = true;
      this.settle?.();
    }
  }

  private fail(error: Error): void {
    if (this.error || this.stopped || this.finished) return;
    this.failure ??= error;
    this.settle?.();
  }
}
