/**
 * Integrity pass of the bench tree as a `.tar.zst` (zstd -3, as pgBackRest and most dump jobs
 * write) against `zstd -dc FILE > /dev/null`, measured in the same run, with the decompressor
 * every runtime uses (libzstd as WebAssembly: see createDecompressor) and the pass's peak RSS; and the same tree's `.tar.gz` pass in the same rounds, for scale (hashing every member
 * costs more than zstd's decompression, so no pass gets near `zstd -dc` itself). The archive is made once with the `zstd` program and cached beside the dataset; without
 * `zstd` the figure is skipped, and says so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleChild, runChild } from './bundle.ts';
import { benchScale, ensureDataset, sha256File } from './dataset.ts';

const ROUNDS = 2;
const KEY = 'backup.tar.zst';

interface ChildResult {
  ms: number;
  maxRssKiB: number;
  status: string;
  files: number;
  contentBytes: number;
  findings: string[];
}

function haveZstd(): boolean {
  return spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
}

function timeZstdDc(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const devNull = openSync('/dev/null', 'w');
    const started = process.hrtime.bigint();
    const child = spawn('zstd', ['-q', '-dc', file], { stdio: ['ignore', devNull, 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => {
      closeSync(devNull);
      if (code !== 0) reject(new Error(`zstd -dc exited with ${code}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/** `tar -cf - -C TREE . | zstd -3 -T0`, with a `.sha256` sidecar; made once, then cached. */
async function ensureZstdArchive(tree: string, storeDir: string, log: (line: string) => void) {
  const archivePath = path.join(storeDir, KEY);
  if (existsSync(`${archivePath}.sha256`)) return archivePath;
  await mkdir(storeDir, { recursive: true });
  const started = Date.now();
  const partial = `${archivePath}.partial`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'sh',
      ['-c', 'tar -cf - -C "$1" . | zstd -q -3 -T0 -f -o "$2"', 'sh', tree, partial],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar | zstd exited with ${code}`)),
    );
  });
  await rename(partial, archivePath);
  await writeFile(`${archivePath}.sha256`, `${await sha256File(archivePath)}  ${KEY}\n`);
  log(`  ${KEY} made by tar | zstd -3 in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return archivePath;
}

export async function run(ctx: { dataDir: string; log(line: string): void }): Promise<void> {
  if (!haveZstd()) {
    ctx.log('zstd is not installed: the .tar.zst figure is skipped (apt-get install zstd to measure it)');
    return;
  }
  const scale = benchScale();
  const dataset = await ensureDataset(ctx.dataDir, ctx.log, scale);
  const storeDir = path.join(path.dirname(dataset.store), 'store-zstd');
  const archivePath = await ensureZstdArchive(dataset.tree, storeDir, ctx.log);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(0);
  const archiveBytes = (await stat(archivePath)).size;
  ctx.log(
    `dataset x${scale}: ${dataset.files} files, ${mib(dataset.treeBytes)} MiB of content, ${KEY} ${mib(archiveBytes)} MiB; decompressor: libzstd as WebAssembly (zstddec) on Node ${process.versions.node}`,
  );
  const script = await bundleChild('integrity-child', ctx.dataDir);
  let zstdMs = Number.POSITIVE_INFINITY;
  let passMs = Number.POSITIVE_INFINITY;
  let gzPassMs = Number.POSITIVE_INFINITY;
  let peakRssMB = 0;
  let last: ChildResult | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const z = await timeZstdDc(archivePath);
    const child = await runChild<ChildResult>(script, [storeDir, KEY]);
    const gz = await runChild<ChildResult>(script, [dataset.store, dataset.archiveKey]);
    gzPassMs = Math.min(gzPassMs, gz.ms);
    zstdMs = Math.min(zstdMs, z);
    passMs = Math.min(passMs, child.ms);
    peakRssMB = Math.max(peakRssMB, child.maxRssKiB / 1024);
    last = child;
    ctx.log(
      `  round ${round + 1}: zstd -dc ${(z / 1000).toFixed(2)} s, integrity pass ${(child.ms / 1000).toFixed(2)} s (the .tar.gz: ${(gz.ms / 1000).toFixed(2)} s), peak RSS ${(child.maxRssKiB / 1024).toFixed(0)} MB`,
    );
  }
  ctx.log(`zstd -dc FILE > /dev/null: ${(zstdMs / 1000).toFixed(2)} s (best of ${ROUNDS})`);
  ctx.log(
    `integrity pass of the .tar.zst (WebAssembly libzstd, bundled, plain node): ${(passMs / 1000).toFixed(2)} s (best of ${ROUNDS})`,
  );
  ctx.log(
    `integrity pass of the same tree as ${dataset.archiveKey}: ${(gzPassMs / 1000).toFixed(2)} s (best of ${ROUNDS})`,
  );
  ctx.log(
    `ratio: ${(passMs / zstdMs).toFixed(2)}x zstd -dc; ${(passMs / gzPassMs).toFixed(2)}x the .tar.gz pass; peak RSS of the pass: ${peakRssMB.toFixed(0)} MB`,
  );
  ctx.log(
    `verdict: ${last?.status}, ${last?.files} files, ${mib(last?.contentBytes ?? 0)} MiB content${last?.findings.length ? `; findings: ${last.findings.join(' | ')}` : ''}`,
  );
  if (last?.status !== 'PASS')
    throw new Error(`the clean bench .tar.zst did not PASS: ${last?.findings.join(' | ')}`);
}
