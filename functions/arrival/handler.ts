import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { createLogger } from '../../lib/adapters/json-log.ts';
import {
  ARRIVAL_BATCHING_SECONDS,
  ARRIVAL_WINDOW_SECONDS,
  arrivalExecutionName,
  stamp,
} from '../../lib/pipeline/arrival.ts';
import { requireEnv } from '../shared/environment.ts';

export { ARRIVAL_BATCHING_SECONDS, ARRIVAL_WINDOW_SECONDS, arrivalExecutionName };

/** What the arrival rule puts on the queue for each new object. */
export interface ArrivalMessage {
  trigger: 'event';
  /** s3://bucket/key of the object. */
  object: string;
  /** When S3 created it (the event's time). */
  time: string;
  sources: string[];
  config?: unknown;
}

export interface SqsEvent {
  Records: Array<{ messageId: string; body: string }>;
}

export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

export interface ArrivalDeps {
  sfn: Pick<SFNClient, 'send'>;
  stateMachineArn: string;
  log?: (line: string) => void;
}

function parse(body: string): ArrivalMessage | undefined {
  try {
    const m = JSON.parse(body) as Partial<ArrivalMessage>;
    if (
      typeof m.object === 'string' &&
      m.object.startsWith('s3://') &&
      Array.isArray(m.sources) &&
      m.sources.every((s) => typeof s === 'string') &&
      !Number.isNaN(Date.parse(m.time ?? ''))
    )
      return m as ArrivalMessage;
  } catch {
    // Reported as a failed item below: after the queue's retries it lands in the dead-letter queue.
  }
  return undefined;
}

function executionArn(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

export function makeArrivalHandler(deps: () => ArrivalDeps) {
  return async (event: SqsEvent): Promise<SqsBatchResponse> => {
    const { sfn, stateMachineArn, log = (line: string) => console.log(line) } = deps();
    const failures: string[] = [];
    const groups = new Map<
      string,
      { name: string; message: ArrivalMessage; objects: Set<string>; ids: string[]; latest: number }
    >();
    for (const record of event.Records ?? []) {
      const message = parse(record.body);
      if (!message) {
        log(
          `arrival message ${record.messageId} is not an object-created message of this stack: ${record.body.slice(0, 200)}`,
        );
        failures.push(record.messageId);
        continue;
      }
      const time = Date.parse(message.time);
      const name = arrivalExecutionName(message.sources, message.config, new Date(time));
      const group = groups.get(name) ?? { name, message, objects: new Set(), ids: [], latest: 0 };
      group.objects.add(message.object);
      group.ids.push(record.messageId);
      group.latest = Math.max(group.latest, time);
      groups.set(name, group);
    }
    for (const group of groups.values()) {
      const input = JSON.stringify({
        trigger: 'event',
        sources: group.message.sources,
        config: group.message.config,
        objects: [...group.objects].sort(),
      });
      try {
        const outcome = await startOnce(sfn, stateMachineArn, group.name, input, group.latest);
        log(`${group.objects.size} arrival(s): ${outcome}`);
      } catch (error) {
        log(
          `could not start a run for ${group.objects.size} arrival(s): ${(error as Error).name}: ${(error as Error).message}`,
        );
        failures.push(...group.ids);
      }
    }
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

/**
 * Starts the window's execution; if another batch already started it, that run covers these
 * objects when it started after the last of them was created (its listing saw them, new);
 * otherwise a follow-up run named after the last arrival starts.
 */
async function startOnce(
  sfn: Pick<SFNClient, 'send'>,
  stateMachineArn: string,
  name: string,
  input: string,
  latest: number,
): Promise<string> {
  for (const candidate of [name, `${name}-${stamp(new Date(latest)).slice(9, 15)}`]) {
    try {
      await sfn.send(new StartExecutionCommand({ stateMachineArn, name: candidate, input }));
      return `started ${candidate}`;
    } catch (error) {
      if ((error as Error).name !== 'ExecutionAlreadyExists') throw error;
    }
    const existing = await sfn.send(
      new DescribeExecutionCommand({ executionArn: executionArn(stateMachineArn, candidate) }),
    );
    if (existing.startDate && existing.startDate.getTime() > latest)
      return `covered by ${candidate}, already running`;
  }
  throw Object.assign(new Error(`runs ${name} and its follow-up started before these objects landed`), {
    name: 'ArrivalNotCovered',
  });
}

const arrivalLog = createLogger({ stage: 'arrival' });
let client: SFNClient | undefined;

export const handler = makeArrivalHandler(() => {
  client ??= new SFNClient({});
  return { sfn: client, stateMachineArn: requireEnv('STATE_MACHINE_ARN'), log: arrivalLog.info };
});
