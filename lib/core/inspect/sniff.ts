import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { ArchiveFormat } from '../compression.ts';
import { globToRegExp } from '../config.ts';

/**
 * Archives recognised by what they hold rather than by their name: the first bytes of a gzip
 * (1f 8b) or zstd (28 b5 2f fd) stream, and a tar header (`ustar` at offset 257, or a header
 * whose checksum is right). A compressed stream is a tar when its first decompressed block is.
 */

/** Enough stored bytes to see a tar header through most compressed first blocks. */
export const SNIFF_BYTES = 64 * 1024;
const TAR_BLOCK = 512;
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(head: Buffer, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((byte, i) => head[i] === byte);
}

/** A tar header: the POSIX/GNU magic, or (old v7 archives) a checksum that adds up. */
export function looksLikeTar(block: Buffer): boolean {
  if (block.length < TAR_BLOCK) return false;
  if (block.toString('latin1', 257, 262) === 'ustar') return true;
  if (block[0] === 0) return false;
  const field = block
    .toString('latin1', 148, 156)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]{1,7}$/.test(field)) return false;
  const recorded = Number.parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return recorded === unsigned || recorded === signed;
}

/** The first decompressed bytes of a head that may be cut anywhere; empty when they cannot be had. */
function inflateHead(head: Buffer, compression: 'gzip' | 'zstd'): Buffer {
  try {
    if (compression === 'gzip') {
      return zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    }
    const zstd = (zlib as { zstdDecompressSync?: (b: Buffer) => Buffer }).zstdDecompressSync;
    return zstd ? zstd(head) : Buffer.alloc(0);
  } catch {
    return Buffer.alloc(0);
  }
}

function stemOf(name: string): string {
  const dot = name.lastIndexOf('.');
  const slash = name.lastIndexOf('/');
  return dot > slash + 1 ? name.slice(0, dot) : name;
}

/** The format the first bytes of an object show, or undefined when they show none of these. */
export function sniffArchiveFormat(head: Buffer, name: string): ArchiveFormat | undefined {
  const stem = stemOf(name);
  if (startsWith(head, GZIP_MAGIC)) {
    return { compression: 'gzip', tar: looksLikeTar(inflateHead(head, 'gzip')), stem };
  }
  if (startsWith(head, ZSTD_MAGIC)) {
    return { compression: 'zstd', tar: looksLikeTar(inflateHead(head, 'zstd')), stem };
  }
  if (looksLikeTar(head)) return { compression: 'none', tar: true, stem };
  return undefined;
}

/**
 * Reads the first bytes of a stream (up to `bytes`, fewer at its end) and gives back a stream
 * of the whole content: those bytes, then the rest. Errors of the source reach the new stream.
 */
export async function readHead(
  source: Readable,
  bytes = SNIFF_BYTES,
): Promise<{ head: Buffer; stream: Readable }> {
  const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const taken: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < bytes) {
    const next = await iterator.next().catch((error: unknown) => {
      throw Object.assign(error instanceof Error ? error : new Error(String(error)), { bytesRead: size });
    });
    if (next.done) {
      ended = true;
      break;
    }
    taken.push(next.value);
    size += next.value.length;
  }
  const head = Buffer.concat(taken);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        return;
      }
      yield next.value;
    }
  }
  const stream = Readable.from(replay(), { objectMode: false });
  stream.once('close', () => {
    if (!ended) source.destroy();
  });
  return { head, stream };
}

/**
 * Whether a key matches one of the configured archive name patterns (`archives.patterns`): a
 * pattern without `/` is matched against the object's name, one with `/` against its whole key.
 */
export function matchesArchivePattern(key: string, patterns: readonly string[]): boolean {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return patterns.some((pattern) => globToRegExp(pattern).test(pattern.includes('/') ? key : name));
}

/** The catalogue's view of an object a pattern names: an archive whose format its bytes will tell. */
export function archiveByPattern(key: string, patterns: readonly string[]): ArchiveFormat | undefined {
  if (patterns.length === 0 || !matchesArchivePattern(key, patterns)) return undefined;
  return { compression: 'none', tar: true, stem: stemOf(key.slice(key.lastIndexOf('/') + 1)) };
}
