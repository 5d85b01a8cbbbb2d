import { describe, expect, it } from 'vitest';
import { parseConfig, policyFor } from '../../lib/core/config.ts';
import { judgeImmutability, lifecycleExpiry, type ProtectedObject } from '../../lib/core/immutability.ts';
import type { Backup } from '../../lib/core/model.ts';
import type { BucketProtection } from '../../lib/core/ports.ts';

const DAY = 86_400_000;
const now = new Date('2026-11-30T00:00:00.000Z');
const written = new Date(now.getTime() - 2 * DAY);

const backup: Backup = {
  id: 's3://vault/db/db-20261128_000000.tar.gz',
  source: 's3://vault/db',
  series: 's3://vault/db/db',
  kind: 'archive',
  key: 'db-20261128_000000.tar.gz',
  name: 'db-20261128_000000.tar.gz',
  createdAt: written,
  createdFrom: 'name',
  objects: 1,
  bytes: 100,
  members: [],
  manifestKeys: [],
};

const bucket = (over: Partial<BucketProtection> = {}): BucketProtection => ({
  bucket: 'vault',
  versioning: 'Off',
  objectLock: false,
  lifecycle: [],
  ...over,
});

const object = (lock?: ProtectedObject['lock']): ProtectedObject => ({
  key: backup.key,
  size: 100,
  lastModified: written,
  ...(lock ? { lock } : {}),
});

const until = (days: number) => new Date(written.getTime() + days * DAY).toISOString();

function judge(
  policy: { require: 'none' | 'governance' | 'compliance'; minRetentionDays: number },
  facts: BucketProtection,
  objects: ProtectedObject[],
  rpoMinutes = 1440,
) {
  return judgeImmutability(backup, policy, rpoMinutes, facts, 'db/', objects, now);
}

describe('issue 15: immutability policy in the configuration', () => {
  it('is absent unless configured; defaults to require "none"; series override key by key', () => {
    expect(policyFor(parseConfig({}), 'x').immutability).toBeUndefined();
    const config = parseConfig({
      defaults: { immutability: { minRetentionDays: 30 } },
      series: { 'db*': { immutability: { require: 'compliance' } } },
    });
    expect(policyFor(config, 's3://b/files').immutability).toEqual({ require: 'none', minRetentionDays: 30 });
    expect(policyFor(config, 's3://b/db').immutability).toEqual({
      require: 'compliance',
      minRetentionDays: 30,
    });
  });

  it('refuses an unknown requirement or key, naming the key', () => {
    expect(() => parseConfig({ defaults: { immutability: { require: 'strict' } } })).toThrow(
      /defaults\.immutability\.require/,
    );
    expect(() => parseConfig({ defaults: { immutability: { days: 3 } } })).toThrow(
      /defaults\.immutability\.days/,
    );
  });
});

