import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createDecompressor } from '../../lib/core/compression.ts';
import { DecompressorFeed } from '../../lib/core/inspect/decompressor-feed.ts';

function settledOf(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

describe('DecompressorFeed', () => {
  it('hands every chunk over in order, holding at most one ready, and counts only what was handed over', async () => {
    const plain = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(4 << 20, 'a')]);
    const stored = gzipSync(plain);
    const gunzip = createDecompressor('gzip');
    const out: Buffer[] = [];
    gunzip.on('data', (chunk: Buffer) => out.push(chunk));
    const settled = settledOf(gunzip);
    const feed = new DecompressorFeed(gunzip, settled, () => true);
    let queuedMost = 0;
    let heldReady = 0;
    for (let at = 0; at < stored.length; at += 64 * 1024) {
      const chunk = stored.subarray(at, at + 64 * 1024);
      await feed.write(chunk);
      // In zlib's hands: the chunk it works on and the one handed over from its callback.
      queuedMost = Math.max(queuedMost, gunzip.writableLength);
      expect(feed.fed).toBeLessThanOrEqual(at + chunk.length);
      expect(feed.fed).toBeGreaterThanOrEqual(at);
      if (feed.fed === at) heldReady++;
    }
    await feed.flush();
    expect(feed.fed).toBe(stored.length);
    gunzip.end();
    await settled;
    expect(queuedMost).toBeLessThanOrEqual(2 * 64 * 1024);
    // The second chunk came while zlib still worked on the first: held ready, not yet counted.
    expect(heldReady).toBeGreaterThan(0);
    expect(Buffer.concat(out).equals(plain)).toBe(true);
  });

  it('stops handing chunks over once the pass stops feeding, and never waits on a destroyed decompressor', async () => {
    const stored = gzipSync(randomBytes(2 << 20));
    const gunzip = createDecompressor('gzip');
    gunzip.resume();
    const settled = settledOf(gunzip);
    let feeding = true;
    const feed = new DecompressorFeed(gunzip, settled, () => feeding);
    await feed.write(stored.subarray(0, 1024));
    await feed.write(stored.subarray(1024, 2048));
    feeding = false;
    gunzip.destroy();
    await feed.write(stored.subarray(2048, 4096));
    await feed.flush();
    await settled;
    expect(feed.fed).toBeLessThanOrEqual(2048);
  });
});
