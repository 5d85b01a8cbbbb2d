import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';

/**
 * The fault proxy itself (issue 10, bench s3-resume): a fault that forwards only part of a body
 * asks s3rver for only that part, so s3rver does not fill the socket buffers with bytes the cut
 * throws away, on the same cores as the reader under test; the client still sees the answer
 * to the request it sent (status, Content-Length, Content-Range).
 */
const s3rver = inject('s3Endpoint');
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const direct = new S3Client({ endpoint: s3rver, region: 'us-east-1', forcePathStyle: true, credentials });
const bucket = `bv-proxy-${randomBytes(4).toString('hex')}`;
const SIZE = 300 * 1024;
const content = randomBytes(SIZE);

let proxy: FaultProxy;
let client: S3Client;

beforeAll(async () => {
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'big.bin', Body: content }));
  proxy = await startFaultProxy(s3rver);
  client = new S3Client({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  await proxy.close();
});
beforeEach(() => proxy.setRules([]));

/** The response's status line and ranges, and the bytes of its body up to the cut. */
async function get(range?: string) {
  const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big.bin', Range: range }));
  const chunks: Buffer[] = [];
  let broke = false;
  try {
    for await (const chunk of output.Body as Readable) chunks.push(chunk as Buffer);
  } catch {
    broke = true;
  }
  return {
    status: output.$metadata.httpStatusCode,
    length: output.ContentLength,
    contentRange: output.ContentRange,
    body: Buffer.concat(chunks),
    broke,
  };
}

describe('issue 10 (faults): the fault proxy', () => {
  it('reads from s3rver only the bytes a reset forwards, delivers all of them, and answers a whole read as a whole read', async () => {
    proxy.setRules([{ fault: { kind: 'reset', after: 1000 }, times: 1 }]);
    const read = await get();
    expect(read).toMatchObject({ status: 200, length: SIZE, contentRange: undefined, broke: true });
    expect(read.body.equals(content.subarray(0, 1000))).toBe(true);
    expect(proxy.requests.map((r) => [r.range, r.upstreamRange, r.fault])).toEqual([
      [undefined, 'bytes=0-999', 'reset'],
    ]);
  });

  it('answers a ranged read cut short with the range the client asked for', async () => {
    proxy.setRules([
      { fault: { kind: 'reset', after: 2000 }, times: 1, keys: /big/, reads: 'resume' },
      { fault: { kind: 'early-end', after: 500 }, times: 2 },
    ]);
    const open = await get('bytes=5000-');
    expect(open).toMatchObject({
      status: 206,
      length: SIZE - 5000,
      contentRange: `bytes 5000-${SIZE - 1}/${SIZE}`,
      broke: true,
    });
    expect(open.body.equals(content.subarray(5000, 7000))).toBe(true);
    // An early end is sent chunked, without Content-Length, as before.
    const closed = await get('bytes=100-1099');
    expect(closed).toMatchObject({ status: 206, contentRange: `bytes 100-1099/${SIZE}`, broke: false });
    expect(closed.body.equals(content.subarray(100, 600))).toBe(true);
    expect(proxy.requests.map((r) => [r.fault, r.upstreamRange])).toEqual([
      ['reset', 'bytes=5000-6999'],
      ['early-end', 'bytes=100-599'],
    ]);
  });

  it('keeps its connection to s3rver across reads it cuts: only the reader reconnects after a reset', async () => {
    proxy.setRules([{ fault: { kind: 'reset', after: 4000 }, times: 3 }]);
    const before = proxy.upstreamConnections;
    for (let read = 0; read < 3; read++) expect((await get()).body.length).toBe(4000);
    expect(proxy.requests.map((r) => r.fault)).toEqual(['reset', 'reset', 'reset']);
    expect(proxy.upstreamConnections - before).toBeLessThanOrEqual(1);
  });

  it("times s3rver's answer to each request it forwards, and not its own injected answers", async () => {
    proxy.setRules([
      { fault: { kind: 'status', status: 503, code: 'SlowDown' }, times: 1 },
      { fault: { kind: 'reset', after: 1000 }, times: 1 },
    ]);
    await expect(get()).rejects.toThrow();
    expect((await get()).broke).toBe(true);
    expect((await get('bytes=1000-')).body.equals(content.subarray(1000))).toBe(true);
    expect(proxy.requests.map((r) => [r.fault ?? 'ok', typeof r.upstreamMs])).toEqual([
      ['status', 'undefined'],
      ['reset', 'number'],
      ['ok', 'number'],
    ]);
    expect(proxy.requests.every((r) => r.upstreamMs === undefined || r.upstreamMs >= 0)).toBe(true);
  });

  it('passes reads without a cutting fault through unchanged', async () => {
    proxy.setRules([{ fault: { kind: 'flip', at: 10 }, times: 1 }]);
    const flipped = await get();
    expect(flipped).toMatchObject({ status: 200, length: SIZE, broke: false });
    expect(flipped.body.length).toBe(SIZE);
    expect(flipped.body[10]).toBe((content[10] as number) ^ 0x01);
    const clean = await get('bytes=10-');
    expect(clean.body.equals(content.subarray(10))).toBe(true);
    expect(proxy.requests.map((r) => r.upstreamRange)).toEqual([undefined, undefined]);
  });
});
