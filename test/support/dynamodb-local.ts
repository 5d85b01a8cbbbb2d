import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * AWS's own DynamoDB Local, shipped as a jar inside this npm package. It is fetched with
 * `npm pack` (not installed: that would pull the whole Amplify tree) into node_modules/.cache.
 */
const PACKAGE = 'amplify-dynamodb-simulator@2.9.30';
const ROOT = join(import.meta.dirname, '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'dynamodb-local', '2.9.30');
const EMULATOR = join(CACHE, 'package', 'emulator');
const WRAPPER = join(import.meta.dirname, 'dynamodb-local', 'LoopbackDynamoDBLocal.java');

async function ensureEmulator(): Promise<void> {
  if (existsSync(join(EMULATOR, 'DynamoDBLocal.jar'))) return;
  await mkdir(join(CACHE, '..'), { recursive: true });
  const staging = await mkdtemp(join(CACHE, '..', 'fetch-'));
  try {
    const { stdout } = await run('npm', ['pack', PACKAGE, '--pack-destination', staging, '--silent'], {
      cwd: staging,
    });
    const tarball = join(staging, stdout.trim().split('\n').pop() ?? '');
    await run('tar', ['-xzf', tarball, '-C', staging, 'package/emulator']);
    await rm(CACHE, { recursive: true, force: true });
    await mkdir(CACHE, { recursive: true });
    await rename(join(staging, 'package'), join(CACHE, 'package'));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export interface DynamoDbLocal {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  try {
    await run('java', ['-version']);
  } catch (error) {
    throw new Error(
      'DynamoDB Local needs Java 17 or newer (the ledger tests run against it as well as dynalite): ' +
        'apt-get install openjdk-17-jre-headless',
      { cause: error },
    );
  }
  await ensureEmulator();
  // It writes dynamodb-local-metadata.json into its working folder, even in memory.
  const workDir = await mkdtemp(join(tmpdir(), 'bv-dynamodb-local-'));
  const child: ChildProcess = spawn(
    'java',
    [
      `-Djava.library.path=${join(EMULATOR, 'DynamoDBLocal_lib')}`,
      '-cp',
      `${join(EMULATOR, 'DynamoDBLocal.jar')}:${join(EMULATOR, 'DynamoDBLocal_lib', '*')}`,
      WRAPPER,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: workDir },
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (match) resolve(`http://127.0.0.1:${match[1]}`);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`DynamoDB Local exited with code ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`DynamoDB Local did not start within 90 s: ${out}`)), 90_000).unref();
  });
  return {
    endpoint,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
