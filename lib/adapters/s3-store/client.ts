import { S3Client } from '@aws-sdk/client-s3';
import { StoreError, UsageError } from '../../core/errors.ts';
import { S3_CLIENT_DEFAULTS, type S3StoreOptions } from './config.ts';
import {
  type Action,
  CREDENTIAL_ERRORS,
  messageOf,
  NETWORK_REASONS,
  nameOf,
  networkCodeOf,
  PERMISSION_OF,
  parseDenial,
  statusOf,
} from './errors.ts';

/** Endpoints v2 (`url`) or the v1 shape a custom endpoint string resolves to. */
interface EndpointShape {
  url?: URL;
  protocol?: string;
  hostname?: string;
  port?: number;
  path?: string;
}

/**
 * A bucket and prefix with the client that reaches them: where keys live, and what a failed
 * request means in words a user can act on. The store's jobs (listing, reads, uploads, copies)
 * are built on it.
 */
export class S3BucketClient {
  readonly url: string;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  readonly client: S3Client;
  private readonly identity: string;
  /** Resolved from the client config the first time a message needs it. */
  private endpointDescription: string | undefined;

  constructor(url: string, options: S3StoreOptions = {}) {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!match) {
      throw new UsageError(`"${url}" is not an S3 location: write it as s3://bucket/prefix`, 'source');
    }
    this.url = url;
    this.bucket = match[1] as string;
    const prefix = match[2] as string;
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.client = options.client ?? new S3Client({ ...S3_CLIENT_DEFAULTS, ...options.clientConfig });
    this.identity = options.identity ?? 'the identity in use';
  }

  /** Where a key lives, for messages and StoreError.location. */
  locationOf(key?: string): string {
    return key === undefined ? this.url : `s3://${this.bucket}/${this.keyOf(key)}`;
  }

  keyOf(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** The custom endpoint as a URL, or 'aws' for AWS's own endpoints. */
  async endpointId(): Promise<string> {
    if (!this.client.config.isCustomEndpoint) return 'aws';
    const provider = this.client.config.endpoint as (() => Promise<EndpointShape>) | undefined;
    const endpoint = provider ? await provider() : undefined;
    if (!endpoint) return 'aws';
    if (endpoint.url) return endpoint.url.href;
    const port = endpoint.port ? `:${endpoint.port}` : '';
    return `${endpoint.protocol}//${endpoint.hostname}${port}${endpoint.path ?? ''}`;
  }

  /** A request whose failure is translated to a StoreError. */
  async call<T>(request: () => Promise<T>, action: Action, key?: string): Promise<T> {
    try {
      return await request();
    } catch (error) {
      await this.describeEndpoint();
      throw this.translate(error, action, key);
    }
  }

  /** Resolves the endpoint's description, which error messages then name. */
  async describeEndpoint(): Promise<string> {
    if (this.endpointDescription === undefined) {
      const id = await this.endpointId().catch(() => 'aws');
      const region = await Promise.resolve(this.client.config.region?.()).catch(() => undefined);
      this.endpointDescription =
        id === 'aws' ? `for S3 in ${region ?? 'the configured region'}` : id.replace(/\/$/, '');
    }
    return this.endpointDescription;
  }

  changed(key: string, why: string): StoreError {
    return new StoreError(
      `${this.locationOf(key)} changed since it was listed (${why}): it is judged on its new content next run`,
      'changed',
      this.locationOf(key),
    );
  }

  /** Maps SDK and network errors to StoreErrors that say what, where and what to try. */
  translate(error: unknown, action: Action, key?: string): StoreError {
    if (error instanceof StoreError) return error;
    const location = this.locationOf(key);
    const make = (message: string, kind: StoreError['kind']) =>
      new StoreError(message, kind, location, { cause: error });
    const name = nameOf(error);
    const status = statusOf(error);
    const message = messageOf(error);

    const networkCode = networkCodeOf(error);
    if (networkCode) {
      return make(
        `cannot reach S3 endpoint ${this.endpointLabel(error)} (${NETWORK_REASONS[networkCode]}) for ${location}: check the endpoint, network and region`,
        'unreachable',
      );
    }
    if (name === 'CredentialsProviderError') {
      return make(
        `no AWS credentials found for ${this.url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (${message})`,
        'credentials',
      );
    }
    if (CREDENTIAL_ERRORS.has(name)) {
      return make(
        `AWS credentials were refused for ${location} (${name}): check AWS_PROFILE or the access keys, or refresh the session`,
        'credentials',
      );
    }
    if (name === 'NoSuchBucket') {
      return make(
        `bucket "${this.bucket}" does not exist (${this.url}): check the name and region`,
        'not-found',
      );
    }
    if (name === 'PreconditionFailed' || name === 'InvalidRange' || status === 412 || status === 416) {
      return this.changed(key ?? '', `S3 answered ${name}: its ETag is not the one listed`);
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return make(`object ${location} does not exist`, 'not-found');
    }
    if (name === 'InvalidObjectState') {
      const storageClass = (error as { StorageClass?: string }).StorageClass;
      return make(
        `object ${location} is archived${storageClass ? ` in storage class ${storageClass}` : ''}: request a restore (RestoreObject) before reading it`,
        'archived',
      );
    }
    const denial = parseDenial(message);
    if (denial) {
      // S3 and KMS name the principal, the action and the resource they refused: say exactly what to grant to whom.
      const resource =
        denial.resource ??
        (denial.action.startsWith('kms:') ? "the bucket's KMS key" : this.arnOf(action, key));
      return make(
        `access denied to ${location} (${action}): grant ${denial.action} on ${resource} to ${denial.principal}`,
        'access-denied',
      );
    }
    if (name.startsWith('KMS') || /\bKMS\b/i.test(message)) {
      return make(
        `cannot ${action} ${location}: its KMS key refused (${name}): grant kms:Decrypt on the bucket's key to ${this.identity}`,
        'access-denied',
      );
    }
    if (name === 'AccessDenied' || name === 'Forbidden' || name === 'AllAccessDisabled' || status === 403) {
      return make(
        `access denied to ${location} (${action}): grant ${PERMISSION_OF[action]} on ${this.arnOf(action, key)} to ${this.identity}`,
        'access-denied',
      );
    }
    if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
      return make(
        `bucket "${this.bucket}" is in another region (${this.url}): set AWS_REGION to its region`,
        'unreachable',
      );
    }
    if (status !== undefined && status >= 500) {
      const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
      return make(
        `S3 endpoint ${this.endpointLabel(error)} answered HTTP ${status} (${name}) for ${location}${attempts ? ` ${attempts} times` : ''}: try again later`,
        'unreachable',
      );
    }
    return make(`cannot ${action} ${location}: ${name}: ${message}`, 'io');
  }

  /** The ARN an action on this key (or, for a listing, this bucket) is granted on. */
  private arnOf(action: Action, key?: string): string {
    return action === 'list' || key === undefined
      ? `arn:aws:s3:::${this.bucket}`
      : `arn:aws:s3:::${this.bucket}/${this.keyOf(key)}`;
  }

  private endpointLabel(error: unknown): string {
    if (this.endpointDescription) return this.endpointDescription;
    const { address, port } = (error ?? {}) as { address?: string; port?: number };
    if (address) return port ? `${address}:${port}` : address;
    return 'for S3';
  }
}
