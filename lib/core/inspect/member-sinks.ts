/** Where a member's content goes while the archive is read: its hash, and a copy of the root manifest. */
import { createHash, type Hash } from 'node:crypto';
import { MAX_MANIFEST_BYTES } from '../manifest.ts';
import type { RestoreLimits } from '../restore/limits.ts';
import type { TarEntrySink } from './tar-parser.ts';

export class HashingSink implements TarEntrySink {
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  constructor(
    private readonly path: string,
    private readonly limits: RestoreLimits,
    private readonly counter: { hashed: number },
    private readonly done: (digest: Buffer, size: number) => void,
  ) {}
  write(chunk: Buffer): void {
    // Counted before hashing: a chunk past the limit is never hashed.
    this.limits.add(chunk.length, this.path);
    this.size += chunk.length;
    this.counter.hashed += chunk.length;
    this.hash.update(chunk);
  }
  end(): void {
    this.done(this.hash.digest(), this.size);
  }
}

/** Keeps a copy of the root SHA256SUMS in one buffer sized from its header (no chunk list, no concat). */
export class ManifestCapture implements TarEntrySink {
  private buffer: Buffer;
  private size = 0;
  overflow = false;
  constructor(
    private readonly inner: TarEntrySink,
    expectedSize: number,
    private readonly done: (text: Buffer | undefined) => void,
  ) {
    this.overflow = expectedSize > MAX_MANIFEST_BYTES;
    this.buffer = Buffer.allocUnsafe(this.overflow ? 0 : expectedSize);
  }
  write(chunk: Buffer): void {
    this.inner.write(chunk);
    if (this.overflow) return;
    const needed = this.size + chunk.length;
    if (needed > MAX_MANIFEST_BYTES) {
      this.overflow = true;
      this.buffer = Buffer.alloc(0);
      return;
    }
    if (needed > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(
        Math.min(MAX_MANIFEST_BYTES, Math.max(needed, this.buffer.length * 2)),
      );
      this.buffer.copy(bigger, 0, 0, this.size);
      this.buffer = bigger;
    }
    chunk.copy(this.buffer, this.size);
    this.size = needed;
  }
  end(): void {
    this.inner.end();
    this.done(this.overflow ? undefined : this.buffer.subarray(0, this.size));
  }
}
