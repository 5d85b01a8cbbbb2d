/**
 * Compiles the CLI into plain JavaScript under dist/cli, the folder `bin` points at: `npm ci`
 * runs this through `prepare`, so a fresh clone needs no other step and no TypeScript loader
 * runs with the command. Every `import()` of the sources stays a separate chunk (splitting), so
 * a command loads only what it uses; npm packages are left to node_modules. The restore sandbox
 * is bundled beside it (the same bundle the image runs) and run with plain `node`.
 *
 *   node scripts/build-cli.mjs [OUTDIR]
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundleSandbox } from '../containers/restore-sandbox/bundle.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI_OUTDIR = path.join(root, 'dist', 'cli');
/** The sandbox bundle's name beside the CLI (bin/backup-validator.ts looks for it there). */
export const SANDBOX_BUNDLE = 'restore-sandbox.mjs';
/** The integrity worker threads' entry beside the CLI, without its extension (bin/backup-validator.ts looks for it there). */
export const INTEGRITY_WORKER = 'integrity-worker';

/** Builds the CLI into `outdir` (default dist/cli), replacing what was there; resolves to the bin's path. */
export async function buildCli(outdir = CLI_OUTDIR) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await Promise.all([
    build({
      entryPoints: {
        'backup-validator': path.join(root, 'bin', 'backup-validator.ts'),
        // Worker threads need a file of their own to start from (lib/adapters/integrity-pool.ts).
        [INTEGRITY_WORKER]: path.join(root, 'lib', 'adapters', 'integrity-worker.ts'),
      },
      bundle: true,
      splitting: true,
      packages: 'external',
      platform: 'node',
      target: 'node20',
      format: 'esm',
      outdir,
      outExtension: { '.js': '.mjs' },
      // Chunks sit beside the entry: code that finds files next to itself (the state machine
      // definition) finds the copy made below.
      chunkNames: '[name]-[hash]',
      sourcemap: 'linked',
      logLevel: 'warning',
    }),
    bundleSandbox(path.join(outdir, SANDBOX_BUNDLE)),
    copyFile(
      path.join(root, 'lib', 'pipeline', 'state-machine.asl.json'),
      path.join(outdir, 'state-machine.asl.json'),
    ),
  ]);
  return path.join(outdir, 'backup-validator.mjs');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildCli(process.argv[2] ? path.resolve(process.argv[2]) : CLI_OUTDIR);
}
