import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The state machine definition file, shared by the CDK stack and the local runner. */
export const DEFINITION_PATH = fileURLToPath(new URL('./state-machine.asl.json', import.meta.url));

/** The definition text with its `${...FunctionArn}` placeholders still in place. */
export function loadDefinitionText(): string {
  return readFileSync(DEFINITION_PATH, 'utf8');
}

export const STATE_NAMES = {
  discover: 'Discover',
  integrity: 'Integrity',
  checkShard: 'CheckShard',
  recordIntegrityFailure: 'RecordIntegrityFailure',
  selectRestores: 'SelectRestores',
  restores: 'Restores',
  restoreBackup: 'RestoreBackup',
  recordRestoreFailure: 'RecordRestoreFailure',
  redundancy: 'Redundancy',
  copyShard: 'CopyShard',
  report: 'Report',
  verdict: 'Verdict',
  backupsFailed: 'BackupsFailed',
  done: 'Done',
} as const;

export type StateName = (typeof STATE_NAMES)[keyof typeof STATE_NAMES];

/** Lambda functions named in the definition (the contract's `functions/<name>`). */
export type PipelineFunctionName =
  | 'discover'
  | 'integrity'
  | 'select-restores'
  | 'restore-trigger'
  | 'record-failure'
  | 'redundancy'
  | 'report';

/** The `${...}` placeholder that stands for each function's ARN in the definition. */
export const FUNCTION_ARN_PLACEHOLDERS: Record<PipelineFunctionName, string> = {
  discover: 'DiscoverFunctionArn',
  integrity: 'IntegrityFunctionArn',
  'select-restores': 'SelectRestoresFunctionArn',
  'restore-trigger': 'RestoreTriggerFunctionArn',
  'record-failure': 'RecordFailureFunctionArn',
  redundancy: 'RedundancyFunctionArn',
  report: 'ReportFunctionArn',
};

/** Every Task state, with the function it invokes: bind each one when running the definition locally. */
export const TASK_STATE_FUNCTIONS = {
  Discover: 'discover',
  CheckShard: 'integrity',
  RecordIntegrityFailure: 'record-failure',
  SelectRestores: 'select-restores',
  RestoreBackup: 'restore-trigger',
  RecordRestoreFailure: 'record-failure',
  CopyShard: 'redundancy',
  Report: 'report',
} as const satisfies Partial<Record<StateName, PipelineFunctionName>>;

export type TaskStateName = keyof typeof TASK_STATE_FUNCTIONS;

/**
 * Task states that use `lambda:invoke.waitForTaskToken`: their output is what the sandbox sends with
 * SendTaskSuccess. The other Task states use `lambda:invoke`, whose output wraps the function's
 * return value as `{ Payload }`, so a local handler bound to them must return `{ Payload: result }`.
 */
export const CALLBACK_TASK_STATES: readonly TaskStateName[] = ['RestoreBackup'];

/**
 * Where each top-level Catch keeps the error it caught (`$.<key>`), with the state that failed and
 * what its failure leaves undone. Report receives the whole state and turns every one present into
 * a run-level CHECK_FAILED, so no caught error is dropped.
 */
export const CAUGHT_ERRORS = {
  integrityError: {
    state: 'Integrity',
    consequence: 'a shard failed and its failure could not be recorded',
    stage: 'integrity',
  },
  selectError: { state: 'SelectRestores', consequence: 'no restore ran' },
  restoresError: {
    state: 'Restores',
    consequence:
      'a restore failed and its failure could not be recorded: backups it left unrestored have no restore verdict',
  },
  redundancyError: { state: 'Redundancy', consequence: 'copies were not verified' },
} as const satisfies Record<string, { state: StateName; consequence: string; stage?: 'integrity' }>;

export interface CaughtError {
  state: StateName;
  consequence: string;
  error: { Error?: string; Cause?: string };
  /** The stage whose missing verdicts the report fails backup by backup. */
  stage?: 'integrity';
}

