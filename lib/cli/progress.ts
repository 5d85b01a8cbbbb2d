import type { StageStatus } from '../core/findings.ts';
import type { Backup } from '../core/model.ts';
import type { StageEvents } from '../core/stages/context.ts';
import { humanBytes, humanCount, humanTime } from '../core/units.ts';

export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  quiet: boolean;
  /** For NO_COLOR and TERM=dumb (default: no colour settings). */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** The pipeline's stages, in the order a run goes through them. */
export type StageName = 'backup' | 'discover' | 'integrity' | 'restore' | 'redundancy' | 'report';

/** How often the line on a terminal is redrawn at most. */
const REDRAW_MS = 100;
const BAR_WIDTH = 20;

const STYLE = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33 } as const;
const STATUS_STYLE: Record<string, keyof typeof STYLE> = {
  PASS: 'green',
  WARN: 'yellow',
  FAIL: 'red',
  SKIPPED: 'dim',
};

const plural = (n: number, word: string) => `${humanCount(n)} ${word}${n === 1 ? '' : 's'}`;

/**
 * Progress on stderr, never results (they go to stdout). On a terminal: a header a stage, one line
 * redrawn in place (n/N backups, bytes, rate, ETA) and a line for each backup that warned or
 * failed, in colour unless NO_COLOR is set. Otherwise (piped, a log): one plain line a stage and
 * one a backup. Nothing with --quiet.
 */
export class Progress implements StageEvents {
  private stageName: StageName | undefined;
  private stageStarted = 0;
  private totalBackups = 0;
  private totalBytes = 0;
  private doneBackups = 0;
  private doneBytes = 0;
  /** Bytes of the backups finished; of those under way; and read since a backup last finished. */
  private finishedBytes = 0;
  private readonly underWay = new Map<string, number>();
  private readSinceFinish = 0;
  private foundBackups = 0;
  private foundBytes = 0;
  private current = '';
  private lastDraw = 0;
  private drawn = false;
  private readonly now: () => number;

  constructor(private readonly options: ProgressOptions) {
    this.now = options.now ?? Date.now;
  }

  private get tty(): boolean {
    return Boolean(this.options.stream.isTTY);
  }

  private get colour(): boolean {
    const env = this.options.env ?? {};
    return this.tty && !env.NO_COLOR && env.TERM !== 'dumb';
  }

  private paint(style: keyof typeof STYLE, text: string): string {
    return this.colour ? `\x1b[${STYLE[style]}m${text}\x1b[0m` : text;
  }

  private status(status: string): string {
    const style = STATUS_STYLE[status];
    return style ? this.paint(style, status) : status;
  }

  /** A line of its own (above the redrawn one on a terminal). */
  line(text: string): void {
    if (this.options.quiet) return;
    this.clear();
    this.options.stream.write(`${text}\n`);
  }

  /** Starts a stage with no known totals (discover, redundancy, report): its header. */
  stage(name: StageName, detail?: string): void {
    this.finishStage();
    this.stageName = name;
    this.stageStarted = this.now();
    this.totalBackups = 0;
    this.totalBytes = 0;
    if (name === 'discover') {
      this.foundBackups = 0;
      this.foundBytes = 0;
    }
    this.header(name, detail);
  }

  /**
   * Starts a stage that goes through backups: `backups` and `bytes` are its totals (default: what
   * discover found), against which n/N, the rate and the ETA are measured.
   */
  begin(name: StageName, backups = this.foundBackups, bytes = this.foundBytes): void {
    this.finishStage();
    this.stageName = name;
    this.stageStarted = this.now();
    this.totalBackups = backups;
    this.totalBytes = bytes;
    this.doneBackups = 0;
    this.doneBytes = 0;
    this.finishedBytes = 0;
    this.underWay.clear();
    this.readSinceFinish = 0;
    this.header(name, `${plural(backups, 'backup')}, ${humanBytes(bytes)}`);
  }

  /** Whether nothing is shown (--quiet): totals need not be worked out. */
  get quiet(): boolean {
    return this.options.quiet;
  }

  /** The stage under way, if any. */
  get currentStage(): StageName | undefined {
    return this.stageName;
  }

  discovered(backup: Backup): void {
    this.foundBackups++;
    this.foundBytes += backup.bytes;
    this.redraw(false);
  }

  backupStarted(backup: Backup): void {
    this.current = backup.id;
    this.underWay.set(backup.id, backup.bytes);
    this.redraw(true);
  }

  bytesRead(bytes: number): void {
    this.readSinceFinish += bytes;
    this.updateDone();
    this.redraw(false);
  }

