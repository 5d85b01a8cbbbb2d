import { describe, expect, it } from 'vitest';
import { parseCli } from '../../lib/cli/args.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { defaultConcurrency, forEachLimited } from '../../lib/core/limit.ts';

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
});
