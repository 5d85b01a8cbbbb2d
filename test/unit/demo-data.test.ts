import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoBackup, type DemoManifest, demoStamp, makeDemoBackups } from '../../lib/cli/demo-data.ts';
import { catalogue, seriesIdOf } from '../../lib/core/catalogue.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { parseSha256Sums, parseSidecar } from '../../lib/core/manifest.ts';
import type { Backup } from '../../lib/core/model.ts';
import { MemoryStore } from '../support/memory-store.ts';

const NOW = new Date('2025-06-25T11:46:22.500Z');
const DEFAULT_RPO_MS = 1440 * 60_000;

let scratch: string;
let root: string;
let manifest: DemoManifest;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'bv-demo-test-'));
  root = path.join(scratch, 'demo');
  manifest = await makeDemoBackups(root, { now: NOW });
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function byPrefix(prefix: string, kind: DemoBackup['kind'] = 'archive'): DemoBackup {
  const found = manifest.backups.filter((b) => b.path.startsWith(prefix) && b.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as DemoBackup;
}

function onDisk(relative: string): string {
  return path.join(root, ...relative.replace(/\/$/, '').split('/'));
}

async function walk(dir: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const key = prefix + entry.name;
    if (entry.isDirectory()) keys.push(...(await walk(path.join(dir, entry.name), `${key}/`)));
    else keys.push(key);
  }
  return keys.sort();
}

interface TarItem {
  name: string;
  type: string;
  linkname?: string | null;
  content: Buffer;
}

async function untar(tar: Buffer): Promise<TarItem[]> {
  const extract = tarStream.extract();
  const items: TarItem[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      items.push({
        name: entry.header.name,
        type: entry.header.type ?? 'file',
        linkname: entry.header.linkname,
        content: Buffer.concat(chunks),
      });
    }
  })();
  extract.end(tar);
  await done;
  return items;
}

async function readArchive(relative: string): Promise<TarItem[]> {
  return untar(zlib.gunzipSync(await readFile(onDisk(relative))));
}

/** Gunzips through the streaming API in odd-sized pieces; resolves to the zlib error, if any. */
async function streamingGunzipError(data: Buffer, pieceSize: number): Promise<Error | undefined> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceSize) pieces.push(data.subarray(at, at + pieceSize));
  try {
    await pipeline(Readable.from(pieces), zlib.createGunzip(), async (source: AsyncIterable<Buffer>) => {
      for await (const _ of source) {
        // drain
      }
    });
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

function syncGunzipError(data: Buffer): (Error & { code?: string }) | undefined {
  try {
    zlib.gunzipSync(data);
    return undefined;
  } catch (error) {
    return error as Error & { code?: string };
  }
}

async function integrityCheckOfFile(file: string): Promise<{ verdict: string; rows: number }> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const firstTable = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 1")
      .get() as {
      name: string;
    };
    const count = db.prepare(`SELECT count(*) AS n FROM "${firstTable.name}"`).get() as { n: number };
    return { verdict: rows.map((r) => r.integrity_check).join('; '), rows: count.n };
  } finally {
    db.close();
  }
}

async function sqliteVerdictOfMember(
  archive: string,
  member: string,
): Promise<{ verdict: string; rows: number }> {
  const item = (await readArchive(archive)).find((i) => i.name === member);
  expect(item, `${member} in ${archive}`).toBeDefined();
  const file = path.join(scratch, `${path.basename(archive)}-${path.basename(member)}`);
  await writeFile(file, (item as TarItem).content);
  return integrityCheckOfFile(file);
}

async function catalogued(): Promise<Backup[]> {
  const store = new MemoryStore(root);
  for (const key of await walk(root)) store.put(key, await readFile(path.join(root, ...key.split('/'))));
  const backups: Backup[] = [];
  for await (const backup of catalogue(store)) backups.push(backup);
  return backups;
}

