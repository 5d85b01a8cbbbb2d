import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { hostname } from 'node:os';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MANIFEST_NAME } from '../catalogue.ts';
import { BackupFailedError } from '../errors.ts';
import type { BackupTarget } from '../ports.ts';
import { type BackupCompression, createCompressor } from './compress.ts';
import { type BackupPlan, type PlanEvents, type PlannedEntry, READ_CHUNK } from './plan.ts';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, padding } from './tar-writer.ts';

export const METADATA_NAME = 'metadata.json';
/** The version metadata.json names; the same as `backup-validator --version`. */
export const TOOL_VERSION = '0.1.0';

export interface WrittenArchive {
  key: string;
  sha256: string;
  /** Bytes stored (compressed). */
  bytes: number;
  checksum?: { algorithm: string; base64: string };
  metadata: BackupMetadata;
}

export interface BackupMetadata {
  schemaVersion: 1;
  series: string;
  createdAt: string;
  host: string;
  tool: { name: 'backup-validator'; version: string };
  compression: BackupCompression;
  files: number;
  bytes: number;
  sources: Array<{
    kind: 'folder' | 'command';
    from: string;
    member: string;
    files: number;
    bytes: number;
    exitCode?: number;
  }>;
  skipped: string[];
}

export function backupMetadata(
  plan: BackupPlan,
  series: string,
  createdAt: Date,
  compression: BackupCompression,
): BackupMetadata {
  return {
    schemaVersion: 1,
    series,
    createdAt: createdAt.toISOString(),
    host: hostname(),
    tool: { name: 'backup-validator', version: TOOL_VERSION },
    compression,
    files: plan.files,
    bytes: plan.bytes,
    sources: plan.sources.map((s) => ({
      kind: s.input.kind,
      from: s.input.kind === 'folder' ? s.input.from : s.input.command,
      member: s.input.member,
      files: s.files,
      bytes: s.bytes,
      ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
    })),
    skipped: plan.skipped,
  };
}

/** `sha256sum` lines for every file member, metadata.json included. */
export function sha256sums(plan: BackupPlan, metadataSha256: string): string {
  const lines = [`${metadataSha256}  ${METADATA_NAME}`];
  for (const entry of plan.entries) {
    if (entry.type !== 'file') continue;
    if (/[\n\\]/.test(entry.member))
      throw new BackupFailedError(
        `${entry.member}: a name with a newline or backslash cannot be listed in SHA256SUMS`,
      );
    lines.push(`${entry.sha256}  ${entry.member}`);
  }
  return `${lines.join('\n')}\n`;
}

function memberOf(name: string, data: Buffer, mtime: Date): Buffer[] {
  const header = encodeHeader({ path: name, type: 'file', size: data.length, mode: 0o644, mtime });
  return [header, data, padding(data.length)];
}

/** What goes to the compressor at once: one thread-pool task per batch, not per small file. */
const BATCH_BYTES = 1024 * 1024;

function vanishedOrChanged(entry: PlannedEntry, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR')
    return new BackupFailedError(
      `${entry.file} vanished while it was being backed up: nothing was written; run the backup again when the folder is stable`,
    );
  return error as Error;
}

/**
 * The file's bytes, exactly as many as planned, read synchronously (as tar does: no thread-pool
 * turn per read) and checked against the hash of the first read. Chunks are fresh buffers: they
 * travel downstream.
 */
function* fileData(entry: PlannedEntry): Generator<Buffer> {
  let fd: number;
  try {
    fd = openSync(entry.file as string, 'r');
  } catch (error) {
    throw vanishedOrChanged(entry, error);
  }
  try {
    const hash = createHash('sha256');
    let done = 0;
    while (done < entry.size) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, entry.size - done));
      const bytesRead = readSync(fd, buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
      hash.update(chunk);
      done += bytesRead;
      yield chunk;
    }
    if (done !== entry.size || hash.digest('hex') !== entry.sha256)
      throw new BackupFailedError(
        `${entry.file} changed while it was being backed up (${done === entry.size ? 'its content' : `its size, ${entry.size} then ${done} bytes`}): nothing was written; stop its writers or back up a snapshot`,
      );
  } finally {
    closeSync(fd);
  }
}

/** The whole tar stream, small pieces gathered into batches of about BATCH_BYTES. */
async function* tarStream(plan: BackupPlan, head: Buffer[], events: PlanEvents): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [...head];
  let pendingBytes = head.reduce((sum, b) => sum + b.length, 0);
  const take = (): Buffer => {
    const batch = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return batch;
  };
  for (const entry of plan.entries) {
    events.archiving?.(entry);
    const header: Parameters<typeof encodeHeader>[0] = {
      path: entry.member,
      type: entry.type,
      size: entry.size,
      mode: entry.mode,
      mtime: entry.mtime,
      uid: entry.uid,
      gid: entry.gid,
    };
    if (entry.linkpath !== undefined) header.linkpath = entry.linkpath;
    const encoded = encodeHeader(header);
    pending.push(encoded);
    pendingBytes += encoded.length;
    if (entry.type === 'file') {
      for (const chunk of fileData(entry)) {
        if (pendingBytes + chunk.length >= BATCH_BYTES) {
          if (pendingBytes > 0) yield take();
          yield chunk;
        } else {
          pending.push(chunk);
          pendingBytes += chunk.length;
        }
      }
      if (entry.size % BLOCK !== 0) {
        pending.push(padding(entry.size));
        pendingBytes += BLOCK - (entry.size % BLOCK);
      }
    }
    if (pendingBytes >= BATCH_BYTES) yield take();
  }
  pending.push(END_OF_ARCHIVE);
  pendingBytes += END_OF_ARCHIVE.length;
  yield take();
}

/** Counts and hashes the stored bytes on their way to the target. */
class Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }
}

export interface WriteOptions {
  key: string;
  series: string;
  compression: BackupCompression;
  createdAt: Date;
  events?: PlanEvents & { stored?(bytes: number): void };
}

/**
 * Streams the archive (SHA256SUMS, metadata.json, then every planned entry) through the
 * compressor to the target, with bounded memory: one read chunk, the compressor's window and
 * the target's part buffer. Nothing stays at the target when any step fails.
 */
export async function writeArchive(
  plan: BackupPlan,
  target: BackupTarget,
  options: WriteOptions,
): Promise<WrittenArchive> {
  const metadata = backupMetadata(plan, options.series, options.createdAt, options.compression);
  const metadataJson = Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`);
  const sums = Buffer.from(sha256sums(plan, createHash('sha256').update(metadataJson).digest('hex')));
  const head = [
    ...memberOf(MANIFEST_NAME, sums, options.createdAt),
    ...memberOf('metadata.json', metadataJson, options.createdAt),
  ];
  const events = options.events ?? {};
  const meter = new Meter(events.stored);
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const written = pipeline(
    Readable.from(tarStream(plan, head, events), { objectMode: false, highWaterMark: 1 }),
    await createCompressor(options.compression),
    meter,
    body,
  );
  const [archived, upload] = await Promise.allSettled([written, target.write(options.key, body)]);
  if (archived.status === 'rejected' || upload.status === 'rejected') {
    await target.remove(options.key).catch(() => undefined);
    // The source's failure explains the target's (a broken body), not the other way round.
    throw archived.status === 'rejected' ? archived.reason : (upload as PromiseRejectedResult).reason;
  }
  const stored = upload.value;
  const result: WrittenArchive = {
    key: options.key,
    sha256: meter.hash.digest('hex'),
    bytes: meter.bytes,
    metadata,
  };
  if (stored.checksum) result.checksum = stored.checksum;
  return result;
}
