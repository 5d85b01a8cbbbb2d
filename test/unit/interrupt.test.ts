import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { INTERRUPT_EXIT, type InterruptSignal, Interrupts } from '../../lib/cli/interrupt.ts';
import { InterruptedError } from '../../lib/core/errors.ts';

class FakeProcess extends EventEmitter {
  exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
  send(name: InterruptSignal): void {
    this.emit(name);
  }
}

function sink(): Writable & { text: string } {
  const out = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        out.text += String(chunk);
        done();
      },
    }),
    { text: '' },
  );
  return out;
}

describe('issue 10: interrupts', () => {
  it('issue 10: the first signal aborts the run with its name, a second one exits at once with its code', () => {
    const proc = new FakeProcess();
    const stderr = sink();
    const interrupts = new Interrupts(proc, stderr);
    proc.send('SIGTERM');
    expect(interrupts.signal.aborted).toBe(true);
    expect(interrupts.signal.reason).toBeInstanceOf(InterruptedError);
    expect((interrupts.signal.reason as InterruptedError).signal).toBe('SIGTERM');
    expect(proc.exits).toEqual([]);
    proc.send('SIGINT');
    expect(proc.exits).toEqual([INTERRUPT_EXIT.SIGINT]);
    expect(stderr.text).toMatch(/SIGTERM received: stopping the run[\s\S]*SIGINT again: exiting at once/);
    interrupts.dispose();
    expect(proc.listenerCount('SIGINT') + proc.listenerCount('SIGTERM')).toBe(0);
  });

  it('issue 10: the exit codes are the shell conventions, 130 for SIGINT and 143 for SIGTERM', () => {
    expect(INTERRUPT_EXIT).toEqual({ SIGINT: 130, SIGTERM: 143 });
  });
});
