import { StoreError } from '../errors.ts';
import { type Finding, FindingBudget, type FindingCode, finding } from '../findings.ts';
import { accessMessage, errorText } from './reading.ts';

/** One backup's findings as a pass finds them, within the finding budget. */
export class FindingList {
  private readonly budget = new FindingBudget();
  constructor(private readonly backupId: string) {}

  add(code: FindingCode, message: string, object?: string): void {
    this.budget.add(
      finding(code, message, { backup: this.backupId, ...(object !== undefined ? { object } : {}) }),
    );
  }

  /** An object that could not be read: gone from the store, or refused (never a pass either way). */
  unreadable(what: string, error: unknown, object: string, bytesRead?: number): void {
    const missing = error instanceof StoreError && error.kind === 'not-found';
    this.add(
      missing ? 'MISSING_OBJECT' : 'ACCESS_DENIED',
      missing
        ? `${what} is gone from the store since it was listed (${errorText(error)}): a backup was deleted or moved; find out by whom`
        : accessMessage(what, error, bytesRead),
      object,
    );
  }

  finish(): Finding[] {
    return this.budget.finish();
  }
}
