import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { UsageError } from '../core/errors.ts';
import type { CopyTarget, ObjectStore } from '../core/ports.ts';
import { FolderStore } from './folder-store.ts';
import { S3_CLIENT_DEFAULTS, S3Store } from './s3-store.ts';

/** The IAM role the deployed code runs as (set by the stack): denials that do not name it still can. */
export const ROLE_ENV = 'BACKUP_VALIDATOR_ROLE';

export interface StoreOptions {
  /** S3 client settings; by default those of `s3ClientConfigFromEnv()`. */
  s3?: S3ClientConfig;
}

/** A source: `s3://bucket/prefix` or a folder (relative paths resolve against the working directory). */
export function openStore(url: string, options: StoreOptions = {}): ObjectStore {
  return openCopyTarget(url, options);
}

/** A redundancy target or run store: the same kinds as sources, which can also be written. */
export function openCopyTarget(url: string, options: StoreOptions = {}): CopyTarget {
  if (url.startsWith('s3://')) {
    const role = process.env[ROLE_ENV];
    return new S3Store(url, {
      client: sharedClient(options.s3),
      ...(role ? { identity: `role ${role}` } : {}),
    });
  }
  if (url.startsWith('file://')) return new FolderStore(fileURLToPath(url));
  const scheme = /^([a-z][a-z0-9+.-]+):\/\//i.exec(url);
  if (scheme) {
    throw new UsageError(`unsupported location "${url}": use a folder path or s3://bucket/prefix`, 'source');
  }
  return new FolderStore(path.resolve(url));
}

/**
 * S3 settings from the standard environment variables, so the same code talks to AWS or to a
 * local S3 server: a custom endpoint implies path-style addressing (local servers have no DNS
 * per bucket).
 */
export function s3ClientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const config: S3ClientConfig = { region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' };
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (endpoint) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
  }
  return config;
}

/** One client (and connection pool) per configuration, shared by every store opened with it. */
const clientsByConfig = new WeakMap<S3ClientConfig, S3Client>();
const clientsFromEnv = new Map<string, S3Client>();

function sharedClient(config: S3ClientConfig | undefined): S3Client {
  if (config) {
    let client = clientsByConfig.get(config);
    if (!client) {
      client = new S3Client({ ...S3_CLIENT_DEFAULTS, ...config });
      clientsByConfig.set(config, client);
    }
    return client;
  }
  const fromEnv = s3ClientConfigFromEnv();
  const id = JSON.stringify(fromEnv);
  let client = clientsFromEnv.get(id);
  if (!client) {
    client = new S3Client({ ...S3_CLIENT_DEFAULTS, ...fromEnv });
    clientsFromEnv.set(id, client);
  }
  return client;
}
