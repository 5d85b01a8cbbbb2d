import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Bundles a bench child the way the Lambda and container builds do (ESM, Node 20, native
 * modules left out), so it runs with plain `node` and its memory is what production's is.
 */
export async function bundleChild(name: string, dataDir: string): Promise<string> {
  const outfile = path.join(dataDir, `${name}.mjs`);
  await build({
    entryPoints: [path.join(here, `${name}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    external: ['better-sqlite3'],
    logLevel: 'warning',
  });
  return outfile;
}
