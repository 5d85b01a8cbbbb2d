import { randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { S3_CLIENT_DEFAULTS, S3Store } from '../../lib/adapters/s3-store.ts';

/**
 * Issue 12: redundancy copies stay in S3 (CopyObject, UploadPartCopy) and carry a full-object
 * checksum. s3rver implements CopyObject but answers UploadPartCopy with 501 NotImplemented, so the
 * multipart copy's requests are checked against a stub client, and s3rver shows the fallback.
 */

const MIB = 1024 ** 2;

type Command = { constructor: { name: string }; input: Record<string, unknown> };

/** An S3 client that records every command and answers from `answer`. */
class StubClient {
  readonly commands: Command[] = [];
  readonly config = { isCustomEndpoint: false, region: async () => 'us-east-1' };
  constructor(private readonly answer: (command: Command) => unknown) {}
  async send(command: Command): Promise<unknown> {
    this.commands.push(command);
    return this.answer(command);
  }
  sent(name: string): Array<Record<string, unknown>> {
    return this.commands.filter((c) => c.constructor.name === name).map((c) => c.input);
  }
}

function notImplemented(): Error {
  return Object.assign(new Error('A header you provided implies functionality that is not implemented'), {
    name: 'NotImplemented',
    $fault: 'server',
    $metadata: { httpStatusCode: 501 },
  });
}

function stubAnswers(size: number, onPartCopy?: () => unknown) {
  return (command: Command) => {
    switch (command.constructor.name) {
      case 'HeadObjectCommand':
        return { ContentLength: size, ETag: '"source-etag"', LastModified: new Date(0) };
      case 'CreateMultipartUploadCommand':
        return { UploadId: 'upload-1' };
      case 'UploadPartCopyCommand': {
        const extra = onPartCopy?.();
        if (extra instanceof Error) throw extra;
        const n = command.input.PartNumber as number;
        return { CopyPartResult: { ETag: `"part-${n}"`, ChecksumCRC64NVME: `crc-${n}` } };
      }
      default:
        return {};
    }
  };
}

function stores(client: StubClient) {
  const options = { client: client as never, maxSingleCopy: 5 * MIB, copyPartSize: 5 * MIB };
  return {
    source: new S3Store('s3://prod-backups/db', options),
    target: new S3Store('s3://dr-copies/db', options),
  };
}

describe('issue 12: server-side copies with full-object checksums', () => {
  it('copies an object above the single-copy limit part by part (UploadPartCopy), pinned to the source ETag, with a FULL_OBJECT CRC64NVME', async () => {
    const size = 12 * MIB + 7;
    const client = new StubClient(stubAnswers(size));
    const { source, target } = stores(client);
    expect(await target.copyFrom(source, 'nightly-20250626.tar.gz', 'nightly-20250626.tar.gz')).toBe(true);

    expect(client.sent(CreateMultipartUploadCommand.name)).toEqual([
      {
        Bucket: 'dr-copies',
        Key: 'db/nightly-20250626.tar.gz',
        ChecksumAlgorithm: 'CRC64NVME',
        ChecksumType: 'FULL_OBJECT',
      },
    ]);
    const parts = client
      .sent(UploadPartCopyCommand.name)
      .sort((a, b) => (a.PartNumber as number) - (b.PartNumber as number));
    expect(parts.map((p) => [p.PartNumber, p.CopySourceRange])).toEqual([
      [1, `bytes=0-${5 * MIB - 1}`],
      [2, `bytes=${5 * MIB}-${10 * MIB - 1}`],
      [3, `bytes=${10 * MIB}-${size - 1}`],
    ]);
    for (const part of parts) {
      expect(part).toMatchObject({
        Bucket: 'dr-copies',
        Key: 'db/nightly-20250626.tar.gz',
        UploadId: 'upload-1',
        CopySource: 'prod-backups/db/nightly-20250626.tar.gz',
        CopySourceIfMatch: '"source-etag"',
      });
    }
    expect(client.sent(CompleteMultipartUploadCommand.name)).toEqual([
      {
        Bucket: 'dr-copies',
        Key: 'db/nightly-20250626.tar.gz',
        UploadId: 'upload-1',
        ChecksumType: 'FULL_OBJECT',
        MultipartUpload: {
          Parts: [1, 2, 3].map((n) => ({
            PartNumber: n,
            ETag: `"part-${n}"`,
            ChecksumCRC64NVME: `crc-${n}`,
          })),
        },
      },
    ]);
    // No byte went through the client.
    expect(client.sent(GetObjectCommand.name)).toEqual([]);
    expect(client.sent('UploadPartCommand')).toEqual([]);
  });

  it('copies an object up to the limit with one CopyObject asking for its SHA-256, pinned to the source ETag', async () => {
    const client = new StubClient(stubAnswers(3 * MIB));
    const { source, target } = stores(client);
    expect(await target.copyFrom(source, 'a.tar', 'a.tar')).toBe(true);
    expect(client.sent(CopyObjectCommand.name)).toEqual([
      {
        Bucket: 'dr-copies',
        Key: 'db/a.tar',
        CopySource: 'prod-backups/db/a.tar',
        CopySourceIfMatch: '"source-etag"',
        ChecksumAlgorithm: 'SHA256',
      },
    ]);
    expect(client.sent(CreateMultipartUploadCommand.name)).toEqual([]);
  });

  it('aborts the upload and declines (the caller streams) when the server has no UploadPartCopy', async () => {
    const client = new StubClient(stubAnswers(12 * MIB, notImplemented));
    const { source, target } = stores(client);
    expect(await target.copyFrom(source, 'big.tar', 'big.tar')).toBe(false);
    expect(client.sent('AbortMultipartUploadCommand')).toEqual([
      { Bucket: 'dr-copies', Key: 'db/big.tar', UploadId: 'upload-1' },
    ]);
    expect(client.sent(CompleteMultipartUploadCommand.name)).toEqual([]);
  });

  it('a source replaced during the copy fails it as changed, and the upload is aborted', async () => {
    const changed = () =>
      Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $fault: 'client',
        $metadata: { httpStatusCode: 412 },
      });
    const client = new StubClient(stubAnswers(12 * MIB, changed));
    const { source, target } = stores(client);
    await expect(target.copyFrom(source, 'big.tar', 'big.tar')).rejects.toMatchObject({ kind: 'changed' });
    expect(client.sent('AbortMultipartUploadCommand')).toHaveLength(1);
  });
});

