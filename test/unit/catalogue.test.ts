import { describe, expect, it } from 'vitest';
import { type CatalogueStats, catalogue, seriesLabeller, seriesOf } from '../../lib/core/catalogue.ts';
import type { Backup } from '../../lib/core/model.ts';
import { findTimestamps, withoutTimestamps } from '../../lib/core/timestamps.ts';
import { MemoryStore } from '../support/memory-store.ts';

async function all(store: MemoryStore, stats?: CatalogueStats): Promise<Backup[]> {
  const out: Backup[] = [];
  for await (const b of catalogue(store, stats)) out.push(b);
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

describe('timestamps in names', () => {
  it.each([
    ['db-nightly-20250625_114622.tar.gz', '2025-06-25T11:46:22.000Z'],
    ['app-2025-06-25T11-46-22Z.tgz', '2025-06-25T11:46:22.000Z'],
    ['logs-2025-06-25.tar', '2025-06-25T00:00:00.000Z'],
    ['x_20250625T114622Z.tar.gz', '2025-06-25T11:46:22.000Z'],
    ['dump-20250625.sql.gz', '2025-06-25T00:00:00.000Z'],
  ])('%s', (name, iso) => {
    expect(findTimestamps(name).map((t) => t.date.toISOString())).toEqual([iso]);
  });

  it('ignores digit runs that are not dates', () => {
    expect(findTimestamps('build-12345678.tar')).toEqual([]);
    expect(findTimestamps('v2025-13-40.tar')).toEqual([]);
  });

  it('takes timestamps out of series names', () => {
    expect(withoutTimestamps('db-nightly-20250625_114622')).toBe('db-nightly');
    expect(withoutTimestamps('20250625_114622')).toBe('');
    expect(seriesOf('/src', 'db-nightly-20250625_114622')).toBe('/src/db-nightly');
    expect(seriesOf('/src/', 'backups/20250625_114622/mem0_storage')).toBe('/src/backups/mem0_storage');
    expect(seriesOf('s3://b/p', 'backups/20250625_114622')).toBe('s3://b/p/backups');
    expect(seriesOf('/src', 'pg_2025-06-25_full')).toBe('/src/pg-full');
  });

  it('issue 9.8: a root series is named after its source folder or prefix, never "default"', () => {
    expect(seriesOf('/data/prod/backups', '20250625_114622')).toBe('/data/prod/backups');
    expect(seriesOf('s3://bucket/staging/backups/', '20250625_114622')).toBe('s3://bucket/staging/backups');
    expect(seriesOf('/data/prod/backups', '20250625_114622')).not.toBe(
      seriesOf('/data/staging/backups', '20250625_114622'),
    );
  });
});

describe('series labels in tables', () => {
  it('issue 9.8: drop only what all sources share above them, so prod and staging stay apart and readable', () => {
    const two = seriesLabeller(['/data/prod/backups', '/data/staging/backups/']);
    expect(two('/data/prod/backups')).toBe('prod/backups');
    expect(two('/data/staging/backups/db')).toBe('staging/backups/db');
    const one = seriesLabeller(['/srv/backups']);
    expect(one('/srv/backups')).toBe('backups');
    expect(one('/srv/backups/db-nightly')).toBe('backups/db-nightly');
    const buckets = seriesLabeller(['s3://a/x', 's3://b/y']);
    expect(buckets('s3://b/y/db')).toBe('b/y/db');
    const mixed = seriesLabeller(['s3://a/x', '/srv/backups']);
    expect(mixed('/srv/backups/db')).toBe('/srv/backups/db');
  });
});

describe('catalogue', () => {
  it('groups the contract example: archives, series, directory backups and nested archives', async () => {
    const store = new MemoryStore('/src', {
      'db-nightly-20250625_114622.tar.gz': 'a',
      'db-nightly-20250625_114622.tar.gz.sha256': 'x',
      'db-nightly-20250626_114622.tar.gz': 'bb',
      'backups/20250625_114622/SHA256SUMS': 'sums',
      'backups/20250625_114622/app/config.json': '{}',
      'backups/20250625_114622/mem0_storage.tar.gz': 'ccc',
      'backups/20250626_114622/app/config.json': '{}',
      'notes.txt': 'loose',
    });
    const stats: CatalogueStats = { objects: 0, ignored: 0, ignoredExamples: [] };
    const backups = await all(store, stats);
    expect(backups.map((b) => [b.id, b.kind, b.series, b.objects, b.bytes])).toEqual([
      ['/src/backups/20250625_114622/', 'directory', '/src/backups', 2, 5],
      ['/src/backups/20250625_114622/mem0_storage.tar.gz', 'archive', '/src/backups/mem0_storage', 1, 3],
      ['/src/backups/20250626_114622/', 'directory', '/src/backups', 1, 2],
      ['/src/db-nightly-20250625_114622.tar.gz', 'archive', '/src/db-nightly', 1, 1],
      ['/src/db-nightly-20250626_114622.tar.gz', 'archive', '/src/db-nightly', 1, 2],
    ]);
    const first = backups[0] as Backup;
    expect(first.manifestKeys).toEqual(['backups/20250625_114622/SHA256SUMS']);
    expect(first.members.map((m) => m.path)).toEqual(['app/config.json', 'mem0_storage.tar.gz']);
    expect(first.createdAt.toISOString()).toBe('2025-06-25T11:46:22.000Z');
    expect(backups[1]?.parentId).toBe('/src/backups/20250625_114622/');
    expect(backups[1]?.manifestKeys).toEqual(['backups/20250625_114622/SHA256SUMS']);
    expect(backups[3]?.sidecarKey).toBe('db-nightly-20250625_114622.tar.gz.sha256');
    expect(backups[4]?.sidecarKey).toBeUndefined();
    expect(stats).toEqual({ objects: 8, ignored: 1, ignoredExamples: ['notes.txt'] });
  });

  it('makes a folder holding SHA256SUMS a directory backup, adopting files listed before it', async () => {
    const store = new MemoryStore('/src', {
      'site/0-index.html': '<html>',
      'site/ASSETS/logo.png': 'png',
      'site/SHA256SUMS': 'sums',
      'site/zeta.txt': 'z',
      'other.txt': 'o',
    });
    const backups = await all(store);
    expect(backups).toHaveLength(1);
    expect(backups[0]?.key).toBe('site/');
    expect(backups[0]?.members.map((m) => m.path)).toEqual(['0-index.html', 'ASSETS/logo.png', 'zeta.txt']);
  });

  it('takes the creation time from the modification time when the name has none', async () => {
    const when = new Date('2024-01-02T03:04:05Z');
    const store = new MemoryStore('/src', { 'weekly.tar': { body: 'x', lastModified: when } });
    const [backup] = await all(store);
    expect(backup?.createdFrom).toBe('mtime');
    expect(backup?.createdAt).toEqual(when);
    expect(backup?.series).toBe('/src/weekly');
  });

  it('issue 9.2: a timestamped folder holding only empty sub-folders (folder markers) is a backup with no files', async () => {
    const older = new Date('2025-06-24T00:00:00Z');
    const store = new MemoryStore('s3://bucket/app', {
      'backups/20250624_000000/db/dump.sql': { body: 'data', lastModified: older },
      // What S3 lists for console-made folders, and what a folder store lists for empty folders.
      'backups/20250625_000000/db/': '',
      'backups/20250625_000000/files/': '',
      'backups/20250626_000000/': '',
      'backups/not-a-backup/': '',
    });
    const stats: CatalogueStats = { objects: 0, ignored: 0, ignoredExamples: [] };
    const backups = await all(store, stats);
    expect(backups.map((b) => [b.key, b.kind, b.series, b.objects, b.bytes, b.members.length])).toEqual([
      ['backups/20250624_000000/', 'directory', 's3://bucket/app/backups', 1, 4, 1],
      ['backups/20250625_000000/', 'directory', 's3://bucket/app/backups', 0, 0, 0],
      ['backups/20250626_000000/', 'directory', 's3://bucket/app/backups', 0, 0, 0],
    ]);
    expect(backups[1]?.createdAt.toISOString()).toBe('2025-06-25T00:00:00.000Z');
    expect(stats).toEqual({ objects: 1, ignored: 0, ignoredExamples: [] });
  });

  it('issue 9.3: a sidecar with no archive beside it is an orphan reference, never a silent ignore', async () => {
    const store = new MemoryStore('/src', {
      'db-20250625_000000.tar.gz.sha256': 'x',
      'web-20250625_000000.tar.gz': 'w',
      'web-20250625_000000.tar.gz.sha256': 'y',
      'notes.txt': 'n',
      // The sidecar of a file that is no archive is not an orphan: its file is there.
      'notes.txt.sha256': 's',
    });
    const stats: CatalogueStats = { objects: 0, ignored: 0, ignoredExamples: [] };
    const backups = await all(store, stats);
    expect(backups.map((b) => [b.key, b.sidecarKey])).toEqual([
      ['web-20250625_000000.tar.gz', 'web-20250625_000000.tar.gz.sha256'],
    ]);
    expect(stats).toEqual({
      objects: 5,
      ignored: 2,
      ignoredExamples: ['notes.txt', 'notes.txt.sha256'],
      orphans: 1,
      orphanReferences: ['db-20250625_000000.tar.gz.sha256'],
    });
  });

  it('emits each backup as soon as the listing has passed it', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`b-2025010${(i % 9) + 1}_0000${String(i).padStart(2, '0')}.tar`] = 'x';
    const store = new MemoryStore('/src', files);
    let firstEmittedAfter = -1;
    for await (const _ of catalogue(store)) {
      firstEmittedAfter = store.listedCount;
      break;
    }
    expect(firstEmittedAfter).toBe(2);
  });
});
