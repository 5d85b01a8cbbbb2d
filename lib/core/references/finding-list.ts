import { StoreError } from '../errors.ts';
import { type Finding, type FindingCode, finding } from '../findings.ts';
import { accessMessage, errorText } from './reading.ts';

/** Per-object findings of one code beyond this are summed up in one finding. */
const MAX_FINDINGS_PER_CODE = 100;

export class FindingList {
  readonly all: Finding[] = [];
  private readonly overflow = new Map<FindingCode, { count: number; examples: string[] }>();
  private readonly perCode = new Map<FindingCode, number>();
  constructor(private readonly backupId: string) {}

  add(code: FindingCode, message: string, object?: string): void {
    const sameCode = this.perCode.get(code) ?? 0;
    if (object !== undefined && sameCode >= MAX_FINDINGS_PER_CODE) {
      const entry = this.overflow.get(code) ?? { count: 0, examples: [] };
      entry.count++;
      if (entry.examples.length < 5) entry.examples.push(object);
      this.overflow.set(code, entry);
      return;
    }
    this.perCode.set(code, sameCode + 1);
    this.all.push(
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
    for (const [code, { count, examples }] of this.overflow) {
      this.all.push(
        finding(code, `${count} more objects have the same finding (${examples.join(', ')}, ...)`, {
          backup: this.backupId,
        }),
      );
    }
    this.overflow.clear();
    return this.all;
  }
}
