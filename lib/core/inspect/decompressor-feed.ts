import type { Transform } from 'node:stream';

/**
 * Hands stored chunks to a decompressor one at a time, with the next one held ready: zlib
 * starts it from the callback of the one it finished, without a turn of the event loop in
 * between. A chunk counts as fed once it is handed over, as when each write waited for drain.
 */
export class DecompressorFeed {
  /** Stored bytes handed to the decompressor. */
  fed = 0;
  private busy = false;
  private waiting: Buffer | undefined;
  private handedOver: (() => void) | undefined;

  constructor(
    private readonly decompressor: Transform,
    /** Settles when the decompressor ends, closes or fails: nothing more is waited for. */
    private readonly settled: Promise<void>,
    /** False once the pass stopped feeding (a limit, damage). */
    private readonly feeding: () => boolean,
  ) {}

  /** Returns once the chunk is handed over or held ready. */
  async write(chunk: Buffer): Promise<void> {
    if (this.waiting) await this.untilHandedOver();
    if (!this.feeding()) return;
    if (this.busy) this.waiting = chunk;
    else this.start(chunk);
  }

  /** Returns once the chunk held ready (if any) is handed over. */
  async flush(): Promise<void> {
    if (this.waiting) await this.untilHandedOver();
  }

  private untilHandedOver(): Promise<void> {
    return Promise.race([
      new Promise<void>((resolve) => {
        this.handedOver = resolve;
      }),
      this.settled,
    ]);
  }

  private start(chunk: Buffer): void {
    this.busy = true;
    this.fed += chunk.length;
    this.decompressor.write(chunk, () => {
      this.busy = false;
      const next = this.waiting;
      this.waiting = undefined;
      if (next && this.feeding() && !this.decompressor.destroyed) this.start(next);
      const handedOver = this.handedOver;
      this.handedOver = undefined;
      handedOver?.();
    });
  }
}
