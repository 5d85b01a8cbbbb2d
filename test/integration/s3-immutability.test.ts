import { createHash } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ChecksumReader } from '../../lib/adapters/s3-checksums.ts';
import { S3ProtectionProbe } from '../../lib/adapters/s3-immutability.ts';
import { S3Store } from '../../lib/adapters/s3-store.ts';
import { StoreError } from '../../lib/core/errors.ts';
import { type ProtectionStub, startProtectionStub } from '../support/s3-protection-stub.ts';

let stub: ProtectionStub;
let client: S3Client;
const until = new Date('2031-01-02T03:04:05.000Z');
const written = new Date('2026-11-01T00:00:00.000Z');
const sha = createHash('sha256').update('backup bytes').digest('base64');

beforeAll(async () => {
  stub = await startProtectionStub({
    locked: {
      versioning: 'Enabled',
      objectLock: { defaultRetention: { mode: 'COMPLIANCE', days: 30 } },
      lifecycleRules: [
        '<Rule><ID>expire-tmp</ID><Filter><Prefix>db/tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule>',
        '<Rule><ID>old-style</ID><Prefix>db/</Prefix><Status>Enabled</Status><Expiration><Days>90</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>30</NoncurrentDays></NoncurrentVersionExpiration></Rule>',
        '<Rule><ID>off</ID><Filter><Prefix></Prefix></Filter><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>',
        '<Rule><ID>tagged</ID><Filter><And><Prefix>db/</Prefix><Tag><Key>tier</Key><Value>scratch</Value></Tag><ObjectSizeGreaterThan>1024</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Date>2027-01-01T00:00:00.000Z</Date></Expiration></Rule>',
      ],
      objects: {
        'db/a.tar.gz': {
          size: 12,
          lastModified: written,
          retention: { mode: 'COMPLIANCE', retainUntil: until },
          legalHold: true,
          checksums: { SHA256: sha },
        },
        'db/b.tar.gz': {
          size: 30,
          checksumType: 'COMPOSITE',
          checksums: { SHA256: 'c29tZXRoaW5n-3' },
          parts: [10, 10, 10],
        },
        'db/c.tar.gz': { size: 5, checksums: { CRC64NVME: 'AAAAAAAAAAE=' }, checksumType: 'FULL_OBJECT' },
        'db/plain.tar.gz': { size: 5 },
      },
    },
    open: { objects: { 'x.tar': { size: 1 } } },
    secret: { objects: {}, denied: ['versioning'] },
  });
  client = new S3Client({
    endpoint: stub.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'stub', secretAccessKey: 'stub' },
  });
});
afterAll(async () => {
  client.destroy();
  await stub.stop();
});

const probe = (url: string) => new S3ProtectionProbe(new S3Store(url, { client }));
const reader = (url: string) => new S3ChecksumReader(new S3Store(url, { client }));

describe('issue 15: the S3 protection probe reads what protects a bucket and its objects', () => {
  it('reads versioning, Object Lock with its default retention and the enabled lifecycle rules', async () => {
    const bucket = await probe('s3://locked/db').bucket();
    expect(bucket).toMatchObject({
      bucket: 'locked',
      versioning: 'Enabled',
      objectLock: true,
      defaultRetention: { mode: 'COMPLIANCE', days: 30 },
    });
    expect(bucket.lifecycle).toEqual([
      { id: 'expire-tmp', prefix: 'db/tmp/', tags: [], expirationDays: 7 },
      { id: 'old-style', prefix: 'db/', tags: [], expirationDays: 90, noncurrentDays: 30 },
      {
        id: 'tagged',
        prefix: 'db/',
        tags: ['tier=scratch'],
        objectSizeGreaterThan: 1024,
        expirationDate: '2027-01-01T00:00:00.000Z',
      },
    ]);
  });

  it('answers a bucket with nothing configured as off, not as a failure', async () => {
    expect(await probe('s3://open').bucket()).toEqual({
      bucket: 'open',
      versioning: 'Off',
      objectLock: false,
      lifecycle: [],
    });
  });

  it("reads one object's retention and legal hold below the store's prefix, and none where there is none", async () => {
    const p = probe('s3://locked/db');
    expect(p.prefix).toBe('db/');
    expect(await p.object('a.tar.gz')).toEqual({
      retention: { mode: 'COMPLIANCE', retainUntil: until.toISOString() },
      legalHold: true,
    });
    expect(await p.object('plain.tar.gz')).toEqual({ legalHold: false });
    expect(stub.requests).toContain('GET /locked/db/a.tar.gz?retention=');
    expect(stub.requests).toContain('GET /locked/db/a.tar.gz?legal-hold=');
  });

  it('a refused call is an access-denied StoreError naming the IAM action to grant', async () => {
    const error = await probe('s3://secret')
      .bucket()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).kind).toBe('access-denied');
    expect((error as StoreError).message).toContain('s3:GetBucketVersioning');
  });
});

describe('issue 15: the S3 checksum reader gets stored checksums without reading the object', () => {
  it('a FULL_OBJECT SHA-256 from HeadObject in checksum mode, with no GetObjectAttributes call', async () => {
    const before = stub.requests.length;
    expect(await reader('s3://locked/db').checksums('a.tar.gz')).toEqual({
      size: 12,
      type: 'FULL_OBJECT',
      values: { SHA256: sha },
    });
    expect(stub.requests.slice(before)).toEqual(['HEAD /locked/db/a.tar.gz']);
  });

  it('a COMPOSITE checksum with its part count and the part sizes from GetObjectAttributes', async () => {
    expect(await reader('s3://locked/db').checksums('b.tar.gz')).toEqual({
      size: 30,
      type: 'COMPOSITE',
      values: { SHA256: 'c29tZXRoaW5n-3' },
      partsCount: 3,
      partSizes: [10, 10, 10],
    });
    expect(stub.requests.some((r) => r.startsWith('GET /locked/db/b.tar.gz?attributes'))).toBe(true);
  });

  it('a CRC64NVME, and nothing at all for an object stored without a checksum', async () => {
    expect(await reader('s3://locked/db').checksums('c.tar.gz')).toEqual({
      size: 5,
      type: 'FULL_OBJECT',
      values: { CRC64NVME: 'AAAAAAAAAAE=' },
    });
    expect(await reader('s3://locked/db').checksums('plain.tar.gz')).toBeUndefined();
  });
});
