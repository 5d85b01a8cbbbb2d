import type { Readable } from 'node:stream';
import { GetBucketLocationCommand } from '@aws-sdk/client-s3';
import type { ObjectInfo } from '../../core/model.ts';
import type { CopyTarget, ObjectStore, ReadOptions } from '../../core/ports.ts';
import { S3BucketClient } from './client.ts';
import {
  DEFAULT_COPY_PART_SIZE,
  DEFAULT_PART_SIZE,
  MAX_SINGLE_COPY,
  MIN_PART_SIZE,
  type S3StoreOptions,
} from './config.ts';
import { copyServerSide } from './copies.ts';
import { headObject, listObjects } from './listing.ts';
import { openObject } from './reads.ts';
import { putObject } from './uploads.ts';

/** Backups under `s3://bucket/prefix`. Keys are relative to the prefix. */
export class S3Store extends S3BucketClient implements ObjectStore, CopyTarget {
  private readonly pageSize: number | undefined;
  private readonly partSize: number;
  private readonly maxSingleCopy: number;
  private readonly copyPartSize: number;

  constructor(url: string, options: S3StoreOptions = {}) {
    super(url, options);
    this.pageSize = options.pageSize;
    this.partSize = Math.max(options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.maxSingleCopy = Math.min(options.maxSingleCopy ?? MAX_SINGLE_COPY, MAX_SINGLE_COPY);
    this.copyPartSize = Math.min(
      Math.max(options.copyPartSize ?? DEFAULT_COPY_PART_SIZE, MIN_PART_SIZE),
      MAX_SINGLE_COPY,
    );
  }

  list(): AsyncIterable<ObjectInfo> {
    return listObjects(this, this.pageSize);
  }

  head(key: string): Promise<ObjectInfo> {
    return headObject(this, key);
  }

  /** Pinned to the listed ETag and checked against the listed size; resumed where a body breaks. */
  open(key: string, options?: ReadOptions): Promise<Readable> {
    return openObject(this, key, options);
  }

  put(key: string, body: Readable, size: number): Promise<void> {
    return putObject(this, key, body, size, this.partSize);
  }

  /** Server-side copy when both stores are S3 behind the same endpoint; false otherwise (the caller streams the bytes). */
  async copyFrom(source: ObjectStore, sourceKey: string, key: string): Promise<boolean> {
    if (!(source instanceof S3Store) || (await source.endpointId()) !== (await this.endpointId()))
      return false;
    return copyServerSide(this, source, sourceKey, key, {
      maxSingleCopy: this.maxSingleCopy,
      copyPartSize: this.copyPartSize,
    });
  }

  /** The bucket's region: GetBucketLocation answers no constraint for us-east-1 and the legacy "EU" for eu-west-1. */
  async region(): Promise<string> {
    const output = await this.call(
      () => this.client.send(new GetBucketLocationCommand({ Bucket: this.bucket })),
      'head',
    );
    const constraint: string = output.LocationConstraint ?? '';
    return constraint === '' ? 'us-east-1' : constraint === 'EU' ? 'eu-west-1' : constraint;
  }
}
