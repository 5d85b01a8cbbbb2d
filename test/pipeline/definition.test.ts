import '../../lib/pipeline/polyfills.ts';
import { ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../lib/core/errors.ts';
import { restoreItemsFor } from '../../lib/core/stages/select-restores.ts';
import {
  CAUGHT_ERRORS,
  caughtErrorsOf,
  definitionForLocalRun,
  FUNCTION_ARN_PLACEHOLDERS,
  loadDefinitionText,
  PIPELINE_ERRORS,
  type PipelineFunctionName,
  STATE_NAMES,
  substituteDefinition,
  TASK_STATE_FUNCTIONS,
  type TaskStateName,
} from '../../lib/pipeline/definition.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Handler = (input: Json) => Json | Promise<Json>;

const FAKE_ARNS = Object.fromEntries(
  Object.keys(FUNCTION_ARN_PLACEHOLDERS).map((name) => [
    name,
    `arn:aws:lambda:eu-west-1:123456789012:function:bv-${name}`,
  ]),
) as Record<PipelineFunctionName, string>;

const TASK_TOKEN = 'token-for-tests';

function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

interface Call {
  state: TaskStateName;
  input: { FunctionName: string; Payload: Record<string, Json> };
}

/** Healthy fake functions; a test replaces the ones it breaks. Every Task state is bound. */
function fakePipeline(overrides: Partial<Record<TaskStateName, Handler>> = {}) {
  const calls: Call[] = [];
  const healthy: Record<TaskStateName, Handler> = {
    Discover: () => ({
      Payload: {
        runId: 'run-1',
        shards: [0, 1, 2].map((shard) => ({ runId: 'run-1', shard })),
      },
    }),
    CheckShard: () => ({ Payload: { checked: true } }),
    RecordIntegrityFailure: () => ({ Payload: { recorded: true } }),
    SelectRestores: () => ({ Payload: { restores: [0, 1], heartbeatSeconds: 120, timeoutSeconds: 1800 } }),
    RestoreBackup: () => ({ status: 'PASS' }),
    RecordRestoreFailure: () => ({ Payload: { recorded: true } }),
    CopyShard: () => ({ Payload: { copies: 2 } }),
    Report: () => ({ Payload: { status: 'PASS', reportUrl: 's3://reports/reports/run-1.json' } }),
  };
  const handlers = Object.fromEntries(
    (Object.keys(TASK_STATE_FUNCTIONS) as TaskStateName[]).map((state) => [
      state,
      (input: Json) => {
        calls.push({ state, input: structuredClone(input) as Call['input'] });
        return (overrides[state] ?? healthy[state])(input);
      },
    ]),
  );
  const retryIntervalOverrides = Object.fromEntries(Object.keys(TASK_STATE_FUNCTIONS).map((s) => [s, 0]));
  const machine = new StateMachine(definitionForLocalRun(FAKE_ARNS) as never);
  const run = (input: Json = { trigger: 'test' }) =>
    machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides },
      context: { Execution: { Name: 'exec-1' }, Task: { Token: TASK_TOKEN } },
    }).result;
  const callsOf = (state: TaskStateName) => calls.filter((c) => c.state === state);
  return { run, calls, callsOf };
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExecutionError);
  return (error as ExecutionError).cause as Error;
}

