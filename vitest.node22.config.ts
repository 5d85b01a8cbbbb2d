import { defineConfig } from 'vitest/config';

/**
 * The unit tests on Node.js 22 (scripts/test-node22.mjs), where zlib, workers and streams may
 * behave otherwise than on this machine's Node.js 20. Left out: the tests of the native SQLite
 * module, whose build in node_modules is for Node 20 (the container image builds its own).
 */
export default defineConfig({
  test: {
    name: 'unit on Node 22',
    include: [
      'test/unit/**/*.test.ts',
      'test/integration/{s3-*,ledger,stages,integrity-pool,integrity-workers-attach,redundancy-shards,discovery-no-false-pass,sandbox-bounds,immutability-stages}.test.ts',
      'test/pipeline/{arrival,definition,local-run}.test.ts',
    ],
    exclude: [
      'test/unit/demo-data.test.ts',
      'test/unit/probes.test.ts',
      'test/unit/restore-off-thread.test.ts',
    ],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    allowOnly: false,
    passWithNoTests: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
