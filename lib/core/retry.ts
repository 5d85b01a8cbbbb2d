/**
 * The one backoff for the few retries the AWS SDK cannot do itself (a read resumed after
 * bytes stopped coming, RunTask without capacity): exponential from `baseMs`, capped, with
 * jitter. `minShare` 0 is full jitter (the SDK's own strategy); 0.5 waits at least half.
 */
export interface Backoff {
  baseMs: number;
  capMs?: number;
  minShare?: number;
}

/** The wait before retry number `attempt` (1 = the first retry); none for attempt 0. */
export function backoffMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  if (attempt <= 0) return 0;
  const ceiling = Math.min(backoff.capMs ?? Number.POSITIVE_INFINITY, backoff.baseMs * 2 ** (attempt - 1));
  const floor = ceiling * (backoff.minShare ?? 0);
  return floor + random() * (ceiling - floor);
}
