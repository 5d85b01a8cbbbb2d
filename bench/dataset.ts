/**
 * The integrity bench's backup, made once and cached under bench-data/ (git-ignored):
 * ~1 GiB per unit of BENCH_SCALE of mixed content (about 20,000 small text-like files, large
 * files of half random and half compressible data, a SQLite database), its `.tar.gz` made by
 * `tar -czf` (gzip -6), a SHA256SUMS in the tree and a `.sha256` sidecar beside the archive.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface BenchDataset {
  /** Folder holding the backup tree (with its SHA256SUMS). */
  tree: string;
  /** Folder to open as a FolderStore: holds `backup.tar.gz` and `backup.tar.gz.sha256`. */
  store: string;
  archiveKey: string;
  archivePath: string;
  treeBytes: number;
  archiveBytes: number;
  files: number;
  scale: number;
}

export function benchScale(): number {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  if (!Number.isInteger(scale) || scale < 1)
    throw new Error(`BENCH_SCALE must be a whole number >= 1, got ${process.env.BENCH_SCALE}`);
  return scale;
}

/** xorshift: reproducible data without the cost of crypto randomness for text. */
function prng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const WORDS =
  'backup restore archive customer order invoice total amount status pending shipped delivered error warning info debug request response latency user session token region bucket object checksum ledger series snapshot volume database table index query'.split(
    ' ',
  );

/** Log- and JSON-like text: compresses about 3-5x with gzip -6, like real application data. */
function textPool(size: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(size);
  let at = 0;
  while (at < size - 200) {
    const kind = next() % 3;
    let line: string;
    if (kind === 0) {
      line = `2025-06-${String(1 + (next() % 28)).padStart(2, '0')}T${String(next() % 24).padStart(2, '0')}:${String(next() % 60).padStart(2, '0')}:${String(next() % 60).padStart(2, '0')}Z ${WORDS[next() % WORDS.length]} id=${next().toString(16)} ms=${next() % 5000}\n`;
    } else if (kind === 1) {
      line = `{"id":${next() % 1_000_000},"name":"${WORDS[next() % WORDS.length]}-${next() % 9999}","amount":${(next() % 100000) / 100},"tags":["${WORDS[next() % WORDS.length]}","${WORDS[next() % WORDS.length]}"]}\n`;
    } else {
      const n = 4 + (next() % 10);
      const words: string[] = [];
      for (let i = 0; i < n; i++) words.push(WORDS[next() % WORDS.length] as string);
      line = `${words.join(' ')}.\n`;
    }
    at += out.write(line, at, 'latin1');
  }
  return out.subarray(0, at);
}

async function writeMixedFile(file: string, size: number, pool: Buffer, next: () => number): Promise<void> {
  const parts: Buffer[] = [];
  let written = 0;
  while (written < size) {
    const n = Math.min(size - written, MiB);
    if (next() % 2 === 0) parts.push(randomBytes(n));
    else {
      const start = next() % (pool.length - n);
      parts.push(pool.subarray(start, start + n));
    }
    written += n;
  }
  await writeFile(file, Buffer.concat(parts));
}

