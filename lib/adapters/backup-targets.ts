import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { StoreError } from '../core/errors.ts';
import { createCrc } from '../core/inspect/crc.ts';
import type { BackupTarget } from '../core/ports.ts';
import { readParts, type S3Store } from './s3-store.ts';

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A folder target: written to a hidden partial file, then linked in place (never over another file). */
export class FolderBackupTarget implements BackupTarget {
  constructor(readonly url: string) {}

  private file(key: string): string {
    return path.join(this.url, key);
  }

  async exists(key: string): Promise<boolean> {
    return stat(this.file(key)).then(
      () => true,
      () => false,
    );
  }

  async write(key: string, body: Readable): Promise<{ checksum?: { algorithm: string; base64: string } }> {
    const final = this.file(key);
    const partial = path.join(
      path.dirname(final),
      `.${path.basename(final)}.partial-${randomBytes(4).toString('hex')}`,
    );
    try {
      await mkdir(path.dirname(final), { recursive: true });
      await pipeline(body, createWriteStream(partial, { flags: 'wx', mode: 0o644 }));
      await link(partial, final);
    } catch (error) {
      body.destroy();
      const exists = (error as NodeJS.ErrnoException).code === 'EEXIST';
      throw new StoreError(
        exists
          ? `${final} already exists: a backup is never written over another`
          : `cannot write ${final}: ${messageOf(error)}`,
        'io',
        final,
        { cause: error },
      );
    } finally {
      await unlink(partial).catch(() => undefined);
    }
    return {};
  }

  async remove(key: string): Promise<void> {
    await unlink(this.file(key)).catch(() => undefined);
  }
}

/** Parts of 16 MiB: one buffered at a time; 10,000 parts reach 156 GiB, larger parts beyond. */
const PART_SIZE = 16 * 1024 * 1024;

/**
 * An S3 target: a multipart upload (PutObject when it fits one part) asking S3 to keep a
 * full-object CRC-64/NVME (`ChecksumType: FULL_OBJECT`; SHA-256 exists only as a composite of
 * parts), which this side computes over the whole stream and S3 checks at completion, so the
 * stored object can later be proven by its checksum alone.
 */
export class S3BackupTarget implements BackupTarget {
  readonly url: string;
  constructor(private readonly store: S3Store) {
    this.url = store.url;
  }

  private keyOf(key: string): string {
    return `${this.store.prefix}${key}`;
  }

  private fail(error: unknown, key: string, what: string): StoreError {
    if (error instanceof StoreError) return error;
    const location = this.store.locationOf(key);
    const network = /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EAI_AGAIN/.test(
      `${messageOf(error)} ${(error as { code?: string }).code ?? ''}`,
    );
    return new StoreError(
      `cannot ${what} ${location}: ${messageOf(error)}`,
      network ? 'unreachable' : 'io',
      location,
      { cause: error },
    );
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.store.client.send(
        new HeadObjectCommand({ Bucket: this.store.bucket, Key: this.keyOf(key) }),
      );
      return true;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return false;
      throw this.fail(error, key, 'check');
    }
  }

  async write(key: string, body: Readable): Promise<{ checksum?: { algorithm: string; base64: string } }> {
    const Bucket = this.store.bucket;
    const Key = this.keyOf(key);
    const client = this.store.client;
    const whole = createCrc('CRC64NVME');
    const parts = readParts(body, PART_SIZE);
    let uploadId: string | undefined;
    try {
      const first = await parts.next();
      const second = first.done ? undefined : await parts.next();
      if (!second || second.done) {
        const data = first.done ? Buffer.alloc(0) : first.value;
        whole.update(data);
        await client.send(
          new PutObjectCommand({
            Bucket,
            Key,
            Body: data,
            ContentLength: data.length,
            ChecksumCRC64NVME: whole.digestBase64(),
          }),
        );
      } else {
        const created = await client.send(
          new CreateMultipartUploadCommand({
            Bucket,
            Key,
            ChecksumAlgorithm: 'CRC64NVME',
            ChecksumType: 'FULL_OBJECT',
          }),
        );
        uploadId = created.UploadId;
        const completed: CompletedPart[] = [];
        const upload = async (data: Buffer) => {
          whole.update(data);
          const crc = createCrc('CRC64NVME');
          crc.update(data);
          const PartNumber = completed.length + 1;
          const ChecksumCRC64NVME = crc.digestBase64();
          const output = await client.send(
            new UploadPartCommand({
              Bucket,
              Key,
              UploadId: uploadId,
              PartNumber,
              Body: data,
              ContentLength: data.length,
              ChecksumCRC64NVME,
            }),
          );
          completed.push({ PartNumber, ETag: output.ETag, ChecksumCRC64NVME });
        };
        await upload(first.value as Buffer);
        await upload(second.value);
        for (let next = await parts.next(); !next.done; next = await parts.next()) await upload(next.value);
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            ChecksumCRC64NVME: whole.digestBase64(),
            ChecksumType: 'FULL_OBJECT',
            MultipartUpload: { Parts: completed },
          }),
        );
        uploadId = undefined;
      }
    } catch (error) {
      body.destroy();
      // Unfinished uploads are billed until aborted.
      if (uploadId !== undefined)
        await client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw this.fail(error, key, 'upload');
    }
    return this.storedChecksum(key, whole.digestBase64());
  }

  /** What S3 kept: the requested checksum when the store reports it (s3rver keeps none). */
  private async storedChecksum(
    key: string,
    requested: string,
  ): Promise<{ checksum?: { algorithm: string; base64: string } }> {
    try {
      const head = await this.store.client.send(
        new HeadObjectCommand({ Bucket: this.store.bucket, Key: this.keyOf(key), ChecksumMode: 'ENABLED' }),
      );
      const kept = head.ChecksumCRC64NVME;
      if (kept === undefined) return {};
      if (kept !== requested)
        throw new StoreError(
          `${this.store.locationOf(key)} was stored with CRC-64/NVME ${kept}, but ${requested} was sent`,
          'io',
          this.store.locationOf(key),
        );
      return { checksum: { algorithm: 'CRC64NVME', base64: kept } };
    } catch (error) {
      throw this.fail(error, key, 'check');
    }
  }

  async remove(key: string): Promise<void> {
    await this.store.client
      .send(new DeleteObjectCommand({ Bucket: this.store.bucket, Key: this.keyOf(key) }))
      .catch(() => undefined);
  }
}
