import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable, Transform } from 'node:stream';
import { type ArchiveFormat, createDecompressor, INFLATE_CHUNK_SIZE } from '../compression.ts';
import { SAFE_RESTORE_LIMITS } from '../config.ts';
import type { ContentDigest } from '../model.ts';
import { RestoreAbort } from '../restore/abort.ts';
import { RestoreLimits } from '../restore/limits.ts';
import type { ArchiveInspection, ArchiveProblem, InspectOptions } from './archive-inspection.ts';
import { ArchiveMembers } from './archive-members.ts';
import { createCrc } from './crc.ts';
import { describeZlibError } from './decompression-problems.ts';
import { DecompressorFeed } from './decompressor-feed.ts';
import { WorkerInflater } from './inflate-worker.ts';
import { SyncDecompressor } from './sync-decompress.ts';
import { type TarEntryHeader, TarParser, type TarProblem } from './tar-parser.ts';

export {
  type ArchiveInspection,
  type ArchiveProblem,
  EMPTY_SHA256,
  type InspectOptions,
  type RootManifestCheck,
} from './archive-inspection.ts';

/**
 * Reads an archive once: SHA-256 of the stored bytes, decompression, tar parsing and a SHA-256
 * of each member, with memory bounded by the stream buffers whatever the archive's size.
 * Damage is reported in `problems`; the promise rejects only when the input cannot be read
 * (the store's error, unchanged), the signal aborts, or a callback throws.
 */