/** The errors the Catches left in the state Report receives, in pipeline order. */
export function caughtErrorsOf(state: unknown): CaughtError[] {
  if (typeof state !== 'object' || state === null) return [];
  const found: CaughtError[] = [];
  for (const [key, caught] of Object.entries(CAUGHT_ERRORS)) {
    const value = (state as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    const { Error: error, Cause: cause } = (typeof value === 'object' ? value : { Cause: String(value) }) as {
      Error?: unknown;
      Cause?: unknown;
    };
    found.push({
      state: caught.state,
      consequence: caught.consequence,
      ...('stage' in caught ? { stage: caught.stage } : {}),
      error: {
        ...(typeof error === 'string' ? { Error: error } : {}),
        ...(typeof cause === 'string' ? { Cause: cause } : {}),
      },
    });
  }
  return found;
}

/** Error names the definition matches or raises. */
export const PIPELINE_ERRORS = {
  backupValidationFailed: 'BackupValidationFailed',
  capacityUnavailable: 'Sandbox.CapacityUnavailable',
  restoreFailed: 'Sandbox.RestoreFailed',
  taskStopped: 'Sandbox.TaskStopped',
} as const;

/**
 * Replaces every `${Placeholder}` by the ARN given for it, as Step Functions' definition
 * substitutions do. A placeholder without an ARN is an error, so a half-substituted definition
 * never runs.
 */
export function substituteDefinition(text: string, arns: Record<PipelineFunctionName, string>): string {
  const byPlaceholder = new Map<string, string>();
  for (const [name, placeholder] of Object.entries(FUNCTION_ARN_PLACEHOLDERS)) {
    const arn = arns[name as PipelineFunctionName];
    if (typeof arn !== 'string' || arn === '') {
      throw new Error(`no ARN given for function "${name}" (placeholder \${${placeholder}})`);
    }
    byPlaceholder.set(placeholder, arn);
  }
  return text.replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, placeholder: string) => {
    const arn = byPlaceholder.get(placeholder);
    if (arn === undefined) {
      throw new Error(
        `the state machine definition uses an unknown placeholder ${whole}; known: ${[...byPlaceholder.keys()].join(', ')}`,
      );
    }
    return arn;
  });
}

type StateJson = Record<string, unknown> & { Type: string };
interface MachineJson {
  States: Record<string, StateJson>;
  [key: string]: unknown;
}

function forEachState(machine: MachineJson, visit: (name: string, state: StateJson) => void): void {
  for (const [name, state] of Object.entries(machine.States)) {
    visit(name, state);
    const processor = state.ItemProcessor as MachineJson | undefined;
    if (processor) forEachState(processor, visit);
  }
}

/**
 * The definition with fake or local ARNs substituted, ready for aws-local-stepfunctions 3.
 *
 * AWS resolves a Task's `TimeoutSecondsPath` against the state input; aws-local-stepfunctions
 * resolves it against the `Parameters` result instead, where a `lambda:invoke` task keeps the
 * state input under `Payload.item`. The paths are rewritten to point at the same value there, so
 * the restore timeout still applies locally. Heartbeats are not simulated by the library.
 */
export function definitionForLocalRun(
  arns: Record<PipelineFunctionName, string>,
  text: string = loadDefinitionText(),
): MachineJson {
  const machine = JSON.parse(substituteDefinition(text, arns)) as MachineJson;
  forEachState(machine, (name, state) => {
    if (state.Type !== 'Task' || typeof state.TimeoutSecondsPath !== 'string') return;
    const payload = (state.Parameters as { Payload?: Record<string, unknown> } | undefined)?.Payload;
    const itemKey = payload && Object.keys(payload).find((key) => payload[key] === '$');
    if (!itemKey) {
      throw new Error(
        `state "${name}" has TimeoutSecondsPath but its Payload does not carry the state input ("key.$": "$")`,
      );
    }
    const inPayload = itemKey.slice(0, -'.$'.length);
    state.TimeoutSecondsPath = state.TimeoutSecondsPath.replace(/^\$/, `$.Payload.${inPayload}`);
  });
  return machine;
}
