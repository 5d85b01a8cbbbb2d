import { createHash, type Hash } from 'node:crypto';
import fs, { constants as fsConstants } from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import type { RestoreLimits } from './limits.ts';
import { type BuiltinProbe, builtinProbeFor } from './probes.ts';

/** A regular file as restored: its content hash was computed from the bytes written. */
export interface RestoredFile {
  /** Normalised path relative to the sandbox root. */
  path: string;
  size: number;
  sha256: string;
  /** CRC-32 of the bytes written: the read-back from disk must give it again. */
  crc32: number;
  /** The built-in probe its name and first bytes call for (the bytes themselves are not kept: 20,000 files' heads are megabytes). */
  probe?: BuiltinProbe;
  /** For a hard link: the path it links to (same inode, verified once). */
  linkOf?: string;
}

/** What a writer asks of the tree it writes into (SandboxTree). */
export interface WriterHost {
  /** Bytes handed to writers and not yet on disk. */
  queuedBytes: number;
  wake(): void;
  io<T>(call: () => Promise<T>): Promise<T>;
  fail(error: unknown): void;
  closedOnDisk(file: RestoredFile): void;
  finished(writer: FileWriter, file: RestoredFile): void;
}

export const HEAD_BYTES = 512;

const openFile = promisify(fs.open);
const closeFile = promisify(fs.close);
const writeFile = promisify(fs.write);
const truncateFile = promisify(fs.ftruncate);

const WRITE_FLAGS =
  fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0);
const ZEROS = Buffer.alloc(1024 * 1024);
/** Chunks of zeros at least this long are left as holes, so sparse members stay sparse. */
const HOLE_MIN = 4096;

interface PendingWrite {
  chunk: Buffer;
  position: number;
}

/**
 * One file being restored: hashes each chunk as it arrives (in order, on the main thread)
 * and writes it in place, or, for a path still being replaced, hands it to an operation in
 * the thread pool that creates and writes the file.
 */
export class FileWriter {
  private readonly hash: Hash = createHash('sha256');
  private crc = 0;
  private position = 0;
  private holeAtEnd = false;
  private readonly headChunks: Buffer[] = [];
  private headLength = 0;
  private readonly pending: PendingWrite[] = [];
  private ended = false;
  private abandoned = false;
  private wakeRun: (() => void) | undefined;
  private record: RestoredFile | undefined;
  /** Set when the file is written in place (synchronously) rather than by run(). */
  private fd: number | undefined;

  constructor(
    private readonly tree: WriterHost,
    private readonly absolutePath: string,
    readonly path: string,
    private readonly limits: RestoreLimits,
  ) {}

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.limits.add(chunk.length, this.path);
    this.hash.update(chunk);
    this.crc = crc32(chunk, this.crc);
    if (this.headLength < HEAD_BYTES) {
      const take = chunk.subarray(0, HEAD_BYTES - this.headLength);
      this.headChunks.push(Buffer.from(take));
      this.headLength += take.length;
    }
    if (
      chunk.length >= HOLE_MIN &&
      chunk.length <= ZEROS.length &&
      chunk.equals(ZEROS.subarray(0, chunk.length))
    ) {
      this.position += chunk.length;
      this.holeAtEnd = true;
      return;
    }
    if (this.fd !== undefined) {
      this.writeInPlace(chunk, this.position);
      this.position += chunk.length;
      this.holeAtEnd = false;
      return;
    }
    // Copied: the caller may reuse its buffer once write() returns (the restore's inflate does).
    this.pending.push({ chunk: Buffer.from(chunk), position: this.position });
    this.tree.queuedBytes += chunk.length;
    this.position += chunk.length;
    this.holeAtEnd = false;
    this.wakeRun?.();
  }

  openInPlace(): void {
    try {
      this.fd = fs.openSync(this.absolutePath, WRITE_FLAGS, 0o644);
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    }
  }

  private writeInPlace(chunk: Buffer, position: number): void {
    if (this.abandoned || this.fd === undefined) return;
    try {
      let written = 0;
      while (written < chunk.length) {
        written += fs.writeSync(this.fd, chunk, written, chunk.length - written, position + written);
      }
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    }
  }

  private closeInPlace(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    try {
      if (this.holeAtEnd && !this.abandoned) fs.ftruncateSync(fd, this.position);
    } catch (error) {
      this.abandoned = true;
      this.tree.fail(error);
    } finally {
      fs.closeSync(fd);
    }
    if (this.record && !this.abandoned) this.tree.closedOnDisk(this.record);
  }

  end(): RestoredFile {
    this.ended = true;
    this.wakeRun?.();
    const file: RestoredFile = {
      path: this.path,
      size: this.position,
      sha256: this.hash.digest('hex'),
      crc32: this.crc,
    };
    const probe = builtinProbeFor(this.path, Buffer.concat(this.headChunks, this.headLength));
    this.headChunks.length = 0;
    if (probe) file.probe = probe;
    this.record = file;
    this.tree.finished(this, file);
    this.closeInPlace();
    return file;
  }

  /** The restore stopped: write nothing more, let the operation close its file. */
  abandon(): void {
    this.abandoned = true;
    this.ended = true;
    this.closeInPlace();
    this.wakeRun?.();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** The thread-pool side: create, write in order, truncate for a trailing hole, close. */
  async run(): Promise<void> {
    const fd = await this.tree.io(() => openFile(this.absolutePath, WRITE_FLAGS, 0o644));
    try {
      for (;;) {
        const next = this.pending.shift();
        if (next) {
          try {
            if (!this.abandoned) {
              let written = 0;
              while (written < next.chunk.length) {
                written += (
                  await writeFile(
                    fd,
                    next.chunk,
                    written,
                    next.chunk.length - written,
                    next.position + written,
                  )
                ).bytesWritten;
              }
            }
          } finally {
            this.tree.queuedBytes -= next.chunk.length;
            this.tree.wake();
          }
          continue;
        }
        if (this.ended) break;
        await new Promise<void>((resolve) => {
          this.wakeRun = resolve;
        });
        this.wakeRun = undefined;
      }
      if (this.holeAtEnd && !this.abandoned) await this.tree.io(() => truncateFile(fd, this.position));
    } finally {
      for (const rest of this.pending.splice(0)) this.tree.queuedBytes -= rest.chunk.length;
      await this.tree.io(() => closeFile(fd));
    }
    if (this.record && !this.abandoned) this.tree.closedOnDisk(this.record);
  }
}
