import { availableParallelism } from 'node:os';

/** Backups checked at once by default: one per core, at most 4 (each pass holds a few MiB of buffers). */
export function defaultConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), 4));
}

/** Runs `fn` over the items with at most `limit` at a time; the first failure stops taking new items and is thrown. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        await fn(items[index] as T, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  });
  await Promise.all(workers);
}
