import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  GetBucketLocationCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { StoreError, UsageError } from '../core/errors.ts';
import { forEachLimited } from '../core/limit.ts';
import type { ObjectInfo } from '../core/model.ts';
import type { CopyTarget, ObjectStore, ReadOptions } from '../core/ports.ts';
import { backoffMs } from '../core/retry.ts';
import { DEFAULT_READ_HIGH_WATER_MARK } from './folder-store.ts';

export interface S3StoreOptions {
  client?: S3Client;
  clientConfig?: S3ClientConfig;
  /** Keys per ListObjectsV2 page (S3's maximum and default: 1000). */
  pageSize?: number;
  /**
   * Bytes buffered per upload part. A body is sent from memory, never as an aws-chunked
   * stream: S3-compatible servers that do not speak aws-chunked store its framing as content.
   */
  partSize?: number;
  /** Largest object copied by one CopyObject (S3's limit, 5 GiB); larger ones by UploadPartCopy. */
  maxSingleCopy?: number;
  /** Bytes per UploadPartCopy part (default: 1 GiB, more when 10,000 parts would not hold the object). */
  copyPartSize?: number;
  /** Who this process is to IAM ("role BackupValidator-Integrity..."), named when a denial does not say. */
  identity?: string;
}

/** CopyObject's limit; larger objects are copied part by part (UploadPartCopy). */
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const DEFAULT_COPY_PART_SIZE = 1024 ** 3;
/** Part copies in flight at once: S3 does the work, the client only waits. */
const COPY_PART_CONCURRENCY = 4;
const DEFAULT_PART_SIZE = 16 * 1024 * 1024;
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 9_000;

/**
 * One retry configuration for every request: 5xx, throttling and network errors before the
 * response are retried by the SDK's standard strategy (exponential backoff with jitter, longer
 * after SlowDown), up to 6 attempts. Not "adaptive": its client-side rate limiter would slow
 * the one shared client (every read of the run) to about one request a second after a single
 * SlowDown. Bodies are validated against the checksum S3 kept for the object, where it has
 * one (a mismatch fails the read, so the caller reads again rather than reporting damage).
 * Request checksums stay off: the SDK would stream uploads as aws-chunked, which
 * S3-compatible servers store as content; `put` sends its own SHA-256 instead.
 */
export const S3_CLIENT_DEFAULTS: S3ClientConfig = {
  followRegionRedirects: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_SUPPORTED',
  retryMode: 'standard',
  maxAttempts: 6,
};

/**
 * A body that breaks (reset, early end) is resumed with a ranged GET pinned to the same ETag.
 * Reads in a row that bring no new byte are bounded by the attempt budget of one request
 * (`maxAttempts`): when that many brought nothing, the read fails.
 */
export const MAX_READS_WITHOUT_PROGRESS = S3_CLIENT_DEFAULTS.maxAttempts as number;

/**
 * The wait before a resume. After a read that brought bytes: none, at once (the connection
 * broke, the store is answering; a wait would only add to the read's time). After reads that
 * brought nothing: as the SDK's standard strategy waits between attempts (full jitter over
 * 100 ms, doubling, at most 20 s), so a store that keeps failing is not hammered.
 */
export function resumeDelayMs(readsWithoutProgress: number, random: () => number = Math.random): number {
  return Math.floor(backoffMs(readsWithoutProgress, { baseMs: 100, capMs: 20_000 }, random));
}

/** The body a read is consuming, so closing the read's stream can destroy it. */
interface BodyInFlight {
  body: Readable | undefined;
  closed: boolean;
}

const CREDENTIAL_ERRORS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
]);

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  TimeoutError: 'timed out',
  RequestTimeout: 'timed out',
  RequestTimeoutException: 'timed out',
};

/** Backups under `s3://bucket/prefix`. Keys are relative to the prefix. */
export class S3Store implements ObjectStore, CopyTarget {
  readonly url: string;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  readonly client: S3Client;
  private readonly pageSize: number | undefined;
  private readonly partSize: number;
  private readonly maxSingleCopy: number;
  private readonly copyPartSize: number;
  private readonly identity: string;
  /** Resolved from the client config the first time a message needs it. */
  private endpointDescription: string | undefined;

