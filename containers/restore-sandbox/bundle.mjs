/**
 * Bundles the sandbox entry point into the ESM files the image runs: everything it imports
 * (AWS SDK included) except the native SQLite binding. What the entry imports dynamically (the
 * S3 store, the DynamoDB ledger, the Step Functions client) is a chunk of its own under
 * `sandbox-chunks/` beside it, loaded only when used: a restore from a folder starts without
 * parsing the SDK. The Dockerfile and the bundle test both call this, so what the tests run is
 * what the image runs.
 *
 *   node containers/restore-sandbox/bundle.mjs OUTFILE
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function bundleSandbox(outfile) {
  await build({
    entryPoints: { [path.basename(outfile, '.mjs')]: path.join(here, 'main.ts') },
    bundle: true,
    splitting: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    external: ['better-sqlite3'],
    sourcemap: true,
    outdir: path.dirname(outfile),
    outExtension: { '.js': '.mjs' },
    chunkNames: 'sandbox-chunks/[name]-[hash]',
    logLevel: 'warning',
    // Bundled CommonJS modules call `require`, which an ES module does not have.
    banner: {
      js: "import { createRequire as __bvCreateRequire } from 'node:module'; const require = __bvCreateRequire(import.meta.url);",
    },
  });
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outfile = process.argv[2];
  if (!outfile) {
    console.error('usage: node containers/restore-sandbox/bundle.mjs OUTFILE');
    process.exit(2);
  }
  await bundleSandbox(path.resolve(outfile));
}
