import type { Ledger, StageResultRecord } from '../ledger.ts';

/**
 * The stage results of backups checked at once, written to the ledger together: the records that
 * arrive in one turn of the event loop go in one recordResults call, which writes a series'
 * verdict and baseline once for all its backups instead of once a backup. With one backup at a
 * time each call holds one backup's records, as before; with many small backups in flight, the
 * main thread's ledger writes were the bound (issue 13). A failed write is thrown by the next
 * add() and by close(), so the stage stops taking backups as it did.
 */
export class ResultBatch {
  private queued: StageResultRecord[] = [];
  private scheduled = false;
  private written: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  constructor(private readonly ledger: Pick<Ledger, 'recordResults'>) {}

  add(records: readonly StageResultRecord[]): void {
    this.throwIfFailed();
    this.queued.push(...records);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Writes what is queued (also after an abort: those backups were checked); never throws. */
  settle(): Promise<void> {
    return this.flush();
  }

  private flush(): Promise<void> {
    this.written = this.written.then(async () => {
      const records = this.queued.splice(0);
      if (records.length === 0 || this.failure) return;
      try {
        await this.ledger.recordResults(records);
      } catch (error) {
        this.failure = { error };
      }
    });
    return this.written;
  }
}
