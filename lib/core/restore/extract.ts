import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../compression.ts';
import { createDecompressor } from '../compression.ts';
import { StoreError } from '../errors.ts';
import { INFLATE_WORKER_MIN_BYTES, WorkerInflater } from '../inspect/inflate-worker.ts';
import { type TarEntryHeader, type TarEntrySink, TarParser, type TarProblem } from '../inspect/tar-parser.ts';
import { RestoreAbort } from './abort.ts';
import type { RestoreLimits } from './limits.ts';
import type { SandboxTree } from './sandbox-tree.ts';

const COUNT_HIGH_WATER_MARK = 1024 * 1024;
/** Stored bytes handed to the inflating worker between two waits on the file system (tree.ready()). */
const INFLATE_SLICE = 64 * 1024;
/** A slot of the inflating worker's output ring (8 of them): smaller than the integrity pass's, for the restore's memory bound. */
const INFLATE_SLOT_BYTES = 128 * 1024;

export interface ExtractOptions {
  tree: SandboxTree;
  limits: RestoreLimits;
  compression: Compression;
  /** Also hash the stored (compressed) bytes, to compare with the integrity pass. */
  hashStored?: boolean;
  signal?: AbortSignal;
  /** Called now and then with the compressed bytes read so far. */
  onBytes?: (compressedBytes: number) => void;
  /** The archive's stored size, when known: a small one is inflated by zlib's stream, not a worker thread. */
  storedBytes?: number;
  /**
   * The stored object as a local file (a folder store's): inflated in a worker, it is read from
   * there straight into the worker's slots instead of from `source`, which is left unread.
   */
  file?: FileHandle;
}

export interface ExtractStats {
  compressedBytes: number;
  expandedBytes: number;
  storedSha256?: string;
}

/**
 * Streams an archive from the store straight into the sandbox: read, decompress, parse
 * and write in one pass. Any limit or containment breach throws a RestoreAbort from inside
 * the pass, which destroys the whole pipeline at once.
 */
export async function extractTar(source: Readable, options: ExtractOptions): Promise<ExtractStats> {
  const { tree, limits } = options;
  let problem: TarProblem | undefined;
  const parser = new TarParser({
    entry(header: TarEntryHeader): TarEntrySink | undefined {
      return createEntry(tree, limits, header);
    },
    problem(found: TarProblem) {
      problem ??= found;
    },
  });
  const stats = await expand(source, options, (chunk) => {
    parser.write(chunk);
    if (problem) throw problemAbort(problem);
  });
  parser.end();
  if (problem) throw problemAbort(problem);
  await tree.drain();
  return stats;
}

/** A plain compressed file (`dump.sql.gz`): restored as the single file it holds. */
export async function extractSingleFile(
  source: Readable,
  name: string,
  options: ExtractOptions,
): Promise<ExtractStats> {
  const { tree, limits } = options;
  const relative = tree.relative(name, 'file name');
  limits.entry(relative);
  const writer = tree.createFile(relative, limits);
  const stats = await expand(source, options, (chunk) => writer.write(chunk));
  writer.end();
  await tree.drain();
  return stats;
}

/**
 * Whether a stored archive of this compression and size is inflated by a worker thread, which
 * hashes the stored bytes as it goes (`hashStored` then costs this thread nothing).
 */
export function inflatesInWorker(compression: Compression, storedBytes: number | undefined): boolean {
  return compression === 'gzip' && (storedBytes ?? Number.POSITIVE_INFINITY) >= INFLATE_WORKER_MIN_BYTES;
}

async function expand(
  source: Readable,
  options: ExtractOptions,
  consume: (chunk: Buffer) => void,
): Promise<ExtractStats> {
  const { limits, signal } = options;
  const stats: ExtractStats = { compressedBytes: 0, expandedBytes: 0 };
  if (inflatesInWorker(options.compression, options.storedBytes))
    return expandInWorker(source, options, consume);
  const decompressor = createDecompressor(options.compression);
  const storedHash = options.hashStored ? createHash('sha256') : undefined;
  // A byte-mode Transform, not an async generator: a generator stage buffers 16 chunks (16 MiB).
  const count = new Transform({
    readableHighWaterMark: COUNT_HIGH_WATER_MARK,
    writableHighWaterMark: COUNT_HIGH_WATER_MARK,
    transform(chunk: Buffer, _encoding, callback) {
      stats.compressedBytes += chunk.length;
      storedHash?.update(chunk);
      options.onBytes?.(stats.compressedBytes);
      callback(null, chunk);
    },
  });
  // The consumer's own error (a limit, an unsafe path) is the story; the pipeline may report its teardown instead.
  let consumerError: unknown;
  async function consumeAll(input: AsyncIterable<Buffer>) {
    try {
      for await (const chunk of input) {
        if (signal?.aborted) throw cancelled();
        stats.expandedBytes += chunk.length;
        if (decompressor) limits.ratio(stats.expandedBytes, stats.compressedBytes);
        consume(chunk);
        await options.tree.ready();
      }
    } catch (error) {
      consumerError = error;
      throw error;
    }
  }
  // The decompressor's own failure is the archive's damage, whatever code this runtime's
  // zlib or WebAssembly decompressor gives it; a store failure passed along to it is not.
  let decompressorError: unknown;
  decompressor?.once('error', (error) => {
    decompressorError ??= error;
  });
  try {
    if (decompressor) await pipeline(source, count, decompressor, consumeAll);
    else await pipeline(source, count, consumeAll);
  } catch (error) {
    if (consumerError) throw consumerError;
    if (error === decompressorError && !(error instanceof StoreError) && !(error instanceof RestoreAbort)) {
      throw damagedStream(error as Error & { code?: string }, options.compression);
    }
    throw error;
  }
  if (storedHash) stats.storedSha256 = storedHash.digest('hex');
  return stats;
}