describe('makeDemoBackups', () => {
  it('names backups after times relative to now, in UTC', () => {
    expect(demoStamp(new Date('2025-06-25T11:46:22.999Z'))).toBe('20250625_114622');
    const names = manifest.backups.map((b) => b.path);
    expect(names).toContain(`db-nightly-${demoStamp(new Date(NOW.getTime() - 24 * 3_600_000))}.tar.gz`);
    expect(names).toContain(`db-nightly-${demoStamp(new Date(NOW.getTime() - 2 * 3_600_000))}.tar.gz`);
    expect(names).toContain(`backups/${demoStamp(new Date(NOW.getTime() - 3 * 3_600_000))}/`);
    expect(names).toContain(`reports-${demoStamp(new Date(NOW.getTime() - 10 * 86_400_000))}.tar.gz`);
    expect(manifest.now).toBe(NOW.toISOString());
    expect(manifest.root).toBe(path.resolve(root));
  });

  it('writes every backup the manifest lists, and only those, as the catalogue groups them', async () => {
    for (const backup of manifest.backups) {
      const info = await stat(onDisk(backup.path));
      expect(info.isDirectory(), backup.path).toBe(backup.kind === 'directory');
    }
    const found = await catalogued();
    const summary = (b: { path: string; series: string; kind: string }) =>
      `${b.kind} ${b.path} [${b.series}]`;
    expect(found.map((b) => summary({ path: b.key, series: b.series, kind: b.kind })).sort()).toEqual(
      manifest.backups.map((b) => summary({ ...b, series: seriesIdOf(root, b.series) })).sort(),
    );
  });

  it('makes each damaged backup the newest of its own series, and keeps healthy series within the default RPO', async () => {
    const found = await catalogued();
    for (const backup of manifest.backups) {
      const sameSeries = found.filter((b) => b.series === seriesIdOf(root, backup.series));
      const newest = Math.max(...sameSeries.map((b) => b.createdAt.getTime()));
      if (backup.expect.length > 0) {
        expect(sameSeries, backup.path).toHaveLength(1);
        expect(
          manifest.backups.filter((b) => b.series === backup.series),
          backup.path,
        ).toHaveLength(1);
      }
      const age = NOW.getTime() - newest;
      if (backup.expect.includes('RPO_EXCEEDED')) expect(age, backup.path).toBeGreaterThan(DEFAULT_RPO_MS);
      else expect(age, backup.path).toBeLessThanOrEqual(DEFAULT_RPO_MS);
    }
    const expected = Object.fromEntries(
      manifest.backups.map((b) => [b.path.replace(/\d{8}_\d{6}/, 'TS'), b.expect]),
    );
    expect(expected).toEqual({
      'db-nightly-TS.tar.gz': [],
      'backups/TS/': [],
      'backups/TS/mem0_storage.tar.gz': [],
      'backups-media/TS/': ['MISSING_OBJECT', 'CHECKSUM_MISMATCH', 'UNLISTED_OBJECT'],
      'web-assets-TS.tar.gz': ['ARCHIVE_CORRUPT'],
      'logs-TS.tgz': ['ARCHIVE_TRUNCATED'],
      'empty-job-TS.tar.gz': ['EMPTY_BACKUP'],
      'crm-TS.tar.gz': ['CHECKSUM_MISMATCH'],
      'reports-TS.tar.gz': ['RPO_EXCEEDED'],
      'inventory-db-TS.tar.gz': ['PROBE_FAILED'],
      'billing-dump-TS.sql.gz': ['PROBE_FAILED'],
      'uploads-TS.tar.gz': ['UNSAFE_PATH'],
    });
    for (const backup of manifest.backups) expect(backup.description.length, backup.path).toBeGreaterThan(10);
  });

  it('gives every top-level archive a sidecar that matches its bytes, except the crm one', async () => {
    const archives = manifest.backups.filter((b) => b.kind === 'archive' && b.parent === undefined);
    expect(archives.length).toBe(10);
    for (const backup of archives) {
      const bytes = await readFile(onDisk(backup.path));
      const sidecar = parseSidecar(await readFile(`${onDisk(backup.path)}.sha256`, 'utf8'), backup.path);
      expect(sidecar.ok, backup.path).toBe(true);
      const matches = sidecar.ok && sidecar.sha256 === sha256Hex(bytes);
      expect(matches, backup.path).toBe(!backup.path.startsWith('crm-'));
    }
  });

  it('puts a SHA256SUMS listing every member at the root of the healthy db-nightly archives', async () => {
    for (const backup of manifest.backups.filter((b) => b.path.startsWith('db-nightly-'))) {
      const items = await readArchive(backup.path);
      const sums = items.find((i) => i.name === 'SHA256SUMS');
      expect(sums, backup.path).toBeDefined();
      const parsed = parseSha256Sums((sums as TarItem).content.toString('utf8'));
      expect(parsed.errors).toEqual([]);
      const members = items.filter((i) => i.type === 'file' && i.name !== 'SHA256SUMS');
      expect(parsed.entries.map((e) => e.path).sort()).toEqual(members.map((m) => m.name).sort());
      for (const entry of parsed.entries) {
        const member = members.find((m) => m.name === entry.path) as TarItem;
        expect(sha256Hex(member.content), entry.path).toBe(entry.sha256);
      }
      expect(members.map((m) => m.name)).toContain('app.db');
      expect(await sqliteVerdictOfMember(backup.path, 'app.db')).toMatchObject({ verdict: 'ok' });
    }
  });

  it('makes a healthy directory backup with a coreutils SHA256SUMS, a complete dump and a Docker volume export', async () => {
    const backup = byPrefix('backups/', 'directory');
    const dir = onDisk(backup.path);
    const text = await readFile(path.join(dir, 'SHA256SUMS'), 'utf8');
    const parsed = parseSha256Sums(text);
    expect(parsed.errors).toEqual([]);
    expect(parsed.entries.some((e) => e.binary)).toBe(true);
    expect(text).toMatch(/^[0-9a-f]{64} \*mem0_storage\.tar\.gz$/m);
    const files = (await walk(dir)).filter((f) => f !== 'SHA256SUMS');
    expect(parsed.entries.map((e) => e.path).sort()).toEqual(files);
    for (const entry of parsed.entries) {
      expect(sha256Hex(await readFile(path.join(dir, ...entry.path.split('/')))), entry.path).toBe(
        entry.sha256,
      );
    }

    const dump = await readFile(path.join(dir, 'postgres', 'dump.sql'), 'utf8');
    expect(dump.startsWith('-- PostgreSQL database dump\n')).toBe(true);
    expect(dump.trimEnd().endsWith('-- PostgreSQL database dump complete')).toBe(true);
    const settings = await readFile(path.join(dir, 'config', 'settings.json'), 'utf8');
    expect(() => JSON.parse(settings)).not.toThrow();

    const nested = byPrefix(`${backup.path}mem0_storage`);
    expect(nested).toMatchObject({ kind: 'archive', parent: backup.path, expect: [] });
    const volume = await readArchive(nested.path);
    expect(volume.every((i) => i.name === 'data/' || i.name.startsWith('data/'))).toBe(true);
    const link = volume.find((i) => i.type === 'symlink');
    expect(link?.linkname).toBeTruthy();
    const target = path.posix.join(path.posix.dirname(link?.name ?? ''), link?.linkname ?? '');
    expect(volume.some((i) => i.name === target && i.type === 'file')).toBe(true);
    expect(await sqliteVerdictOfMember(nested.path, 'data/history.db')).toMatchObject({ verdict: 'ok' });
  });

  it('lists an absent file, a changed file, and leaves an extra file unlisted in backups-media', async () => {
    const dir = onDisk(byPrefix('backups-media/', 'directory').path);
    const parsed = parseSha256Sums(await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'));
    expect(parsed.errors).toEqual([]);
    const present = new Set((await walk(dir)).filter((f) => f !== 'SHA256SUMS'));
    const absent = parsed.entries.filter((e) => !present.has(e.path));
    const changed: string[] = [];
    for (const entry of parsed.entries.filter((e) => present.has(e.path))) {
      const actual = sha256Hex(await readFile(path.join(dir, ...entry.path.split('/'))));
      if (actual !== entry.sha256) changed.push(entry.path);
    }
    const unlisted = [...present].filter((p) => !parsed.entries.some((e) => e.path === p));
    expect(absent.map((e) => e.path)).toHaveLength(1);
    expect(changed).toHaveLength(1);
    expect(unlisted).toHaveLength(1);
    expect(parsed.entries.length - absent.length - changed.length).toBeGreaterThan(0);
  });

  it('flips a bit in web-assets so gunzip fails with a zlib data error, whole and in odd-sized chunks', async () => {
    const bytes = await readFile(onDisk(byPrefix('web-assets-').path));
    const error = syncGunzipError(bytes);
    expect(error?.code).toBe('Z_DATA_ERROR');
    expect(error?.message).not.toMatch(/unexpected end of file/);
    const streamed = await streamingGunzipError(bytes, 777);
    expect(streamed).toBeInstanceOf(Error);
    expect(streamed?.message).not.toMatch(/unexpected end of file/);
  });

  it('cuts the logs archive short so gunzip reports an unexpected end of file, whole and in odd-sized chunks', async () => {
    const bytes = await readFile(onDisk(byPrefix('logs-').path));
    expect(syncGunzipError(bytes)?.message).toMatch(/unexpected end of file/);
    expect((await streamingGunzipError(bytes, 333))?.message).toMatch(/unexpected end of file/);
  });

  it('writes the empty-job archive as a valid gzip of a tar with no entries', async () => {
    const bytes = await readFile(onDisk(byPrefix('empty-job-').path));
    const tar = zlib.gunzipSync(bytes);
    expect(tar.length).toBeGreaterThan(0);
    expect(tar.every((b) => b === 0)).toBe(true);
    expect(await untar(tar)).toEqual([]);
  });

  it('damages the inventory database so integrity_check fails while the file still opens', async () => {
    const backup = byPrefix('inventory-db-');
    const items = await readArchive(backup.path);
    const sums = parseSha256Sums(
      (items.find((i) => i.name === 'SHA256SUMS') as TarItem).content.toString('utf8'),
    );
    const db = items.find((i) => i.name === 'inventory.db') as TarItem;
    expect(sums.entries).toEqual([
      expect.objectContaining({ path: 'inventory.db', sha256: sha256Hex(db.content) }),
    ]);
    const { verdict, rows } = await sqliteVerdictOfMember(backup.path, 'inventory.db');
    expect(verdict).not.toBe('ok');
    expect(verdict.length).toBeGreaterThan(0);
    expect(rows).toBeGreaterThan(0);
  });

  it('cuts the billing dump before its completion marker, in a valid gzip', async () => {
    const dump = zlib.gunzipSync(await readFile(onDisk(byPrefix('billing-dump-').path))).toString('utf8');
    expect(dump.startsWith('-- PostgreSQL database dump\n')).toBe(true);
    expect(dump).toContain('COPY public.invoices');
    expect(dump).not.toContain('PostgreSQL database dump complete');
  });

  it('puts a ../escape.txt entry in the uploads archive', async () => {
    const names = (await readArchive(byPrefix('uploads-').path)).map((i) => i.name);
    expect(names).toContain('../escape.txt');
  });

  it('keeps the sample small and reports its real size', async () => {
    let bytes = 0;
    const keys = await walk(root);
    for (const key of keys) bytes += (await stat(path.join(root, ...key.split('/')))).size;
    expect(manifest.files).toBe(keys.length);
    expect(manifest.bytes).toBe(bytes);
    expect(bytes).toBeLessThan(5 * 1024 * 1024);
  });

  it('makes the same bytes and manifest again for the same now', async () => {
    const again = await makeDemoBackups(path.join(scratch, 'again'), { now: NOW });
    expect({ ...again, root: '' }).toEqual({ ...manifest, root: '' });
    const keys = await walk(root);
    expect(await walk(again.root)).toEqual(keys);
    for (const key of keys) {
      const first = await readFile(path.join(root, ...key.split('/')));
      const second = await readFile(path.join(again.root, ...key.split('/')));
      expect(first.equals(second), key).toBe(true);
    }
  });

  it('uses an existing empty folder', async () => {
    const empty = path.join(scratch, 'empty');
    await mkdir(empty);
    const made = await makeDemoBackups(empty, { now: NOW });
    expect(made.backups).toHaveLength(manifest.backups.length);
  });

  it('refuses a folder that already holds something, and leaves it as it was', async () => {
    const occupied = path.join(scratch, 'occupied');
    await mkdir(occupied);
    await writeFile(path.join(occupied, 'precious.txt'), 'mine');
    const attempt = makeDemoBackups(occupied, { now: NOW });
    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    await expect(makeDemoBackups(occupied, { now: NOW })).rejects.toThrow(/not empty/);
    expect(await readdir(occupied)).toEqual(['precious.txt']);
    expect(await readFile(path.join(occupied, 'precious.txt'), 'utf8')).toBe('mine');
  });

  it('refuses a path that is a file', async () => {
    const file = path.join(scratch, 'a-file');
    await writeFile(file, 'x');
    await expect(makeDemoBackups(file, { now: NOW })).rejects.toBeInstanceOf(UsageError);
    expect(await readFile(file, 'utf8')).toBe('x');
  });
});
