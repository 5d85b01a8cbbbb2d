import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { StoreError } from '../errors.ts';
import { type CrcAlgorithm, createCrc } from '../inspect/crc.ts';
import type { ObjectStore } from '../ports.ts';

/** How the passes read stored objects for their references, and how a failed read is worded. */

export const READ_HIGH_WATER_MARK = 1024 * 1024;

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

export function accessMessage(what: string, error: unknown, bytesRead?: number): string {
  const kind = error instanceof StoreError ? error.kind : undefined;
  const after = bytesRead ? ` after ${bytesRead} bytes` : '';
  const advice =
    kind === 'access-denied'
      ? 'grant the validator read access (and KMS decrypt) to it'
      : kind === 'archived'
        ? 'restore it from its archive storage class first'
        : 'check the store and retry';
  return `cannot read ${what}${after}: ${errorText(error)}; ${advice}`;
}

export async function readSmallObject(
  store: ObjectStore,
  key: string,
  limit: number,
): Promise<{ text: string; sha256: string; size: number }> {
  const stream = await store.open(key);
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new StoreError(`${key} is larger than ${limit} bytes: not a checksum file`, 'io', key);
    }
    hash.update(chunk);
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), sha256: hash.digest('hex'), size };
}

export interface ReadOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((bytesDelta: number) => void) | undefined;
}

/** Reads an object to its end: SHA-256, size and, when asked, the CRC the store may have kept. */
export async function hashObject(
  store: ObjectStore,
  key: string,
  options: ReadOptions,
  crcAlgorithm?: CrcAlgorithm,
): Promise<{ sha256: string; size: number; crc?: string }> {
  return hashStream(await store.open(key, { highWaterMark: READ_HIGH_WATER_MARK }), options, crcAlgorithm);
}

export async function hashStream(
  stream: Readable,
  options: ReadOptions,
  crcAlgorithm?: CrcAlgorithm,
): Promise<{ sha256: string; size: number; crc?: string }> {
  const hash = createHash('sha256');
  const crc = crcAlgorithm ? createCrc(crcAlgorithm) : undefined;
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      crc?.update(chunk);
      size += chunk.length;
      options.onProgress?.(chunk.length);
    }
  } catch (error) {
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { bytesRead: size });
  }
  return { sha256: hash.digest('hex'), size, ...(crc ? { crc: crc.digestBase64() } : {}) };
}
