import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FolderStore } from '../../lib/adapters/folder-store.ts';
import { S3Store } from '../../lib/adapters/s3-store.ts';
import { openCopyTarget, openStore, s3ClientConfigFromEnv } from '../../lib/adapters/stores.ts';
import { StoreError } from '../../lib/core/errors.ts';

const endpoint = inject('s3Endpoint');
const clientConfig: S3ClientConfig = {
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};
const raw = new S3Client(clientConfig);
const bucket = `bv-store-${randomBytes(4).toString('hex')}`;
const otherBucket = `${bucket}-copies`;

beforeAll(async () => {
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  await raw.send(new CreateBucketCommand({ Bucket: otherBucket }));
});

async function putRaw(
  key: string,
  body: string | Buffer,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
}

async function getRaw(targetBucket: string, key: string): Promise<Buffer> {
  const output = await raw.send(new GetObjectCommand({ Bucket: targetBucket, Key: key }));
  return Buffer.from(
    await (output.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function caught(promise: Promise<unknown>): Promise<StoreError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError, got success');
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Counts the HTTP requests a client really sends (a middleware, the request still goes to s3rver). */
function countingClient(): { client: S3Client; requests: string[] } {
  const client = new S3Client(clientConfig);
  const requests: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      requests.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return { client, requests };
}

describe('S3Store against s3rver', () => {
  it('lists page by page, keys relative to the prefix, in key order, only under the prefix', async () => {
    const keys = [
      'db/2025-06-25.tar.gz',
      'db/2025-06-26.tar.gz',
      'a.txt',
      'z/deep/file',
      'm b',
      'é.bin',
      'k-1',
    ];
    for (const key of keys) await putRaw(`list/backups/${key}`, key);
    await putRaw('list/backups-old/outside', 'x');
    await putRaw('list/other', 'x');
    await putRaw('list/backups/folder-marker/', '');
    const { client, requests } = countingClient();
    const store = new S3Store(`s3://${bucket}/list/backups`, { client, pageSize: 2 });
    const infos = await collect(store.list());
    // The folder marker is listed (as a key ending in `/`): the catalogue needs it to see empty folders.
    expect(infos.map((info) => info.key)).toEqual([...keys, 'folder-marker/'].sort());
    expect(requests.filter((name) => name === 'ListObjectsV2Command').length).toBe(4);
    const first = infos.find((info) => info.key === 'a.txt');
    expect(first).toEqual({
      key: 'a.txt',
      size: 5,
      lastModified: expect.any(Date),
      etag: expect.any(String),
    });
    expect(store.url).toBe(`s3://${bucket}/list/backups`);
  });

  it('fetches the next page only when the caller goes on', async () => {
    for (let index = 0; index < 5; index += 1) await putRaw(`lazy/${index}`, 'x');
    const { client, requests } = countingClient();
    const iterator = new S3Store(`s3://${bucket}/lazy/`, { client, pageSize: 2 })
      .list()
      [Symbol.asyncIterator]();
    expect((await iterator.next()).value?.key).toBe('0');
    expect((await iterator.next()).value?.key).toBe('1');
    expect(requests).toEqual(['ListObjectsV2Command']);
    await iterator.return?.();
    expect(requests).toEqual(['ListObjectsV2Command']);
  });

  it('lists a whole bucket when the URL has no prefix', async () => {
    const store = new S3Store(`s3://${otherBucket}`, { clientConfig });
    await store.put('only', Readable.from([Buffer.from('1')]), 1);
    expect((await collect(store.list())).map((info) => info.key)).toContain('only');
  });

  it('heads objects, with the storage class s3rver keeps', async () => {
    await putRaw('classes/cold.tar', 'cold', { StorageClass: 'GLACIER' });
    await putRaw('classes/warm.tar', 'warm!');
    const store = new S3Store(`s3://${bucket}/classes`, { clientConfig });
    // s3rver lists every object as STANDARD, and stores no flexible checksums: the listing's
    // mapping is tested against a fake S3 below.
    expect((await collect(store.list())).map((info) => info.key)).toEqual(['cold.tar', 'warm.tar']);
    expect(await store.head('warm.tar')).toEqual({
      key: 'warm.tar',
      size: 5,
      lastModified: expect.any(Date),
      etag: expect.any(String),
    });
    expect((await store.head('cold.tar')).storageClass).toBe('GLACIER');
  });

  it('streams an object whole and in odd-sized chunks', async () => {
    const content = randomBytes(2 * 1024 * 1024 + 123);
    await putRaw('stream/big.bin', content);
    const store = new S3Store(`s3://${bucket}/stream/`, { clientConfig });
    expect(sha256(await readAll(await store.open('big.bin')))).toBe(sha256(content));
    const hash = createHash('sha256');
    let largest = 0;
    for await (const chunk of await store.open('big.bin', { highWaterMark: 4099 })) {
      hash.update(chunk as Buffer);
      largest = Math.max(largest, (chunk as Buffer).length);
    }
    expect(hash.digest('hex')).toBe(sha256(content));
    expect(largest).toBeGreaterThan(0);
  });

  it('regression: streamed puts were stored with their aws-chunked framing by s3rver', async () => {
    const store = new S3Store(`s3://${otherBucket}/put`, { clientConfig });
    const small = Buffer.from('hello world');
    await store.put('small.txt', Readable.from([small]), small.length);
    expect(await getRaw(otherBucket, 'put/small.txt')).toEqual(small);
    await store.put('empty', Readable.from([]), 0);
    expect((await store.head('empty')).size).toBe(0);
  });

  it('uploads a body larger than one part as a multipart upload, from odd-sized chunks', async () => {
    const content = randomBytes(11 * 1024 * 1024 + 3);
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < content.length; offset += 777_777)
      chunks.push(content.subarray(offset, offset + 777_777));
    const { client, requests } = countingClient();
    const store = new S3Store(`s3://${otherBucket}/multi`, { client, partSize: 5 * 1024 * 1024 });
    await store.put('big.bin', Readable.from(chunks), content.length);
    expect(requests.filter((name) => name === 'UploadPartCommand').length).toBe(3);
    expect(sha256(await getRaw(otherBucket, 'multi/big.bin'))).toBe(sha256(content));
  });

  it('aborts a multipart upload whose body is shorter than announced, leaving no object', async () => {
    const content = randomBytes(6 * 1024 * 1024);
    const store = new S3Store(`s3://${otherBucket}/short`, { clientConfig, partSize: 5 * 1024 * 1024 });
    const error = await caught(store.put('cut.bin', Readable.from([content]), content.length + 10));
    expect(error.kind).toBe('io');
    expect(error.message).toContain('expected');
    expect((await caught(store.head('cut.bin'))).kind).toBe('not-found');
  });

  it("issue 12: tells its bucket's region (s3rver answers no constraint: us-east-1)", async () => {
    expect(await new S3Store(`s3://${bucket}/x`, { clientConfig }).region()).toBe('us-east-1');
  });

  it('copies server-side between S3 stores, and declines other sources', async () => {
    const key = 'copy/nightly 2025-06-25 é.tar.gz';
    await putRaw(key, 'archive bytes');
    const source = new S3Store(`s3://${bucket}/copy`, { clientConfig });
    const target = new S3Store(`s3://${otherBucket}/replica/`, { clientConfig });
    expect(await target.copyFrom(source, 'nightly 2025-06-25 é.tar.gz', 'x/nightly.tar.gz')).toBe(true);
    expect((await getRaw(otherBucket, 'replica/x/nightly.tar.gz')).toString()).toBe('archive bytes');

    const folder = await mkdtemp(path.join(tmpdir(), 'bv-s3-copy-'));
    try {
      await writeFile(path.join(folder, 'f'), 'x');
      expect(await target.copyFrom(new FolderStore(folder), 'f', 'f')).toBe(false);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
    const missing = await caught(target.copyFrom(source, 'missing.tar', 'y'));
    expect(missing.kind).toBe('not-found');
  });

  it('says a missing bucket does not exist', async () => {
    const store = new S3Store(`s3://${bucket}-nope/prefix`, { clientConfig });
    const error = await caught(collect(store.list()));
    expect(error.kind).toBe('not-found');
    expect(error.message).toBe(
      `bucket "${bucket}-nope" does not exist (s3://${bucket}-nope/prefix): check the name and region`,
    );
    expect((error.cause as Error).name).toBe('NoSuchBucket');
    expect((await caught(store.open('x'))).kind).toBe('not-found');
  });

  it('says a missing object does not exist, for open and head', async () => {
    const store = new S3Store(`s3://${bucket}/nothing/`, { clientConfig });
    const opened = await caught(store.open('gone.tar'));
    expect(opened.kind).toBe('not-found');
    expect(opened.message).toBe(`object s3://${bucket}/nothing/gone.tar does not exist`);
    expect(opened.location).toBe(`s3://${bucket}/nothing/gone.tar`);
    expect((await caught(store.head('gone.tar'))).kind).toBe('not-found');
  });

  it('says an endpoint nobody listens on is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const store = new S3Store(`s3://${bucket}/x`, {
      clientConfig: { ...clientConfig, endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 },
    });
    const error = await caught(collect(store.list()));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toBe(
      `cannot reach S3 endpoint http://127.0.0.1:${port} (connection refused) for s3://${bucket}/x: check the endpoint, network and region`,
    );
  });

  it('says when no credentials can be found', async () => {
    const saved = Object.entries(process.env).filter(([name]) => name.startsWith('AWS_'));
    for (const [name] of saved) delete process.env[name];
    Object.assign(process.env, {
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      AWS_CONFIG_FILE: '/nonexistent/config',
    });
    try {
      const { credentials: _none, ...withoutCredentials } = clientConfig;
      const store = new S3Store(`s3://${bucket}/x`, { clientConfig: withoutCredentials });
      const error = await caught(collect(store.list()));
      expect(error.kind).toBe('credentials');
      expect(error.message).toMatch(
        new RegExp(`^no AWS credentials found for s3://${bucket}/x: set AWS_PROFILE or AWS_ACCESS_KEY_ID`),
      );
    } finally {
      for (const name of ['AWS_EC2_METADATA_DISABLED', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE']) {
        delete process.env[name];
      }
      Object.assign(process.env, Object.fromEntries(saved));
    }
  });
});

describe('openStore and s3ClientConfigFromEnv', () => {
  it('opens S3 URLs as S3 stores and anything else as folders', async () => {
    const s3 = openStore(`s3://${bucket}/list/backups`, { s3: clientConfig });
    expect(s3).toBeInstanceOf(S3Store);
    expect((await collect(s3.list())).length).toBeGreaterThan(0);
    const folder = openCopyTarget('relative/dir');
    expect(folder).toBeInstanceOf(FolderStore);
    expect(folder.url).toBe(path.resolve('relative/dir'));
    expect(openStore('file:///tmp/x').url).toBe('/tmp/x');
    expect(() => openStore('gs://bucket/x')).toThrow(/unsupported location/);
  });

  it('reads region and endpoint from the environment, path-style when an endpoint is set', () => {
    expect(s3ClientConfigFromEnv({})).toEqual({ region: 'us-east-1' });
    expect(s3ClientConfigFromEnv({ AWS_DEFAULT_REGION: 'eu-west-3' })).toEqual({ region: 'eu-west-3' });
    expect(
      s3ClientConfigFromEnv({
        AWS_REGION: 'eu-central-1',
        AWS_DEFAULT_REGION: 'eu-west-3',
        AWS_ENDPOINT_URL: 'http://general:1',
        AWS_ENDPOINT_URL_S3: 'http://s3-only:2',
      }),
    ).toEqual({ region: 'eu-central-1', endpoint: 'http://s3-only:2', forcePathStyle: true });
    expect(s3ClientConfigFromEnv({ AWS_ENDPOINT_URL: 'http://general:1' })).toEqual({
      region: 'us-east-1',
      endpoint: 'http://general:1',
      forcePathStyle: true,
    });
  });
});

/**
 * A tiny HTTP server answering in S3's wire format, for the answers s3rver cannot give
 * (archived objects, denied access, flexible checksums, broken connections).
 */
describe('S3Store against S3 answers s3rver cannot give', () => {
  let server: Server;
  let fakeEndpoint: string;
  let handle: (request: IncomingMessage, response: ServerResponse, body: Buffer) => void;
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
        handle(request, response, Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fakeEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const store = () =>
    new S3Store('s3://vault/backups', {
      clientConfig: { ...clientConfig, endpoint: fakeEndpoint, maxAttempts: 1 },
    });

  function s3Error(status: number, code: string, message: string, extra = '') {
    return (_request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(status, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>R1</RequestId></Error>`,
      );
    };
  }

  it.each([
    [
      403,
      'InvalidObjectState',
      "The operation is not valid for the object's storage class",
      '<StorageClass>DEEP_ARCHIVE</StorageClass>',
      'archived',
      'object s3://vault/backups/db.tar.gz is archived in storage class DEEP_ARCHIVE: request a restore (RestoreObject) before reading it',
    ],
    [
      403,
      'AccessDenied',
      'Access Denied',
      '',
      'access-denied',
      'access denied to s3://vault/backups/db.tar.gz (read): grant s3:GetObject on arn:aws:s3:::vault/backups/db.tar.gz to the identity in use',
    ],
    [
      403,
      'AccessDenied',
      'User: arn:aws:sts::123456789012:assumed-role/BackupValidator-IntegrityServiceRole1A2B3C-XyZ/BackupValidator-Integrity is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::vault/backups/db.tar.gz" because no identity-based policy allows the s3:GetObject action',
      '',
      'access-denied',
      'access denied to s3://vault/backups/db.tar.gz (read): grant s3:GetObject on arn:aws:s3:::vault/backups/db.tar.gz to role BackupValidator-IntegrityServiceRole1A2B3C-XyZ',
    ],
    [
      403,
      'AccessDenied',
      'User: arn:aws:sts::123456789012:assumed-role/BackupValidator-RestoreTaskRole9F8E-AbC/8f2a1c is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access',
      '',
      'access-denied',
      "access denied to s3://vault/backups/db.tar.gz (read): grant kms:Decrypt on the bucket's KMS key to role BackupValidator-RestoreTaskRole9F8E-AbC",
    ],
    [
      403,
      'AccessDenied',
      'User: arn:aws:iam::123456789012:user/ops/alice is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::vault/backups/db.tar.gz" with an explicit deny in a resource-based policy',
      '',
      'access-denied',
      'access denied to s3://vault/backups/db.tar.gz (read): grant s3:GetObject on arn:aws:s3:::vault/backups/db.tar.gz to user alice',
    ],
    [
      400,
      'KMS.DisabledException',
      'arn:aws:kms:us-east-1:1:key/k is disabled.',
      '',
      'access-denied',
      "cannot read s3://vault/backups/db.tar.gz: its KMS key refused (KMS.DisabledException): grant kms:Decrypt on the bucket's key to the identity in use",
    ],
    [
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
      '',
      'credentials',
      'AWS credentials were refused for s3://vault/backups/db.tar.gz (InvalidAccessKeyId): check AWS_PROFILE or the access keys, or refresh the session',
    ],
    [
      404,
      'NoSuchKey',
      'The specified key does not exist.',
      '',
      'not-found',
      'object s3://vault/backups/db.tar.gz does not exist',
    ],
    [503, 'SlowDown', 'Please reduce your request rate.', '', 'unreachable', undefined],
    [400, 'InvalidArgument', 'Something odd', '', 'io', undefined],
  ])(
    'issue 12: translates %s %s on GetObject (an ACCESS_DENIED names the action, resource and role to grant)',
    async (status, code, message, extra, kind, expected) => {
      handle = s3Error(status, code, message, extra);
      const error = await caught(store().open('db.tar.gz'));
      expect(error.kind).toBe(kind);
      if (expected) expect(error.message).toBe(expected);
      expect(error.message).toContain('s3://vault/backups/db.tar.gz');
      expect(error.cause).toBeInstanceOf(Error);
    },
  );

  it.each([
    ['<LocationConstraint>eu-central-1</LocationConstraint>', 'eu-central-1'],
    ['<LocationConstraint>EU</LocationConstraint>', 'eu-west-1'],
    ['<LocationConstraint/>', 'us-east-1'],
  ])("issue 12: reads the bucket's region from GetBucketLocation's %s", async (body, region) => {
    handle = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n${body.replace('<LocationConstraint', '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"')}`,
      );
    };
    expect(await store().region()).toBe(region);
  });

  it('issue 12: a bare AccessDenied names the role the deployed code runs as (BACKUP_VALIDATOR_ROLE)', async () => {
    handle = s3Error(403, 'AccessDenied', 'Access Denied');
    const named = new S3Store('s3://vault/backups', {
      clientConfig: { ...clientConfig, endpoint: fakeEndpoint, maxAttempts: 1 },
      identity: 'role BackupValidator-RestoreTaskRole9F8E-AbC',
    });
    expect((await caught(named.open('db.tar.gz'))).message).toBe(
      'access denied to s3://vault/backups/db.tar.gz (read): grant s3:GetObject on arn:aws:s3:::vault/backups/db.tar.gz to role BackupValidator-RestoreTaskRole9F8E-AbC',
    );
    const saved = { ...process.env };
    Object.assign(process.env, {
      BACKUP_VALIDATOR_ROLE: 'BackupValidator-IntegrityRole1A2B-XyZ',
      AWS_ENDPOINT_URL_S3: fakeEndpoint,
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'y',
      AWS_REGION: 'us-east-1',
    });
    try {
      const fromEnv = openStore('s3://vault/backups');
      expect((await caught(fromEnv.head('db.tar.gz'))).message).toMatch(
        /grant s3:GetObject on arn:aws:s3:::vault\/backups\/db.tar.gz to role BackupValidator-IntegrityRole1A2B-XyZ$/,
      );
    } finally {
      process.env = saved;
    }
  });

  it('translates a denied HEAD (no body, status only)', async () => {
    handle = (_request, response) => {
      response.writeHead(403);
      response.end();
    };
    expect((await caught(store().head('db.tar.gz'))).kind).toBe('access-denied');
  });

  it('turns a full-object SHA-256 into hex, keeps CRCs, and ignores composite checksums', async () => {
    const digest = createHash('sha256').update('backup').digest();
    const headers: Record<string, Record<string, string>> = {
      '/vault/backups/full.tar': {
        'x-amz-checksum-sha256': digest.toString('base64'),
        'x-amz-checksum-crc64nvme': 'AAAAAAAAAAA=',
        'x-amz-checksum-crc32c': 'yZRlqg==',
        'x-amz-checksum-type': 'FULL_OBJECT',
      },
      '/vault/backups/multipart.tar': {
        'x-amz-checksum-sha256': `${digest.toString('base64')}-3`,
        'x-amz-checksum-crc32c': 'yZRlqg==-3',
        'x-amz-checksum-type': 'COMPOSITE',
        'x-amz-storage-class': 'GLACIER_IR',
      },
    };
    handle = (request, response) => {
      seen.length = 0;
      response.writeHead(200, {
        'content-length': '6',
        'last-modified': 'Wed, 25 Jun 2025 11:46:22 GMT',
        ...headers[(request.url ?? '').split('?')[0] as string],
      });
      response.end();
    };
    expect(await store().head('full.tar')).toEqual({
      key: 'full.tar',
      size: 6,
      lastModified: new Date('2025-06-25T11:46:22Z'),
      checksumSha256: digest.toString('hex'),
      checksumCrc64nvme: 'AAAAAAAAAAA=',
      checksumCrc32c: 'yZRlqg==',
      checksumAlgorithms: ['SHA256', 'CRC64NVME', 'CRC32C'],
    });
    expect(await store().head('multipart.tar')).toEqual({
      key: 'multipart.tar',
      size: 6,
      lastModified: new Date('2025-06-25T11:46:22Z'),
      storageClass: 'GLACIER_IR',
      checksumAlgorithms: ['SHA256', 'CRC32C'],
    });
  });

  it('maps storage classes and checksum algorithms of a listing, page by page', async () => {
    seen.length = 0;
    handle = (request, response) => {
      const url = new URL(request.url ?? '/', fakeEndpoint);
      const second = url.searchParams.get('continuation-token') === 'page-2';
      const contents = second
        ? '<Contents><Key>backups/z.tar</Key><Size>3</Size><LastModified>2025-06-26T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass></Contents>'
        : `<Contents><Key>backups/a.tar</Key><Size>1</Size><LastModified>2025-06-25T00:00:00.000Z</LastModified><StorageClass>DEEP_ARCHIVE</StorageClass><ChecksumAlgorithm>SHA256</ChecksumAlgorithm><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm></Contents>
<Contents><Key>backups/b.tar</Key><Size>2</Size><LastModified>2025-06-25T00:00:00.000Z</LastModified><StorageClass>GLACIER</StorageClass></Contents>`;
      response.writeHead(200, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>vault</Name><Prefix>backups/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>${!second}</IsTruncated>${second ? '' : '<NextContinuationToken>page-2</NextContinuationToken>'}${contents}</ListBucketResult>`,
      );
    };
    const listing = new S3Store('s3://vault/backups', {
      clientConfig: { ...clientConfig, endpoint: fakeEndpoint, maxAttempts: 1 },
      pageSize: 2,
    });
    expect(await collect(listing.list())).toEqual([
      {
        key: 'a.tar',
        size: 1,
        lastModified: new Date('2025-06-25T00:00:00.000Z'),
        storageClass: 'DEEP_ARCHIVE',
        checksumAlgorithms: ['SHA256', 'CRC64NVME'],
      },
      { key: 'b.tar', size: 2, lastModified: new Date('2025-06-25T00:00:00.000Z'), storageClass: 'GLACIER' },
      { key: 'z.tar', size: 3, lastModified: new Date('2025-06-26T00:00:00.000Z') },
    ]);
    const queries = seen.map((request) => new URL(request.url, fakeEndpoint).searchParams);
    expect(queries.map((query) => [query.get('prefix'), query.get('max-keys')])).toEqual([
      ['backups/', '2'],
      ['backups/', '2'],
    ]);
  });

  it('issue 10 (faults): a Glacier object restored on request is marked restored, in a listing and on HEAD', async () => {
    seen.length = 0;
    handle = (request, response) => {
      if (request.method === 'HEAD') {
        const restoring = (request.url ?? '').includes('pending');
        response.writeHead(200, {
          'content-length': '4',
          'last-modified': 'Wed, 25 Jun 2025 11:46:22 GMT',
          etag: '"e1"',
          'x-amz-storage-class': 'GLACIER',
          'x-amz-restore': restoring
            ? 'ongoing-request="true"'
            : 'ongoing-request="false", expiry-date="Fri, 04 Jul 2025 00:00:00 GMT"',
        });
        response.end();
        return;
      }
      const object = (key: string, restore: string) =>
        `<Contents><Key>backups/${key}</Key><Size>4</Size><ETag>&quot;e1&quot;</ETag><LastModified>2025-06-25T00:00:00.000Z</LastModified><StorageClass>GLACIER</StorageClass>${restore}</Contents>`;
      response.writeHead(200, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>vault</Name><Prefix>backups/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${object('done.tar', '<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>2025-07-04T00:00:00.000Z</RestoreExpiryDate></RestoreStatus>')}${object('frozen.tar', '')}${object('pending.tar', '<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>')}</ListBucketResult>`,
      );
    };
    const listing = await collect(store().list());
    expect(listing.map((info) => [info.key, info.storageClass, info.restored ?? false, info.etag])).toEqual([
      ['done.tar', 'GLACIER', true, '"e1"'],
      ['frozen.tar', 'GLACIER', false, '"e1"'],
      ['pending.tar', 'GLACIER', false, '"e1"'],
    ]);
    expect(seen[0]?.headers['x-amz-optional-object-attributes']).toBe('RestoreStatus');
    expect((await store().head('done.tar')).restored).toBe(true);
    expect((await store().head('pending.tar')).restored).toBeUndefined();
  });

  it('asks for checksums on HEAD', async () => {
    handle = (_request, response) => {
      response.writeHead(200, { 'content-length': '1' });
      response.end();
    };
    seen.length = 0;
    await store().head('any');
    expect(seen[0]?.headers['x-amz-checksum-mode']).toBe('ENABLED');
  });

  it('sends the SHA-256 with a put, and puts again without it when the server rejects checksums', async () => {
    const body = Buffer.from('replica content');
    seen.length = 0;
    const bodies: Buffer[] = [];
    handle = (request, response, received) => {
      bodies.push(received);
      if (request.headers['x-amz-checksum-sha256']) {
        s3Error(400, 'InvalidRequest', 'x-amz-checksum-sha256 is not supported')(request, response);
      } else {
        response.writeHead(200, { etag: '"e"' });
        response.end();
      }
    };
    await store().put('copy.bin', Readable.from([body]), body.length);
    expect(seen.map((request) => request.headers['x-amz-checksum-sha256'])).toEqual([
      createHash('sha256').update(body).digest('base64'),
      undefined,
    ]);
    expect(seen.every((request) => request.headers['content-encoding'] === undefined)).toBe(true);
    expect(bodies).toEqual([body, body]);
  });

  it('does not retry without checksum when the server says the content is damaged', async () => {
    seen.length = 0;
    handle = s3Error(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.');
    const error = await caught(store().put('copy.bin', Readable.from([Buffer.from('x')]), 1));
    expect(error.kind).toBe('io');
    expect(seen.length).toBe(1);
  });

  it('reports a connection cut in the middle of a read as a StoreError', async () => {
    handle = (request, response) => {
      response.writeHead(200, { 'content-length': '100000' });
      response.write(Buffer.alloc(1000, 7), () => request.socket.destroy());
    };
    const stream = await store().open('cut.tar');
    const error = await caught(readAll(stream));
    expect(error.kind).toBe('unreachable');
    expect(error.message).toContain('s3://vault/backups/cut.tar');
  });
});
