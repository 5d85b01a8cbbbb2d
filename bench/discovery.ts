import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FolderStore } from '../lib/adapters/folder-store.ts';
import { catalogue } from '../lib/core/catalogue.ts';

const FILES = 100_000;
const BACKUPS = 50;

/** 100,000 small files in 50 timestamped directory backups of nested folders, made once. */
async function ensureTree(dataDir: string): Promise<string> {
  const root = join(dataDir, 'discovery-100k');
  const done = join(root, '.complete');
  if (existsSync(done)) return root;
  const perBackup = FILES / BACKUPS;
  for (let b = 0; b < BACKUPS; b++) {
    const day = String(1 + (b % 28)).padStart(2, '0');
    const backup = join(
      root,
      `site-${b % 5}`,
      `2025${String(1 + Math.floor(b / 28)).padStart(2, '0')}${day}_0300${String(b).padStart(2, '0')}`,
    );
    for (let dir = 0; dir < perBackup / 100; dir++) {
      const folder = join(backup, `d${String(dir).padStart(3, '0')}`);
      await mkdir(folder, { recursive: true });
      await Promise.all(
        Array.from({ length: 100 }, (_, f) =>
          writeFile(join(folder, `f${String(f).padStart(3, '0')}.dat`), `${b}-${dir}-${f}`),
        ),
      );
    }
  }
  await writeFile(done, '');
  return root;
}

function timed<T>(fn: () => T): { ms: number; value: T } {
  const start = process.hrtime.bigint();
  const value = fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

async function timedAsync<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

export async function run(ctx: { dataDir: string; log(line: string): void }): Promise<void> {
  const root = await ensureTree(ctx.dataDir);
  const find = () =>
    execFileSync('find', [root, '-type', 'f', '-printf', '%s %T@\n'], { maxBuffer: 64 * 1024 ** 2 });
  find();
  const catalogueOnce = async () => {
    let backups = 0;
    let objects = 0;
    for await (const backup of catalogue(new FolderStore(root))) {
      backups++;
      objects += backup.objects;
    }
    return { backups, objects };
  };
  await catalogueOnce();
  const rounds = 3;
  let findMs = 0;
  let catalogueMs = 0;
  let counted = { backups: 0, objects: 0 };
  for (let i = 0; i < rounds; i++) {
    findMs += timed(find).ms;
    const c = await timedAsync(catalogueOnce);
    catalogueMs += c.ms;
    counted = c.value;
  }
  findMs /= rounds;
  catalogueMs /= rounds;
  ctx.log(`discovery: ${counted.objects} files in ${counted.backups} backups`);
  ctx.log(
    `discovery: find -printf ${findMs.toFixed(0)} ms, catalogue ${catalogueMs.toFixed(0)} ms (mean of ${rounds}, same run)`,
  );
  ctx.log(`discovery: ratio ${(catalogueMs / findMs).toFixed(2)}x find (target <= 3x)`);
}
