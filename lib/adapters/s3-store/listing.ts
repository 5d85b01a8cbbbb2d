import { HeadObjectCommand, type HeadObjectCommandOutput, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ObjectInfo } from '../../core/model.ts';
import type { S3BucketClient } from './client.ts';

/** The objects under the prefix, page by page (the next page only when the caller goes on). */
export async function* listObjects(
  at: S3BucketClient,
  pageSize: number | undefined,
): AsyncIterable<ObjectInfo> {
  let continuationToken: string | undefined;
  do {
    const page = await at.call(
      () =>
        at.client.send(
          new ListObjectsV2Command({
            Bucket: at.bucket,
            Prefix: at.prefix || undefined,
            ContinuationToken: continuationToken,
            MaxKeys: pageSize,
            OptionalObjectAttributes: ['RestoreStatus'],
          }),
        ),
      'list',
    );
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined || !object.Key.startsWith(at.prefix)) continue;
      const key = object.Key.slice(at.prefix.length);
      // Folder markers (`folder/`) are listed too: the catalogue needs them to see an empty
      // timestamped folder, and never takes them for objects of a backup.
      if (key === '') continue;
      const info: ObjectInfo = {
        key,
        size: object.Size ?? 0,
        lastModified: object.LastModified ?? new Date(0),
      };
      if (object.StorageClass && object.StorageClass !== 'STANDARD') info.storageClass = object.StorageClass;
      // A Glacier object restored on request is readable until its restore expires.
      if (
        info.storageClass &&
        object.RestoreStatus?.IsRestoreInProgress === false &&
        object.RestoreStatus.RestoreExpiryDate
      )
        info.restored = true;
      if (object.ETag) info.etag = object.ETag;
      if (object.ChecksumAlgorithm?.length) info.checksumAlgorithms = [...object.ChecksumAlgorithm];
      yield info;
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken);
}

export async function headObject(at: S3BucketClient, key: string): Promise<ObjectInfo> {
  const output = await at.call(
    () =>
      at.client.send(
        new HeadObjectCommand({ Bucket: at.bucket, Key: at.keyOf(key), ChecksumMode: 'ENABLED' }),
      ),
    'head',
    key,
  );
  return objectInfoFromHead(key, output);
}

/** Full-object checksums of a HeadObject; composite (per-part) values are not comparable to a whole-file hash. */
export function objectInfoFromHead(key: string, output: HeadObjectCommandOutput): ObjectInfo {
  const info: ObjectInfo = {
    key,
    size: output.ContentLength ?? 0,
    lastModified: output.LastModified ?? new Date(0),
  };
  if (output.StorageClass && output.StorageClass !== 'STANDARD') info.storageClass = output.StorageClass;
  if (output.ETag) info.etag = output.ETag;
  if (info.storageClass && /ongoing-request="false"/.test(output.Restore ?? '')) info.restored = true;
  const fullObject = (value: string | undefined) =>
    value && output.ChecksumType !== 'COMPOSITE' && !/-\d+$/.test(value) ? value : undefined;
  const sha256 = fullObject(output.ChecksumSHA256);
  if (sha256) info.checksumSha256 = Buffer.from(sha256, 'base64').toString('hex');
  const crc64 = fullObject(output.ChecksumCRC64NVME);
  if (crc64) info.checksumCrc64nvme = crc64;
  const crc32c = fullObject(output.ChecksumCRC32C);
  if (crc32c) info.checksumCrc32c = crc32c;
  const algorithms = [
    output.ChecksumSHA256 && 'SHA256',
    output.ChecksumCRC64NVME && 'CRC64NVME',
    output.ChecksumCRC32C && 'CRC32C',
    output.ChecksumCRC32 && 'CRC32',
    output.ChecksumSHA1 && 'SHA1',
  ].filter((algorithm): algorithm is string => Boolean(algorithm));
  if (algorithms.length > 0) info.checksumAlgorithms = algorithms;
  return info;
}
