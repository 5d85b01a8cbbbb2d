import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { DynamoDbLedger } from '../../lib/adapters/dynamodb-ledger.ts';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import {
  MAX_READS_WITHOUT_PROGRESS,
  resumeDelayMs,
  S3_CLIENT_DEFAULTS,
  S3Store,
} from '../../lib/adapters/s3-store.ts';
import { StoreError } from '../../lib/core/errors.ts';
import type { RunReport } from '../../lib/core/model.ts';
import type { StageContext } from '../../lib/core/stages/context.ts';
import { discoverStage } from '../../lib/core/stages/discover.ts';
import { integrityStage } from '../../lib/core/stages/integrity.ts';
import { reportStage } from '../../lib/core/stages/report.ts';
import { gzip, packTar, sha256Hex } from '../support/archives.ts';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../support/fault-proxy.ts';
import { freshLedger } from '../support/ledger.ts';

const s3rver = inject('s3Endpoint');
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const direct = new S3Client({ endpoint: s3rver, region: 'us-east-1', forcePathStyle: true, credentials });
const bucket = `bv-faults-${randomBytes(4).toString('hex')}`;
const KiB = 1024;

let proxy: FaultProxy;
let proxied: S3ClientConfig;

beforeAll(async () => {
  await direct.send(new CreateBucketCommand({ Bucket: bucket }));
  proxy = await startFaultProxy(s3rver);
  proxied = { endpoint: proxy.endpoint, region: 'us-east-1', forcePathStyle: true, credentials };
});
afterAll(async () => {
  await proxy.close();
});

async function put(key: string, body: Buffer | string): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Incompressible bytes: a backup larger than the 64 KiB after which faults break a body. */
const noise = (size: number, seed: string) => {
  const out = Buffer.alloc(size);
  let block = Buffer.from(seed);
  for (let at = 0; at < size; at += 32) {
    block = Buffer.from(sha256Hex(block), 'hex');
    block.copy(out, at);
  }
  return out;
};

const NAMES = {
  archive: 'db/db-2025-06-25T0000Z.tar.gz',
  damaged: 'db/db-2025-06-24T0000Z.tar.gz',
  listed: 'files/2025-06-25T0000Z/',
  loose: 'loose/2025-06-25T0000Z/',
};

interface Sources {
  prefix: string;
  url: string;
  archive: Buffer;
}

/**
 * Four backups under a fresh prefix: a healthy archive with its sidecar, a damaged one (its
 * sidecar names other bytes), a healthy directory with SHA256SUMS, and a directory without
 * any reference (checked against its first-seen checksums only).
 */
async function writeSources(): Promise<Sources> {
  const prefix = `p${randomBytes(4).toString('hex')}/`;
  const archive = gzip(await packTar([{ name: 'dump.sql', content: noise(200 * KiB, 'archive') }]), 1);
  await put(`${prefix}${NAMES.archive}`, archive);
  await put(`${prefix}${NAMES.archive}.sha256`, `${sha256Hex(archive)}  db-2025-06-25T0000Z.tar.gz\n`);
  const older = gzip(await packTar([{ name: 'dump.sql', content: noise(150 * KiB, 'old') }]), 1);
  await put(`${prefix}${NAMES.damaged}`, older);
  await put(`${prefix}${NAMES.damaged}.sha256`, `${'0'.repeat(64)}  db-2025-06-24T0000Z.tar.gz\n`);
  const file = noise(180 * KiB, 'file');
  await put(`${prefix}${NAMES.listed}big.bin`, file);
  await put(`${prefix}${NAMES.listed}SHA256SUMS`, `${sha256Hex(file)}  big.bin\n`);
  await put(`${prefix}${NAMES.loose}data.bin`, noise(170 * KiB, 'loose'));
  return { prefix, url: `s3://${bucket}/${prefix}`, archive };
}

let dir: string;
let ledger: DynamoDbLedger;
let runs = 0;
/** The requests of the last run's integrity stage, faults marked. */
let lastRequests: FaultProxy['requests'] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bv-s3faults-'));
  ledger = await freshLedger();
  proxy.setRules([]);
});
afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

