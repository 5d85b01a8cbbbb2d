import 'vitest';
import type { TestProject } from 'vitest/node';
import { startLocalDynamo, startLocalS3 } from './local-servers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const [s3, dynamo] = await Promise.all([startLocalS3(), startLocalDynamo()]);
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await Promise.all([s3.stop(), dynamo.stop()]);
  };
}