  /**
   * Bytes done: the finished backups' sizes, plus what was read of those under way, never more
   * than their sizes (a pass may read a manifest or an archive inside a folder twice).
   */
  private updateDone(): void {
    let underWay = 0;
    for (const bytes of this.underWay.values()) underWay += bytes;
    this.doneBytes = this.finishedBytes + Math.min(this.readSinceFinish, underWay);
  }

  backupFinished(backup: Backup, stage: 'integrity' | 'restore', status: StageStatus): void {
    this.doneBackups++;
    this.finishedBytes += backup.bytes;
    this.underWay.delete(backup.id);
    this.readSinceFinish = 0;
    this.updateDone();
    if (this.options.quiet) return;
    const counter = `${this.doneBackups}/${this.totalBackups}`;
    if (!this.tty) {
      this.line(`${stage} ${counter}: ${status} ${backup.id} (${humanBytes(backup.bytes)})`);
      return;
    }
    if (status === 'WARN' || status === 'FAIL')
      this.line(`  ${this.status(status.padEnd(4))} ${backup.id} (${humanBytes(backup.bytes)})`);
    this.redraw(true);
  }

  /** Closes the last stage (its summary line) and clears the redrawn line. */
  end(): void {
    this.finishStage();
    this.stageName = undefined;
    this.clear();
  }

  private header(name: StageName, detail: string | undefined): void {
    this.line(
      this.tty
        ? `${this.paint('bold', `▸ ${name}`)}${detail ? `  ${detail}` : ''}`
        : `${name}:${detail ? ` ${detail}` : ' started'}`,
    );
  }

  private finishStage(): void {
    const name = this.stageName;
    if (name === undefined || this.options.quiet) return;
    const took = humanTime(this.now() - this.stageStarted);
    if (name === 'discover')
      this.line(
        `${name}: found ${plural(this.foundBackups, 'backup')}, ${humanBytes(this.foundBytes)} in ${took}`,
      );
    else if (name === 'integrity' || name === 'restore')
      this.line(
        `${name}: ${this.doneBackups}/${plural(this.totalBackups, 'backup')}, ${humanBytes(this.doneBytes)} in ${took}` +
          ` (${humanBytes(this.rate())}/s)`,
      );
    else this.line(`${name}: done in ${took}`);
  }

  private rate(): number {
    const seconds = (this.now() - this.stageStarted) / 1000;
    return seconds > 0 ? this.doneBytes / seconds : 0;
  }

  /** Seconds left: by bytes when the stage knows its bytes, else by backups. */
  private eta(): number | undefined {
    const elapsed = (this.now() - this.stageStarted) / 1000;
    if (this.totalBytes > 0 && this.doneBytes > 0)
      return (elapsed * Math.max(0, this.totalBytes - this.doneBytes)) / this.doneBytes;
    if (this.totalBackups > 0 && this.doneBackups > 0)
      return (elapsed * Math.max(0, this.totalBackups - this.doneBackups)) / this.doneBackups;
    return undefined;
  }

  private redraw(force: boolean): void {
    if (!this.tty || this.options.quiet || this.stageName === undefined) return;
    const t = this.now();
    if (!force && t - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = t;
    const name = this.stageName;
    if (name === 'discover') {
      this.draw(`  ${plural(this.foundBackups, 'backup')} found, ${humanBytes(this.foundBytes)}`);
      return;
    }
    if (name !== 'integrity' && name !== 'restore') return;
    const fraction =
      this.totalBytes > 0
        ? Math.min(1, this.doneBytes / this.totalBytes)
        : this.totalBackups > 0
          ? this.doneBackups / this.totalBackups
          : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${filled > 0 ? this.paint('green', '█'.repeat(filled)) : ''}${'░'.repeat(BAR_WIDTH - filled)}`;
    const eta = this.eta();
    const text =
      `  ${bar} ${`${Math.floor(fraction * 100)}%`.padStart(4)}  ${this.doneBackups}/${this.totalBackups} backups  ` +
      `${humanBytes(this.doneBytes)}/${humanBytes(this.totalBytes)}  ${humanBytes(this.rate())}/s  ` +
      `ETA ${eta === undefined ? '-' : humanTime(eta * 1000)}  ${this.current}`;
    this.draw(text);
  }

  private draw(text: string): void {
    // 0 is what a pseudo-terminal with no size reports: unknown, not zero wide.
    const columns = this.options.stream.columns || 100;
    // Cut to the terminal's width: a wrapped line could not be redrawn in place.
    const fitted = text.length >= columns ? `${text.slice(0, columns - 2)}…` : text;
    this.options.stream.write(`\r\x1b[K${fitted}`);
    this.drawn = true;
  }

  private clear(): void {
    if (!this.drawn) return;
    this.options.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