function makeDatabase(file: string, targetBytes: number, pool: Buffer, next: () => number): void {
  const db = new Database(file);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.exec(
    'CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, blob BLOB)',
  );
  db.exec('CREATE INDEX events_kind ON events(kind)');
  const insert = db.prepare('INSERT INTO events (at, kind, payload, blob) VALUES (?, ?, ?, ?)');
  const rowsPerBatch = 10_000;
  let bytes = 0;
  while (bytes < targetBytes) {
    db.transaction(() => {
      for (let i = 0; i < rowsPerBatch; i++) {
        const start = next() % (pool.length - 400);
        const payload = pool.toString('latin1', start, start + 100 + (next() % 300));
        const blob = next() % 4 === 0 ? randomBytes(64) : null;
        insert.run(
          new Date(1_750_000_000_000 + bytes).toISOString(),
          WORDS[next() % WORDS.length],
          payload,
          blob,
        );
        bytes += payload.length + (blob ? 64 : 0) + 40;
      }
    })();
  }
  db.close();
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Makes the dataset unless a complete one is cached; returns where it is. */
export async function ensureDataset(
  dataDir: string,
  log: (line: string) => void,
  scale = benchScale(),
): Promise<BenchDataset> {
  // v2: small records are `.rec`, not `.json`: their bytes are not JSON, and the restore's JSON probe says so.
  const root = path.join(dataDir, `dataset-v2-x${scale}`);
  const manifest = path.join(root, 'dataset.json');
  if (existsSync(manifest)) return JSON.parse(await readFile(manifest, 'utf8')) as BenchDataset;

  log(`making the integrity dataset (scale ${scale}, ~${scale} GiB) under ${root}; cached for later runs`);
  await rm(root, { recursive: true, force: true });
  const tree = path.join(root, 'tree');
  const storeDir = path.join(root, 'store');
  await mkdir(storeDir, { recursive: true });
  const next = prng(42);
  const pool = textPool(16 * MiB, 7);
  const sums: string[] = [];
  let treeBytes = 0;
  let files = 0;
  const add = async (relative: string, content: Buffer) => {
    const file = path.join(tree, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    sums.push(`${createHash('sha256').update(content).digest('hex')}  ${relative}`);
    treeBytes += content.length;
    files++;
  };

  // ~20,000 small files of 1-20 KiB per scale unit (~200 MiB).
  const smallFiles = 20_000 * scale;
  for (let i = 0; i < smallFiles; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, smallFiles - i) }, (_, j) => {
        const n = i + j;
        const size = 1024 + (next() % (19 * 1024));
        const start = next() % (pool.length - size);
        const content =
          next() % 10 === 0 ? randomBytes(size) : Buffer.from(pool.subarray(start, start + size));
        return add(
          `app/data/${String(Math.floor(n / 500)).padStart(3, '0')}/record-${n}.${n % 10 === 0 ? 'bin' : 'rec'}`,
          content,
        );
      }),
    );
  }
  log(`  ${smallFiles} small files written`);

  // Large files: 6 x 100 MiB per scale unit, half random, half compressible.
  for (let i = 0; i < 6 * scale; i++) {
    const relative = `volumes/blob-${i}.img`;
    const file = path.join(tree, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeMixedFile(file, 100 * MiB, pool, next);
    sums.push(`${await sha256File(file)}  ${relative}`);
    treeBytes += 100 * MiB;
    files++;
  }
  log(`  ${6 * scale} large files written`);

  // A SQLite database (~150 MiB per scale unit).
  const dbRelative = 'db/app.sqlite';
  await mkdir(path.join(tree, 'db'), { recursive: true });
  makeDatabase(path.join(tree, dbRelative), 150 * MiB * scale, pool, next);
  sums.push(`${await sha256File(path.join(tree, dbRelative))}  ${dbRelative}`);
  treeBytes += (await stat(path.join(tree, dbRelative))).size;
  files++;
  log(`  SQLite database written; tree holds ${files} files, ${(treeBytes / MiB).toFixed(0)} MiB`);

  await writeFile(path.join(tree, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  const archiveKey = 'backup.tar.gz';
  const archivePath = path.join(storeDir, archiveKey);
  const started = Date.now();
  await run('tar', ['-czf', archivePath, '-C', tree, '.'], { env: { ...process.env, GZIP: '-6' } });
  const archiveBytes = (await stat(archivePath)).size;
  await writeFile(`${archivePath}.sha256`, `${await sha256File(archivePath)}  ${archiveKey}\n`);
  log(
    `  ${archiveKey}: ${(archiveBytes / MiB).toFixed(0)} MiB, made by tar -czf in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );

  const dataset: BenchDataset = {
    tree,
    store: storeDir,
    archiveKey,
    archivePath,
    treeBytes,
    archiveBytes,
    files,
    scale,
  };
  await writeFile(manifest, JSON.stringify(dataset, null, 2));
  return dataset;
}
