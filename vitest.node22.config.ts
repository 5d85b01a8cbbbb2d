import { defineConfig } from 'vitest/config';
import main from './vitest.config.ts';

const { projects: _mainProjects, ...shared } = main.test ?? {};

/**
 * Tests again on Node.js 22 (scripts/test-node22.mjs), the Lambdas' and the container's
 * runtime, where zlib, workers and streams may behave otherwise than on this machine's Node.js
 * 20: the unit tests and the integration tests of what is deployed, with the main run's
 * settings. Left out: the tests of the native SQLite module, whose build in node_modules is for
 * Node 20 (the container image builds its own), and so the CLI's, whose ledger is SQLite.
 */
export default defineConfig({
  test: {
    ...shared,
    name: 'on Node 22',
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
  },
});
