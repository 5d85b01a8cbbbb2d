import {
  GetObjectAttributesCommand,
  type GetObjectAttributesCommandOutput,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import type { ChecksumReader, ObjectStore, StoredChecksums } from '../core/ports.ts';
import { S3Store } from './s3-store.ts';

/** Parts per GetObjectAttributes page (S3's maximum). */
const PARTS_PAGE = 1000;

/**
 * The checksums S3 keeps with an object, without reading it: HeadObject in checksum mode (one
 * request), and for a COMPOSITE checksum GetObjectAttributes for the part sizes, since composites
 * compare only across identical part boundaries.
 */
export class S3ChecksumReader implements ChecksumReader {
  constructor(private readonly store: S3Store) {}

  async checksums(key: string): Promise<StoredChecksums | undefined> {
    const Bucket = this.store.bucket;
    const Key = `${this.store.prefix}${key}`;
    let head: HeadObjectCommandOutput;
    try {
      head = await this.store.client.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
    } catch (error) {
      throw this.store.translate(error, 'head', key);
    }
    const values: StoredChecksums['values'] = {};
    const pick = (name: keyof StoredChecksums['values'], value: unknown) => {
      if (typeof value === 'string' && value !== '') values[name] = value;
    };
    pick('SHA256', head.ChecksumSHA256);
    pick('SHA1', head.ChecksumSHA1);
    pick('CRC32', head.ChecksumCRC32);
    pick('CRC32C', head.ChecksumCRC32C);
    pick('CRC64NVME', head.ChecksumCRC64NVME);
    const first = Object.values(values)[0];
    if (first === undefined) return undefined;
    const out: StoredChecksums = { size: Number(head.ContentLength ?? 0), values };
    if (head.ChecksumType === 'FULL_OBJECT' || head.ChecksumType === 'COMPOSITE')
      out.type = head.ChecksumType;
    const parts = /-(\d+)$/.exec(first);
    if (parts) out.partsCount = Number(parts[1]);
    if (out.type === 'COMPOSITE' || (out.type === undefined && parts))
      out.partSizes = await this.partSizes(key);
    return out;
  }

  private async partSizes(key: string): Promise<number[] | undefined> {
    const sizes: number[] = [];
    let marker: string | undefined;
    do {
      let page: GetObjectAttributesCommandOutput;
      try {
        page = await this.store.client.send(
          new GetObjectAttributesCommand({
            Bucket: this.store.bucket,
            Key: `${this.store.prefix}${key}`,
            ObjectAttributes: ['ObjectParts'],
            MaxParts: PARTS_PAGE,
            ...(marker ? { PartNumberMarker: marker } : {}),
          }),
        );
      } catch (error) {
        throw this.store.translate(error, 'head', key);
      }
      const listed = page.ObjectParts?.Parts;
      // No part list (S3 lists parts only for objects with an additional checksum): boundaries unknown.
      if (!listed) return undefined;
      for (const part of listed) sizes.push(Number(part.Size ?? 0));
      marker = page.ObjectParts?.IsTruncated ? page.ObjectParts.NextPartNumberMarker : undefined;
    } while (marker);
    return sizes;
  }
}

/** The checksum reader of an S3 store; undefined for folders (the copy is read). */
export function checksumReaderOf(store: ObjectStore): ChecksumReader | undefined {
  return store instanceof S3Store ? new S3ChecksumReader(store) : undefined;
}
