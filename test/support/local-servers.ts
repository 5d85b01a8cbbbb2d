import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

export interface LocalS3 {
  endpoint: string;
  /** s3rver's process (bench s3-resume reads its CPU time). */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** s3rver in its own process: its list pagination tokens use DES, which needs the legacy provider. */
export async function startLocalS3(): Promise<LocalS3> {
  const directory = await mkdtemp(join(tmpdir(), 'bv-s3rver-'));
  const bin = require.resolve('s3rver/bin/s3rver.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      bin,
      '--address',
      '127.0.0.1',
      '--port',
      '0',
      '--directory',
      directory,
      '--silent',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (?:http:\/\/)?([\d.]+):(\d+)/i.exec(out) ?? /:(\d{2,5})/.exec(out);
      if (match) {
        const port = match[2] ?? match[1];
        resolve(`http://127.0.0.1:${port}`);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`s3rver did not start within 20 s: ${out}`)), 20_000).unref();
  });
  return {
    endpoint,
    pid: child.pid,
    async stop() {
      child.kill();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export interface LocalDynamo {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startLocalDynamo(path?: string): Promise<LocalDynamo> {
  const dynalite = require('dynalite') as (options: Record<string, unknown>) => Server;
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(path ? { path } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