  constructor(url: string, options: S3StoreOptions = {}) {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!match) {
      throw new UsageError(`"${url}" is not an S3 location: write it as s3://bucket/prefix`, 'source');
    }
    this.url = url;
    this.bucket = match[1] as string;
    const prefix = match[2] as string;
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.client = options.client ?? new S3Client({ ...S3_CLIENT_DEFAULTS, ...options.clientConfig });
    this.pageSize = options.pageSize;
    this.partSize = Math.max(options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.maxSingleCopy = Math.min(options.maxSingleCopy ?? MAX_SINGLE_COPY, MAX_SINGLE_COPY);
    this.identity = options.identity ?? 'the identity in use';
    this.copyPartSize = Math.min(
      Math.max(options.copyPartSize ?? DEFAULT_COPY_PART_SIZE, MIN_PART_SIZE),
      MAX_SINGLE_COPY,
    );
  }

  async *list(): AsyncIterable<ObjectInfo> {
    let continuationToken: string | undefined;
    do {
      const page = await this.call(
        () =>
          this.client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: this.prefix || undefined,
              ContinuationToken: continuationToken,
              MaxKeys: this.pageSize,
              OptionalObjectAttributes: ['RestoreStatus'],
            }),
          ),
        'list',
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        // Folder markers (`folder/`) are listed too: the catalogue needs them to see an empty
        // timestamped folder, and never takes them for objects of a backup.
        if (key === '') continue;
        const info: ObjectInfo = {
          key,
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        };
        if (object.StorageClass && object.StorageClass !== 'STANDARD')
          info.storageClass = object.StorageClass;
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

