/** The S3 object store; its parts (client and errors, listing, reads, uploads, copies) live in ./s3-store/. */
export { S3BucketClient } from './s3-store/client.ts';
export {
  MAX_READS_WITHOUT_PROGRESS,
  resumeDelayMs,
  S3_CLIENT_DEFAULTS,
  type S3StoreOptions,
} from './s3-store/config.ts';
export { parseDenial } from './s3-store/errors.ts';
export { objectInfoFromHead } from './s3-store/listing.ts';
export { S3Store } from './s3-store/store.ts';
export { readParts } from './s3-store/uploads.ts';
