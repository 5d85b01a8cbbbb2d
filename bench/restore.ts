/**
 * A verified restore of the ~1 GiB .tar.gz (extract + SHA-256 of every file against the
 * archive's SHA256SUMS, hashed while written and again on disk) against
 * `tar -xzf` + `sha256sum -c` into a fresh folder, measured in the same run; and the
 * restore's peak RSS in a child process. Targets (issue 4): <= 0.8x, < 160 MB.
 * Clean-up is timed apart from both (deleting 20,000 files costs seconds either way).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreResult } from '../lib/core/model.ts';
import { bundleChild, runChild } from './bundle.ts';
import { benchScale, ensureDataset } from './dataset.ts';

const RATIO_TARGET = 0.8;
const RSS_TARGET_MB = 160;
const ROUNDS = 4;

function runCommand(command: string, args: string[], cwd?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], ...(cwd ? { cwd } : {}) });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited with ${code}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/**
 * Writes back what earlier rounds left dirty, so neither side pays for the other's files:
 * without it single timings here swung 6-19 s for the same work.
 */
async function settleDisk(): Promise<void> {
  await runCommand('sync', []);
}

async function timeTarBaseline(archive: string, folder: string): Promise<{ tarMs: number; sumsMs: number }> {
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
  await settleDisk();
  const tarMs = await runCommand('tar', ['-xzf', archive, '-C', folder]);
  const sumsMs = await runCommand('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], folder);
  await rm(folder, { recursive: true, force: true });
  return { tarMs, sumsMs };
}

interface Measured {
  baselineMs: number;
  restoreMs: number;
  peakRssMB: number;
  last: RestoreResult | undefined;
}

/** Best of ROUNDS of each side, alternating so both see the same page cache and machine load. */
async function measure(
  ctx: { log(line: string): void },
  where: string,
  scratch: string,
  script: string,
  dataset: { archivePath: string; store: string; archiveKey: string },
): Promise<Measured> {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const m: Measured = {
    baselineMs: Number.POSITIVE_INFINITY,
    restoreMs: Number.POSITIVE_INFINITY,
    peakRssMB: 0,
    last: undefined,
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const root = path.join(scratch, 'sandbox');
      const restore = async () => {
        await rm(root, { recursive: true, force: true });
        await settleDisk();
        const child = await runChild<{ result: RestoreResult; maxRssKiB: number }>(script, [
          dataset.store,
          dataset.archiveKey,
          root,
        ]);
        await rm(root, { recursive: true, force: true });
        return child;
      };
      const tarFolder = path.join(scratch, 'tar');
      // Whichever goes first meets the disk's write cache empty: take turns.
      let baseline: { tarMs: number; sumsMs: number };
      let child: { result: RestoreResult; maxRssKiB: number };
      if (round % 2 === 0) {
        baseline = await timeTarBaseline(dataset.archivePath, tarFolder);
        child = await restore();
      } else {
        child = await restore();
        baseline = await timeTarBaseline(dataset.archivePath, tarFolder);
      }
      const r = child.result;
      // The verified restore: read + extract + hash + verify against the references (no probes).
      const verified = r.phases.downloadMs + r.phases.extractMs + r.phases.verifyMs;
      m.baselineMs = Math.min(m.baselineMs, baseline.tarMs + baseline.sumsMs);
      m.restoreMs = Math.min(m.restoreMs, verified);
      m.peakRssMB = Math.max(m.peakRssMB, child.maxRssKiB / 1024);
      m.last = r;
      ctx.log(
        `  ${where} round ${round + 1}: tar -xzf ${seconds(baseline.tarMs)} + sha256sum -c ${seconds(baseline.sumsMs)}; restore extract ${seconds(r.phases.extractMs)} + verify ${seconds(r.phases.verifyMs)} = ${seconds(verified)} (probes ${seconds(r.phases.probesMs)}, clean-up ${seconds(r.phases.cleanupMs)}), peak RSS ${(child.maxRssKiB / 1024).toFixed(0)} MB`,
      );
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  ctx.log(
    `${where}: tar -xzf + sha256sum -c ${seconds(m.baselineMs)}, verified restore ${seconds(m.restoreMs)} (best of ${ROUNDS}): ratio ${(m.restoreMs / m.baselineMs).toFixed(2)}x`,
  );
  return m;
}

export async function run(ctx: { dataDir: string; log(line: string): void }): Promise<void> {
  const scale = benchScale();
  const dataset = await ensureDataset(ctx.dataDir, ctx.log, scale);
  const script = await bundleChild('restore-child', ctx.dataDir);
  // On this machine's virtual disk the same tar -xzf took 6 to 19 s from one run to the next, so
  // the target is judged in memory (tmpfs), where both sides do the same work without that noise.
  const memory = existsSync('/dev/shm')
    ? await measure(ctx, 'tmpfs', `/dev/shm/bv-restore-x${scale}`, script, dataset)
    : undefined;
  const disk = await measure(ctx, 'disk', path.join(ctx.dataDir, `restore-x${scale}`), script, dataset);
  const judged = memory ?? disk;
  const ratio = judged.restoreMs / judged.baselineMs;
  const peakRssMB = Math.max(disk.peakRssMB, memory?.peakRssMB ?? 0);
  const last = judged.last;
  ctx.log(
    `ratio (${memory ? 'tmpfs' : 'disk'}): ${ratio.toFixed(2)}x (target <= ${RATIO_TARGET}x) ${ratio <= RATIO_TARGET ? 'OK' : 'MISSED'}`,
  );
  ctx.log(
    `peak RSS of the restore: ${peakRssMB.toFixed(0)} MB (target < ${RSS_TARGET_MB} MB) ${peakRssMB < RSS_TARGET_MB ? 'OK' : 'MISSED'}`,
  );
  const findings = last?.findings ?? [];
  const probeFailures = findings.filter((f) => f.code === 'PROBE_FAILED');
  const others = findings.filter((f) => f.code !== 'PROBE_FAILED');
  ctx.log(
    `verdict: ${last?.status}, ${last?.filesRestored} files, ${((last?.bytesRestored ?? 0) / 1024 / 1024).toFixed(0)} MiB${others.length ? `; findings: ${others.map((f) => `${f.code}: ${f.message}`).join(' | ')}` : ''}`,
  );
  if (probeFailures.length > 0) {
    // The dataset's record-*.json files are slices of a text pool, not JSON: the JSON probe is right to fail them.
    ctx.log(
      `probes: ${probeFailures.length} PROBE_FAILED (e.g. ${probeFailures[0]?.message}); the bench dataset's .json files are not JSON`,
    );
  }
  if (others.length > 0) throw new Error('the clean bench archive did not restore and verify cleanly');
}
