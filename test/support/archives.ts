/**
 * Builders of archives and damage for tests: tar and tar.gz in memory (tar-stream) or with the
 * system's GNU tar in each of its formats, multi-member gzip, and corruption helpers.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { type ArchiveFormat, archiveFormatOf } from '../../lib/core/compression.ts';
import type { Backup, BackupObject } from '../../lib/core/model.ts';
import type { ChecksumHistory, FirstSeenChecksum, ObjectStore } from '../../lib/core/ports.ts';

const run = promisify(execFile);

export type TarFormat = 'ustar' | 'gnu' | 'pax' | 'v7' | 'oldgnu';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic, partly compressible bytes (text-like runs mixed with noise). */
export function sampleBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 || 1;
  const words = ['backup', 'restore', 'tar', 'gzip', 'checksum', 'ledger', 'series', '\n', ' ', '{"k":1}'];
  let at = 0;
  while (at < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if ((x & 7) === 0) {
      out[at++] = x & 0xff;
    } else {
      const word = words[(x >>> 8) % words.length] as string;
      at += out.write(word, at, 'latin1');
    }
  }
  return out;
}

export type TreeSpec = Record<string, string | Buffer>;

/** Writes files (paths with `/` make folders) under `root`. */
export async function writeTree(root: string, files: TreeSpec): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(root, ...name.split('/'));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

export async function makeTempDir(prefix = 'bv-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** A `sha256sum`-format manifest of `files` (paths relative to the manifest's folder). */
export function sha256sums(files: TreeSpec, options: { binary?: boolean } = {}): string {
  return Object.entries(files)
    .map(([name, content]) => `${sha256Hex(content)} ${options.binary ? '*' : ' '}${name}\n`)
    .join('');
}

export interface MemoryEntry {
  name: string;
  content?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
}

/** A tar archive built in memory with tar-stream (ustar headers, pax for long names). */
export async function packTar(entries: MemoryEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = {
      name: entry.name,
      type,
      mtime: new Date(0),
      mode: type === 'directory' ? 0o755 : 0o644,
      ...(entry.linkname ? { linkname: entry.linkname } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const callback = (error?: Error | null) => (error ? reject(error) : resolve());
      if (type === 'file') pack.entry(header, entry.content ?? '', callback);
      else pack.entry(header, callback);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface SystemTarOptions {
  format: TarFormat;
  /** Paths relative to `cwd`, in order (default: `.`). */
  paths?: string[];
  sparse?: boolean;
  sparseVersion?: '0.0' | '0.1' | '1.0';
  gzip?: boolean;
}

/** A tar made by the system's GNU tar from a real folder. */
export async function systemTar(cwd: string, options: SystemTarOptions): Promise<Buffer> {
  const args = [
    '-c',
    `--format=${options.format}`,
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
  ];
  if (options.sparse) args.push('--sparse');
  if (options.sparseVersion) args.push(`--sparse-version=${options.sparseVersion}`);
  const dir = await makeTempDir('bv-tar-');
  const out = path.join(dir, 'out.tar');
  try {
    args.push('-f', out, '-C', cwd, ...(options.paths ?? ['.']));
    await run('tar', args);
    const { readFile } = await import('node:fs/promises');
    const tar = await readFile(out);
    return options.gzip ? gzip(tar) : tar;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function gzip(data: Buffer, level = 6): Buffer {
  return zlib.gzipSync(data, { level });
}

/** Several gzip members concatenated, as `cat a.gz b.gz` or pigz/bgzip make. */
export function multiMemberGzip(parts: Buffer[]): Buffer {
  return Buffer.concat(parts.map((p) => gzip(p)));
}

/** Writes a file of `size` bytes that holds `data` at each offset and holes elsewhere. */
export async function writeSparseFile(
  file: string,
  size: number,
  data: Array<[number, Buffer]>,
): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'w');
  try {
    for (const [offset, bytes] of data) await handle.write(bytes, 0, bytes.length, offset);
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
}

export function flipBit(data: Buffer, offset: number, bit = 0): Buffer {
  if (offset < 0 || offset >= data.length) throw new Error(`offset ${offset} outside 0..${data.length - 1}`);
  const copy = Buffer.from(data);
  copy[offset] = (copy[offset] as number) ^ (1 << bit);
  return copy;
}

export function truncateAt(data: Buffer, length: number): Buffer {
  return Buffer.from(data.subarray(0, length));
}

export function zeroRange(data: Buffer, offset: number, length = 512): Buffer {
  const copy = Buffer.from(data);
  copy.fill(0, offset, Math.min(copy.length, offset + length));
  return copy;
}

/** The input as a stream of `size`-byte chunks (the last one shorter). */
export function chunked(data: Buffer, size: number): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(at, at + size));
      at += size;
    },
  });
}

