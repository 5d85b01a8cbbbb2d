import { spawn } from 'node:child_process';
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

/** Runs a bundled child with plain `node` and parses the JSON line it prints last. */
export function runChild<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: path.resolve(here, '..'),
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${path.basename(script)} exited with ${code}: ${out}`));
      else resolve(JSON.parse(out.trim().split('\n').pop() as string) as T);
    });
  });
}
