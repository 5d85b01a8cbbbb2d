import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONFIG,
  effectiveRestoreLimits,
  globToRegExp,
  parseConfig,
  policyFor,
  SAFE_RESTORE_LIMITS,
} from '../../lib/core/config.ts';
import { UsageError } from '../../lib/core/errors.ts';

function usageErrorOf(document: unknown): UsageError {
  try {
    parseConfig(document);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error('expected a UsageError');
}

describe('configuration', () => {
  it('accepts the contract example and fills defaults key by key', () => {
    const config = parseConfig({
      defaults: { rpoMinutes: 60, restore: { select: 'all' } },
      series: { 'db-*': { rpoMinutes: 15 } },
      probes: [{ match: '*.db', command: "sqlite3 {file} 'PRAGMA integrity_check'", expect: 'ok' }],
    });
    expect(config.defaults.rpoMinutes).toBe(60);
    expect(config.defaults.rtoMinutes).toBe(30);
    expect(config.defaults.restore).toEqual({
      select: 'all',
      maxBytes: 0,
      maxExpansionRatio: 0,
      maxEntries: 0,
    });
    expect(policyFor(config, 'db-nightly').rpoMinutes).toBe(15);
    expect(policyFor(config, 'db-nightly').restore.select).toBe('all');
    expect(policyFor(config, 'web').rpoMinutes).toBe(60);
    expect(config.probes[0]).toEqual({
      match: '*.db',
      command: "sqlite3 {file} 'PRAGMA integrity_check'",
      expect: 'ok',
      timeoutSeconds: 300,
    });
  });

  it('treats an absent document as the embedded defaults', () => {
    expect(parseConfig(undefined)).toEqual(DEFAULT_CONFIG);
  });

  it.each([
    [{ defaultz: {} }, 'defaultz'],
    [{ defaults: { rpo: 5 } }, 'defaults.rpo'],
    [{ defaults: { rpoMinutes: '5' } }, 'defaults.rpoMinutes'],
    [{ defaults: { restore: { select: 'newest' } } }, 'defaults.restore.select'],
    [{ defaults: { restore: { maxEntries: 1.5 } } }, 'defaults.restore.maxEntries'],
    [{ defaults: { weights: { checksum: 0.5 } } }, 'defaults.weights'],
    [{ series: { web: { redundancy: { targets: 'x' } } } }, 'series.web.redundancy.targets'],
    [{ probes: [{ match: '*.db' }] }, 'probes[0].command'],
    [{ probes: [{ match: '*.db', command: 'x', when: 1 }] }, 'probes[0].when'],
    [[], undefined],
  ])('rejects %j naming the key', (document, key) => {
    const error = usageErrorOf(document);
    expect(error.key).toBe(key);
    if (key) expect(error.message).toContain(key);
  });

  it('replaces zero restore limits by the safe defaults, never by unlimited', () => {
    const config = parseConfig({ defaults: { restore: { maxEntries: 10 } } });
    expect(effectiveRestoreLimits(config.defaults)).toEqual({ ...SAFE_RESTORE_LIMITS, maxEntries: 10 });
  });

  it('matches series globs segment by segment', () => {
    expect(globToRegExp('backups/*').test('backups/mem0_storage')).toBe(true);
    expect(globToRegExp('backups/*').test('backups/a/b')).toBe(false);
    expect(globToRegExp('backups/**').test('backups/a/b')).toBe(true);
    expect(globToRegExp('db-?').test('db-1')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });
});
