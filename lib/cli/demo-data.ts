/**
 * The sample backup folder behind `backup-validator demo`: healthy, damaged and stale backups of
 * every kind the contract names, made with Node alone (no tar/gzip/sqlite3 binaries) so the demo
 * behaves the same on every machine, and small enough to make in well under a second.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buffer as collect } from 'node:stream/consumers';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import tarStream, { type Header as TarHeader } from 'tar-stream';
import { seriesNameOf } from '../core/catalogue.ts';
import { archiveFormatOf } from '../core/compression.ts';
import { BackupValidatorError, UsageError } from '../core/errors.ts';
import type { FindingCode } from '../core/findings.ts';

export interface DemoBackup {
  /** Key relative to the demo root, `/`-separated; a directory backup ends with `/`, as the catalogue keys it. */
  path: string;
  kind: 'archive' | 'directory';
  /** The series' name inside the demo folder (its id is the folder followed by this name). */
  series: string;
  /** The time in the backup's name (ISO-8601, UTC). */
  createdAt: string;
  /**
   * Finding codes the validator must report for this backup (RPO_EXCEEDED is reported for its
   * series); empty for a healthy backup. The run may add consequences (a skipped restore) beside them.
   */
  expect: FindingCode[];
  description: string;
  /** For an archive found inside a directory backup: that directory backup's path. */
  parent?: string;
}

export interface DemoManifest {
  /** Absolute path of the folder made. */
  root: string;
  /** The reference time the names were made from (ISO-8601). */
  now: string;
  backups: DemoBackup[];
  /** Files written and their total size. */
  files: number;
  bytes: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `20250625_114622`, UTC: the form the catalogue reads back from names. */
export function demoStamp(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic incompressible bytes (stands in for photos, images, video). */
function noise(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  for (let counter = 0; at < size; counter++) {
    at += createHash('sha256').update(`${seed}:${counter}`).digest().copy(out, at);
  }
  return out;
}

function fakeJpeg(seed: string, size: number): Buffer {
  const start = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);
  return Buffer.concat([start, noise(seed, size), Buffer.from([0xff, 0xd9])]);
}

function fakePng(seed: string, size: number): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), noise(seed, size)]);
}

/** Deterministic text-like lines, compressible like real logs and assets. */
function textLines(
  seed: number,
  count: number,
  line: (i: number, pick: (words: string[]) => string) => string,
) {
  let x = seed * 2654435761 || 1;
  const pick = (words: string[]): string => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return words[(x >>> 0) % words.length] as string;
  };
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(line(i, pick));
  return `${lines.join('\n')}\n`;
}

function gzip(data: Buffer | string): Buffer {
  return zlib.gzipSync(data, { level: 6 });
}

