/** How S3 and network errors are recognised: by name, status and network code. */

export const CREDENTIAL_ERRORS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
]);

export const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  TimeoutError: 'timed out',
  RequestTimeout: 'timed out',
  RequestTimeoutException: 'timed out',
};

export type Action = 'list' | 'head' | 'read' | 'write';

export const PERMISSION_OF: Record<Action, string> = {
  list: 's3:ListBucket',
  head: 's3:GetObject',
  read: 's3:GetObject',
  write: 's3:PutObject',
};

/**
 * What an AWS denial message says: "User: arn:aws:sts::1:assumed-role/Role/session is not authorized
 * to perform: s3:GetObject on resource: "arn:aws:s3:::b/k" because ..." (S3), or "... kms:Decrypt on
 * the resource associated with this ciphertext ..." (KMS through S3). The principal becomes the role
 * (or user) to grant, named as IAM shows it.
 */
export function parseDenial(
  message: string,
): { principal: string; action: string; resource?: string } | undefined {
  const match =
    /User: (arn:[^\s]+) is not authorized to perform: ([a-z0-9-]+:[A-Za-z0-9*]+)(?: on (?:resource:? )?"?(arn:[^\s"]+)"?)?/.exec(
      message,
    );
  if (!match) return undefined;
  const arn = match[1] as string;
  const assumed = /:assumed-role\/([^/]+)\//.exec(arn);
  const iam = /:(role|user)\/(?:.*\/)?([^/]+)$/.exec(arn);
  const principal = assumed ? `role ${assumed[1]}` : iam ? `${iam[1]} ${iam[2]}` : arn;
  return { principal, action: match[2] as string, ...(match[3] ? { resource: match[3] } : {}) };
}

export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** Servers that do not implement flexible checksums answer 400/501 naming the header. */
export function isChecksumUnsupported(error: unknown): boolean {
  const name = nameOf(error);
  const status = statusOf(error);
  if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch') return false;
  return (
    (name === 'NotImplemented' ||
      name === 'InvalidRequest' ||
      name === 'InvalidArgument' ||
      status === 501) &&
    /checksum|x-amz-checksum|sha256/i.test(messageOf(error) + name)
  );
}

/** A server that lacks the operation (s3rver has no UploadPartCopy). */
export function isNotImplemented(error: unknown): boolean {
  return nameOf(error) === 'NotImplemented' || statusOf(error) === 501;
}

/** The SDK's response checksum validation: the bytes received are not those S3 stored. */
export function isChecksumMismatch(error: unknown): boolean {
  return error instanceof Error && /^Checksum mismatch/.test(error.message);
}

export function nameOf(error: unknown): string {
  if (error && typeof error === 'object') {
    const { name, Code } = error as { name?: unknown; Code?: unknown };
    if (typeof Code === 'string' && Code) return Code;
    if (typeof name === 'string') return name;
  }
  return 'Error';
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function networkCodeOf(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (candidate: unknown): string | undefined => {
    if (!candidate || typeof candidate !== 'object' || seen.has(candidate)) return undefined;
    seen.add(candidate);
    const { code, name, errors, cause } = candidate as {
      code?: unknown;
      name?: unknown;
      errors?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && code in NETWORK_REASONS) return code;
    if (typeof name === 'string' && name in NETWORK_REASONS) return name;
    // Node's happy-eyeballs connect throws an AggregateError of the attempts.
    for (const inner of Array.isArray(errors) ? errors : []) {
      const found = visit(inner);
      if (found) return found;
    }
    return visit(cause);
  };
  return visit(error);
}
