import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { GetObjectCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { StoreError } from '../../core/errors.ts';
import type { ReadOptions } from '../../core/ports.ts';
import { DEFAULT_READ_HIGH_WATER_MARK } from '../folder-store.ts';
import type { S3BucketClient } from './client.ts';
import { MAX_READS_WITHOUT_PROGRESS, resumeDelayMs } from './config.ts';
import { isChecksumMismatch, messageOf, NETWORK_REASONS, networkCodeOf } from './errors.ts';
import { headObject } from './listing.ts';

/** The body a read is consuming, so closing the read's stream can destroy it. */
interface BodyInFlight {
  body: Readable | undefined;
  closed: boolean;
}

/**
 * The object's bytes, checked against the listed size (or the size S3 reports). A body that
 * resets or ends early is resumed with a ranged GET pinned to the ETag (`IfMatch`), so a
 * long read survives a broken connection without starting over and never mixes versions.
 * VersionId is not used: reading by version needs s3:GetObjectVersion as well.
 */
export async function openObject(at: S3BucketClient, key: string, options?: ReadOptions): Promise<Readable> {
  const listed = options?.listed;
  const first = await get(at, key, listed?.etag);
  await at.describeEndpoint();
  const etag = listed?.etag ?? first.ETag;
  let size = listed?.size ?? first.ContentLength;
  if (listed && first.ContentLength !== undefined && first.ContentLength !== listed.size) {
    (first.Body as Readable | undefined)?.destroy();
    throw at.changed(key, `it is ${first.ContentLength} bytes now, ${listed.size} when listed`);
  }
  // A response without Content-Length (chunked): the size comes from the object's metadata.
  if (size === undefined) size = (await headObject(at, key)).size;
  const reading: BodyInFlight = { body: first.Body as Readable | undefined, closed: false };
  const stream = Readable.from(resumingBody(at, key, first, etag, size, reading), {
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

async function get(
  at: S3BucketClient,
  key: string,
  ifMatch: string | undefined,
  from?: number,
): Promise<GetObjectCommandOutput> {
  return at.call(
    () =>
      at.client.send(
        new GetObjectCommand({
          Bucket: at.bucket,
          Key: at.keyOf(key),
          IfMatch: ifMatch,
          Range: from === undefined ? undefined : `bytes=${from}-`,
        }),
      ),
    'read',
    key,
  );
}

async function* resumingBody(
  at: S3BucketClient,
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
          if (offset > size) throw at.changed(key, `it has more than the ${size} bytes listed`);
          yield chunk;
        }
        if (offset === size) return;
        fault = `the body ended after ${offset} of ${size} bytes`;
      } catch (error) {
        if (error instanceof StoreError || reading.closed) throw error;
        if (isChecksumMismatch(error)) {
          throw new StoreError(
            `${at.locationOf(key)} was damaged in transit: ${messageOf(error)}; read it again`,
            'io',
            at.locationOf(key),
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
          `cannot read ${at.locationOf(key)}: ${fault}, and ${withoutProgress} reads in a row brought nothing new`,
          'unreachable',
          at.locationOf(key),
        );
      }
      response = undefined;
      const wait = resumeDelayMs(withoutProgress);
      if (wait > 0) await delay(wait);
      if (reading.closed) return;
      response = await get(at, key, etag, offset);
      if (!response.ContentRange?.startsWith(`bytes ${offset}-`)) {
        throw new StoreError(
          `cannot read ${at.locationOf(key)}: ${fault}, and the store ignored the ranged request that would resume it`,
          'unreachable',
          at.locationOf(key),
        );
      }
    }
  } finally {
    (response?.Body as Readable | undefined)?.destroy();
  }
}