function coreutilsLines(files: Array<{ path: string; content: Buffer | string; binary?: boolean }>): string {
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${sha256Hex(f.content)} ${f.binary ? '*' : ' '}${f.path}\n`)
    .join('');
}

interface TarMember {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: Buffer | string;
  linkname?: string;
  mode?: number;
}

/** A tar with ustar headers, owned by root like a container's export; every member dated `mtime`. */
async function packTar(members: TarMember[], mtime: Date): Promise<Buffer> {
  const pack = tarStream.pack();
  const collected = collect(pack);
  for (const member of members) {
    const type = member.type ?? 'file';
    const header: Partial<TarHeader> & { name: string } = {
      name: member.name,
      type,
      mtime,
      mode: member.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
    };
    if (member.linkname !== undefined) header.linkname = member.linkname;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (type === 'file') pack.entry(header, member.content ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  return collected;
}

/** Files of a tar plus a `SHA256SUMS` at its root listing every one of them. */
function withRootManifest(files: Array<{ name: string; content: Buffer | string }>): TarMember[] {
  const sums = coreutilsLines(files.map((f) => ({ path: f.name, content: f.content })));
  return [...files.map((f) => ({ name: f.name, content: f.content })), { name: 'SHA256SUMS', content: sums }];
}

function sqliteImage(build: (db: Database.Database) => void): Buffer {
  const db = new Database(':memory:');
  try {
    build(db);
    return db.serialize();
  } finally {
    db.close();
  }
}

function integrityCheckOf(image: Buffer): string {
  const db = new Database(image);
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

function appDatabase(customers: number): Buffer {
  return sqliteImage((db) => {
    db.exec(`
      CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
      CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total_cents INTEGER NOT NULL, placed_at TEXT NOT NULL);
      CREATE INDEX orders_by_customer ON orders(customer_id);
      CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    `);
    const addCustomer = db.prepare('INSERT INTO customers (id, name, email, created_at) VALUES (?, ?, ?, ?)');
    const addOrder = db.prepare('INSERT INTO orders (customer_id, total_cents, placed_at) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= customers; i++) {
        addCustomer.run(
          i,
          `Customer ${i}`,
          `customer${i}@example.com`,
          `2025-01-${String((i % 28) + 1).padStart(2, '0')}`,
        );
        for (let j = 0; j < 3; j++)
          addOrder.run(
            i,
            ((i * 7919 + j * 104729) % 50_000) + 100,
            `2025-05-${String(j + 1).padStart(2, '0')}`,
          );
      }
      db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run('currency', 'EUR');
      db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run('schema_version', '7');
    })();
  });
}

function mem0HistoryDatabase(): Buffer {
  return sqliteImage((db) => {
    db.exec(`
      CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT NOT NULL, old_memory TEXT, new_memory TEXT,
        event TEXT NOT NULL, created_at TEXT NOT NULL, is_deleted INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX history_by_memory ON history(memory_id);
    `);
    const add = db.prepare(
      'INSERT INTO history (id, memory_id, old_memory, new_memory, event, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (let i = 1; i <= 25; i++) {
        add.run(
          `h-${i}`,
          `m-${i % 9}`,
          i > 9 ? `fact ${i - 9}` : null,
          `fact ${i}`,
          i > 9 ? 'UPDATE' : 'ADD',
          `2025-06-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z`,
        );
      }
    })();
  });
}

function readVarint(page: Buffer, at: number): { value: number; length: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = page[at + i] as number;
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
  }
  return { value: value * 256 + (page[at + 8] as number), length: 9 };
}

/**
 * An inventory database whose `items` b-tree page holds one row id out of order: the file
 * still opens and most queries work, but `PRAGMA integrity_check` (and quick_check) report it.
 */
function corruptInventoryDatabase(): Buffer {
  const image = sqliteImage((db) => {
    db.exec(`
      CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL, quantity INTEGER NOT NULL);
      CREATE UNIQUE INDEX items_by_sku ON items(sku);
    `);
    const add = db.prepare('INSERT INTO items (id, sku, name, quantity) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 40; i++)
        add.run(i, `SKU-${String(i).padStart(5, '0')}`, `Item ${i}`, (i * 37) % 500);
    })();
  });
  const rootPage = (() => {
    const db = new Database(image);
    try {
      return (
        db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'items'").get() as { rootpage: number }
      ).rootpage;
    } finally {
      db.close();
    }
  })();
  const rawPageSize = image.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  const page = (rootPage - 1) * pageSize;
  const header = page + (rootPage === 1 ? 100 : 0);
  const LEAF_TABLE_PAGE = 0x0d;
  if (image[header] !== LEAF_TABLE_PAGE) {
    throw new BackupValidatorError(`demo: the items table of the sample database is not a single leaf page`);
  }
  const cells = image.readUInt16BE(header + 3);
  const cell = page + image.readUInt16BE(header + 8 + 2 * Math.floor(cells / 2));
  const payloadSize = readVarint(image, cell);
  const rowid = readVarint(image, cell + payloadSize.length);
  if (rowid.length !== 1)
    throw new BackupValidatorError('demo: unexpected row id encoding in the sample database');
  // 127 is larger than every later row id in the page: the row ids are no longer in order.
  image[cell + payloadSize.length] = 0x7f;
  const verdict = integrityCheckOf(image);
  if (verdict === 'ok')
    throw new BackupValidatorError('demo: the damaged sample database still passes integrity_check');
  return image;
}

function pgDump(options: { complete: boolean; invoices: number }): string {
  const head = `-- PostgreSQL database dump