function context(clientConfig: S3ClientConfig = proxied): StageContext {
  return {
    ledger,
    runStore: new FolderStore(join(dir, 'runs')),
    openSource: (url) => new S3Store(url, { clientConfig }),
    now: () => new Date('2025-06-26T12:00:00Z'),
  };
}

async function run(url: string, rules: FaultRule[] = [], between?: () => Promise<void>): Promise<RunReport> {
  const ctx = context();
  const runId = `run-${++runs}`;
  proxy.setRules([]);
  const discovery = await discoverStage(ctx, { runId, trigger: 'cli', command: 'integrity', sources: [url] });
  await between?.();
  proxy.setRules(rules);
  for (const shard of discovery.shards) await integrityStage(ctx, shard);
  lastRequests = [...proxy.requests];
  proxy.setRules([]);
  return (await reportStage(ctx, runId)).report;
}

/** Status and sorted finding codes of each backup, by its name under the prefix. */
function verdicts(report: RunReport, sources: Sources): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of report.backups) {
    const name = b.id.slice(sources.url.length);
    const codes = [...new Set(b.findings.map((f) => f.code))].sort();
    out[name] = [b.status, ...codes].join(' ');
  }
  return out;
}

const HEALTHY_FIRST_SIGHT = {
  [NAMES.archive]: 'PASS',
  [NAMES.damaged]: 'FAIL CHECKSUM_MISMATCH',
  [NAMES.listed]: 'PASS',
  [NAMES.loose]: 'WARN NO_REFERENCE_CHECKSUM',
};
const HEALTHY_LATER = { ...HEALTHY_FIRST_SIGHT, [NAMES.loose]: 'PASS' };

function objectReads(): string[] {
  return lastRequests.filter((r) => r.method === 'GET' && r.path.split('/').length > 2).map((r) => r.path);
}

