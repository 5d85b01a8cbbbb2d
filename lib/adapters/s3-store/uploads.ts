import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { StoreError } from '../../core/errors.ts';
import type { S3BucketClient } from './client.ts';
import { MAX_PARTS } from './config.ts';
import { isChecksumUnsupported, messageOf } from './errors.ts';

/**
 * Up to one part: PutObject. Larger: a multipart upload of buffered parts. Each request
 * carries the SHA-256 of its bytes, so S3 refuses anything damaged on the way.
 */
export async function putObject(
  at: S3BucketClient,
  key: string,
  body: Readable,
  size: number,
  partSize: number,
): Promise<void> {
  // S3 allows 10,000 parts: very large bodies get larger parts.
  const parts = readParts(body, Math.max(partSize, Math.ceil(size / MAX_PARTS)));
  const first = await nextPart(at, parts, key);
  const second = first.done ? undefined : await nextPart(at, parts, key);
  if (!second || second.done) {
    const data = first.done ? Buffer.alloc(0) : first.value;
    checkSize(at, key, data.length, size);
    await putWithChecksum(at, key, data);
    return;
  }
  await multipartUpload(at, key, [first.value, second.value], parts, size);
}

/** Chunks of exactly `partSize` bytes (the last one shorter), copied out of the stream's buffers. */
export async function* readParts(body: Readable, partSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, partSize - pendingBytes);
      pending.push(chunk.subarray(offset, offset + take));
      pendingBytes += take;
      offset += take;
      if (pendingBytes === partSize) {
        yield Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

/** A multipart upload asking for `checksum`; without it (and `checksums` false) where the server does not take it. */
export async function createUpload(
  at: S3BucketClient,
  key: string,
  checksum: Pick<CreateMultipartUploadCommandInput, 'ChecksumAlgorithm' | 'ChecksumType'>,
): Promise<{ created: { UploadId?: string }; checksums: boolean }> {
  const Key = at.keyOf(key);
  try {
    const created = await at.client.send(
      new CreateMultipartUploadCommand({ Bucket: at.bucket, Key, ...checksum }),
    );
    return { created, checksums: true };
  } catch (error) {
    if (!isChecksumUnsupported(error)) {
      await at.describeEndpoint();
      throw at.translate(error, 'write', key);
    }
    const created = await at.call(
      () => at.client.send(new CreateMultipartUploadCommand({ Bucket: at.bucket, Key })),
      'write',
      key,
    );
    return { created, checksums: false };
  }
}

/** Unfinished uploads are billed until aborted. */
export async function abortUpload(
  at: S3BucketClient,
  Key: string,
  UploadId: string | undefined,
): Promise<void> {
  await at.client
    .send(new AbortMultipartUploadCommand({ Bucket: at.bucket, Key, UploadId }))
    .catch(() => undefined);
}

function sha256Base64(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64');
}

async function putWithChecksum(at: S3BucketClient, key: string, data: Buffer): Promise<void> {
  const command = (checksum: boolean) =>
    new PutObjectCommand({
      Bucket: at.bucket,
      Key: at.keyOf(key),
      Body: data,
      ContentLength: data.length,
      ChecksumSHA256: checksum ? sha256Base64(data) : undefined,
    });
  try {
    await at.client.send(command(true));
  } catch (error) {
    if (!isChecksumUnsupported(error)) {
      await at.describeEndpoint();
      throw at.translate(error, 'write', key);
    }
    await at.call(() => at.client.send(command(false)), 'write', key);
  }
}

async function multipartUpload(
  at: S3BucketClient,
  key: string,
  firstParts: Buffer[],
  rest: AsyncIterator<Buffer>,
  size: number,
): Promise<void> {
  const Key = at.keyOf(key);
  const { created, checksums } = await createUpload(at, key, { ChecksumAlgorithm: 'SHA256' });
  const UploadId = created.UploadId;
  const completed: CompletedPart[] = [];
  let sent = 0;
  try {
    const upload = async (data: Buffer) => {
      const PartNumber = completed.length + 1;
      const ChecksumSHA256 = checksums ? sha256Base64(data) : undefined;
      const output = await at.call(
        () =>
          at.client.send(
            new UploadPartCommand({
              Bucket: at.bucket,
              Key,
              UploadId,
              PartNumber,
              Body: data,
              ContentLength: data.length,
              ChecksumSHA256,
            }),
          ),
        'write',
        key,
      );
      sent += data.length;
      completed.push({ PartNumber, ETag: output.ETag, ChecksumSHA256 });
    };
    for (const data of firstParts) await upload(data);
    for (let next = await nextPart(at, rest, key); !next.done; next = await nextPart(at, rest, key)) {
      await upload(next.value);
    }
    checkSize(at, key, sent, size);
    await at.call(
      () =>
        at.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: at.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: completed },
          }),
        ),
      'write',
      key,
    );
  } catch (error) {
    await abortUpload(at, Key, UploadId);
    throw error;
  }
}

async function nextPart(
  at: S3BucketClient,
  parts: AsyncIterator<Buffer>,
  key: string,
): Promise<IteratorResult<Buffer>> {
  try {
    return await parts.next();
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError(
      `copy to ${at.locationOf(key)} failed while reading its source: ${messageOf(error)}`,
      'io',
      at.locationOf(key),
      { cause: error },
    );
  }
}

function checkSize(at: S3BucketClient, key: string, received: number, expected: number): void {
  if (received !== expected) {
    throw new StoreError(
      `copy to ${at.locationOf(key)} received ${received} bytes, expected ${expected}: the source changed or was cut short; retry`,
      'io',
      at.locationOf(key),
    );
  }
}
