import { describe, expect, it } from 'vitest';
import { parseCli } from '../../lib/cli/args.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { defaultConcurrency, forEachLimited, mapLimited } from '../../lib/core/limit.ts';

describe('issue 13: --concurrency', () => {
  it('takes a whole number >= 1 and refuses anything else as a usage error', () => {
    expect(parseCli(['integrity', '--source', 'b', '--concurrency', '3'])).toMatchObject({ concurrency: 3 });
    expect(parseCli(['integrity', '--source', 'b'])).not.toHaveProperty('concurrency');
    for (const bad of ['0', '-1', '1.5', 'many'])
      expect(() => parseCli(['integrity', '--source', 'b', '--concurrency', bad])).toThrow(UsageError);
  });

  it('defaults to the cores, at least 1 and at most 4', () => {
    expect(defaultConcurrency()).toBeGreaterThanOrEqual(1);
    expect(defaultConcurrency()).toBeLessThanOrEqual(4);
  });

  it('runs at most the limit at once, every item once, and stops taking items after a failure', async () => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (item, index) => {
      expect(index).toBe(item - 1);
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(item);
      running--;
    });
    expect(peak).toBe(3);
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);

    const started: number[] = [];
    await expect(
      forEachLimited([1, 2, 3, 4, 5], 1, async (item) => {
        started.push(item);
        if (item === 2) throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
  });

  it("issue 11: mapLimited keeps the results in the items' order, whatever order they finish in", async () => {
    const out = await mapLimited([3, 1, 2], 3, async (item, index) => {
      for (let i = 0; i < item; i++) await new Promise((resolve) => setImmediate(resolve));
      return `${index}:${item}`;
    });
    expect(out).toEqual(['0:3', '1:1', '2:2']);
  });

  it('issue 11: an aborted signal stops taking new items; a failure is thrown after the items in flight settle', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    await forEachLimited(
      [1, 2, 3, 4],
      1,
      async (item) => {
        started.push(item);
        if (item === 2) controller.abort();
      },
      { signal: controller.signal },
    );
    expect(started).toEqual([1, 2]);

    let slowDone = false;
    await expect(
      forEachLimited([1, 2], 2, async (item) => {
        if (item === 1) throw new Error('first');
        for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
        slowDone = true;
      }),
    ).rejects.toThrow('first');
    expect(slowDone).toBe(true);
  });
});
