import 'vitest';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalDynamo, startLocalS3 } from './local-servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    dynamoEndpoint: string;
    /** A folder of this test run that every test file shares (the compiled CLI is built there once). */
    runFolder: string;
  }
}

export default async function setup(project: TestProject) {
  // Inside the repository, so what is built there finds node_modules as the real CLI does.
  const runFolder = join(import.meta.dirname, '..', '..', '.vitest-tmp', `run-${process.pid}`);
  await mkdir(runFolder, { recursive: true });
  const [s3, dynamo] = await Promise.all([startLocalS3(), startLocalDynamo()]);
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('dynamoEndpoint', dynamo.endpoint);
  project.provide('runFolder', runFolder);
  return async () => {
    await Promise.all([s3.stop(), dynamo.stop(), rm(runFolder, { recursive: true, force: true })]);
  };
}