describe('issue 10 (faults): S3 reads behind a fault-injecting proxy', () => {
  it('issue 10 (faults): the verdicts without faults, read once each (the baseline the others match)', async () => {
    const sources = await writeSources();
    const report = await run(sources.url);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
    // Health costs no extra read; the damaged archive and the unreferenced file are read twice.
    const reads = objectReads();
    const count = (name: string) => reads.filter((p) => p === `${bucket}/${sources.prefix}${name}`).length;
    expect(count(NAMES.archive)).toBe(1);
    expect(count(`${NAMES.listed}big.bin`)).toBe(1);
    expect(count(NAMES.damaged)).toBe(2);
    expect(count(`${NAMES.loose}data.bin`)).toBe(2);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): two 500s per object are absorbed by the SDK retries', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      { fault: { kind: 'status', status: 500, code: 'InternalError' }, times: 2 },
    ]);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
    const archiveReads = lastRequests.filter((r) => r.path.endsWith(NAMES.archive));
    expect(archiveReads.map((r) => r.fault ?? 'ok')).toEqual(['status', 'status', 'ok']);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): three 503 SlowDown per object are absorbed by the SDK retries', async () => {
    const sources = await writeSources();
    // SlowDown backs off longer than a 500: only the healthy backups' content objects get it.
    const report = await run(sources.url, [
      {
        fault: { kind: 'status', status: 503, code: 'SlowDown' },
        times: 3,
        keys: /(25T0000Z\.tar\.gz|big\.bin)$/,
      },
    ]);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
    const archiveReads = lastRequests.filter((r) => r.path.endsWith(NAMES.archive));
    expect(archiveReads.map((r) => r.fault ?? 'ok')).toEqual(['status', 'status', 'status', 'ok']);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  }, 120_000);

  it('issue 10 (faults): a reset after 64 KiB, three times per object, is resumed with a ranged GET pinned by If-Match', async () => {
    const sources = await writeSources();
    const rules: FaultRule[] = [{ fault: { kind: 'reset', after: 64 * KiB }, times: 3 }];
    const ctx = context();
    const runId = `run-${++runs}`;
    const discovery = await discoverStage(ctx, {
      runId,
      trigger: 'cli',
      command: 'integrity',
      sources: [sources.url],
    });
    proxy.setRules(rules);
    for (const shard of discovery.shards) await integrityStage(ctx, shard);
    const resumes = proxy.requests.filter((r) => r.path.endsWith(NAMES.archive) && r.range);
    expect(resumes.length).toBe(3);
    // Resumed from the last byte received (some of the 64 KiB sent may be lost with the connection).
    expect(resumes.every((r) => /^bytes=[1-9]\d*-$/.test(r.range ?? ''))).toBe(true);
    expect(
      new Set(proxy.requests.filter((r) => r.path.endsWith(NAMES.archive)).map((r) => r.ifMatch)).size,
    ).toBe(1);
    expect(proxy.requests.find((r) => r.path.endsWith(NAMES.archive))?.ifMatch).toMatch(/^"[0-9a-f]{32}"$/);
    proxy.setRules([]);
    const report = (await reportStage(ctx, runId)).report;
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): a clean early end after 64 KiB is resumed, and the first-seen checksum is of the whole file', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [{ fault: { kind: 'early-end', after: 64 * KiB }, times: 2 }]);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
    // The next healthy run finds the same SHA-256 as was recorded: no CHECKSUM_CHANGED, ever.
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): one bit flipped on the first read of each object is not damage; nothing flipped is recorded as first-seen', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [{ fault: { kind: 'flip' }, times: 1 }]);
    const first = verdicts(report, sources);
    // Referenced backups (sidecar, SHA256SUMS) are read again and pass; the damaged one is confirmed.
    expect(first[NAMES.archive]).toBe('PASS');
    expect(first[NAMES.listed]).toBe('PASS');
    expect(first[NAMES.damaged]).toBe('FAIL CHECKSUM_MISMATCH');
    // Without a reference, two reads that disagree are a transient fault, and nothing is recorded.
    expect(first[NAMES.loose]).toBe('FAIL CHECK_FAILED NO_REFERENCE_CHECKSUM');
    const loose = report.backups.find((b) => b.id.endsWith(NAMES.loose));
    expect(loose?.findings.find((f) => f.code === 'CHECK_FAILED')?.message).toMatch(
      /data\.bin was read twice with different SHA-256/,
    );
    expect(await ledger.firstSeenOf(`${sources.url}${NAMES.loose}`)).toEqual([]);
    // The next clean run sees it for the first time: no CHECKSUM_CHANGED.
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_FIRST_SIGHT);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): a flipped sidecar or SHA256SUMS read is read again, not reported as unusable', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      { fault: { kind: 'flip', at: 3 }, times: 1, keys: /(\.sha256|SHA256SUMS)$/ },
    ]);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
  });

  it('issue 10 (faults): a persistent 500 gives CHECK_FAILED naming the fault (not ACCESS_DENIED), records nothing, and the next run passes', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      { fault: { kind: 'status', status: 500, code: 'InternalError' }, times: Number.POSITIVE_INFINITY },
    ]);
    expect(report.status).toBe('FAIL');
    for (const b of report.backups) {
      expect(b.status).toBe('FAIL');
      expect(b.findings.map((f) => f.code)).not.toContain('ACCESS_DENIED');
      expect(b.findings.map((f) => f.code)).toContain('CHECK_FAILED');
      expect(b.findings.find((f) => f.code === 'CHECK_FAILED')?.message).toMatch(
        /answered HTTP 500 \(InternalError\) for .* 6 times/,
      );
    }
    expect(await ledger.firstSeenOf(`${sources.url}${NAMES.loose}`)).toEqual([]);
    expect(await ledger.firstSeenOf(`${sources.url}${NAMES.archive}`)).toEqual([]);
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_FIRST_SIGHT);
  });

  it('issue 10 (faults): a body that keeps breaking without progress gives CHECK_FAILED, and the next run passes', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      { fault: { kind: 'reset', after: 64 * KiB }, times: 1, reads: 'first', keys: /tar\.gz$/ },
      {
        fault: { kind: 'reset', after: 0 },
        times: Number.POSITIVE_INFINITY,
        reads: 'resume',
        keys: /tar\.gz$/,
      },
    ]);
    const byName = verdicts(report, sources);
    expect(byName[NAMES.archive]).toBe('FAIL CHECK_FAILED');
    const archive = report.backups.find((b) => b.id.endsWith(NAMES.archive));
    expect(archive?.findings[0]?.message).toMatch(
      /connection broke after \d+ of \d+ bytes \(connection reset\)/,
    );
    expect(verdicts(await run(sources.url), sources)).toEqual(HEALTHY_LATER);
  });

  it('issue 10 (faults): a stream that keeps resetting without progress ends in CHECK_FAILED within the retry bound', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      { fault: { kind: 'reset', after: 0 }, times: Number.POSITIVE_INFINITY, keys: /tar\.gz$/ },
    ]);
    const byName = verdicts(report, sources);
    expect(byName[NAMES.archive]).toBe('FAIL CHECK_FAILED');
    const archive = report.backups.find((b) => b.id.endsWith(NAMES.archive));
    expect(archive?.findings[0]?.message).toMatch(
      new RegExp(`${MAX_READS_WITHOUT_PROGRESS} reads in a row brought nothing new`),
    );
    // The read stops at the bound (one request per attempt, resumes pinned to the listed ETag);
    // a store that cannot be read is no damage, so no confirming read follows.
    const reads = lastRequests.filter((r) => r.method === 'GET' && r.path.endsWith(NAMES.archive));
    expect(reads.length).toBe(MAX_READS_WITHOUT_PROGRESS);
    expect(reads.filter((r) => r.range !== undefined).every((r) => r.ifMatch !== undefined)).toBe(true);
  });

  it('issue 10 (faults): a resume after progress starts at once; after reads that brought nothing it backs off as the SDK does', () => {
    expect(resumeDelayMs(0, () => 0.999)).toBe(0);
    expect(resumeDelayMs(1, () => 0.999)).toBeLessThan(100);
    expect(resumeDelayMs(1, () => 0.5)).toBe(50);
    expect(resumeDelayMs(3, () => 0.5)).toBe(200);
    expect(resumeDelayMs(30, () => 0.999)).toBeLessThan(20_000);
    expect(MAX_READS_WITHOUT_PROGRESS).toBe(S3_CLIENT_DEFAULTS.maxAttempts);
  });

  it('issue 10 (faults): an object overwritten between listing and reading is "changed since listing", then judged on its new content', async () => {
    const sources = await writeSources();
    const replacement = gzip(await packTar([{ name: 'dump.sql', content: noise(210 * KiB, 'new') }]), 1);
    const report = await run(sources.url, [], async () => {
      await put(`${sources.prefix}${NAMES.archive}`, replacement);
    });
    const archive = report.backups.find((b) => b.id.endsWith(NAMES.archive));
    expect(archive?.status).toBe('FAIL');
    expect(archive?.findings.map((f) => f.code)).toEqual(['CHECK_FAILED']);
    expect(archive?.findings[0]?.message).toMatch(/changed since it was listed/);
    expect(await ledger.firstSeenOf(`${sources.url}${NAMES.archive}`)).toEqual([]);
    // Next run: the new bytes against the old sidecar: now that is damage.
    const next = verdicts(await run(sources.url), sources);
    expect(next[NAMES.archive]).toBe('FAIL CHECKSUM_MISMATCH');
  });

  it('issue 10 (faults): an Intelligent-Tiering archive tier (InvalidObjectState) is ARCHIVED_STORAGE, not ACCESS_DENIED', async () => {
    const sources = await writeSources();
    const report = await run(sources.url, [
      {
        fault: { kind: 'status', status: 403, code: 'InvalidObjectState' },
        times: Number.POSITIVE_INFINITY,
        keys: /big\.bin$/,
      },
    ]);
    expect(verdicts(report, sources)[NAMES.listed]).toBe('WARN ARCHIVED_STORAGE');
  });
});

