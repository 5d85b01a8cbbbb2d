import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small S3 endpoint on 127.0.0.1 for the read calls s3rver does not answer (issue 15):
 * GetBucketVersioning, GetObjectLockConfiguration, GetBucketLifecycleConfiguration,
 * GetObjectRetention, GetObjectLegalHold, HeadObject with checksums and Object Lock headers,
 * and GetObjectAttributes. Path-style only, any credentials. The response shapes follow the
 * Amazon S3 API Reference (element names, 404 error codes when nothing is configured); the SDK's
 * own deserializers parse them in the tests.
 */
export interface StubObject {
  size: number;
  lastModified?: Date;
  etag?: string;
  retention?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; retainUntil: Date };
  legalHold?: boolean;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  /** Header values as S3 sends them (base64, `-<parts>` for a composite). */
  checksums?: Partial<Record<'SHA256' | 'SHA1' | 'CRC32' | 'CRC32C' | 'CRC64NVME', string>>;
  /** Part sizes of a multipart object. */
  parts?: number[];
}

export interface StubBucket {
  versioning?: 'Enabled' | 'Suspended';
  objectLock?: { defaultRetention?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number } };
  /** `<Rule>` elements of the bucket's LifecycleConfiguration, as XML. */
  lifecycleRules?: string[];
  objects: Record<string, StubObject>;
  /** Calls (by query word, e.g. "versioning", "retention") answered with 403 AccessDenied. */
  denied?: string[];
}

export interface ProtectionStub {
  endpoint: string;
  buckets: Record<string, StubBucket>;
  /** Every request as "METHOD /path?query", to prove which calls were made. */
  requests: string[];
  stop(): Promise<void>;
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function xml(res: ServerResponse, status: number, body: string): true {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(text),
    'x-amz-request-id': 'STUB',
  });
  res.end(text);
  return true;
}

function error(res: ServerResponse, status: number, code: string, message: string): true {
  return xml(
    res,
    status,
    `<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message><RequestId>STUB</RequestId></Error>`,
  );
}

const CHECKSUM_HEADERS = {
  SHA256: 'x-amz-checksum-sha256',
  SHA1: 'x-amz-checksum-sha1',
  CRC32: 'x-amz-checksum-crc32',
  CRC32C: 'x-amz-checksum-crc32c',
  CRC64NVME: 'x-amz-checksum-crc64nvme',
} as const;

function checksumElements(object: StubObject): string {
  return Object.entries(object.checksums ?? {})
    .map(([algorithm, value]) => `<Checksum${algorithm}>${escapeXml(value)}</Checksum${algorithm}>`)
    .join('');
}