describe('the state machine definition run by aws-local-stepfunctions', () => {
  it('binds every Task state to the function the contract names', () => {
    const text = loadDefinitionText();
    const tasks: Record<string, string> = {};
    const walk = (states: Record<string, Record<string, unknown>>) => {
      for (const [name, state] of Object.entries(states)) {
        if (state.Type === 'Task') tasks[name] = (state.Parameters as { FunctionName: string }).FunctionName;
        const processor = state.ItemProcessor as
          | { States: Record<string, Record<string, unknown>> }
          | undefined;
        if (processor) walk(processor.States);
      }
    };
    walk(JSON.parse(text).States);
    const expected = Object.fromEntries(
      Object.entries(TASK_STATE_FUNCTIONS).map(([state, fn]) => [
        state,
        `\${${FUNCTION_ARN_PLACEHOLDERS[fn]}}`,
      ]),
    );
    expect(tasks).toEqual(expected);
  });

  it('runs a healthy pipeline to Done, every state calling its own function with the contract payloads', async () => {
    const pipeline = fakePipeline();
    const output = (await pipeline.run({ trigger: 'schedule', sources: ['s3://b/p'] })) as Record<
      string,
      Json
    >;

    expect(output.report).toEqual({ status: 'PASS', reportUrl: 's3://reports/reports/run-1.json' });
    for (const call of pipeline.calls) {
      expect(call.input.FunctionName).toBe(FAKE_ARNS[TASK_STATE_FUNCTIONS[call.state]]);
    }
    expect(pipeline.callsOf('Discover')[0]?.input.Payload).toEqual({
      input: { trigger: 'schedule', sources: ['s3://b/p'] },
      executionName: 'exec-1',
    });
    expect(pipeline.callsOf('CheckShard').map((c) => c.input.Payload)).toEqual(
      expect.arrayContaining([0, 1, 2].map((shard) => ({ runId: 'run-1', shard }))),
    );
    expect(pipeline.callsOf('SelectRestores')[0]?.input.Payload).toEqual({ runId: 'run-1' });
    expect(pipeline.callsOf('RestoreBackup').map((c) => c.input.Payload)).toEqual(
      expect.arrayContaining(
        [0, 1].map((restore) => ({
          item: { runId: 'run-1', restore, heartbeatSeconds: 120, timeoutSeconds: 1800 },
          taskToken: TASK_TOKEN,
        })),
      ),
    );
    // issue 12: redundancy maps over the shards too, one invocation each.
    expect(pipeline.callsOf('CopyShard').map((c) => c.input.Payload)).toEqual(
      expect.arrayContaining([0, 1, 2].map((shard) => ({ runId: 'run-1', shard }))),
    );
    expect(pipeline.callsOf('CopyShard')).toHaveLength(3);
    const reportPayload = pipeline.callsOf('Report')[0]?.input.Payload;
    expect(reportPayload).toEqual({
      runId: 'run-1',
      state: expect.objectContaining({ discover: expect.objectContaining({ runId: 'run-1' }) }),
    });
    expect(caughtErrorsOf(reportPayload?.state)).toEqual([]);
    expect(pipeline.callsOf('RecordIntegrityFailure')).toHaveLength(0);
    expect(pipeline.callsOf('RecordRestoreFailure')).toHaveLength(0);
  });

  it('fails the execution with BackupValidationFailed when the report says FAIL', async () => {
    const pipeline = fakePipeline({
      Report: () => ({ Payload: { status: 'FAIL', reportUrl: 's3://reports/reports/run-1.json' } }),
    });
    const cause = await failureOf(pipeline.run());
    expect(cause.name).toBe(PIPELINE_ERRORS.backupValidationFailed);
    expect(pipeline.callsOf('Report')).toHaveLength(1);
  });

  it('succeeds on a WARN report (only FAIL fails the execution)', async () => {
    const pipeline = fakePipeline({ Report: () => ({ Payload: { status: 'WARN', reportUrl: 'x' } }) });
    const output = (await pipeline.run()) as { report: { status: string } };
    expect(output.report.status).toBe('WARN');
  });

  it('records a shard whose integrity check throws, without retrying it, and still checks the other shards', async () => {
    const pipeline = fakePipeline({
      CheckShard: (input) => {
        const payload = (input as { Payload: { shard: number } }).Payload;
        if (payload.shard === 1)
          throw new StoreError('cannot read s3://b/p/x.tar.gz', 'access-denied', 's3://b/p');
        return { Payload: { checked: true } };
      },
    });
    const output = (await pipeline.run()) as Record<string, Json>;

    expect(output.report).toMatchObject({ status: 'PASS' });
    const shardCalls = pipeline
      .callsOf('CheckShard')
      .map((c) => (c.input.Payload as { shard: number }).shard);
    expect(shardCalls.sort()).toEqual([0, 1, 2]);
    const recorded = pipeline.callsOf('RecordIntegrityFailure');
    expect(recorded).toHaveLength(1);
    const payload = recorded[0]?.input.Payload as { stage: string; item: Json; error: Json };
    expect(payload.stage).toBe('integrity');
    expect(payload.error).toEqual({ Error: 'StoreError', Cause: 'cannot read s3://b/p/x.tar.gz' });
    expect(payload.item).toMatchObject({ runId: 'run-1', shard: 1 });
    expect(pipeline.callsOf('Report')).toHaveLength(1);
  });

  it('retries a transient Lambda.ServiceException and carries on as if nothing happened', async () => {
    let failed = false;
    const pipeline = fakePipeline({
      CheckShard: () => {
        if (!failed) {
          failed = true;
          throw namedError('Lambda.ServiceException', 'Lambda is having a moment');
        }
        return { Payload: { checked: true } };
      },
    });
    await pipeline.run();
    expect(pipeline.callsOf('CheckShard')).toHaveLength(4);
    expect(pipeline.callsOf('RecordIntegrityFailure')).toHaveLength(0);
  });

  it('gives up on a transient error after the retries and records it as the shard failure', async () => {
    const pipeline = fakePipeline({
      CheckShard: () => {
        throw namedError('Lambda.TooManyRequestsException', 'Rate exceeded');
      },
    });
    await pipeline.run();
    expect(pipeline.callsOf('CheckShard')).toHaveLength(3 * 4);
    expect(pipeline.callsOf('RecordIntegrityFailure')).toHaveLength(3);
  });

  it('records a failed restore, then goes on to Redundancy and Report', async () => {
    const pipeline = fakePipeline({
      RestoreBackup: (input) => {
        const item = (input as { Payload: { item: { restore: number } } }).Payload.item;
        if (item.restore === 0) throw namedError(PIPELINE_ERRORS.restoreFailed, 'probe sqlite failed');
        return { status: 'PASS' };
      },
    });
    await pipeline.run();
    expect(pipeline.callsOf('RestoreBackup')).toHaveLength(2);
    const recorded = pipeline.callsOf('RecordRestoreFailure');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.input.Payload).toMatchObject({
      stage: 'restore',
      item: { runId: 'run-1', restore: 0 },
      error: { Error: PIPELINE_ERRORS.restoreFailed, Cause: 'probe sqlite failed' },
    });
    expect(pipeline.callsOf('CopyShard')).toHaveLength(3);
    expect(pipeline.callsOf('Report')).toHaveLength(1);
  });

  it('carries 3,000 selected restores as indexes and rebuilds every item in the Map', async () => {
    const runId = '2025-06-29T03:00:00.000Z-4f9c2a7e';
    const count = 3000;
    const selection = {
      restores: Array.from({ length: count }, (_, i) => i),
      heartbeatSeconds: 120,
      timeoutSeconds: 16200,
    };
    const pipeline = fakePipeline({
      Discover: () => ({ Payload: { runId, shards: [{ runId, shard: 0 }] } }),
      SelectRestores: () => ({ Payload: selection }),
    });
    const output = (await pipeline.run()) as Record<string, Json>;

    const items = pipeline.callsOf('RestoreBackup').map((c) => c.input.Payload.item as Record<string, Json>);
    expect(items).toHaveLength(count);
    const byRestore = [...items].sort((a, b) => (a.restore as number) - (b.restore as number));
    expect(byRestore).toEqual(
      Array.from({ length: count }, (_, restore) => ({
        runId,
        restore,
        heartbeatSeconds: 120,
        timeoutSeconds: 16200,
      })),
    );
    expect(restoreItemsFor(runId, selection)).toEqual(byRestore);
    // The scale matters: the same items carried as a list would pass Step Functions' 256 KB limit.
    expect(JSON.stringify(items).length).toBeGreaterThan(256 * 1024);
    const carried = JSON.stringify(output.select);
    expect(output.select).toMatchObject({ heartbeatSeconds: 120, timeoutSeconds: 16200 });
    expect(carried.length).toBeLessThan(25 * 1024);
    expect(JSON.stringify(output).length).toBeLessThan(25 * 1024);
    expect(pipeline.callsOf('RecordRestoreFailure')).toHaveLength(0);
    expect(pipeline.callsOf('Report')).toHaveLength(1);
  });

  it('times out a restore that outlives its timeoutSeconds and records it as a restore failure', async () => {
    const pipeline = fakePipeline({
      SelectRestores: () => ({
        Payload: { restores: [0], heartbeatSeconds: 120, timeoutSeconds: 1 },
      }),
      RestoreBackup: () => new Promise<Json>(() => {}),
    });
    await pipeline.run();
    expect(pipeline.callsOf('RecordRestoreFailure')[0]?.input.Payload).toMatchObject({
      stage: 'restore',
      item: { restore: 0 },
      error: { Error: 'States.Timeout' },
    });
    expect(pipeline.callsOf('Report')).toHaveLength(1);
  });

  it('retries a restore that found no Fargate capacity', async () => {
    let attempts = 0;
    const pipeline = fakePipeline({
      RestoreBackup: () => {
        attempts++;
        if (attempts === 1)
          throw namedError(PIPELINE_ERRORS.capacityUnavailable, 'no capacity in eu-west-1a');
        return { status: 'PASS' };
      },
      SelectRestores: () => ({
        Payload: { restores: [0], heartbeatSeconds: 120, timeoutSeconds: 60 },
      }),
    });
    await pipeline.run();
    expect(attempts).toBe(2);
    expect(pipeline.callsOf('RecordRestoreFailure')).toHaveLength(0);
  });

  it('does not retry a task stopped by ECS: the failure is recorded at once', async () => {
    const pipeline = fakePipeline({
      RestoreBackup: () => {
        throw namedError(PIPELINE_ERRORS.taskStopped, 'Essential container exited, exit code 137');
      },
    });
    await pipeline.run();
    expect(pipeline.callsOf('RestoreBackup')).toHaveLength(2);
    expect(pipeline.callsOf('RecordRestoreFailure')).toHaveLength(2);
  });

  it('issue 9.1: skips restores when restore selection fails, still checks redundancy, and hands the error to Report', async () => {
    const pipeline = fakePipeline({
      SelectRestores: () => {
        throw namedError('LedgerError', 'ledger table unreachable');
      },
    });
    const output = (await pipeline.run()) as Record<string, Json>;
    expect(output.selectError).toEqual({ Error: 'LedgerError', Cause: 'ledger table unreachable' });
    expect(pipeline.callsOf('RestoreBackup')).toHaveLength(0);
    expect(pipeline.callsOf('CopyShard')).toHaveLength(3);
    expect(pipeline.callsOf('Report')).toHaveLength(1);
    expect(caughtErrorsOf(pipeline.callsOf('Report')[0]?.input.Payload.state)).toEqual([
      expect.objectContaining({
        state: 'SelectRestores',
        error: { Error: 'LedgerError', Cause: 'ledger table unreachable' },
      }),
    ]);
  });

  it('issue 9.1: still reports when redundancy fails, handing the error to Report', async () => {
    const pipeline = fakePipeline({
      CopyShard: () => {
        throw namedError('StoreError', 'target bucket denied PutObject');
      },
    });
    const output = (await pipeline.run()) as Record<string, Json>;
    expect(output.redundancyError).toMatchObject({ Error: 'StoreError' });
    expect(pipeline.callsOf('Report')).toHaveLength(1);
    expect(caughtErrorsOf(pipeline.callsOf('Report')[0]?.input.Payload.state)).toEqual([
      expect.objectContaining({
        state: 'Redundancy',
        error: { Error: 'StoreError', Cause: 'target bucket denied PutObject' },
      }),
    ]);
  });

  it('issue 9.1: an Integrity map that cannot record a shard failure still goes on and hands the error to Report', async () => {
    const pipeline = fakePipeline({
      CheckShard: (input) => {
        if ((input as { Payload: { shard: number } }).Payload.shard === 1)
          throw namedError('StoreError', 'cannot read the shard');
        return { Payload: { checked: true } };
      },
      RecordIntegrityFailure: () => {
        throw namedError('LedgerError', 'ledger table unreachable');
      },
    });
    const output = (await pipeline.run()) as Record<string, Json>;
    expect(output.integrityError).toMatchObject({ Error: 'LedgerError' });
    expect(pipeline.callsOf('RecordIntegrityFailure')).toHaveLength(1);
    expect(pipeline.callsOf('SelectRestores')).toHaveLength(1);
    expect(pipeline.callsOf('CopyShard')).toHaveLength(3);
    expect(caughtErrorsOf(pipeline.callsOf('Report')[0]?.input.Payload.state)).toEqual([
      expect.objectContaining({
        state: 'Integrity',
        error: expect.objectContaining({ Error: 'LedgerError', Cause: 'ledger table unreachable' }),
      }),
    ]);
  });

  it('issue 9.1: a Restores map that cannot record a restore failure still goes on and hands the error to Report', async () => {
    const pipeline = fakePipeline({
      RestoreBackup: () => {
        throw namedError(PIPELINE_ERRORS.restoreFailed, 'probe sqlite failed');
      },
      RecordRestoreFailure: () => {
        throw namedError('LedgerError', 'ledger table unreachable');
      },
    });
    const output = (await pipeline.run()) as Record<string, Json>;
    expect(output.restoresError).toMatchObject({ Error: expect.any(String) });
    expect(pipeline.callsOf('RecordRestoreFailure').length).toBeGreaterThan(0);
    expect(pipeline.callsOf('CopyShard')).toHaveLength(3);
    expect(caughtErrorsOf(pipeline.callsOf('Report')[0]?.input.Payload.state)).toEqual([
      expect.objectContaining({ state: 'Restores' }),
    ]);
  });

  it('issue 9.1: every step after Discover catches everything into a key Report turns into CHECK_FAILED', () => {
    const definition = JSON.parse(loadDefinitionText()) as {
      States: Record<string, { Type: string; Catch?: Array<Record<string, unknown>>; Parameters?: Json }>;
    };
    const keyOf = Object.fromEntries(
      Object.entries(CAUGHT_ERRORS).map(([key, { state }]) => [state, `$.${key}`]),
    );
    const steps = Object.entries(definition.States).filter(
      ([name, s]) => (s.Type === 'Task' || s.Type === 'Map') && name !== 'Discover' && name !== 'Report',
    );
    expect(steps.map(([name]) => name).sort()).toEqual(Object.keys(keyOf).sort());
    for (const [name, state] of steps) {
      expect(state.Catch, name).toEqual([
        expect.objectContaining({ ErrorEquals: ['States.ALL'], ResultPath: keyOf[name] }),
      ]);
      const next = state.Catch?.[0]?.Next as string;
      expect(['SelectRestores', 'Redundancy', 'Report'], name).toContain(next);
    }
    expect(definition.States.Report?.Parameters).toMatchObject({ Payload: { 'state.$': '$' } });
  });

  it('issue 12: retries a Lambda client-side invocation timeout as a transient error', async () => {
    let failed = false;
    const pipeline = fakePipeline({
      Report: () => {
        if (!failed) {
          failed = true;
          throw namedError('Lambda.ClientExecutionTimeoutException', 'the invocation timed out client-side');
        }
        return { Payload: { status: 'PASS', reportUrl: 'x' } };
      },
    });
    const output = (await pipeline.run()) as { report: { status: string } };
    expect(output.report.status).toBe('PASS');
    expect(pipeline.callsOf('Report')).toHaveLength(2);
  });

  it('issue 12: a Restores child ends with {} whether its restore passed or its failure was recorded', async () => {
    const local = definitionForLocalRun(FAKE_ARNS) as unknown as {
      States: { Restores: { ItemProcessor: { StartAt: string; States: Record<string, unknown> } } };
    };
    const { StartAt, States } = local.States.Restores.ItemProcessor;
    const child = new StateMachine({ StartAt, States } as never);
    const item = { runId: 'run-1', restore: 7, heartbeatSeconds: 120, timeoutSeconds: 60 };
    const runChild = (handlers: Partial<Record<TaskStateName, Handler>>) =>
      child.run(item as never, {
        overrides: { taskResourceLocalHandlers: handlers as never },
        context: { Task: { Token: TASK_TOKEN } } as never,
      }).result;
    const passed = await runChild({
      RestoreBackup: () => ({ backupId: 's3://b/p/db.tar.gz', status: 'PASS', durationMs: 1234 }),
    });
    let recorded: Json = null;
    const failed = await runChild({
      RestoreBackup: () => {
        throw namedError(PIPELINE_ERRORS.restoreFailed, 'probe sqlite failed');
      },
      RecordRestoreFailure: (input) => {
        recorded = input;
        return { Payload: { recorded: 1 } };
      },
    });
    expect(recorded).toMatchObject({ Payload: { stage: 'restore', item: { restore: 7 } } });
    expect([passed, failed]).toEqual([{}, {}]);
    // So 40,000 children (more than the index list in the state can carry) stay far below 256 KB.
    expect(JSON.stringify(Array(40_000).fill(passed)).length).toBeLessThan(256 * 1024);
  });

  it('fails the execution when Discover fails: an infrastructure failure is never a pass', async () => {
    const pipeline = fakePipeline({
      Discover: () => {
        throw namedError('StoreError', 'source bucket not found');
      },
    });
    const cause = await failureOf(pipeline.run());
    expect(cause.name).toBe('StoreError');
    expect(pipeline.callsOf('Report')).toHaveLength(0);
  });

  it('fails the execution when the report cannot be written', async () => {
    const pipeline = fakePipeline({
      Report: () => {
        throw namedError('StoreError', 'reports bucket unreachable');
      },
    });
    const cause = await failureOf(pipeline.run());
    expect(cause.name).toBe('StoreError');
    expect(STATE_NAMES.report).toBe('Report');
  });
});