describe('issue 10 (faults): the S3 adapter pins and checks every read', () => {
  it('issue 10 (faults): a 412 to a pinned read is a "changed" StoreError, and a short body is resumed to the listed size', async () => {
    const sources = await writeSources();
    const store = new S3Store(sources.url, { clientConfig: proxied });
    const listing = new Map<string, { size: number; etag?: string }>();
    for await (const info of store.list())
      listing.set(info.key, { size: info.size, ...(info.etag ? { etag: info.etag } : {}) });
    const listed = listing.get(NAMES.archive);
    expect(listed?.etag).toMatch(/^"[0-9a-f]{32}"$/);

    proxy.setRules([{ fault: { kind: 'status', status: 412, code: 'PreconditionFailed' }, times: 1 }]);
    const error = await store.open(NAMES.archive, { ...(listed ? { listed } : {}) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).kind).toBe('changed');
    expect(proxy.requests[0]?.ifMatch).toBe(listed?.etag);

    proxy.setRules([{ fault: { kind: 'early-end', after: 64 * KiB }, times: 2 }]);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.open(NAMES.archive, { ...(listed ? { listed } : {}) }))
      chunks.push(chunk as Buffer);
    expect(sha256Hex(Buffer.concat(chunks))).toBe(sha256Hex(sources.archive));
    expect(proxy.requests.map((r) => r.range)).toEqual([
      undefined,
      `bytes=${64 * KiB}-`,
      `bytes=${128 * KiB}-`,
    ]);
  });

  it("issue 10 (faults): each reset is resumed from the last byte received, pinned to the first answer's ETag, with no byte read twice and no HEAD", async () => {
    const sources = await writeSources();
    const store = new S3Store(sources.url, { clientConfig: proxied });
    // Listed by size only (no ETag), as the bench reads: the pin comes from the first answer.
    proxy.setRules([{ fault: { kind: 'reset', after: 64 * KiB }, times: 3 }]);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.open(NAMES.archive, { listed: { size: sources.archive.length } }))
      chunks.push(chunk as Buffer);
    expect(sha256Hex(Buffer.concat(chunks))).toBe(sha256Hex(sources.archive));
    const requests = [...proxy.requests];
    expect(requests.map((r) => [r.method, r.range, r.fault ?? 'ok'])).toEqual([
      ['GET', undefined, 'reset'],
      ['GET', `bytes=${64 * KiB}-`, 'reset'],
      ['GET', `bytes=${128 * KiB}-`, 'reset'],
      ['GET', `bytes=${192 * KiB}-`, 'ok'],
    ]);
    const etag = (await store.head(NAMES.archive)).etag;
    expect(etag).toBeDefined();
    expect(requests.slice(1).map((r) => r.ifMatch)).toEqual([etag, etag, etag]);
  });

  it('issue 10 (faults): a body that fails the checksum S3 kept is "damaged in transit" (io), and the backup is read again and passes', async () => {
    const sources = await writeSources();
    const store = new S3Store(sources.url, { clientConfig: proxied });
    proxy.setRules([{ fault: { kind: 'flip', checksum: true }, times: 1 }]);
    const error = await (async () => {
      for await (const _chunk of await store.open(NAMES.archive, {
        listed: { size: sources.archive.length },
      })) {
        // drained
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).kind).toBe('io');
    expect((error as StoreError).message).toMatch(/damaged in transit: Checksum mismatch/);
    expect(proxy.requests[0]?.checksumMode).toBe('ENABLED');

    const report = await run(sources.url, [
      { fault: { kind: 'flip', checksum: true }, times: 1, keys: /big\.bin$/ },
    ]);
    expect(lastRequests.filter((r) => r.path.endsWith('big.bin')).map((r) => r.fault ?? 'ok')).toEqual([
      'flip',
      'ok',
    ]);
    expect(verdicts(report, sources)).toEqual(HEALTHY_FIRST_SIGHT);
  });

  it('issue 10 (faults): a size other than the listed one is "changed", never hashed as the object', async () => {
    const sources = await writeSources();
    const store = new S3Store(sources.url, { clientConfig: proxied });
    const size = sources.archive.length;
    const error = await store.open(NAMES.archive, { listed: { size: size + 1 } }).catch((e: unknown) => e);
    expect((error as StoreError).kind).toBe('changed');
    expect((error as StoreError).message).toMatch(/changed since it was listed/);
  });

  it('issue 10 (faults): the client validates GET bodies against the checksum S3 kept, and retries 5xx up to 6 attempts', async () => {
    const store = new S3Store(`s3://${bucket}/x`, { clientConfig: proxied });
    const config = store.client.config;
    expect(await config.responseChecksumValidation()).toBe('WHEN_SUPPORTED');
    expect(await config.maxAttempts()).toBeGreaterThanOrEqual(4);
    expect(config.retryMode).toBe('standard');
  });
});