/** Answers one request; true once a response is sent. */
function answer(stub: ProtectionStub, req: IncomingMessage, res: ServerResponse): true {
  const url = new URL(req.url ?? '/', 'http://stub');
  stub.requests.push(`${req.method} ${url.pathname}${url.search}`);
  const [, bucketName = '', ...rest] = url.pathname.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const bucket = stub.buckets[decodeURIComponent(bucketName)];
  if (!bucket) return error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  const word = [...url.searchParams.keys()][0] ?? '';
  if (bucket.denied?.includes(word)) return error(res, 403, 'AccessDenied', 'Access Denied');
  const locked = bucket.objectLock !== undefined;

  if (key === '') {
    if (word === 'versioning') {
      const status = bucket.versioning ? `<Status>${bucket.versioning}</Status>` : '';
      return xml(res, 200, `<VersioningConfiguration xmlns="${XMLNS}">${status}</VersioningConfiguration>`);
    }
    if (word === 'object-lock') {
      if (!bucket.objectLock) {
        return error(
          res,
          404,
          'ObjectLockConfigurationNotFoundError',
          'Object Lock configuration does not exist for this bucket',
        );
      }
      const retention = bucket.objectLock.defaultRetention;
      const rule = retention
        ? `<Rule><DefaultRetention><Mode>${retention.mode}</Mode><Days>${retention.days}</Days></DefaultRetention></Rule>`
        : '';
      return xml(
        res,
        200,
        `<ObjectLockConfiguration xmlns="${XMLNS}"><ObjectLockEnabled>Enabled</ObjectLockEnabled>${rule}</ObjectLockConfiguration>`,
      );
    }
    if (word === 'lifecycle') {
      if (!bucket.lifecycleRules?.length) {
        return error(res, 404, 'NoSuchLifecycleConfiguration', 'The lifecycle configuration does not exist');
      }
      return xml(
        res,
        200,
        `<LifecycleConfiguration xmlns="${XMLNS}">${bucket.lifecycleRules.join('')}</LifecycleConfiguration>`,
      );
    }
    return error(res, 501, 'NotImplemented', `the protection stub does not answer ?${word} on a bucket`);
  }

  const object = bucket.objects[key];
  if (!object) {
    if (req.method === 'HEAD') {
      res.writeHead(404);
      res.end();
      return true;
    }
    return error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
  }
  if (word === 'retention' || word === 'legal-hold') {
    if (!locked) return error(res, 400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
    if (word === 'retention') {
      if (!object.retention)
        return error(
          res,
          404,
          'NoSuchObjectLockConfiguration',
          'The specified object does not have a ObjectLock configuration',
        );
      return xml(
        res,
        200,
        `<Retention xmlns="${XMLNS}"><Mode>${object.retention.mode}</Mode><RetainUntilDate>${object.retention.retainUntil.toISOString()}</RetainUntilDate></Retention>`,
      );
    }
    if (object.legalHold === undefined)
      return error(
        res,
        404,
        'NoSuchObjectLockConfiguration',
        'The specified object does not have a ObjectLock configuration',
      );
    return xml(
      res,
      200,
      `<LegalHold xmlns="${XMLNS}"><Status>${object.legalHold ? 'ON' : 'OFF'}</Status></LegalHold>`,
    );
  }
  const etag = object.etag ?? '"0123456789abcdef0123456789abcdef"';
  const lastModified = (object.lastModified ?? new Date(0)).toUTCString();
  if (word === 'attributes') {
    const wanted = String(req.headers['x-amz-object-attributes'] ?? '').split(',');
    const parts = object.parts && object.checksums ? object.parts : undefined;
    const maxParts = Number(req.headers['x-amz-max-parts'] ?? 1000);
    const marker = Number(req.headers['x-amz-part-number-marker'] ?? 0);
    let body = `<GetObjectAttributesResponse xmlns="${XMLNS}">`;
    if (wanted.includes('ETag')) body += `<ETag>${etag.replace(/"/g, '')}</ETag>`;
    if (wanted.includes('Checksum') && object.checksums)
      body += `<Checksum>${checksumElements(object)}<ChecksumType>${object.checksumType ?? 'FULL_OBJECT'}</ChecksumType></Checksum>`;
    if (wanted.includes('ObjectParts') && object.parts) {
      const page = (parts ?? []).slice(marker, marker + maxParts);
      const truncated = parts !== undefined && marker + maxParts < parts.length;
      body +=
        `<ObjectParts><PartsCount>${object.parts.length}</PartsCount><PartNumberMarker>${marker}</PartNumberMarker>` +
        `<NextPartNumberMarker>${marker + page.length}</NextPartNumberMarker><MaxParts>${maxParts}</MaxParts>` +
        `<IsTruncated>${truncated}</IsTruncated>` +
        page
          .map((size, i) => `<Part><PartNumber>${marker + i + 1}</PartNumber><Size>${size}</Size></Part>`)
          .join('') +
        '</ObjectParts>';
    }
    if (wanted.includes('ObjectSize')) body += `<ObjectSize>${object.size}</ObjectSize>`;
    body += '</GetObjectAttributesResponse>';
    res.setHeader('last-modified', lastModified);
    return xml(res, 200, body);
  }
  if (req.method === 'HEAD' && word === '') {
    const headers: Record<string, string | number> = {
      'content-length': object.size,
      etag,
      'last-modified': lastModified,
      'content-type': 'application/octet-stream',
    };
    if (req.headers['x-amz-checksum-mode'] === 'ENABLED' && object.checksums) {
      for (const [algorithm, value] of Object.entries(object.checksums))
        headers[CHECKSUM_HEADERS[algorithm as keyof typeof CHECKSUM_HEADERS]] = value;
      headers['x-amz-checksum-type'] = object.checksumType ?? 'FULL_OBJECT';
    }
    if (object.retention) {
      headers['x-amz-object-lock-mode'] = object.retention.mode;
      headers['x-amz-object-lock-retain-until-date'] = object.retention.retainUntil.toISOString();
    }
    if (object.legalHold !== undefined)
      headers['x-amz-object-lock-legal-hold'] = object.legalHold ? 'ON' : 'OFF';
    res.writeHead(200, headers);
    res.end();
    return true;
  }
  return error(
    res,
    501,
    'NotImplemented',
    `the protection stub does not answer ${req.method} ?${word} on an object`,
  );
}

export async function startProtectionStub(buckets: Record<string, StubBucket> = {}): Promise<ProtectionStub> {
  const stub = { buckets, requests: [] as string[] } as ProtectionStub;
  const server = createServer((req, res) => {
    req.resume();
    req.once('end', () => answer(stub, req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.stop = () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((e) => (e ? reject(e) : resolve()));
    });
  return stub;
}