describe('issue 12: server-side copies against s3rver', () => {
  const clientConfig: S3ClientConfig = {
    ...S3_CLIENT_DEFAULTS,
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
  const raw = new S3Client(clientConfig);
  const bucket = `bv-copy-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    await raw.send(new CreateBucketCommand({ Bucket: bucket }));
    await raw.send(new CreateBucketCommand({ Bucket: `${bucket}-dr` }));
  });
  afterAll(() => raw.destroy());

  it('copies with CopyObject below the limit, and above it falls back to streaming because s3rver has no UploadPartCopy', async () => {
    const small = randomBytes(1000);
    const large = randomBytes(6 * MIB);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'db/small.tar', Body: small }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'db/large.tar', Body: large }));
    const options = { clientConfig, maxSingleCopy: 5 * MIB, copyPartSize: 5 * MIB };
    const source = new S3Store(`s3://${bucket}/db`, options);
    const target = new S3Store(`s3://${bucket}-dr/db`, options);
    expect(await target.copyFrom(source, 'small.tar', 'small.tar')).toBe(true);
    expect(await target.copyFrom(source, 'large.tar', 'large.tar')).toBe(false);
    const read = async (key: string) => {
      const output = await raw.send(new GetObjectCommand({ Bucket: `${bucket}-dr`, Key: key }));
      return Buffer.from(
        await (output.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    };
    expect((await read('db/small.tar')).equals(small)).toBe(true);
    // The declined copy left nothing behind: the aborted upload wrote no object.
    await expect(read('db/large.tar')).rejects.toMatchObject({ name: 'NoSuchKey' });
  });
});
