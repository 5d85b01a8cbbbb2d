import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../lib/core/config.ts';
import { finding } from '../../lib/core/findings.ts';
import { integrityScore, integrityVerdict, type ObjectTally, scoreComponents } from '../../lib/core/score.ts';

const clean: ObjectTally = {
  objects: 4,
  verified: 4,
  unreferenced: 0,
  readFully: 4,
  archives: 0,
  archivesClean: 0,
};

describe('integrity score', () => {
  it('is 1 for a fully verified, fully read backup without archives', () => {
    expect(scoreComponents(clean)).toEqual({ checksum: 1, access: 1, archive: 1 });
    expect(integrityScore(clean, DEFAULT_POLICY.weights)).toBe(1);
  });

  it('counts objects without a reference as half verified', () => {
    const tally = { ...clean, verified: 2, unreferenced: 2 };
    expect(scoreComponents(tally).checksum).toBe(0.75);
    expect(integrityScore(tally, DEFAULT_POLICY.weights)).toBe(0.9);
  });

  it('weights the components as the policy says', () => {
    const tally: ObjectTally = {
      objects: 2,
      verified: 0,
      unreferenced: 0,
      readFully: 1,
      archives: 2,
      archivesClean: 1,
    };
    expect(scoreComponents(tally)).toEqual({ checksum: 0, access: 0.5, archive: 0.5 });
    expect(integrityScore(tally, { checksum: 0.4, access: 0.4, archive: 0.2 })).toBe(0.3);
    expect(integrityScore(tally, { checksum: 0, access: 1, archive: 0 })).toBe(0.5);
  });

  it('keeps only the archive component for a backup with no objects', () => {
    expect(integrityScore({ ...clean, objects: 0, verified: 0, readFully: 0 }, DEFAULT_POLICY.weights)).toBe(
      0.2,
    );
  });
});

describe('integrity verdict', () => {
  const error = finding('CHECKSUM_MISMATCH', 'x differs');
  const warning = finding('UNLISTED_OBJECT', 'y is extra');
  it('fails on any error finding whatever the score', () => {
    expect(integrityVerdict([error], 1, DEFAULT_POLICY)).toBe('FAIL');
    expect(integrityVerdict([warning, error], 0.99, DEFAULT_POLICY)).toBe('FAIL');
  });
  it('warns on a warning, or on a score under the threshold', () => {
    expect(integrityVerdict([warning], 1, DEFAULT_POLICY)).toBe('WARN');
    expect(integrityVerdict([], 0.89, DEFAULT_POLICY)).toBe('WARN');
    expect(integrityVerdict([], 0.89, { ...DEFAULT_POLICY, integrityThreshold: 0.8 })).toBe('PASS');
  });
  it('passes a clean backup at or above the threshold', () => {
    expect(integrityVerdict([], 0.9, DEFAULT_POLICY)).toBe('PASS');
  });
});
