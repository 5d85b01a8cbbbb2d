import './polyfills.ts';
import { ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { makeDiscoverHandler } from '../../functions/discover/handler.ts';
import { makeIntegrityHandler } from '../../functions/integrity/handler.ts';
import { makeRecordFailureHandler } from '../../functions/record-failure/handler.ts';
import { makeRedundancyHandler } from '../../functions/redundancy/handler.ts';
import { makeReportHandler } from '../../functions/report/handler.ts';
import { makeSelectRestoresHandler } from '../../functions/select-restores/handler.ts';
import { BackupValidatorError } from '../core/errors.ts';
import type { RunTrigger } from '../core/ledger.ts';
import type { RunReport } from '../core/model.ts';
import type { CopyTarget } from '../core/ports.ts';
import { readJson, runKeys } from '../core/run-store.ts';
import type { StageContext } from '../core/stages/context.ts';
import type { RestoreItem } from '../core/stages/select-restores.ts';
import {
  definitionForLocalRun,
  FUNCTION_ARN_PLACEHOLDERS,
  PIPELINE_ERRORS,
  type PipelineFunctionName,
  type TaskStateName,
} from './definition.ts';
import type { LocalRestore } from './local-restores.ts';

export { type LocalRestore, localRestore, runRestoresLocally } from './local-restores.ts';

export interface LocalRunInput {
  runId: string;
  trigger: RunTrigger;
  sources: string[];
  config?: unknown;
  /** The objects whose arrival started the run, as functions/arrival passes them. */
  objects?: string[];
}

export interface LocalRunDeps {
  restore: LocalRestore;
  openTarget(url: string): CopyTarget;
  /** The folder relative redundancy targets are resolved against (default the process's). */
  cwd?: string;
  /** The definition text to run (default the file the stack inlines; tests pass the synthesized template's). */
  definitionText?: string;
  /** Seconds to wait between retries, by Task state (tests make them instant). */
  retryIntervals?: Partial<Record<TaskStateName, number>>;
  /** Backups one integrity shard reads at once (default 1). */
  concurrency?: number;
  /** Wraps the bound handlers (tests inject faults into the real ones). */
  wrapHandlers?(handlers: TaskHandlers): TaskHandlers;
}

export type TaskHandlers = Record<TaskStateName, (input: TaskInput) => Promise<Json>>;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type TaskInput = { FunctionName?: string; Payload: Record<string, Json> };

const LOCAL_ARNS = Object.fromEntries(
  Object.keys(FUNCTION_ARN_PLACEHOLDERS).map((name) => [
    name,
    `arn:aws:lambda:local:000000000000:function:${name}`,
  ]),
) as Record<PipelineFunctionName, string>;

function asJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null)) as Json;
}

/** Binds every Task of the definition to the handler code the Lambdas run, over a local context. */
export function localTaskHandlers(ctx: StageContext, deps: LocalRunDeps): TaskHandlers {
  const context = () => ctx;
  const discover = makeDiscoverHandler(context);
  const integrity = makeIntegrityHandler(context, undefined, deps.concurrency);
  const recordFailure = makeRecordFailureHandler(context);
  const select = makeSelectRestoresHandler(context);
  const redundancy = makeRedundancyHandler(context, deps.openTarget, deps.cwd ? { cwd: deps.cwd } : {});
  const report = makeReportHandler(context, () => {});
  const invoke =
    <E, R>(fn: (event: E) => Promise<R>) =>
    async (input: TaskInput): Promise<Json> => ({ Payload: asJson(await fn(input.Payload as E)) });
  return {
    Discover: invoke(discover),
    CheckShard: invoke(integrity),
    RecordIntegrityFailure: invoke(recordFailure),
    SelectRestores: invoke(select),
    RestoreBackup: async (input) =>
      asJson(await deps.restore(ctx, input.Payload.item as unknown as RestoreItem)),
    RecordRestoreFailure: invoke(recordFailure),
    CopyShard: invoke(redundancy),
    Report: invoke(report),
  };
}

/**
 * `comprehensive` on a laptop: the very definition the stack deploys, executed by
 * aws-local-stepfunctions with its Tasks bound to the handlers' code and the local sandbox.
 * A run that fails validation ends in the Fail state and still has its report; any other
 * failed execution is an infrastructure failure, never a verdict.
 */
export async function runPipelineLocally(
  ctx: StageContext,
  input: LocalRunInput,
  deps: LocalRunDeps,
): Promise<RunReport> {
  ctx.signal?.throwIfAborted();
  const machine = new StateMachine(definitionForLocalRun(LOCAL_ARNS, deps.definitionText) as never);
  const inFlight = new Set<Promise<unknown>>();
  const bound = tracked(localTaskHandlers(ctx, deps), inFlight);
  const execution = machine.run(asJson({ ...input, command: 'comprehensive' }), {
    overrides: {
      taskResourceLocalHandlers: (deps.wrapHandlers ? deps.wrapHandlers(bound) : bound) as never,
      ...(deps.retryIntervals ? { retryIntervalOverrides: deps.retryIntervals as never } : {}),
    },
    context: { Execution: { Name: input.runId }, Task: { Token: `local:${input.runId}` } } as never,
  });
  // An abort stops the execution (no Retry, no Catch recording failures) and waits for the Task
  // handlers in flight, which the same signal stops, so nothing writes after the run is closed.
  const onAbort = () => execution.abort();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await execution.result;
  } catch (error) {
    if (ctx.signal?.aborted) {
      await Promise.allSettled([...inFlight]);
      ctx.signal.throwIfAborted();
    }
    const cause = (error as { cause?: { name?: string } }).cause;
    const failedValidation =
      error instanceof ExecutionError &&
      (cause?.name === PIPELINE_ERRORS.backupValidationFailed ||
        /BackupValidationFailed/.test(String(error)));
    if (!failedValidation) {
      throw new BackupValidatorError(
        `the local pipeline run ${input.runId} failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
  return readJson<RunReport>(ctx.runStore, runKeys.report(input.runId));
}

/** The handlers, each call kept in `inFlight` until it settles. */
function tracked(handlers: TaskHandlers, inFlight: Set<Promise<unknown>>): TaskHandlers {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (input: TaskInput) => {
        const call = handler(input);
        inFlight.add(call);
        void call.then(
          () => inFlight.delete(call),
          () => inFlight.delete(call),
        );
        return call;
      },
    ]),
  ) as TaskHandlers;
}
