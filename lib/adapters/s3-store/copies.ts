import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { StoreError } from '../../core/errors.ts';
import { forEachLimited } from '../../core/limit.ts';
import type { ObjectInfo } from '../../core/model.ts';
import type { S3BucketClient } from './client.ts';
import { COPY_PART_CONCURRENCY, MAX_PARTS } from './config.ts';
import { isChecksumUnsupported, isNotImplemented, nameOf } from './errors.ts';
import { headObject } from './listing.ts';
import { abortUpload, createUpload } from './uploads.ts';

export interface CopyLimits {
  /** Largest object copied by one CopyObject. */
  maxSingleCopy: number;
  /** Bytes per UploadPartCopy part, before growing to fit 10,000 parts. */
  copyPartSize: number;
}

/**
 * Server-side copy of `sourceKey` in `source` to `key` in `target` (both behind the same
 * endpoint). The copy asks S3 for a full-object checksum of what it wrote, so the copy can be
 * proven later from its metadata alone: SHA-256 for a CopyObject (up to 5 GiB: a single part,
 * the same digest the integrity pass computed), CRC64NVME of type FULL_OBJECT for an
 * UploadPartCopy (SHA-256 of a multipart object is only ever a digest of part digests). Every
 * request is pinned to the source's ETag, so a source replaced mid-copy fails the copy. False
 * when the server cannot copy part by part (the caller streams).
 */
export async function copyServerSide(
  target: S3BucketClient,
  source: S3BucketClient,
  sourceKey: string,
  key: string,
  limits: CopyLimits,
): Promise<boolean> {
  const head = await headObject(source, sourceKey);
  const copySource = [source.bucket, ...source.keyOf(sourceKey).split('/')].map(encodeURIComponent).join('/');
  const copy: Copy = { target, source, sourceKey, key, copySource, head };
  if (head.size > limits.maxSingleCopy) return copyInParts(copy, limits.copyPartSize);
  const command = (checksum: boolean) =>
    new CopyObjectCommand({
      Bucket: target.bucket,
      Key: target.keyOf(key),
      CopySource: copySource,
      CopySourceIfMatch: head.etag,
      ChecksumAlgorithm: checksum ? 'SHA256' : undefined,
    });
  try {
    await target.client.send(command(true));
  } catch (error) {
    if (!isChecksumUnsupported(error)) {
      await target.describeEndpoint();
      throw copyError(copy, error);
    }
    await target.call(() => target.client.send(command(false)), 'write', key);
  }
  return true;
}

interface Copy {
  target: S3BucketClient;
  source: S3BucketClient;
  sourceKey: string;
  key: string;
  /** The source as CopySource names it: bucket/key, URL-encoded by segment. */
  copySource: string;
  head: ObjectInfo;
}

/**
 * UploadPartCopy, a bounded number of parts at a time. A server without UploadPartCopy (501
 * NotImplemented, as s3rver answers) gets its upload aborted and false: the caller streams.
 */
async function copyInParts(copy: Copy, copyPartSize: number): Promise<boolean> {
  const { target, key, copySource, head } = copy;
  const Key = target.keyOf(key);
  const { created, checksums } = await createUpload(target, key, {
    ChecksumAlgorithm: 'CRC64NVME',
    ChecksumType: 'FULL_OBJECT',
  });
  const UploadId = created.UploadId;
  const partSize = Math.max(copyPartSize, Math.ceil(head.size / MAX_PARTS));
  const ranges: Array<{ PartNumber: number; first: number; last: number }> = [];
  for (let first = 0; first < head.size; first += partSize) {
    ranges.push({ PartNumber: ranges.length + 1, first, last: Math.min(first + partSize, head.size) - 1 });
  }
  const completed: CompletedPart[] = new Array(ranges.length);
  try {
    await forEachLimited(ranges, COPY_PART_CONCURRENCY, async (range) => {
      const output = await target.client.send(
        new UploadPartCopyCommand({
          Bucket: target.bucket,
          Key,
          UploadId,
          PartNumber: range.PartNumber,
          CopySource: copySource,
          CopySourceRange: `bytes=${range.first}-${range.last}`,
          CopySourceIfMatch: head.etag,
        }),
      );
      const part = output.CopyPartResult;
      completed[range.PartNumber - 1] = {
        PartNumber: range.PartNumber,
        ETag: part?.ETag,
        ...(checksums && part?.ChecksumCRC64NVME ? { ChecksumCRC64NVME: part.ChecksumCRC64NVME } : {}),
      };
    });
    await target.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: target.bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: completed },
        ...(checksums ? { ChecksumType: 'FULL_OBJECT' as const } : {}),
      }),
    );
  } catch (error) {
    await abortUpload(target, Key, UploadId);
    if (isNotImplemented(error)) return false;
    await target.describeEndpoint();
    throw copyError(copy, error);
  }
  return true;
}

function copyError({ target, source, sourceKey, key }: Copy, error: unknown): StoreError {
  const translated = target.translate(error, 'write', key);
  if (nameOf(error) === 'NoSuchKey' || nameOf(error) === 'NoSuchBucket') {
    return new StoreError(
      `server-side copy of ${source.locationOf(sourceKey)} to ${target.locationOf(key)} failed: ${translated.message}`,
      translated.kind,
      translated.location,
      { cause: error },
    );
  }
  return translated;
}