describe('substituteDefinition', () => {
  it('refuses to leave a placeholder without an ARN', () => {
    const { report: _dropped, ...partial } = FAKE_ARNS;
    expect(() => substituteDefinition(loadDefinitionText(), partial as typeof FAKE_ARNS)).toThrow(
      /no ARN given for function "report" \(placeholder \$\{ReportFunctionArn\}\)/,
    );
  });

  it('refuses a definition that uses a placeholder nobody provides', () => {
    expect(() => substituteDefinition(`{"Resource": "\${MysteryFunctionArn}"}`, FAKE_ARNS)).toThrow(
      /unknown placeholder \$\{MysteryFunctionArn\}/,
    );
  });

  it('keeps the AWS reference paths in the deployed text and rewrites them only for the local run', () => {
    const deployed = JSON.parse(loadDefinitionText());
    const restore = deployed.States.Restores.ItemProcessor.States.RestoreBackup;
    expect(restore.TimeoutSecondsPath).toBe('$.timeoutSeconds');
    expect(restore.HeartbeatSecondsPath).toBe('$.heartbeatSeconds');
    const local = definitionForLocalRun(FAKE_ARNS) as unknown as typeof deployed;
    expect(local.States.Restores.ItemProcessor.States.RestoreBackup.TimeoutSecondsPath).toBe(
      '$.Payload.item.timeoutSeconds',
    );
  });
});
