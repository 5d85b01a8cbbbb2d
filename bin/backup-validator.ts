#!/usr/bin/env node
/**
 * The `backup-validator` command. `npm ci` compiles it to dist/cli/backup-validator.mjs (scripts/build-cli.mjs),
 * the file `bin` names: plain JavaScript, no TypeScript loader at run time.
 */

import { fileURLToPath } from 'node:url';

// The SDK's notice about its future Node 22 requirement is for maintainers (README), not for every run's stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const argv = process.argv.slice(2);
// Stack traces name the TypeScript sources; enabled first, so the modules loaded after it are mapped.
if (argv.includes('--verbose') || argv.includes('-v')) process.setSourceMapsEnabled(true);
// Compiled, the sandbox and the integrity worker threads run their own bundles beside this file with plain
// node; from sources the sandbox runs main.ts and integrity passes stay on the main thread.
const compiled = import.meta.url.endsWith('.mjs');
const { EXIT, main } = await import('../lib/cli/main.ts');
const code = await main(argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd(),
  env: process.env,
  signals: process,
  ...(compiled
    ? {
        sandboxEntry: fileURLToPath(new URL('./restore-sandbox.mjs', import.meta.url)),
        // On unless BACKUP_VALIDATOR_WORKER_THREADS=0: the threads start only for runs of many small backups.
        ...(process.env.BACKUP_VALIDATOR_WORKER_THREADS === '0'
          ? {}
          : { integrityWorker: fileURLToPath(new URL('./integrity-worker.mjs', import.meta.url)) }),
      }
    : {}),
});
// An interrupted run has recorded itself and cleaned up: whatever it abandoned must not keep the process alive.
if (code === EXIT.interrupted || code === EXIT.terminated) process.exit(code);
process.exitCode = code;
