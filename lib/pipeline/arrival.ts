import { createHash } from 'node:crypto';

/**
 * Arrivals of one upload share one run. S3 sends one "Object Created" event per object; the stack's
 * rule puts each on a queue, and the arrival Lambda (functions/arrival) takes them in batches (a batching window of
 * {@link ARRIVAL_BATCHING_SECONDS}, so the objects of a nightly upload arrive together). Each batch
 * starts one execution per source and window, named from both: the few batches SQS splits a
 * burst into (its pollers work in parallel) ask for the same name, and Step Functions starts it
 * once. The run checks what is new in the source when it lists it, so it also covers the objects
 * of the batches that found the name taken, provided they landed before it started; later ones
 * start a follow-up run.
 */
export const ARRIVAL_BATCHING_SECONDS = 120;
/** Arrivals in one source within this window share an execution name. */
export const ARRIVAL_WINDOW_SECONDS = 900;

/** A compact UTC time for execution names: 20250626T030000Z. */
export const stamp = (date: Date) =>
  date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** `arrival-<source hash>-<window start>`: the same for every batch of one source and window; at most 80 characters. */
export function arrivalExecutionName(sources: string[], config: unknown, at: Date): string {
  const windowMs = ARRIVAL_WINDOW_SECONDS * 1000;
  const windowStart = new Date(Math.floor(at.getTime() / windowMs) * windowMs);
  const hash = createHash('sha256')
    .update(JSON.stringify([sources, config ?? null]))
    .digest('hex')
    .slice(0, 16);
  return `arrival-${hash}-${stamp(windowStart)}`;
}
