import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stopWorker } from '../../lib/adapters/worker-pool.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** A worker whose terminate() never settles, as was seen under load (the process then exited 13 mid-close). */
function stuckWorker(): Worker & EventEmitter {
  const worker = new EventEmitter() as Worker & EventEmitter;
  worker.terminate = () => new Promise<number>(() => undefined);
  return worker;
}

describe('issue 13: closing the worker pool never hangs on a termination that is not confirmed', () => {
  it('gives up waiting after its bound, holding the event loop meanwhile', async () => {
    vi.useFakeTimers();
    let stopped = false;
    const stopping = stopWorker(stuckWorker()).then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(stopped).toBe(false);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_500);
    await stopping;
    expect(stopped).toBe(true);
  });

  it("is done at the worker's exit, without waiting for the bound", async () => {
    vi.useFakeTimers();
    const worker = stuckWorker();
    const stopping = stopWorker(worker);
    worker.emit('exit', 1);
    await stopping;
    expect(vi.getTimerCount()).toBe(0);
  });
});
