// Tests again on Node.js 22, the runtime of the Lambdas and the restore container (these
// machines have Node.js 20); which ones, vitest.node22.config.ts says. Node 22 comes from the
// npm registry (the node-<os>-<arch> package, fetched once with `npm pack` into
// node_modules/.cache). Run by `npm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '22.23.5';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules', '.cache', `node-${VERSION}`);
const node = join(cache, 'package', 'bin', 'node');

if (!existsSync(node)) {
  const pkg = `node-${process.platform}-${process.arch}@${VERSION}`;
  mkdirSync(dirname(cache), { recursive: true });
  const staging = mkdtempSync(join(dirname(cache), 'fetch-'));
  let failure;
  try {
    const tarball = execFileSync('npm', ['pack', pkg, '--pack-destination', staging, '--silent'], {
      cwd: staging,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop();
    execFileSync('tar', ['-xzf', join(staging, tarball), '-C', staging]);
    rmSync(cache, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    renameSync(join(staging, 'package'), join(cache, 'package'));
  } catch (error) {
    failure = error;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (failure) {
    console.error(
      `cannot fetch Node.js ${VERSION} (${pkg}) from the npm registry: ${failure.message}; check the network and run npm test again`,
    );
    process.exit(1);
  }
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const result = spawnSync(
  node,
  [vitest, 'run', '--config', 'vitest.node22.config.ts', ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
