/**
 * zstd archives built inside tests, on every runtime and without the `zstd` program: libzstd's
 * one-shot compressor (WebAssembly, the @bokuweb/zstd-wasm dev dependency). It writes no content
 * checksum; `checksum: true` adds one as the zstd CLI does (flag bit plus XXH64's low 32 bits).
 */
import { compress, init } from '@bokuweb/zstd-wasm';

let ready: Promise<void> | undefined;

export async function zstd(
  data: Buffer,
  { level = 3, checksum = true }: { level?: number; checksum?: boolean } = {},
): Promise<Buffer> {
  ready ??= init();
  await ready;
  const frame = Buffer.from(compress(data, level));
  if (!checksum) return frame;
  // Byte 4 is the frame header descriptor; bit 2 is Content_Checksum_flag.
  frame[4] = (frame[4] as number) | 0x04;
  const sum = Buffer.alloc(4);
  sum.writeUInt32LE(Number(xxh64(data) & 0xffffffffn));
  return Buffer.concat([frame, sum]);
}

/** A skippable frame (magic 0x184D2A50-5F) holding `payload`: decoders pass over it. */
export function skippableFrame(payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0x184d2a50, 0);
  header.writeUInt32LE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const MASK = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK;
const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & MASK, 31n) * P1) & MASK;
const merge = (acc: bigint, value: bigint) => (((acc ^ round(0n, value)) * P1 + P4) & MASK) as bigint;

/** XXH64 with seed 0, written from the specification (test data only: BigInt is slow). */
export function xxh64(data: Buffer): bigint {
  let at = 0;
  let h: bigint;
  if (data.length >= 32) {
    let v1 = (P1 + P2) & MASK;
    let v2 = P2;
    let v3 = 0n;
    let v4 = (MASK + 1n - P1) & MASK;
    for (; at + 32 <= data.length; at += 32) {
      v1 = round(v1, data.readBigUInt64LE(at));
      v2 = round(v2, data.readBigUInt64LE(at + 8));
      v3 = round(v3, data.readBigUInt64LE(at + 16));
      v4 = round(v4, data.readBigUInt64LE(at + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & MASK;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = P5;
  }
  h = (h + BigInt(data.length)) & MASK;
  for (; at + 8 <= data.length; at += 8) {
    h = (rotl(h ^ round(0n, data.readBigUInt64LE(at)), 27n) * P1 + P4) & MASK;
  }
  if (at + 4 <= data.length) {
    h = (rotl(h ^ ((BigInt(data.readUInt32LE(at)) * P1) & MASK), 23n) * P2 + P3) & MASK;
    at += 4;
  }
  for (; at < data.length; at++) {
    h = (rotl(h ^ ((BigInt(data[at] as number) * P5) & MASK), 11n) * P1) & MASK;
  }
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  h ^= h >> 32n;
  return h;
}