/**
 * gzip inflated in a worker thread into a ring of shared slots (see WorkerInflater for why),
 * while this thread parses, hashes and writes. Each piece is valid only while it is consumed:
 * the tar parser copies what it keeps, and a file writer copies what it queues rather than
 * writes at once. Input goes over in slices, with a wait on the file system between them, so
 * what is inflated ahead of the writers stays small.
 */
async function expandInWorker(
  source: Readable,
  options: ExtractOptions,
  consume: (chunk: Buffer) => void,
): Promise<ExtractStats> {
  const { limits, signal, tree } = options;
  const stats: ExtractStats = { compressedBytes: 0, expandedBytes: 0 };
  // Thrown inside the worker's message handler, an error would be uncaught: kept and thrown here.
  let consumerError: unknown;
  const deliver = (piece: Buffer, fed: number) => {
    try {
      if (signal?.aborted) throw cancelled();
      stats.expandedBytes += piece.length;
      limits.ratio(stats.expandedBytes, fed);
      consume(piece);
      return true;
    } catch (error) {
      consumerError ??= error;
      return false;
    }
  };
  const inflater = new WorkerInflater(INFLATE_SLOT_BYTES, deliver, () => undefined);
  const check = () => {
    if (consumerError) throw consumerError;
    if (inflater.error) throw damagedStream(inflater.error, options.compression);
  };
  try {
    if (options.file) {
      // Read into the worker's own memory: copied out of a stream's buffer, each byte went
      // through V8's copy into shared memory, one at a time (relaxed_memmove, 0.3-0.45 s in perf).
      for (;;) {
        if (signal?.aborted) throw cancelled();
        const slot = await inflater.nextSlot();
        const read = await readSlot(options.file, slot, inflater);
        if (read === 0) break;
        stats.compressedBytes += read;
        options.onBytes?.(stats.compressedBytes);
        inflater.submit(slot, read);
        await tree.ready();
        check();
      }
    } else
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (signal?.aborted) throw cancelled();
        for (let at = 0; at < chunk.length; at += INFLATE_SLICE) {
          const slice = chunk.subarray(at, at + INFLATE_SLICE);
          stats.compressedBytes += slice.length;
          options.onBytes?.(stats.compressedBytes);
          await inflater.write(slice);
          await tree.ready();
          check();
        }
      }
    const storedSha256 = await inflater.finish(true);
    check();
    if (options.hashStored) stats.storedSha256 = storedSha256;
  } finally {
    inflater.close();
  }
  return stats;
}

/** Fills a slot from the file; 0 at its end (the slot is given back). A failed read is the store's. */
async function readSlot(file: FileHandle, slot: Buffer, inflater: WorkerInflater): Promise<number> {
  let bytesRead: number;
  try {
    ({ bytesRead } = await file.read(slot, 0, slot.length, null));
  } catch (error) {
    inflater.release(slot);
    throw new StoreError(`cannot read the archive's file: ${(error as Error).message}`, 'io', 'archive', {
      cause: error,
    });
  }
  if (bytesRead === 0) inflater.release(slot);
  return bytesRead;
}

function cancelled(): RestoreAbort {
  return new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
}

function damagedStream(error: Error & { code?: string }, compression: Compression): RestoreAbort {
  if (error.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(error.message)) {
    return new RestoreAbort(
      'ARCHIVE_TRUNCATED',
      `the compressed stream ends early: ${error.message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  return new RestoreAbort(
    'ARCHIVE_CORRUPT',
    `the ${compression} stream is invalid: ${error.message}`,
    undefined,
    {
      cause: error,
    },
  );
}

function createEntry(
  tree: SandboxTree,
  limits: RestoreLimits,
  header: TarEntryHeader,
): TarEntrySink | undefined {
  const relative = tree.relative(header.path);
  switch (header.type) {
    case 'directory':
      if (relative === '') return undefined;
      limits.entry(relative);
      tree.makeDirectory(relative);
      return undefined;
    case 'file': {
      limits.entry(relative);
      limits.declare(header.size, relative);
      const writer = tree.createFile(relative, limits);
      return {
        write: (chunk) => writer.write(chunk),
        end: () => {
          writer.end();
        },
      };
    }
    case 'symlink':
      limits.entry(relative);
      tree.makeSymlink(relative, header.linkTarget ?? '');
      return undefined;
    case 'hardlink':
      limits.entry(relative);
      tree.makeHardlink(relative, header.linkTarget ?? '');
      return undefined;
    default:
      // Devices, fifos: not backup content, and creating them needs privileges; skipped.
      return undefined;
  }
}

function problemAbort(problem: TarProblem): RestoreAbort {
  return new RestoreAbort(
    problem.kind === 'truncated' ? 'ARCHIVE_TRUNCATED' : 'ARCHIVE_CORRUPT',
    problem.message,
    problem.member,
  );
}
