import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../compression.ts';
import { createDecompressor } from '../compression.ts';
import { type TarEntryHeader, type TarEntrySink, TarParser, type TarProblem } from '../inspect/tar-parser.ts';
import { RestoreAbort } from './abort.ts';
import type { RestoreLimits } from './limits.ts';
import type { FileWriter, SandboxTree } from './sandbox-tree.ts';

export interface ExtractOptions {
  tree: SandboxTree;
  limits: RestoreLimits;
  compression: Compression;
  /** Also hash the stored (compressed) bytes, to compare with the integrity pass. */
  hashStored?: boolean;
  signal?: AbortSignal;
  /** Called now and then with the compressed bytes read so far. */
  onBytes?: (compressedBytes: number) => void;
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
  let current: FileWriter | undefined;
  const parser = new TarParser({
    entry(header: TarEntryHeader): TarEntrySink | undefined {
      return createEntry(tree, limits, header, (writer) => {
        current = writer;
      });
    },
    problem(found: TarProblem) {
      problem ??= found;
    },
  });
  try {
    const stats = await expand(source, options, (chunk) => {
      parser.write(chunk);
      if (problem) throw problemAbort(problem);
    });
    parser.end();
    if (problem) throw problemAbort(problem);
    return stats;
  } finally {
    if (current && !current.isClosed) tree.closeAll();
  }
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
  try {
    const stats = await expand(source, options, (chunk) => writer.write(chunk));
    writer.end();
    return stats;
  } finally {
    if (!writer.isClosed) tree.closeAll();
  }
}

async function expand(
  source: Readable,
  options: ExtractOptions,
  consume: (chunk: Buffer) => void,
): Promise<ExtractStats> {
  const { limits, signal } = options;
  const stats: ExtractStats = { compressedBytes: 0, expandedBytes: 0 };
  const decompressor = createDecompressor(options.compression);
  if (options.compression !== 'none' && !decompressor) {
    throw new RestoreAbort(
      'RESTORE_FAILED',
      `this runtime cannot decompress ${options.compression} (Node ${process.versions.node}); run the restore on Node 22.15 or later`,
    );
  }
  const storedHash = options.hashStored ? createHash('sha256') : undefined;
  async function* count(input: AsyncIterable<Buffer>) {
    for await (const chunk of input) {
      stats.compressedBytes += chunk.length;
      storedHash?.update(chunk);
      options.onBytes?.(stats.compressedBytes);
      yield chunk;
    }
  }
  async function consumeAll(input: AsyncIterable<Buffer>) {
    for await (const chunk of input) {
      if (signal?.aborted) throw new RestoreAbort('RESTORE_FAILED', 'the restore was cancelled');
      stats.expandedBytes += chunk.length;
      if (decompressor) limits.ratio(stats.expandedBytes, stats.compressedBytes);
      consume(chunk);
    }
  }
  if (decompressor) await pipeline(source, count, decompressor, consumeAll);
  else await pipeline(source, count, consumeAll);
  if (storedHash) stats.storedSha256 = storedHash.digest('hex');
  return stats;
}

function createEntry(
  tree: SandboxTree,
  limits: RestoreLimits,
  header: TarEntryHeader,
  opened: (writer: FileWriter) => void,
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
      opened(writer);
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
