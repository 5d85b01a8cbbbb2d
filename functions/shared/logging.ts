import { createLogger, errorFields, type LogFields, type Logger } from '../../lib/adapters/json-log.ts';

/** `runId`, `shard` and the restore number of a pipeline event, as log fields. */
export function eventFields(event: unknown): LogFields {
  const e = (event ?? {}) as { runId?: unknown; shard?: unknown; item?: unknown; input?: unknown };
  const item = (e.item ?? e.input ?? {}) as { runId?: unknown; shard?: unknown; restore?: unknown };
  const runId = typeof e.runId === 'string' ? e.runId : item.runId;
  const shard = typeof e.shard === 'number' ? e.shard : item.shard;
  return {
    ...(typeof runId === 'string' ? { runId } : {}),
    ...(typeof shard === 'number' ? { shard } : {}),
    ...(typeof item.restore === 'number' ? { restore: item.restore } : {}),
  };
}

/**
 * A Lambda handler that logs, as JSON lines, when it starts, finishes (with `summary` of its
 * output) or fails (and rethrows): the run, shard and backup an operator filters on.
 */
export function logged<E, R>(
  stage: string,
  handler: (event: E, log: Logger) => Promise<R>,
  summary: (output: R) => LogFields = () => ({}),
  base: Logger = createLogger({ stage }),
): (event: E) => Promise<R> {
  return async (event: E) => {
    const log = base.with(eventFields(event));
    const started = Date.now();
    log.info(`${stage} started`);
    try {
      const output = await handler(event, log);
      log.info(`${stage} finished`, {
        durationMs: Date.now() - started,
        ...eventFields(output),
        ...summary(output),
      });
      return output;
    } catch (error) {
      log.error(`${stage} failed`, { durationMs: Date.now() - started, ...errorFields(error) });
      throw error;
    }
  };
}
