import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';

/** The part of SFNClient used here, so tests can record commands without a Step Functions server. */
export type TaskTokenClient = Pick<SFNClient, 'send'>;

/** Errors meaning the waiting step is gone (timed out, already answered): nothing left to tell it. */
const TOKEN_GONE = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

/** Step Functions limits: error 256 characters, cause 32,768. */
const MAX_ERROR = 256;
const MAX_CAUSE = 32_768;
const MAX_OUTPUT = 256 * 1024;

export interface TaskTokenReporterOptions {
  heartbeatSeconds: number;
  /** The step stopped waiting (timeout, heartbeat missed): the work should stop. */
  onGone?: (reason: string) => void;
  log?: (line: string) => void;
}

/**
 * Answers the state machine step that waits on this sandbox: heartbeats while the restore
 * runs, then success with the result or failure with the reason.
 */
export class TaskTokenReporter {
  private timer: NodeJS.Timeout | undefined;
  private answered = false;

  constructor(
    private readonly client: TaskTokenClient,
    private readonly taskToken: string,
    private readonly options: TaskTokenReporterOptions,
  ) {}

  /**
   * The step's heartbeat clock runs from the moment its token was issued, through RunTask,
   * provisioning and the image pull: answer at once, then on the interval.
   */
  startHeartbeats(): void {
    void this.heartbeat();
    const everyMs = Math.max(1, this.options.heartbeatSeconds) * 1000;
    this.timer = setInterval(() => {
      void this.heartbeat();
    }, everyMs);
    this.timer.unref();
  }

  async heartbeat(): Promise<void> {
    if (this.answered) return;
    try {
      await this.client.send(new SendTaskHeartbeatCommand({ taskToken: this.taskToken }));
    } catch (error) {
      const name = (error as Error).name;
      if (TOKEN_GONE.has(name)) {
        this.stopHeartbeats();
        this.options.onGone?.(`the waiting step is gone (${name}): it timed out or was stopped`);
        return;
      }
      this.options.log?.(`heartbeat failed (${name}: ${(error as Error).message}); will retry`);
    }
  }

  async succeed(output: unknown): Promise<void> {
    let text = JSON.stringify(output);
    if (Buffer.byteLength(text) > MAX_OUTPUT) {
      await this.fail('Sandbox.RestoreFailed', `the restore result is larger than ${MAX_OUTPUT} bytes`);
      return;
    }
    text ||= '{}';
    await this.answer(new SendTaskSuccessCommand({ taskToken: this.taskToken, output: text }));
  }

  async fail(error: string, cause: string): Promise<void> {
    await this.answer(
      new SendTaskFailureCommand({
        taskToken: this.taskToken,
        error: error.slice(0, MAX_ERROR),
        cause: cause.length > MAX_CAUSE ? `${cause.slice(0, MAX_CAUSE - 3)}...` : cause,
      }),
    );
  }

  stopHeartbeats(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async answer(command: SendTaskSuccessCommand | SendTaskFailureCommand): Promise<void> {
    this.stopHeartbeats();
    this.answered = true;
    try {
      if (command instanceof SendTaskSuccessCommand) await this.client.send(command);
      else await this.client.send(command);
    } catch (error) {
      const name = (error as Error).name;
      if (TOKEN_GONE.has(name)) {
        this.options.log?.(`the waiting step no longer accepts an answer (${name}); the run has moved on`);
        return;
      }
      throw error;
    }
  }
}
