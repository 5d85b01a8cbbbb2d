import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Backup, BackupObject } from '../../lib/core/model.ts';

/** Hand-made tar pieces for archives no honest tool would write. */

export type RawEntryType = 'file' | 'directory' | 'symlink' | 'hardlink';

export interface RawEntry {
  name: string;
  type?: RawEntryType;
  /** File content; its length is the header's size unless `declaredSize` says otherwise. */
  body?: Buffer | string;
  linkname?: string;
  /** A size to put in the header instead of the body's length (written base-256). */
  declaredSize?: number;
  /** A raw typeflag ('x' pax, 'S' old GNU sparse) instead of `type`'s. */
  typeflag?: string;
}

const TYPEFLAG: Record<RawEntryType, string> = { file: '0', directory: '5', symlink: '2', hardlink: '1' };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** One ustar header block with a correct checksum; names up to 100 bytes. */
export function tarHeader(entry: RawEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  if (Buffer.byteLength(entry.name) > 100) throw new Error(`name too long for a raw header: ${entry.name}`);
  block.write(entry.name, 0, 'utf8');
  block.write(octal(entry.type === 'directory' ? 0o755 : 0o644, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  if (size > 0o77777777777) {
    // GNU base-256: a size octal cannot hold.
    block[124] = 0x80;
    let rest = size;
    for (let i = 135; i > 124; i--) {
      block[i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  } else block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(1_700_000_000, 12), 136, 'latin1');
  block.write(entry.typeflag ?? TYPEFLAG[entry.type ?? 'file'], 156, 'latin1');
  if (entry.linkname) block.write(entry.linkname, 157, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  return checksummed(block);
}

/** Writes a header block's checksum (after its other fields were set). */
export function checksummed(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** One pax record: `length key=value\n`, the length counting its own digits. */
export function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(rest) + 1;
  while (String(length).length + Buffer.byteLength(rest) !== length) length++;
  return `${length}${rest}`;
}

/** A pax extended header ('x') with its records, padded to whole blocks. */
export function paxHeader(records: Array<[string, string]>, typeflag = 'x'): Buffer {
  const body = Buffer.from(records.map(([k, v]) => paxRecord(k, v)).join(''));
  return Buffer.concat([
    tarHeader({ name: 'PaxHeaders/entry', typeflag }, body.length),
    body,
    padding(body.length),
  ]);
}

/**
 * A pax sparse 1.0 member as GNU tar writes it: pax records naming the file and its real
 * size, then a member whose data starts with the map (`map`, padded to a block) and goes on
 * with the stored runs.
 */
export function paxSparse10Member(name: string, realSize: number, map: string, data: Buffer): Buffer {
  const mapBytes = Buffer.from(map);
  const stored = Buffer.concat([mapBytes, padding(mapBytes.length), data]);
  return Buffer.concat([
    paxHeader([
      ['GNU.sparse.major', '1'],
      ['GNU.sparse.minor', '0'],
      ['GNU.sparse.name', name],
      ['GNU.sparse.realsize', String(realSize)],
    ]),
    tarHeader({ name: `GNUSparseFile.0/${name}` }, stored.length),
    stored,
    padding(stored.length),
  ]);
}

/** The map text of a pax sparse 1.0 member: the count, then offset and length lines. */
export function sparse10Map(runs: ReadonlyArray<readonly [number, number]>, count = runs.length): string {
  const lines = [String(count)];
  for (const [offset, length] of runs) lines.push(String(offset), String(length));
  return `${lines.join('\n')}\n`;
}

/**
 * An old GNU sparse member ('S'): four runs in the header, the rest in extension blocks of
 * 21 runs each. `data` holds the stored runs back to back.
 */
export function gnuSparseMember(
  name: string,
  realSize: number,
  runs: ReadonlyArray<readonly [number, number]>,
  data: Buffer,
): Buffer {
  const field = (block: Buffer, at: number, value: number) =>
    block.write(`${value.toString(8).padStart(11, '0')}\0`, at, 'latin1');
  const header = tarHeader({ name, typeflag: 'S' }, data.length);
  for (let i = 0; i < Math.min(4, runs.length); i++) {
    field(header, 386 + i * 24, (runs[i] as readonly [number, number])[0]);
    field(header, 386 + i * 24 + 12, (runs[i] as readonly [number, number])[1]);
  }
  field(header, 483, realSize);
  const extensions: Buffer[] = [];
  for (let first = 4; first < runs.length; first += 21) {
    const block = Buffer.alloc(512);
    for (let i = 0; i < 21 && first + i < runs.length; i++) {
      field(block, i * 24, (runs[first + i] as readonly [number, number])[0]);
      field(block, i * 24 + 12, (runs[first + i] as readonly [number, number])[1]);
    }
    if (first + 21 < runs.length) block[504] = 1;
    extensions.push(block);
  }
  if (extensions.length > 0) header[482] = 1;
  checksummed(header);
  return Buffer.concat([header, ...extensions, data, padding(data.length)]);
}

/** A whole archive (end blocks included) from already built members. */
export function tarOf(...members: Buffer[]): Buffer {
  return Buffer.concat([...members, Buffer.alloc(1024)]);
}

/** The content a sparse map expands to: zeros, with each run's stored bytes at its offset. */
export function expandSparse(
  realSize: number,
  runs: ReadonlyArray<readonly [number, number]>,
  data: Buffer,
): Buffer {
  const out = Buffer.alloc(realSize);
  let at = 0;
  for (const [offset, length] of runs) {
    data.copy(out, offset, at, at + length);
    at += length;
  }
  return out;
}

function padding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

/** A whole tar archive (with its end-of-archive blocks) from raw entries. */
export function rawTar(entries: RawEntry[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) parts.push(rawMember(entry));
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** One raw entry: header, body and padding. */
export function rawMember(entry: RawEntry): Buffer {
  const body = entry.body === undefined ? Buffer.alloc(0) : Buffer.from(entry.body);
  return Buffer.concat([tarHeader(entry, entry.declaredSize ?? body.length), body, padding(body.length)]);
}

/** Streams a tar of `count` tiny files, gzipped, without holding it. */
export function manyEntriesTarGz(count: number): Readable {
  function* blocks() {
    for (let i = 0; i < count; i++) {
      const body = Buffer.from(`${i}\n`);
      yield Buffer.concat([tarHeader({ name: `f/${i}.txt` }, body.length), body, padding(body.length)]);
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(blocks()).pipe(zlib.createGzip({ level: 1 }));
}

/**
 * A gzip bomb made on the fly: a tar header announcing `zeroBytes` of content, then that
 * many zeros, compressed as they are produced (never held in memory).
 */
export function gzipBombTar(zeroBytes: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  function* blocks() {
    yield tarHeader({ name: 'zeros.bin' }, zeroBytes);
    let left = zeroBytes;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      yield n === chunk.length ? chunk : chunk.subarray(0, n);
      left -= n;
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(blocks()).pipe(zlib.createGzip({ level: 9 }));
}

/** A plain `.gz` of `zeroBytes` zeros (not a tar), compressed on the fly. */
export function gzipBombPlain(zeroBytes: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024);
  function* zeros() {
    let left = zeroBytes;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      yield n === chunk.length ? chunk : chunk.subarray(0, n);
      left -= n;
    }
  }
  return Readable.from(zeros()).pipe(zlib.createGzip({ level: 9 }));
}

export async function writeStream(file: string, source: Readable): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await pipeline(source, createWriteStream(file));
}

/**
 * A test arena: a store folder with the backups, the sandbox root, and a canary folder
 * beside the root whose listing must never change, whatever an archive tries.
 */
export interface Arena {
  base: string;
  store: string;
  root: string;
  canary: string;
  /** Recursive listing of the canary folder and of `base` (without the root's and store's contents). */
  snapshot(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function makeArena(prefix = 'bv-restore-'): Promise<Arena> {
  const base = await mkdtemp(path.join(tmpdir(), prefix));
  const store = path.join(base, 'store');
  const root = path.join(base, 'sandbox');
  const canary = path.join(base, 'canary');
  await mkdir(store, { recursive: true });
  await mkdir(canary, { recursive: true });
  await mkdir(root, { recursive: true });
  await writeFile(path.join(canary, 'canary.txt'), 'still here\n');
  return {
    base,
    store,
    root,
    canary,
    async snapshot() {
      const out: string[] = [];
      const walk = async (dir: string, rel: string) => {
        for (const name of (await readdir(dir)).sort()) {
          const full = path.join(dir, name);
          const relative = rel ? `${rel}/${name}` : name;
          if (full === store || full === root) {
            out.push(`${relative}/`);
            continue;
          }
          const info = await stat(full).catch(() => undefined);
          out.push(`${relative}${info?.isDirectory() ? '/' : ` ${info?.size}`}`);
          if (info?.isDirectory()) await walk(full, relative);
        }
      };
      await walk(base, '');
      return out;
    },
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

/** A catalogue entry for one archive in a folder store, as discovery would make it. */
export async function archiveBackup(storeRoot: string, key: string): Promise<Backup> {
  const info = await stat(path.join(storeRoot, key));
  const name = path.posix.basename(key);
  const member: BackupObject = { key, path: name, size: info.size, lastModified: info.mtime };
  return {
    id: `${storeRoot}/${key}`,
    source: storeRoot,
    series: name.replace(/[-_.]?\d{8}.*$/, ''),
    kind: 'archive',
    key,
    name,
    createdAt: info.mtime,
    createdFrom: 'mtime',
    objects: 1,
    bytes: info.size,
    members: [member],
    manifestKeys: [],
  };
}

/** A catalogue entry for a directory backup (every file below `prefix`; SHA256SUMS files are references). */
export async function directoryBackup(storeRoot: string, prefix: string): Promise<Backup> {
  const members: BackupObject[] = [];
  const manifestKeys: string[] = [];
  const walk = async (rel: string) => {
    for (const name of (await readdir(path.join(storeRoot, rel))).sort()) {
      const key = `${rel}${name}`;
      const info = await stat(path.join(storeRoot, key));
      if (info.isDirectory()) await walk(`${key}/`);
      else if (name === 'SHA256SUMS') manifestKeys.push(key);
      else members.push({ key, path: key.slice(prefix.length), size: info.size, lastModified: info.mtime });
    }
  };
  await walk(prefix);
  const name = prefix.replace(/\/$/, '').split('/').pop() as string;
  return {
    id: `${storeRoot}/${prefix}`,
    source: storeRoot,
    series: name,
    kind: 'directory',
    key: prefix,
    name,
    createdAt: new Date(),
    createdFrom: 'mtime',
    objects: members.length + manifestKeys.length,
    bytes: members.reduce((sum, m) => sum + m.size, 0),
    members,
    manifestKeys,
  };
}