--

-- Dumped from database version 16.4
-- Dumped by pg_dump version 16.4

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET client_min_messages = warning;

SET default_tablespace = '';
SET default_table_access_method = heap;

--
-- Name: invoices; Type: TABLE; Schema: public; Owner: billing
--

CREATE TABLE public.invoices (
    id integer NOT NULL,
    customer text NOT NULL,
    amount_cents bigint NOT NULL,
    issued_at date NOT NULL,
    paid boolean DEFAULT false NOT NULL
);

ALTER TABLE public.invoices OWNER TO billing;

--
-- Data for Name: invoices; Type: TABLE DATA; Schema: public; Owner: billing
--

COPY public.invoices (id, customer, amount_cents, issued_at, paid) FROM stdin;
`;
  const customers = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
  const rows = textLines(
    5,
    options.invoices,
    (i, pick) =>
      `${i + 1}\t${pick(customers)}\t${((i * 7919) % 900_000) + 1000}\t2025-0${(i % 6) + 1}-${String((i % 28) + 1).padStart(2, '0')}\t${i % 3 === 0 ? 't' : 'f'}`,
  );
  if (!options.complete) {
    // The dump stops mid-row, as when pg_dump is killed or the disk fills during COPY.
    return head + rows.slice(0, Math.floor(rows.length * 0.6));
  }
  return `${head}${rows}\\.

--
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: public; Owner: billing
--

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
`;
}

/** Flips one bit of the deflate data, choosing one that zlib reports as damage, not as a short stream. */
function flipOneBit(archive: Buffer): Buffer {
  const GZIP_HEADER = 10;
  const GZIP_TRAILER = 8;
  for (let at = Math.floor(archive.length / 2); at < archive.length - GZIP_TRAILER; at++) {
    if (at < GZIP_HEADER) continue;
    const damaged = Buffer.from(archive);
    damaged[at] = (damaged[at] as number) ^ 0x10;
    try {
      zlib.gunzipSync(damaged);
    } catch (error) {
      if (!/unexpected end of file/i.test((error as Error).message)) return damaged;
    }
  }
  throw new BackupValidatorError('demo: no single bit flip corrupted the sample archive');
}

function cutShort(archive: Buffer): Buffer {
  const cut = archive.subarray(0, Math.floor(archive.length / 2));
  try {
    zlib.gunzipSync(cut);
  } catch (error) {
    if (/unexpected end of file/i.test((error as Error).message)) return Buffer.from(cut);
  }
  throw new BackupValidatorError('demo: cutting the sample archive did not make it read as truncated');
}

async function assertUsableRoot(root: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(root)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new UsageError(`cannot use ${root} for the demo backups: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  if (!isDirectory) {
    throw new UsageError(`${root} exists and is not a folder; give the demo a new or empty folder`);
  }
  const entries = await readdir(root);
  if (entries.length > 0) {
    throw new UsageError(
      `${root} is not empty (${entries.length} entries); the demo writes its sample backups only into a new or empty folder, so nothing of yours is overwritten: give another path`,
    );
  }
}

class FolderWriter {
  files = 0;
  bytes = 0;
  constructor(readonly root: string) {}

  async write(relative: string, content: Buffer | string, mtime: Date): Promise<void> {
    const file = path.join(this.root, ...relative.split('/'));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    await utimes(file, mtime, mtime);
    this.files++;
    this.bytes += typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  }
}

function archiveSeries(key: string): string {
  const slash = key.lastIndexOf('/');
  const name = key.slice(slash + 1);
  const format = archiveFormatOf(name);
  return seriesNameOf(key.slice(0, slash + 1) + (format?.stem ?? name));
}

/**
 * Makes the demo's sample backups in `root` (created; it must not exist or be empty) and says
 * what each one is and which findings the validator must report for it.
 */
