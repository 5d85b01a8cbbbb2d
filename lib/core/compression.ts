import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { ARCHIVE_SUFFIXES, type Compression } from './archive-names.ts';
import { WasmZstdDecompress } from './zstd-wasm.ts';

export type { Compression };

/** Inflate is the bottleneck of a pass; Node's default 16 KiB chunks make it ~2x slower. */
export const INFLATE_CHUNK_SIZE = 512 * 1024;

export interface ArchiveFormat {
  compression: Compression;
  /** Whether the (decompressed) stream is a tar archive. */
  tar: boolean;
  /** The name without the archive suffix. */
  stem: string;
}

/** The archive format a name announces, or undefined when the name is not an archive backup. */
export function archiveFormatOf(name: string): ArchiveFormat | undefined {
  const lower = name.toLowerCase();
  for (const [suffix, compression, tar] of ARCHIVE_SUFFIXES) {
    if (lower.endsWith(suffix) && lower.length > suffix.length) {
      return { compression, tar, stem: name.slice(0, name.length - suffix.length) };
    }
  }
  return undefined;
}

/**
 * A decompressing transform, for every supported format on every supported runtime; undefined
 * for uncompressed archives. Node's gunzip reads concatenated (multi-member) gzip streams.
 * zstd is always read by the reference libzstd compiled to WebAssembly (about 3x the CPU time
 * of `zstd -dc`), which reads concatenated and skippable frames and checks content checksums.
 * zlib's own zstd (Node 22.15+, so the Lambdas' and the container's runtime) is not used: on
 * Node 22.23.5 it stops after the first frame of a multi-frame file (pzstd, `cat a.zst b.zst`)
 * and says nothing of input cut short, damaged or followed by garbage, so a truncated `.zst`
 * would read as a short, healthy stream.
 */
export function createDecompressor(compression: 'gzip' | 'zstd'): Transform;
export function createDecompressor(compression: Compression): Transform | undefined;
export function createDecompressor(compression: Compression): Transform | undefined {
  switch (compression) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: INFLATE_CHUNK_SIZE });
    case 'zstd':
      return new WasmZstdDecompress(INFLATE_CHUNK_SIZE);
    case 'none':
      return undefined;
  }
}