  async head(key: string): Promise<ObjectInfo> {
    const output = await this.call(
      () =>
        this.client.send(
          new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), ChecksumMode: 'ENABLED' }),
        ),
      'head',
      key,
    );
    return objectInfoFromHead(key, output);
  }

  /**
   * The object's bytes, checked against the listed size (or the size S3 reports). A body that
   * resets or ends early is resumed with a ranged GET pinned to the ETag (`IfMatch`), so a
   * long read survives a broken connection without starting over and never mixes versions.
   * VersionId is not used: reading by version needs s3:GetObjectVersion as well.
   */
  async open(key: string, options?: ReadOptions): Promise<Readable> {
    const listed = options?.listed;
    const first = await this.get(key, listed?.etag);
    await this.describeEndpoint();
    const etag = listed?.etag ?? first.ETag;
    let size = listed?.size ?? first.ContentLength;
    if (listed && first.ContentLength !== undefined && first.ContentLength !== listed.size) {
      (first.Body as Readable | undefined)?.destroy();
      throw this.changed(key, `it is ${first.ContentLength} bytes now, ${listed.size} when listed`);
    }
    // A response without Content-Length (chunked): the size comes from the object's metadata.
    if (size === undefined) size = (await this.head(key)).size;
    const reading: BodyInFlight = { body: first.Body as Readable | undefined, closed: false };
    const stream = Readable.from(this.resumingBody(key, first, etag, size, reading), {
      objectMode: false,
      highWaterMark: options?.highWaterMark ?? DEFAULT_READ_HIGH_WATER_MARK,
    });
    // Destroying the stream waits for the generator, which may wait for a chunk that never
    // comes: the body is destroyed first, so a reader giving up on a stalled read releases it.
    const destroyGenerator = stream._destroy.bind(stream);
    stream._destroy = (error, callback) => {
      reading.closed = true;
      reading.body?.destroy();
      destroyGenerator(error, callback);
    };
    return stream;
  }

  private async get(
    key: string,
    ifMatch: string | undefined,
    from?: number,
  ): Promise<GetObjectCommandOutput> {
    return this.call(
      () =>
        this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: this.keyOf(key),
            IfMatch: ifMatch,
            Range: from === undefined ? undefined : `bytes=${from}-`,
          }),
        ),
      'read',
      key,
    );
  }

  private async *resumingBody(
    key: string,
    first: GetObjectCommandOutput,
    etag: string | undefined,
    size: number,
    reading: BodyInFlight,
  ): AsyncGenerator<Buffer> {
    let response: GetObjectCommandOutput | undefined = first;
    let offset = 0;
    let withoutProgress = 0;
    let fault = '';
    try {
      for (;;) {
        const body = response?.Body as Readable | undefined;
        reading.body = body;
        const before = offset;
        try {
          if (!body) throw new Error('S3 returned no body');
          for await (const chunk of body as AsyncIterable<Buffer>) {
            offset += chunk.length;
            if (offset > size) throw this.changed(key, `it has more than the ${size} bytes listed`);
            yield chunk;
          }
          if (offset === size) return;
          fault = `the body ended after ${offset} of ${size} bytes`;
        } catch (error) {
          if (error instanceof StoreError || reading.closed) throw error;
          if (isChecksumMismatch(error)) {
            throw new StoreError(
              `${this.locationOf(key)} was damaged in transit: ${messageOf(error)}; read it again`,
              'io',
              this.locationOf(key),
              { cause: error },
            );
          }
          const code = networkCodeOf(error);
          fault = `the connection broke after ${offset} of ${size} bytes (${code ? NETWORK_REASONS[code] : messageOf(error)})`;
        } finally {
          body?.destroy();
        }
        withoutProgress = offset > before ? 0 : withoutProgress + 1;
        if (withoutProgress >= MAX_READS_WITHOUT_PROGRESS) {
          throw new StoreError(
            `cannot read ${this.locationOf(key)}: ${fault}, and ${withoutProgress} reads in a row brought nothing new`,
            'unreachable',
            this.locationOf(key),
          );
        }
        response = undefined;
        const wait = resumeDelayMs(withoutProgress);
        if (wait > 0) await delay(wait);
        if (reading.closed) return;
        response = await this.get(key, etag, offset);
        if (!response.ContentRange?.startsWith(`bytes ${offset}-`)) {
          throw new StoreError(
            `cannot read ${this.locationOf(key)}: ${fault}, and the store ignored the ranged request that would resume it`,
            'unreachable',
            this.locationOf(key),
          );
        }
      }
    } finally {
      (response?.Body as Readable | undefined)?.destroy();
    }
  }

  private changed(key: string, why: string): StoreError {
    return new StoreError(
      `${this.locationOf(key)} changed since it was listed (${why}): it is judged on its new content next run`,
      'changed',
      this.locationOf(key),
    );
  }

  /**
   * Up to one part: PutObject. Larger: a multipart upload of buffered parts. Each request
   * carries the SHA-256 of its bytes, so S3 refuses anything damaged on the way.
   */
  async put(key: string, body: Readable, size: number): Promise<void> {
    // S3 allows 10,000 parts: very large bodies get larger parts.
    const parts = readParts(body, Math.max(this.partSize, Math.ceil(size / MAX_PARTS)));
    const first = await this.nextPart(parts, key);
    const second = first.done ? undefined : await this.nextPart(parts, key);
    if (!second || second.done) {
      const data = first.done ? Buffer.alloc(0) : first.value;
      this.checkSize(key, data.length, size);
      await this.putWithChecksum(key, data);
      return;
    }
    await this.multipartUpload(key, [first.value, second.value], parts, size);
  }

  /**
   * Server-side copy when both stores are S3 behind the same endpoint; false otherwise (the caller
   * streams the bytes). The copy asks S3 for a full-object checksum of what it wrote, so the copy
   * can be proven later from its metadata alone: SHA-256 for a CopyObject (up to 5 GiB: a single
   * part, the same digest the integrity pass computed), CRC64NVME of type FULL_OBJECT for an
   * UploadPartCopy (SHA-256 of a multipart object is only ever a digest of part digests). Every
   * request is pinned to the source's ETag, so a source replaced mid-copy fails the copy.
   */
  async copyFrom(source: ObjectStore, sourceKey: string, key: string): Promise<boolean> {
    if (!(source instanceof S3Store) || (await source.endpointId()) !== (await this.endpointId()))
      return false;
    const head = await source.head(sourceKey);
    const copySource = [source.bucket, ...source.keyOf(sourceKey).split('/')]
      .map(encodeURIComponent)
      .join('/');
    if (head.size > this.maxSingleCopy) return this.copyInParts(source, sourceKey, copySource, head, key);
    const command = (checksum: boolean) =>
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(key),
        CopySource: copySource,
        CopySourceIfMatch: head.etag,
        ChecksumAlgorithm: checksum ? 'SHA256' : undefined,
      });
    try {
      await this.client.send(command(true));
    } catch (error) {
      if (!isChecksumUnsupported(error)) {
        await this.describeEndpoint();
        throw this.copyError(error, source, sourceKey, key);
      }
      await this.call(() => this.client.send(command(false)), 'write', key);
    }
    return true;
  }

  /**
   * UploadPartCopy, a bounded number of parts at a time. A server without UploadPartCopy (501
   * NotImplemented, as s3rver answers) gets its upload aborted and false: the caller streams.
   */
  private async copyInParts(
    source: S3Store,
    sourceKey: string,
    copySource: string,
    head: ObjectInfo,
    key: string,
  ): Promise<boolean> {
    const Key = this.keyOf(key);
    const { created, checksums } = await this.createUpload(key, {
      ChecksumAlgorithm: 'CRC64NVME',
      ChecksumType: 'FULL_OBJECT',
    });
    const UploadId = created.UploadId;
    const partSize = Math.max(this.copyPartSize, Math.ceil(head.size / MAX_PARTS));
    const ranges: Array<{ PartNumber: number; first: number; last: number }> = [];
    for (let first = 0; first < head.size; first += partSize) {
      ranges.push({ PartNumber: ranges.length + 1, first, last: Math.min(first + partSize, head.size) - 1 });
    }
    const completed: CompletedPart[] = new Array(ranges.length);
    try {
      await forEachLimited(ranges, COPY_PART_CONCURRENCY, async (range) => {
        const output = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
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
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: completed },
          ...(checksums ? { ChecksumType: 'FULL_OBJECT' as const } : {}),
        }),
      );
    } catch (error) {
      // Unfinished uploads are billed until aborted.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined);
      if (isNotImplemented(error)) return false;
      await this.describeEndpoint();
      throw this.copyError(error, source, sourceKey, key);
    }
    return true;
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

  /** Where a key lives, for messages and StoreError.location. */
  locationOf(key?: string): string {
    return key === undefined ? this.url : `s3://${this.bucket}/${this.keyOf(key)}`;
  }

  private keyOf(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** The custom endpoint as a URL, or 'aws' for AWS's own endpoints. */
  private async endpointId(): Promise<string> {
    if (!this.client.config.isCustomEndpoint) return 'aws';
    const provider = this.client.config.endpoint as (() => Promise<EndpointShape>) | undefined;
    const endpoint = provider ? await provider() : undefined;
    if (!endpoint) return 'aws';
    if (endpoint.url) return endpoint.url.href;
    const port = endpoint.port ? `:${endpoint.port}` : '';
    return `${endpoint.protocol}//${endpoint.hostname}${port}${endpoint.path ?? ''}`;
  }

  private async putWithChecksum(key: string, data: Buffer): Promise<void> {
    const command = (checksum: boolean) =>
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(key),
        Body: data,
        ContentLength: data.length,
        ChecksumSHA256: checksum ? sha256Base64(data) : undefined,
      });
    try {
      await this.client.send(command(true));
    } catch (error) {
      if (!isChecksumUnsupported(error)) {
        await this.describeEndpoint();
        throw this.translate(error, 'write', key);
      }
      await this.call(() => this.client.send(command(false)), 'write', key);
    }
  }

  /** A multipart upload asking for `checksum`; without it (and `checksums` false) where the server does not take it. */
  private async createUpload(
    key: string,
    checksum: Pick<CreateMultipartUploadCommandInput, 'ChecksumAlgorithm' | 'ChecksumType'>,
  ): Promise<{ created: { UploadId?: string }; checksums: boolean }> {
    const Key = this.keyOf(key);
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...checksum }),
      );
      return { created, checksums: true };
    } catch (error) {
      if (!isChecksumUnsupported(error)) {
        await this.describeEndpoint();
        throw this.translate(error, 'write', key);
      }
      const created = await this.call(
        () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key })),
        'write',
        key,
      );
      return { created, checksums: false };
    }
  }

  private async multipartUpload(
    key: string,
    firstParts: Buffer[],
    rest: AsyncIterator<Buffer>,
    size: number,
  ): Promise<void> {
    const Key = this.keyOf(key);
    const { created, checksums } = await this.createUpload(key, { ChecksumAlgorithm: 'SHA256' });
    const UploadId = created.UploadId;
    const completed: CompletedPart[] = [];
    let sent = 0;
    try {
      const upload = async (data: Buffer) => {
        const PartNumber = completed.length + 1;
        const ChecksumSHA256 = checksums ? sha256Base64(data) : undefined;
        const output = await this.call(
          () =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
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
      for (let next = await this.nextPart(rest, key); !next.done; next = await this.nextPart(rest, key)) {
        await upload(next.value);
      }
      this.checkSize(key, sent, size);
      await this.call(
        () =>
          this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key,
              UploadId,
              MultipartUpload: { Parts: completed },
            }),
          ),
        'write',
        key,
      );
    } catch (error) {
      // Unfinished uploads are billed until aborted.
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => undefined);
      throw error;
    }
  }

  private async nextPart(parts: AsyncIterator<Buffer>, key: string): Promise<IteratorResult<Buffer>> {
    try {
      return await parts.next();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        `copy to ${this.locationOf(key)} failed while reading its source: ${messageOf(error)}`,
        'io',
        this.locationOf(key),
        { cause: error },
      );
    }
  }

  private checkSize(key: string, received: number, expected: number): void {
    if (received !== expected) {
      throw new StoreError(
        `copy to ${this.locationOf(key)} received ${received} bytes, expected ${expected}: the source changed or was cut short; retry`,
        'io',
        this.locationOf(key),
      );
    }
  }

  private copyError(error: unknown, source: S3Store, sourceKey: string, key: string): StoreError {
    const translated = this.translate(error, 'write', key);
    if (nameOf(error) === 'NoSuchKey' || nameOf(error) === 'NoSuchBucket') {
      return new StoreError(
        `server-side copy of ${source.locationOf(sourceKey)} to ${this.locationOf(key)} failed: ${translated.message}`,
        translated.kind,
        translated.location,
        { cause: error },
      );
    }
    return translated;
  }

  private async call<T>(request: () => Promise<T>, action: Action, key?: string): Promise<T> {
    try {
      return await request();
    } catch (error) {
      await this.describeEndpoint();
      throw this.translate(error, action, key);
    }
  }

  private async describeEndpoint(): Promise<string> {
    if (this.endpointDescription === undefined) {
      const id = await this.endpointId().catch(() => 'aws');
      const region = await Promise.resolve(this.client.config.region?.()).catch(() => undefined);
      this.endpointDescription =
        id === 'aws' ? `for S3 in ${region ?? 'the configured region'}` : id.replace(/\/$/, '');
    }
    return this.endpointDescription;
  }

  /** Maps SDK and network errors to StoreErrors that say what, where and what to try. */
  translate(error: unknown, action: Action, key?: string): StoreError {
    if (error instanceof StoreError) return error;
    const location = this.locationOf(key);
    const make = (message: string, kind: StoreError['kind']) =>
      new StoreError(message, kind, location, { cause: error });
    const name = nameOf(error);
    const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
      ?.httpStatusCode;
    const message = messageOf(error);

    const networkCode = networkCodeOf(error);
    if (networkCode) {
      return make(
        `cannot reach S3 endpoint ${this.endpointLabel(error)} (${NETWORK_REASONS[networkCode]}) for ${location}: check the endpoint, network and region`,
        'unreachable',
      );
    }
    if (name === 'CredentialsProviderError') {
      return make(
        `no AWS credentials found for ${this.url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (${message})`,
        'credentials',
      );
    }
    if (CREDENTIAL_ERRORS.has(name)) {
      return make(
        `AWS credentials were refused for ${location} (${name}): check AWS_PROFILE or the access keys, or refresh the session`,
        'credentials',
      );
    }
    if (name === 'NoSuchBucket') {
      return make(
        `bucket "${this.bucket}" does not exist (${this.url}): check the name and region`,
        'not-found',
      );
    }
    if (name === 'PreconditionFailed' || name === 'InvalidRange' || status === 412 || status === 416) {
      return this.changed(key ?? '', `S3 answered ${name}: its ETag is not the one listed`);
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return make(`object ${location} does not exist`, 'not-found');
    }
    if (name === 'InvalidObjectState') {
      const storageClass = (error as { StorageClass?: string }).StorageClass;
      return make(
        `object ${location} is archived${storageClass ? ` in storage class ${storageClass}` : ''}: request a restore (RestoreObject) before reading it`,
        'archived',
      );
    }
    const denial = parseDenial(message);
    if (denial) {
      // S3 and KMS name the principal, the action and the resource they refused: say exactly what to grant to whom.
      const resource =
        denial.resource ??
        (denial.action.startsWith('kms:') ? "the bucket's KMS key" : this.arnOf(action, key));
      return make(
        `access denied to ${location} (${action}): grant ${denial.action} on ${resource} to ${denial.principal}`,
        'access-denied',
      );
    }
    if (name.startsWith('KMS') || /\bKMS\b/i.test(message)) {
      return make(
        `cannot ${action} ${location}: its KMS key refused (${name}): grant kms:Decrypt on the bucket's key to ${this.identity}`,
        'access-denied',
      );
    }
    if (name === 'AccessDenied' || name === 'Forbidden' || name === 'AllAccessDisabled' || status === 403) {
      return make(
        `access denied to ${location} (${action}): grant ${PERMISSION_OF[action]} on ${this.arnOf(action, key)} to ${this.identity}`,
        'access-denied',
      );
    }
    if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
      return make(
        `bucket "${this.bucket}" is in another region (${this.url}): set AWS_REGION to its region`,
        'unreachable',
      );
    }
    if (status !== undefined && status >= 500) {
      const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
      return make(
        `S3 endpoint ${this.endpointLabel(error)} answered HTTP ${status} (${name}) for ${location}${attempts ? ` ${attempts} times` : ''}: try again later`,
        'unreachable',
      );
    }
    return make(`cannot ${action} ${location}: ${name}: ${message}`, 'io');
  }

  /** The ARN an action on this key (or, for a listing, this bucket) is granted on. */
  private arnOf(action: Action, key?: string): string {
    return action === 'list' || key === undefined
      ? `arn:aws:s3:::${this.bucket}`
      : `arn:aws:s3:::${this.bucket}/${this.keyOf(key)}`;
  }

  private endpointLabel(error: unknown): string {
    if (this.endpointDescription) return this.endpointDescription;
    const { address, port } = (error ?? {}) as { address?: string; port?: number };
    if (address) return port ? `${address}:${port}` : address;
    return 'for S3';
  }
}