export async function makeDemoBackups(root: string, options: { now?: Date } = {}): Promise<DemoManifest> {
  const now = options.now ?? new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError('the demo reference time is not a valid date', 'now');
  const absoluteRoot = path.resolve(root);
  await assertUsableRoot(absoluteRoot);
  await mkdir(absoluteRoot, { recursive: true });

  const out = new FolderWriter(absoluteRoot);
  const backups: DemoBackup[] = [];
  const ago = (ms: number) => new Date(Math.floor((now.getTime() - ms) / 1000) * 1000);
  const record = (backup: Omit<DemoBackup, 'series'>) => {
    const series =
      backup.kind === 'directory' ? seriesNameOf(backup.path.replace(/\/$/, '')) : archiveSeries(backup.path);
    backups.push({ ...backup, series });
  };
  /** Writes an archive and its `<name>.sha256` sidecar (of `sidecarOf`, the archive itself by default). */
  const archive = async (
    name: string,
    content: Buffer,
    at: Date,
    sidecar: { of?: Buffer; bare?: boolean } = {},
  ) => {
    await out.write(name, content, at);
    const hex = sha256Hex(sidecar.of ?? content);
    await out.write(`${name}.sha256`, sidecar.bare ? `${hex}\n` : `${hex}  ${name}\n`, at);
  };

  // 1. db-nightly: two healthy SQLite backups with a SHA256SUMS inside and a sidecar beside.
  for (const [age, customers] of [
    [DAY, 30],
    [2 * HOUR, 32],
  ] as const) {
    const at = ago(age);
    const name = `db-nightly-${demoStamp(at)}.tar.gz`;
    const files = [
      { name: 'app.db', content: appDatabase(customers) },
      {
        name: 'meta.json',
        content: `${JSON.stringify({ job: 'db-nightly', database: 'app.db', customers, finishedAt: at.toISOString() }, null, 2)}\n`,
      },
    ];
    await archive(name, gzip(await packTar(withRootManifest(files), at)), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: [],
      description: 'healthy SQLite backup: sidecar and in-archive SHA256SUMS match, integrity_check ok',
    });
  }

  // 2. backups/<ts>/: a healthy directory backup holding a Docker volume export.
  {
    const at = ago(3 * HOUR);
    const prefix = `backups/${demoStamp(at)}/`;
    const logName = `mem0-${at.toISOString().slice(0, 10)}.log`;
    const volume = await packTar(
      [
        { name: 'data/', type: 'directory' },
        { name: 'data/history.db', content: mem0HistoryDatabase() },
        {
          name: 'data/config.json',
          content: `${JSON.stringify({ version: 'v1.1', vector_store: { provider: 'qdrant', collection: 'mem0' } }, null, 2)}\n`,
        },
        { name: 'data/logs/', type: 'directory' },
        {
          name: `data/logs/${logName}`,
          content: textLines(
            3,
            60,
            (i, pick) =>
              `${at.toISOString()} INFO ${pick(['add', 'search', 'update', 'get'])} memory m-${i % 9}`,
          ),
        },
        { name: 'data/logs/current.log', type: 'symlink', linkname: logName },
      ],
      at,
    );
    const files = [
      { path: 'postgres/dump.sql', content: pgDump({ complete: true, invoices: 120 }) },
      {
        path: 'config/settings.json',
        content: `${JSON.stringify({ service: 'app', replicas: 2, features: { search: true, exports: false } }, null, 2)}\n`,
      },
      { path: 'mem0_storage.tar.gz', content: gzip(volume), binary: true },
    ];
    for (const f of files) await out.write(prefix + f.path, f.content, at);
    await out.write(`${prefix}SHA256SUMS`, coreutilsLines(files), at);
    record({
      path: prefix,
      kind: 'directory',
      createdAt: at.toISOString(),
      expect: [],
      description:
        'healthy directory backup: SHA256SUMS (one binary-mode line), a complete pg_dump, JSON settings',
    });
    record({
      path: `${prefix}mem0_storage.tar.gz`,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: [],
      description:
        'healthy Docker volume export (tar czf of /data: SQLite db, logs, a symlink), listed in the SHA256SUMS beside it',
      parent: prefix,
    });
  }

  // 3. backups-media/<ts>/: a manifest that no longer matches the folder.
  {
    const at = ago(4 * HOUR);
    const prefix = `backups-media/${demoStamp(at)}/`;
    const beach = fakeJpeg('beach', 6000);
    const teamAsBackedUp = fakeJpeg('team', 5000);
    const teamNow = fakeJpeg('team-edited', 5000);
    const harbour = fakeJpeg('harbour', 4000);
    const albums = `${JSON.stringify({ albums: [{ name: 'Summer', photos: ['beach.jpg', 'harbour.jpg', 'team.jpg'] }] }, null, 2)}\n`;
    await out.write(`${prefix}albums.json`, albums, at);
    await out.write(`${prefix}photos/beach.jpg`, beach, at);
    await out.write(`${prefix}photos/team.jpg`, teamNow, at);
    await out.write(`${prefix}photos/IMG_0042.jpg`, fakeJpeg('img-0042', 3000), at);
    await out.write(
      `${prefix}SHA256SUMS`,
      coreutilsLines([
        { path: 'albums.json', content: albums },
        { path: 'photos/beach.jpg', content: beach, binary: true },
        { path: 'photos/harbour.jpg', content: harbour, binary: true },
        { path: 'photos/team.jpg', content: teamAsBackedUp, binary: true },
      ]),
      at,
    );
    record({
      path: prefix,
      kind: 'directory',
      createdAt: at.toISOString(),
      expect: ['MISSING_OBJECT', 'CHECKSUM_MISMATCH', 'UNLISTED_OBJECT'],
      description:
        'SHA256SUMS lists photos/harbour.jpg (absent), photos/team.jpg was changed afterwards, photos/IMG_0042.jpg is not listed',
    });
  }

  // 4. web-assets: one bit flipped in the deflate stream; the sidecar was taken of the damaged bytes.
  {
    const at = ago(HOUR);
    const name = `web-assets-${demoStamp(at)}.tar.gz`;
    const words = ['const', 'render', 'state', 'props', 'return', 'await', 'fetch', 'items', 'map', 'filter'];
    const tar = await packTar(
      [
        {
          name: 'index.html',
          content:
            '<!doctype html>\n<html><head><link rel="stylesheet" href="assets/style.css"></head><body><script src="assets/app.js"></script></body></html>\n',
        },
        {
          name: 'assets/app.js',
          content: textLines(
            11,
            400,
            (i, pick) => `function f${i}(${pick(words)}) { ${pick(words)} ${pick(words)}(${i}); }`,
          ),
        },
        {
          name: 'assets/style.css',
          content: textLines(
            12,
            200,
            (i, pick) =>
              `.c${i} { margin: ${i % 17}px; color: #${(i * 4099).toString(16).padStart(6, '0').slice(0, 6)}; } /* ${pick(words)} */`,
          ),
        },
        { name: 'assets/logo.png', content: fakePng('logo', 3000) },
      ],
      at,
    );
    await archive(name, flipOneBit(gzip(tar)), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['ARCHIVE_CORRUPT'],
      description:
        'one bit flipped in the deflate stream before the job hashed it: the sidecar matches, only reading the archive finds it',
    });
  }

  // 5. logs: cut short in the middle.
  {
    const at = ago(HOUR);
    const name = `logs-${demoStamp(at)}.tgz`;
    const levels = ['INFO', 'INFO', 'INFO', 'WARN', 'DEBUG', 'ERROR'];
    const tar = await packTar(
      ['api', 'worker', 'scheduler'].map((service, s) => ({
        name: `var/log/${service}.log`,
        content: textLines(
          20 + s,
          500,
          (i, pick) =>
            `2025-06-25T${String(i % 24).padStart(2, '0')}:00:${String(i % 60).padStart(2, '0')}Z ${pick(levels)} ${service} request ${i * 31} handled in ${(i * 7) % 900} ms`,
        ),
      })),
      at,
    );
    await archive(name, cutShort(gzip(tar)), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['ARCHIVE_TRUNCATED'],
      description:
        'cut off halfway (the disk filled during the upload); the sidecar was taken of what was written',
    });
  }

  // 6. empty-job: the job reported success but wrote an empty archive.
  {
    const at = ago(HOUR);
    const name = `empty-job-${demoStamp(at)}.tar.gz`;
    await archive(name, gzip(await packTar([], at)), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['EMPTY_BACKUP'],
      description: 'a valid gzip of an empty tar: the job reported success while writing empty archives',
    });
  }

  // 7. crm: the sidecar records other bytes than the ones stored.
  {
    const at = ago(HOUR);
    const name = `crm-${demoStamp(at)}.tar.gz`;
    const contacts = (rows: number) =>
      `id,name,email\n${textLines(7, rows, (i, pick) => `${i + 1},${pick(['Ada', 'Grace', 'Linus', 'Barbara', 'Ken'])} ${i},contact${i}@example.com`)}`;
    const crm = async (rows: number) =>
      gzip(
        await packTar(
          [
            { name: 'crm/contacts.csv', content: contacts(rows) },
            { name: 'crm/deals.json', content: `${JSON.stringify({ open: 12, won: 4, lost: 2 })}\n` },
          ],
          at,
        ),
      );
    await archive(name, await crm(80), at, { of: await crm(81) });
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['CHECKSUM_MISMATCH'],
      description:
        'a readable archive whose bytes differ from its .sha256 sidecar (replaced or altered after the backup)',
    });
  }

  // 8. reports: healthy, but the newest of its series is ten days old.
  {
    const at = ago(10 * DAY);
    const name = `reports-${demoStamp(at)}.tar.gz`;
    const tar = await packTar(
      [
        {
          name: 'reports/sales-q2.csv',
          content: `region,total\n${textLines(9, 40, (i, pick) => `${pick(['north', 'south', 'east', 'west'])}-${i},${(i * 1237) % 99_999}`)}`,
        },
        { name: 'reports/summary.json', content: `${JSON.stringify({ quarter: '2025-Q2', regions: 4 })}\n` },
      ],
      at,
    );
    await archive(name, gzip(tar), at, { bare: true });
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['RPO_EXCEEDED'],
      description:
        'intact, but the newest backup of series "reports" is 10 days old (RPO 24 h): the job stopped running',
    });
  }

  // 9. inventory-db: checksums all agree, but the database inside is damaged.
  {
    const at = ago(HOUR);
    const name = `inventory-db-${demoStamp(at)}.tar.gz`;
    const files = [{ name: 'inventory.db', content: corruptInventoryDatabase() }];
    await archive(name, gzip(await packTar(withRootManifest(files), at)), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['PROBE_FAILED'],
      description:
        'every checksum matches, but the SQLite database was already damaged when backed up: integrity_check fails',
    });
  }

  // 10. billing-dump: a pg_dump that never finished.
  {
    const at = ago(HOUR);
    const name = `billing-dump-${demoStamp(at)}.sql.gz`;
    await archive(name, gzip(pgDump({ complete: false, invoices: 400 })), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['PROBE_FAILED'],
      description:
        'a valid gzip of a pg_dump that stops mid-COPY, without "-- PostgreSQL database dump complete"',
    });
  }

  // 11. uploads: a hostile archive that would write outside the restore folder.
  {
    const at = ago(HOUR);
    const name = `uploads-${demoStamp(at)}.tar.gz`;
    const tar = await packTar(
      [
        { name: 'uploads/', type: 'directory' },
        { name: 'uploads/avatar-1.png', content: fakePng('avatar-1', 2000) },
        { name: '../escape.txt', content: 'this file would land outside the restore folder\n' },
      ],
      at,
    );
    await archive(name, gzip(tar), at);
    record({
      path: name,
      kind: 'archive',
      createdAt: at.toISOString(),
      expect: ['UNSAFE_PATH'],
      description:
        'a hostile archive with a "../escape.txt" entry: the restore refuses to write outside its folder',
    });
  }

  return { root: absoluteRoot, now: now.toISOString(), backups, files: out.files, bytes: out.bytes };
}
