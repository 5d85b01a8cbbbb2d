/**
 * One JSON line per event, so CloudWatch Logs Insights finds `runId`, `shard` and `backup`
 * as fields and an operator can follow one backup through every stage (README, "Logs").
 */
export type LogLevel = 'INFO' | 'WARN' | 'ERROR';

export interface LogFields {
  runId?: string;
  shard?: number;
  backup?: string;
  [field: string]: unknown;
}

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger adding these fields to every line. */
  with(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** The pipeline state (or program) writing: discover, integrity, restore, ... */
  stage: string;
  /** Where each line goes; stdout by default (a Lambda's log stream). */
  write?: (line: string) => void;
  /** `text` prints the message alone, as a person reads it locally. */
  format?: 'json' | 'text';
  fields?: LogFields;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};
  const emit = (level: LogLevel, message: string, fields: LogFields = {}) => {
    if (options.format === 'text') {
      write(message);
      return;
    }
    write(
      JSON.stringify({
        timestamp: now().toISOString(),
        level,
        stage: options.stage,
        message,
        ...base,
        ...fields,
      }),
    );
  };
  return {
    info: (message, fields) => emit('INFO', message, fields),
    warn: (message, fields) => emit('WARN', message, fields),
    error: (message, fields) => emit('ERROR', message, fields),
    with: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** An error as log fields: its name and message (the stack stays out of the one line). */
export function errorFields(error: unknown): LogFields {
  return error instanceof Error
    ? { errorName: error.name, errorMessage: error.message }
    : { errorMessage: String(error) };
}