/** Endpoints v2 (`url`) or the v1 shape a custom endpoint string resolves to. */
interface EndpointShape {
  url?: URL;
  protocol?: string;
  hostname?: string;
  port?: number;
  path?: string;
}

type Action = 'list' | 'head' | 'read' | 'write';

const PERMISSION_OF: Record<Action, string> = {
  list: 's3:ListBucket',
  head: 's3:GetObject',
  read: 's3:GetObject',
  write: 's3:PutObject',
};

/**
 * What an AWS denial message says: "User: arn:aws:sts::1:assumed-role/Role/session is not authorized
 * to perform: s3:GetObject on resource: "arn:aws:s3:::b/k" because ..." (S3), or "... kms:Decrypt on
 * the resource associated with this ciphertext ..." (KMS through S3). The principal becomes the role
 * (or user) to grant, named as IAM shows it.
 */
export function parseDenial(
  message: string,
): { principal: string; action: string; resource?: string } | undefined {
  const match =
    /User: (arn:[^\s]+) is not authorized to perform: ([a-z0-9-]+:[A-Za-z0-9*]+)(?: on (?:resource:? )?"?(arn:[^\s"]+)"?)?/.exec(
      message,
    );
  if (!match) return undefined;
  const arn = match[1] as string;
  const assumed = /:assumed-role\/([^/]+)\//.exec(arn);
  const iam = /:(role|user)\/(?:.*\/)?([^/]+)$/.exec(arn);
  const principal = assumed ? `role ${assumed[1]}` : iam ? `${iam[1]} ${iam[2]}` : arn;
  return { principal, action: match[2] as string, ...(match[3] ? { resource: match[3] } : {}) };
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

