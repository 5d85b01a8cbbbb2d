/**
 * Bundles the sandbox entry point into the one ESM file the image runs: everything it imports
 * (AWS SDK included) except the native SQLite binding. The Dockerfile and the bundle test both
 * call this, so what the tests run is what the image runs.
 *
 *   node containers/restore-sandbox/bundle.mjs OUTFILE
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function bundleSandbox(outfile) {
  await build({
    entryPoints: [path.join(here, 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    external: ['better-sqlite3'],
    sourcemap: true,
    outfile,
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
