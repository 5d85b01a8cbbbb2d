import { describe, expect, it } from 'vitest';
import { humanCount } from '../../lib/core/units.ts';

describe('issue 13: counts with thousands separators, without ICU at start-up', () => {
  it('writes whole counts as toLocaleString("en-US") does', () => {
    const counts = [
      0, 1, 7, 42, 999, 1_000, 1_001, 12_345, 123_456, 999_999, 1_000_000, 20_007, -1_234, 9_876_543_210,
    ];
    for (const n of counts) expect(humanCount(n), String(n)).toBe(n.toLocaleString('en-US'));
  });
});
