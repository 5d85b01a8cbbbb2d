/**
 * A 40 MB S3 read whose connection is reset three times (after 10 MB of each response) costs
 * at most 1.1x the clean read: each reset is resumed with a ranged GET from the last byte
 * received, never from the start. s3rver on 127.0.0.1 behind the tests' fault proxy, both
 * reads through it; each resume costs one request's round trip on fresh connections, the
 * floor of the ratio. Rounds are paired and alternate which read goes first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Store } from '../lib/adapters/s3-store.ts';
import { type FaultRule, startFaultProxy } from '../test/support/fault-proxy.ts';
import { startLocalS3 } from '../test/support/local-servers.ts';
import type { BenchContext } from './run.ts';

const SIZE = 40 * 1024 * 1024;
const ROUNDS = 21;
const TARGET = 1.1;

export async function run(ctx: BenchContext): Promise<void> {
  const s3 = await startLocalS3();
  const proxy = await startFaultProxy(s3.endpoint);
  try {
    const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    const direct = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    });
    const content = randomBytes(SIZE);
    await direct.send(new CreateBucketCommand({ Bucket: 'bench' }));
    await direct.send(new PutObjectCommand({ Bucket: 'bench', Key: 'big.bin', Body: content }));
    const expected = createHash('sha256').update(content).digest('hex');
    const store = new S3Store('s3://bench', {
      clientConfig: { endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials },
    });
    const listed = { size: SIZE };
    const read = async (rules: FaultRule[]) => {
      proxy.setRules(rules);
      const started = process.hrtime.bigint();
      const hash = createHash('sha256');
      for await (const chunk of await store.open('big.bin', { listed })) hash.update(chunk as Buffer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (hash.digest('hex') !== expected) throw new Error('the resumed read returned other bytes');
      const resets = proxy.requests.filter((r) => r.fault === 'reset').length;
      return { ms, resets };
    };
    const resets: FaultRule[] = [{ fault: { kind: 'reset', after: 10 * 1024 * 1024 }, times: 3 }];
    await read([]);
    await read(resets);
    const clean: number[] = [];
    const faulty: number[] = [];
    const faultyRead = async () => {
      const withResets = await read(resets);
      if (withResets.resets !== 3) throw new Error(`expected 3 resets, saw ${withResets.resets}`);
      return withResets.ms;
    };
    // Each round's two reads run back to back, so a load spike on the shared machine hits both;
    // which goes first alternates, so neither always follows the other's leftovers.
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        clean.push((await read([])).ms);
        faulty.push(await faultyRead());
      } else {
        faulty.push(await faultyRead());
        clean.push((await read([])).ms);
      }
    }
    const quantile = (values: number[], q: number) =>
      [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * q)] as number;
    const median = (values: number[]) => quantile(values, 0.5);
    const ratios = faulty.map((ms, round) => ms / (clean[round] as number));
    const ratio = median(ratios);
    const best = Math.min(...faulty) / Math.min(...clean);
    // The quartiles show how far a loaded machine moved the rounds.
    ctx.log(
      `s3 read of 40 MB: clean ${median(clean).toFixed(0)} ms, with 3 resets ${median(faulty).toFixed(0)} ms; median of ${ROUNDS} paired ratios ${ratio.toFixed(2)}x (quartiles ${quantile(ratios, 0.25).toFixed(2)}-${quantile(ratios, 0.75).toFixed(2)}), best of each ${best.toFixed(2)}x (target <= ${TARGET}x) ${ratio <= TARGET ? 'OK' : 'MISSED'}`,
    );
    if (process.env.BENCH_DEBUG)
      ctx.log(JSON.stringify({ clean: clean.map(Math.round), faulty: faulty.map(Math.round) }));
  } finally {
    await proxy.close();
    await s3.stop();
  }
}
