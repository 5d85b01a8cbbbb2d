import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Generous: end-to-end tests run restores in child processes on a loaded 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default on 2 cores is one worker (cores - 1): the files then run one after another,
    // while most of a file's time is spent waiting on s3rver, sandbox processes and the disk.
    maxWorkers: 2,
    allowOnly: false,
    passWithNoTests: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      {
        // What dynalite accepts, DynamoDB may refuse (item and index-key sizes in UTF-8 bytes):
        // the ledger's integration tests run again against AWS's own DynamoDB Local.
        extends: true,
        test: {
          name: 'ledger on DynamoDB Local',
          include: ['test/integration/ledger.test.ts'],
          globalSetup: ['test/support/global-setup-dynamodb-local.ts'],
        },
      },
    ],
  },
});
