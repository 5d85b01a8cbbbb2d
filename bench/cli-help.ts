/**
 * `backup-validator --help` as a user runs it: the compiled bin (built first, as `npm ci` does)
 * started by its `#!/usr/bin/env node` line, beside `node -e 0` in the same rounds, taken in turn.
 * Target: a median of at most 0.15 s.
 */
import { spawnSync } from 'node:child_process';
import { buildCli } from '../scripts/build-cli.mjs';

const ROUNDS = 21;
const TARGET_SECONDS = 0.15;

function seconds(command: string, args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export async function run(ctx: { log(line: string): void }): Promise<void> {
  const bin = await buildCli();
  const help: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bare.push(seconds(process.execPath, ['-e', '0']));
    help.push(seconds(bin, ['--help']));
  }
  const helpMedian = median(help);
  const bareMedian = median(bare);
  ctx.log(
    `backup-validator --help: median ${helpMedian.toFixed(3)} s over ${ROUNDS} rounds ` +
      `(min ${Math.min(...help).toFixed(3)} s); node -e 0 in the same rounds ${bareMedian.toFixed(3)} s, ` +
      `so ${(helpMedian / bareMedian).toFixed(2)}x a bare node start; target <= ${TARGET_SECONDS} s: ` +
      `${helpMedian <= TARGET_SECONDS ? 'met' : 'NOT met'}`,
  );
}
