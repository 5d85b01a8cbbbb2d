import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../lib/core/retry.ts';

describe('issue 11: one backoff for the retries the SDK cannot do', () => {
  it('doubles from the base, stays under the cap, and waits nothing before the first attempt', () => {
    expect(backoffMs(0, { baseMs: 100 }, () => 0.999)).toBe(0);
    expect(backoffMs(1, { baseMs: 100 }, () => 1)).toBe(100);
    expect(backoffMs(3, { baseMs: 100 }, () => 1)).toBe(400);
    expect(backoffMs(30, { baseMs: 100, capMs: 20_000 }, () => 1)).toBe(20_000);
  });

  it('full jitter may wait nothing; minShare 0.5 waits at least half the ceiling', () => {
    expect(backoffMs(4, { baseMs: 1000 }, () => 0)).toBe(0);
    expect(backoffMs(2, { baseMs: 1000, minShare: 0.5 }, () => 0)).toBe(1000);
    expect(backoffMs(2, { baseMs: 1000, minShare: 0.5 }, () => 0.5)).toBe(1500);
  });
});
