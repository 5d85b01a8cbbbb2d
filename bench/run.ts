/**
 * `npm run bench`: runs each bench module in turn. A module exports
 * `run(ctx: { dataDir: string; log(line: string): void }): Promise<void>`; add yours to MODULES.
 * `npm run bench -- integrity` runs only the modules whose names contain an argument.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchContext {
  dataDir: string;
  log(line: string): void;
}

const MODULES = [
  './integrity.ts',
  './integrity-overlap.ts',
  './zstd.ts',
  './restore.ts',
  './discovery.ts',
  './s3-resume.ts',
  './cli-help.ts',
  './cli.ts',
  './backup.ts',
];

const here = path.dirname(fileURLToPath(import.meta.url));
const dataDir = path.resolve(here, '..', 'bench-data');
await mkdir(dataDir, { recursive: true });
const filters = process.argv.slice(2);
const ctx: BenchContext = { dataDir, log: (line) => console.log(line) };
let failed = false;
for (const name of MODULES) {
  if (filters.length > 0 && !filters.some((f) => name.includes(f))) continue;
  ctx.log(`== ${name}`);
  try {
    const mod = (await import(name)) as { run(ctx: BenchContext): Promise<void> };
    await mod.run(ctx);
  } catch (error) {
    failed = true;
    ctx.log(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}
process.exitCode = failed ? 1 : 0;