describe('issue 15: judging what protects a backup', () => {
  it('an unversioned, unlocked bucket: IMMUTABILITY_MISSING, a warning under "none", an error when a mode is required', () => {
    const soft = judge({ require: 'none', minRetentionDays: 0 }, bucket(), [object()]);
    expect(soft.findings.map((f) => [f.code, f.severity])).toEqual([['IMMUTABILITY_MISSING', 'warning']]);
    expect(soft.findings[0]?.message).toContain('versioning Off, Object Lock off');
    expect(soft.summary).toMatchObject({ status: 'WARN', objects: 1, locked: 0, versioning: 'Off' });
    const hard = judge({ require: 'governance', minRetentionDays: 0 }, bucket(), [object()]);
    expect(hard.findings.map((f) => [f.code, f.severity])).toEqual([['IMMUTABILITY_MISSING', 'error']]);
    expect(hard.summary.status).toBe('FAIL');
  });

  it('versioning satisfies "none" but not "governance"', () => {
    const versioned = bucket({ versioning: 'Enabled' });
    expect(judge({ require: 'none', minRetentionDays: 0 }, versioned, [object()]).findings).toEqual([]);
    expect(
      judge({ require: 'governance', minRetentionDays: 0 }, versioned, [object()]).findings,
    ).toHaveLength(1);
  });

  it('GOVERNANCE retention satisfies "governance" but not "compliance"; a legal hold satisfies "governance" only', () => {
    const locked = bucket({ versioning: 'Enabled', objectLock: true });
    const governance = object({
      retention: { mode: 'GOVERNANCE', retainUntil: until(30) },
      legalHold: false,
    });
    expect(judge({ require: 'governance', minRetentionDays: 30 }, locked, [governance]).findings).toEqual([]);
    const strict = judge({ require: 'compliance', minRetentionDays: 30 }, locked, [governance]);
    expect(strict.findings.map((f) => f.code)).toEqual(['IMMUTABILITY_MISSING']);
    expect(strict.findings[0]?.message).toContain('COMPLIANCE');
    const held = object({ legalHold: true });
    expect(judge({ require: 'governance', minRetentionDays: 0 }, locked, [held]).findings).toEqual([]);
    expect(judge({ require: 'compliance', minRetentionDays: 0 }, locked, [held]).findings).toHaveLength(1);
    const compliance = object({
      retention: { mode: 'COMPLIANCE', retainUntil: until(30) },
      legalHold: false,
    });
    const passed = judge({ require: 'compliance', minRetentionDays: 30 }, locked, [compliance]);
    expect(passed.findings).toEqual([]);
    expect(passed.summary).toMatchObject({
      status: 'PASS',
      locked: 1,
      compliance: 1,
      earliestRetainUntil: until(30),
    });
  });

  it('a retention shorter than minRetentionDays is RETENTION_SHORT; a legal hold keeps it anyway', () => {
    const locked = bucket({ versioning: 'Enabled', objectLock: true });
    const short = object({ retention: { mode: 'COMPLIANCE', retainUntil: until(7) }, legalHold: false });
    const judged = judge({ require: 'compliance', minRetentionDays: 30 }, locked, [short]);
    expect(judged.findings.map((f) => [f.code, f.severity])).toEqual([['RETENTION_SHORT', 'error']]);
    expect(judged.findings[0]?.message).toContain('30 days');
    const held = object({ retention: { mode: 'COMPLIANCE', retainUntil: until(7) }, legalHold: true });
    expect(judge({ require: 'compliance', minRetentionDays: 30 }, locked, [held]).findings).toEqual([]);
  });

  it('a backup past the minimum retention may go: its lapsed lock is no finding', () => {
    const old: ProtectedObject = {
      key: backup.key,
      size: 100,
      lastModified: new Date(now.getTime() - 40 * DAY),
      lock: {
        retention: { mode: 'COMPLIANCE', retainUntil: new Date(now.getTime() - 10 * DAY).toISOString() },
        legalHold: false,
      },
    };
    const locked = bucket({ versioning: 'Enabled', objectLock: true });
    expect(judge({ require: 'compliance', minRetentionDays: 30 }, locked, [old]).findings).toEqual([]);
  });

  it('a lifecycle rule that expires the backup before the minimum retention or the RPO is RETENTION_SHORT', () => {
    const rules = [{ id: 'weekly-purge', prefix: 'db/', tags: [], expirationDays: 7 }];
    const facts = bucket({ versioning: 'Enabled', lifecycle: rules });
    const short = judge({ require: 'none', minRetentionDays: 30 }, facts, [object()]);
    expect(short.findings.map((f) => [f.code, f.severity])).toEqual([['RETENTION_SHORT', 'warning']]);
    expect(short.findings[0]?.message).toContain('lifecycle rule "weekly-purge"');
    expect(short.summary.lifecycleExpiresAt).toBe(until(7));
    // Within the RPO window: a 7-day expiry with a 10-day RPO could leave the series empty.
    const rpo = judge({ require: 'none', minRetentionDays: 0 }, facts, [object()], 10 * 1440);
    expect(rpo.findings.map((f) => f.code)).toEqual(['RETENTION_SHORT']);
    expect(judge({ require: 'none', minRetentionDays: 7 }, facts, [object()]).findings).toEqual([]);
  });

  it('lifecycle rules apply by bucket-wide prefix and size filter; the earliest expiry wins', () => {
    const rules = [
      { id: 'other', prefix: 'logs/', tags: [], expirationDays: 1 },
      { id: 'big', prefix: 'db/', tags: [], objectSizeGreaterThan: 1000, expirationDays: 2 },
      { id: 'all', prefix: '', tags: [], expirationDays: 90 },
      { id: 'dated', prefix: 'db/', tags: [], expirationDate: '2027-01-01T00:00:00.000Z' },
    ];
    expect(lifecycleExpiry(rules, 'db/x.tar', 100, written)?.rule.id).toBe('dated');
    expect(lifecycleExpiry(rules, 'db/x.tar', 5000, written)?.rule.id).toBe('big');
    expect(lifecycleExpiry(rules, 'files/x.tar', 5000, written)?.rule.id).toBe('all');
    expect(lifecycleExpiry([], 'db/x.tar', 1, written)).toBeUndefined();
  });
});
