import { availableParallelism } from 'node:os';

/** Backups checked at once by default: one per core, at most 4 (each pass holds a few MiB of buffers). */
export function defaultConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), 4));
}

export interface LimitOptions {
  /** Once aborted, no new item is taken (the ones in flight finish on their own). */
  signal?: AbortSignal;
}

/**
 * Runs `fn` over the items with at most `limit` at a time: the project's one worker pool.
 * The first failure stops taking new items and is thrown once the items in flight settle.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  options: LimitOptions = {},
): Promise<void> {
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (!failed && !options.signal?.aborted && next < items.length) {
      const index = next++;
      try {
        await fn(items[index] as T, index);
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
  });
  await Promise.all(workers);
  if (failed) throw firstError;
}

/** `forEachLimited` keeping each item's result, in the items' order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  options: LimitOptions = {},
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  await forEachLimited(
    items,
    limit,
    async (item, index) => {
      out[index] = await fn(item, index);
    },
    options,
  );
  return out;
}
