/**
 * Integrity pass of the ~1 GiB .tar.gz against `gzip -dc FILE > /dev/null`, measured in the same
 * run, and the pass's peak RSS (in a child process). Targets (issue 2): <= 0.75x, < 160 MB.
 * The child runs as production does: bundled by esbuild and started with plain `node`, so the
 * TypeScript loader's own memory (~30 MB) is not counted as the pass's.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { bundleChild, runChild } from './bundle.ts';
import { benchScale, ensureDataset } from './dataset.ts';

const RATIO_TARGET = 0.75;
const RSS_TARGET_MB = 160;
const ROUNDS = 2;

interface ChildResult {
  ms: number;
  maxRssKiB: number;
  status: string;
  files: number;
  contentBytes: number;
  findings: string[];
}

function timeGunzip(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const devNull = openSync('/dev/null', 'w');
    const started = process.hrtime.bigint();
    const child = spawn('gzip', ['-dc', file], { stdio: ['ignore', devNull, 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => {
      closeSync(devNull);
      if (code !== 0) reject(new Error(`gzip -dc exited with ${code}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

export async function run(ctx: { dataDir: string; log(line: string): void }): Promise<void> {
  const scale = benchScale();
  const dataset = await ensureDataset(ctx.dataDir, ctx.log, scale);
  const mib = (n: number) => (n / 1024 / 1024).toFixed(0);
  ctx.log(
    `dataset x${scale}: ${dataset.files} files, ${mib(dataset.treeBytes)} MiB of content, ${dataset.archiveKey} ${mib(dataset.archiveBytes)} MiB`,
  );
  const script = await bundleChild('integrity-child', ctx.dataDir);
  let gunzipMs = Number.POSITIVE_INFINITY;
  let passMs = Number.POSITIVE_INFINITY;
  let peakRssMB = 0;
  let last: ChildResult | undefined;
  // Alternate the two so both see the same page cache and machine load.
  for (let round = 0; round < ROUNDS; round++) {
    const g = await timeGunzip(dataset.archivePath);
    const child = await runChild<ChildResult>(script, [dataset.store, dataset.archiveKey]);
    gunzipMs = Math.min(gunzipMs, g);
    passMs = Math.min(passMs, child.ms);
    peakRssMB = Math.max(peakRssMB, child.maxRssKiB / 1024);
    last = child;
    ctx.log(
      `  round ${round + 1}: gzip -dc ${(g / 1000).toFixed(2)} s, integrity pass ${(child.ms / 1000).toFixed(2)} s, peak RSS ${(child.maxRssKiB / 1024).toFixed(0)} MB`,
    );
  }
  const ratio = passMs / gunzipMs;
  ctx.log(`gzip -dc FILE > /dev/null: ${(gunzipMs / 1000).toFixed(2)} s (best of ${ROUNDS})`);
  ctx.log(
    `integrity pass (checkIntegrity, FolderStore, bundled, plain node): ${(passMs / 1000).toFixed(2)} s (best of ${ROUNDS})`,
  );
  ctx.log(
    `ratio: ${ratio.toFixed(2)}x (target <= ${RATIO_TARGET}x) ${ratio <= RATIO_TARGET ? 'OK' : 'MISSED'}`,
  );
  ctx.log(
    `peak RSS of the pass: ${peakRssMB.toFixed(0)} MB (target < ${RSS_TARGET_MB} MB) ${peakRssMB < RSS_TARGET_MB ? 'OK' : 'MISSED'}`,
  );
  ctx.log(
    `verdict: ${last?.status}, ${last?.files} files, ${mib(last?.contentBytes ?? 0)} MiB content${last?.findings.length ? `; findings: ${last.findings.join(' | ')}` : ''}`,
  );
  if (last?.status !== 'PASS')
    throw new Error(`the clean bench archive did not PASS: ${last?.findings.join(' | ')}`);
}
