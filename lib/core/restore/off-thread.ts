import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Long synchronous checks (SQLite's `PRAGMA integrity_check`, reading back a file of gigabytes)
 * run in a worker thread, so the event loop keeps ticking: the task token's heartbeats, progress
 * and cancellation never wait behind them. The worker is evaluated from source so it works the
 * same from TypeScript sources, under the tests and inside the sandbox's single-file bundle.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
function sqlite({ file, module }) {
  const Database = require(module);
  let db;
  try {
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (error) {
      // A WAL-mode database without its -shm cannot always be opened read-only; this copy is ours.
      if (!/CANTOPEN|READONLY|unable to open/i.test(String((error && error.message) || error))) throw error;
      db = new Database(file, { fileMustExist: true });
    }
    // SQLite's default 2 MiB page cache: better-sqlite3's 16 MiB adds to the sandbox's peak RSS, not to the check's speed.
    db.pragma('cache_size = -2000');
    return { messages: db.pragma('integrity_check').map((row) => row.integrity_check) };
  } finally {
    if (db) db.close();
  }
}
function readBack({ file }) {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0));
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let crc32 = 0;
  let size = 0;
  try {
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      crc32 = zlib.crc32(buffer.subarray(0, read), crc32);
      size += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, crc32 };
}
try {
  parentPort.postMessage({ ok: workerData.task === 'sqlite' ? sqlite(workerData) : readBack(workerData) });
} catch (error) {
  parentPort.postMessage({ error: String((error && error.message) || error), code: error && error.code });
}
`;

let sqliteModule: string | undefined;

/** The messages of `PRAGMA integrity_check` on a SQLite file (`['ok']` when healthy). */
export async function sqliteIntegrityCheck(file: string): Promise<string[]> {
  sqliteModule ??= createRequire(import.meta.url).resolve('better-sqlite3');
  const result = await runInWorker<{ messages: string[] }>({ task: 'sqlite', file, module: sqliteModule });
  return result.messages;
}

/** Size and CRC-32 of a file as on disk, read without following a link. */
export function readBackInWorker(file: string): Promise<{ size: number; crc32: number }> {
  return runInWorker({ task: 'read-back', file });
}

function runInWorker<T>(workerData: Record<string, string>): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      action();
    };
    worker.once('message', (message: { ok?: T; error?: string; code?: string }) =>
      settle(() => {
        if (message.error === undefined) resolve(message.ok as T);
        else reject(Object.assign(new Error(message.error), message.code ? { code: message.code } : {}));
      }),
    );
    worker.once('error', (error) => settle(() => reject(error)));
    worker.once('exit', (code) =>
      settle(() => reject(new Error(`the check's worker thread exited with code ${code}`))),
    );
  });
}