export async function inspectArchive(
  input: Readable,
  format: ArchiveFormat,
  options: InspectOptions = {},
): Promise<ArchiveInspection> {
  const problems: ArchiveProblem[] = [];
  const storedHash = createHash('sha256');
  const crc = options.crc ? createCrc(options.crc) : undefined;
  let storedBytes = 0;
  let decompressedBytes = 0;
  let callbackError: unknown;
  const limits = new RestoreLimits(options.limits ?? SAFE_RESTORE_LIMITS, true);
  /** A limit was passed (or a callback failed): nothing more is decompressed or parsed. */
  let halted = false;
  let halt = () => {
    halted = true;
  };
  /** Runs a step of the parse; a limit it passes becomes a problem and halts the pass. */
  const guarded = (step: () => void, layer: ArchiveProblem['layer'], offset: () => number) => {
    if (halted) return;
    try {
      step();
    } catch (error) {
      if (error instanceof RestoreAbort) {
        problems.push({
          kind: 'limit',
          layer,
          offset: offset(),
          ...(error.object !== undefined ? { member: error.object } : {}),
          message: error.message,
        });
      } else callbackError ??= error;
      halt();
    }
  };

  const onEntry = options.onEntry;
  const emit = onEntry
    ? (digest: ContentDigest) => {
        try {
          onEntry(digest);
        } catch (error) {
          callbackError ??= error;
        }
      }
    : undefined;
  const members = new ArchiveMembers(limits, emit, options.memberTableBytes);

  let consumer: { write(chunk: Buffer): void; end(): void };
  let parser: TarParser | undefined;
  if (format.tar) {
    parser = new TarParser({
      problem: (p: TarProblem) => problems.push({ ...p, layer: 'tar' }),
      entry: (header: TarEntryHeader) => members.entry(header),
    });
    consumer = parser;
  } else {
    consumer = members.plainFile(options.contentName ?? format.stem);
  }

  const decompressor = createDecompressor(format.compression);
  const layer = format.compression === 'zstd' ? 'zstd' : 'gzip';
  const tarLayer = format.tar ? 'tar' : layer;
  const consumedOffset = () => parser?.bytesConsumed ?? decompressedBytes;
  let decompressFailed = false;
  let settled: Promise<void> = Promise.resolve();
  let feed: DecompressorFeed | undefined;
  // zlib driven without its stream when it can be (see SyncDecompressor for why): in a worker
  // thread for a large gzip archive, else on this thread; other decompressors through their stream.
  let sync: SyncDecompressor | undefined;
  let inflater: WorkerInflater | undefined;
  let fedSync = 0;
  const deliver = (piece: Buffer, fed: number) => {
    decompressedBytes += piece.length;
    guarded(
      () => limits.ratio(decompressedBytes, fed),
      layer,
      () => fed,
    );
    guarded(() => consumer.write(piece), tarLayer, consumedOffset);
    return !halted;
  };
  const zlibFailed = (
    driver: { error: (Error & { code?: string }) | undefined; consumed: number } | undefined,
    fed: number,
  ) => {
    if (!driver?.error) return;
    decompressFailed = true;
    problems.push(
      describeZlibError(driver.error, layer, driver.consumed, fed, storedBytes, decompressedBytes > 0),
    );
  };
  if (decompressor && format.compression === 'gzip' && options.inflateInWorker) {
    decompressor.destroy();
    const worker = new WorkerInflater(INFLATE_CHUNK_SIZE, deliver, () => zlibFailed(worker, worker.fed));
    inflater = worker;
    halt = () => {
      halted = true;
      worker.stop();
    };
  } else if (decompressor && format.compression === 'gzip') {
    sync = SyncDecompressor.from(decompressor);
  }
  /** Stored bytes handed to the decompressor so far. */
  const fedToDecompressor = () => (sync ? fedSync : (feed?.fed ?? 0));
  const syncDeliver = (piece: Buffer) => deliver(piece, fedSync);
  if (decompressor && !sync && !inflater) {
    // Parsed just after zlib's callback returns, not inside it: zlib queues the next inflate
    // first, so the thread pool inflates while this thread parses and hashes.
    const inflated: Array<{ chunk: Buffer; fed: number }> = [];
    const parseInflated = () => {
      for (const { chunk, fed } of inflated) {
        if (halted) break;
        deliver(chunk, fed);
      }
      inflated.length = 0;
    };
    decompressor.on('data', (chunk: Buffer) => {
      if (halted) return;
      inflated.push({ chunk, fed: fedToDecompressor() });
      if (inflated.length === 1) queueMicrotask(parseInflated);
    });
    halt = () => {
      halted = true;
      // A bomb inflates whatever was already fed; stop it now.
      decompressor.destroy();
    };
    settled = new Promise<void>((resolve) => {
      const ended = () => {
        parseInflated();
        resolve();
      };
      decompressor.once('end', ended);
      decompressor.once('close', ended);
      decompressor.once('error', (error: Error & { code?: string }) => {
        parseInflated();
        decompressFailed = true;
        problems.push(
          describeZlibError(
            error,
            layer,
            (decompressor as Transform & { bytesWritten: number }).bytesWritten,
            fedToDecompressor(),
            storedBytes,
            decompressedBytes > 0,
          ),
        );
        resolve();
      });
    });
    feed = new DecompressorFeed(decompressor, settled, () => !decompressFailed && !halted);
  }

  const signal = options.signal;
  /** The stored bytes' SHA-256 from the inflating worker, which hashes them as they pass. */
  let hashedElsewhere: string | undefined;
  // The worker must not outlive the pass, whatever ends it (an abort, a failed read).
  try {
    const file = inflater ? options.file : undefined;
    if (file) input.destroy();
    const chunks = file && inflater ? readIntoSlots(file, inflater) : (input as AsyncIterable<Buffer>);
    for await (const chunk of chunks) {
      signal?.throwIfAborted();
      if (!inflater) storedHash.update(chunk);
      crc?.update(chunk);
      storedBytes += chunk.length;
      options.onProgress?.(chunk.length);
      if (sync) {
        if (!decompressFailed && !halted) {
          fedSync += chunk.length;
          if (!sync.write(chunk, syncDeliver)) zlibFailed(sync, fedSync);
        }
      } else if (inflater) {
        if (file) inflater.submit(chunk, chunk.length);
        else await inflater.write(chunk);
      } else if (feed) {
        if (!decompressFailed && !halted) await feed.write(chunk);
      } else if (!decompressFailed && !halted) {
        decompressedBytes += chunk.length;
        guarded(() => consumer.write(chunk), tarLayer, consumedOffset);
      }
      // Read on after damage or a limit: the stored bytes' checksum is still checked.
      if (callbackError) break;
    }
    signal?.throwIfAborted();
    if (sync) {
      if (!decompressFailed && !halted && !sync.end(syncDeliver)) zlibFailed(sync, fedSync);
      sync.close();
    } else if (inflater) {
      hashedElsewhere = await inflater.finish(!decompressFailed && !halted);
    } else if (decompressor) {
      await feed?.flush();
      if (!decompressFailed && !halted) decompressor.end();
      await settled;
    }
  } finally {
    inflater?.close();
  }
  if (callbackError) throw callbackError;
  if (!decompressFailed) guarded(() => consumer.end(), tarLayer, consumedOffset);
  if (callbackError) throw callbackError;

  const storedSha256 = hashedElsewhere ?? storedHash.digest('hex');

  const readToEnd = !decompressFailed && !halted && !problems.some((p) => p.kind === 'truncated');
  const inspection: ArchiveInspection = {
    readToEnd,
    storedSha256,
    storedBytes,
    decompressedBytes,
    entries: members.entries,
    files: members.files,
    contentBytes: members.contentBytes,
    hashedBytes: members.counter.hashed,
    problems,
  };
  if (crc) inspection.storedCrc = crc.digestBase64();
  const rootManifest = members.rootManifest(!readToEnd);
  if (rootManifest) inspection.rootManifest = rootManifest;
  return inspection;
}

/** A local file read into the inflating worker's free input slots, one at a time; each chunk is to be submitted. */
async function* readIntoSlots(file: FileHandle, inflater: WorkerInflater): AsyncGenerator<Buffer> {
  for (;;) {
    const slot = await inflater.nextSlot();
    const { bytesRead } = await file.read(slot, 0, slot.length, null);
    if (bytesRead === 0) {
      inflater.release(slot);
      return;
    }
    yield slot.subarray(0, bytesRead);
  }
}