function sha256Base64(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64');
}

/** Servers that do not implement flexible checksums answer 400/501 naming the header. */
function isChecksumUnsupported(error: unknown): boolean {
  const name = nameOf(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch') return false;
  return (
    (name === 'NotImplemented' ||
      name === 'InvalidRequest' ||
      name === 'InvalidArgument' ||
      status === 501) &&
    /checksum|x-amz-checksum|sha256/i.test(messageOf(error) + name)
  );
}

/** A server that lacks the operation (s3rver has no UploadPartCopy). */
function isNotImplemented(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return nameOf(error) === 'NotImplemented' || status === 501;
}

/** The SDK's response checksum validation: the bytes received are not those S3 stored. */
function isChecksumMismatch(error: unknown): boolean {
  return error instanceof Error && /^Checksum mismatch/.test(error.message);
}

function nameOf(error: unknown): string {
  if (error && typeof error === 'object') {
    const { name, Code } = error as { name?: unknown; Code?: unknown };
    if (typeof Code === 'string' && Code) return Code;
    if (typeof name === 'string') return name;
  }
  return 'Error';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function networkCodeOf(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (candidate: unknown): string | undefined => {
    if (!candidate || typeof candidate !== 'object' || seen.has(candidate)) return undefined;
    seen.add(candidate);
    const { code, name, errors, cause } = candidate as {
      code?: unknown;
      name?: unknown;
      errors?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && code in NETWORK_REASONS) return code;
    if (typeof name === 'string' && name in NETWORK_REASONS) return name;
    // Node's happy-eyeballs connect throws an AggregateError of the attempts.
    for (const inner of Array.isArray(errors) ? errors : []) {
      const found = visit(inner);
      if (found) return found;
    }
    return visit(cause);
  };
  return visit(error);
}
