import { InterruptedError } from '../core/errors.ts';

/** Shell conventions (128 + the signal's number), documented in docs/contract.md. */
export const INTERRUPT_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_EXIT;

/** What delivers signals: the process, or a fake in tests. */
export interface SignalSource {
  on(event: InterruptSignal, listener: () => void): unknown;
  off(event: InterruptSignal, listener: () => void): unknown;
  exit(code: number): void;
}

/**
 * SIGINT and SIGTERM during a run: the first aborts the run (which then stops its work, cleans
 * up and records itself as ABORTED), a second one exits at once.
 */
export class Interrupts {
  private readonly controller = new AbortController();
  private received: InterruptSignal | undefined;
  private readonly listeners: Array<[InterruptSignal, () => void]>;

  constructor(
    private readonly source: SignalSource,
    private readonly stderr: NodeJS.WritableStream,
  ) {
    this.listeners = (Object.keys(INTERRUPT_EXIT) as InterruptSignal[]).map((name) => [
      name,
      () => this.onSignal(name),
    ]);
    for (const [name, listener] of this.listeners) source.on(name, listener);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first signal received, if any. */
  get interruptedBy(): InterruptSignal | undefined {
    return this.received;
  }

  private onSignal(name: InterruptSignal): void {
    if (this.received !== undefined) {
      this.stderr.write(`\nbackup-validator: ${name} again: exiting at once, without cleaning up\n`);
      this.source.exit(INTERRUPT_EXIT[name]);
      return;
    }
    this.received = name;
    this.stderr.write(
      `\nbackup-validator: ${name} received: stopping the run and cleaning up (${name === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to exit at once)\n`,
    );
    this.controller.abort(new InterruptedError(name));
  }

  dispose(): void {
    for (const [name, listener] of this.listeners) this.source.off(name, listener);
  }
}
