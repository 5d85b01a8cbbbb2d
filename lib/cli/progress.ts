import type { StageStatus } from '../core/findings.ts';
import type { Backup } from '../core/model.ts';
import { humanBytes } from '../core/render.ts';
import type { StageEvents } from '../core/stages.ts';

export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  quiet: boolean;
  now?: () => number;
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal (bytes, rate, ETA), plain lines
 * otherwise, nothing with --quiet. Results never go here: they go to stdout.
 */
export class Progress implements StageEvents {
  private totalBytes = 0;
  private doneBytes = 0;
  private discoveredCount = 0;
  private finishedCount = 0;
  private totalCount = 0;
  private current = '';
  private stage = '';
  private startedAt = 0;
  private lastDraw = 0;
  private readonly now: () => number;

  constructor(private readonly options: ProgressOptions) {
    this.now = options.now ?? Date.now;
  }

  private get tty(): boolean {
    return Boolean(this.options.stream.isTTY);
  }

  line(text: string): void {
    if (this.options.quiet) return;
    if (this.tty) this.options.stream.write('\r\x1b[K');
    this.options.stream.write(`${text}\n`);
  }

  /** Sets what the bar measures against: the bytes and backups a stage will go through. */
  begin(stage: string, backups: number, bytes: number): void {
    this.stage = stage;
    this.totalBytes = bytes;
    this.totalCount = backups;
    this.doneBytes = 0;
    this.finishedCount = 0;
    this.startedAt = this.now();
    this.line(`${stage}: ${backups} backup(s), ${humanBytes(bytes)}`);
  }

  discovered(_backup: Backup): void {
    this.discoveredCount++;
    if (this.tty && this.discoveredCount % 100 === 0)
      this.draw(`discover: ${this.discoveredCount} backups found`);
  }

  backupStarted(backup: Backup): void {
    this.current = backup.id;
    this.redraw(true);
  }

  bytesRead(bytes: number): void {
    this.doneBytes += bytes;
    this.redraw(false);
  }

  backupFinished(backup: Backup, stage: 'integrity' | 'restore', status: StageStatus): void {
    this.finishedCount++;
    this.line(`${stage}: ${status.padEnd(7)} ${backup.id} (${humanBytes(backup.bytes)})`);
  }

  end(): void {
    if (this.tty && !this.options.quiet) this.options.stream.write('\r\x1b[K');
  }

  private redraw(force: boolean): void {
    if (!this.tty || this.options.quiet) return;
    const t = this.now();
    if (!force && t - this.lastDraw < 100) return;
    this.lastDraw = t;
    const elapsed = Math.max(1, t - this.startedAt) / 1000;
    const rate = this.doneBytes / elapsed;
    const fraction = this.totalBytes > 0 ? Math.min(1, this.doneBytes / this.totalBytes) : 0;
    const eta = rate > 0 && this.totalBytes > this.doneBytes ? (this.totalBytes - this.doneBytes) / rate : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const name = this.current.length > 40 ? `…${this.current.slice(-39)}` : this.current;
    this.draw(
      `${this.stage} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${humanBytes(this.doneBytes)}/${humanBytes(this.totalBytes)} ` +
        `${humanBytes(rate)}/s ETA ${Math.ceil(eta)}s ${this.finishedCount}/${this.totalCount} ${name}`,
    );
  }

  private draw(text: string): void {
    if (this.options.quiet) return;
    const columns = this.options.stream.columns ?? 120;
    this.options.stream.write(`\r\x1b[K${text.slice(0, columns - 1)}`);
  }
}