export interface TarLayoutEntry {
  name: string;
  typeflag: string;
  headerOffset: number;
  dataOffset: number;
  size: number;
}

/** Where each header and its data sit in a plain tar, to aim damage at them. */
export function tarLayout(tar: Buffer): TarLayoutEntry[] {
  const out: TarLayoutEntry[] = [];
  let at = 0;
  while (at + 512 <= tar.length) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    const name = block.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = Number.parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156] as number);
    out.push({ name, typeflag, headerOffset: at, dataOffset: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Offset of the end-of-archive blocks in a plain tar. */
export function tarEndOffset(tar: Buffer): number {
  const last = tarLayout(tar).at(-1);
  return last ? last.dataOffset + Math.ceil(last.size / 512) * 512 : 0;
}

/** A directory backup as discovery would describe it: every file under `prefix` of the store. */
export async function directoryBackupOf(store: ObjectStore, prefix: string): Promise<Backup> {
  const members: BackupObject[] = [];
  const manifestKeys: string[] = [];
  let bytes = 0;
  for await (const info of store.list()) {
    if (!info.key.startsWith(prefix)) continue;
    bytes += info.size;
    if (info.key.split('/').pop() === 'SHA256SUMS') manifestKeys.push(info.key);
    else members.push({ ...info, path: info.key.slice(prefix.length) });
  }
  const name = prefix.replace(/\/$/, '').split('/').pop() ?? prefix;
  return {
    id: `${store.url}/${prefix}`,
    source: store.url,
    series: name,
    kind: 'directory',
    key: prefix,
    name,
    createdAt: new Date(0),
    createdFrom: 'mtime',
    objects: members.length + manifestKeys.length,
    bytes,
    members,
    manifestKeys,
  };
}

/** An archive backup as discovery would describe it, with its `.sha256` sidecar when one exists. */
export async function archiveBackupOf(store: ObjectStore, key: string): Promise<Backup> {
  const info = await store.head(key);
  const name = key.split('/').pop() ?? key;
  let sidecarKey: string | undefined;
  try {
    await store.head(`${key}.sha256`);
    sidecarKey = `${key}.sha256`;
  } catch {
    sidecarKey = undefined;
  }
  return {
    id: `${store.url}/${key}`,
    source: store.url,
    series: name,
    kind: 'archive',
    key,
    name,
    createdAt: new Date(0),
    createdFrom: 'mtime',
    objects: 1,
    bytes: info.size,
    members: [{ ...info, path: name }],
    manifestKeys: [],
    ...(sidecarKey ? { sidecarKey } : {}),
  };
}

/** The ledger's first-seen records, in memory: the same contract as the DynamoDB and file ledgers. */
export class MemoryChecksumHistory implements ChecksumHistory {
  readonly records = new Map<string, FirstSeenChecksum>();
  async recordFirstSeen(
    backupId: string,
    checksums: Array<Omit<FirstSeenChecksum, 'firstSeenAt'>>,
  ): Promise<FirstSeenChecksum[]> {
    const earlier: FirstSeenChecksum[] = [];
    for (const c of checksums) {
      const id = `${backupId}\n${c.path}`;
      const known = this.records.get(id);
      if (known) earlier.push(known);
      else this.records.set(id, { ...c, firstSeenAt: new Date().toISOString() });
    }
    return earlier;
  }
  async firstSeenOf(backupId: string): Promise<FirstSeenChecksum[]> {
    return [...this.records].filter(([id]) => id.startsWith(`${backupId}\n`)).map(([, record]) => record);
  }
}

/** The archive format a test file name announces (throws for a name that is not an archive). */
export function formatOf(name: string): ArchiveFormat {
  const format = archiveFormatOf(name);
  if (!format) throw new Error(`${name} is not an archive name`);
  return format;
}
