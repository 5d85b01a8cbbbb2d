/** Sizes and times as a person reads them, in every text the tool writes (tables, findings, progress). */

export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * A whole count with thousands separators (`12,345`), as `toLocaleString('en-US')` writes it, without
 * its first call's ~25 ms of ICU set-up that every run's progress paid at start (issue 13).
 */
export function humanCount(count: number): string {
  return String(Math.round(count)).replace(/\B(?=(\d{3})+$)/g, ',');
}

/** A span of time in words: `6 ms`, `4.2 s`, `12 min 5 s`, `3 h 20 min`. */
export function humanTime(ms: number): string {
  if (ms < 1) return 'under 1 ms';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600)
    return seconds % 60 ? `${Math.floor(seconds / 60)} min ${seconds % 60} s` : `${seconds / 60} min`;
  const minutes = Math.round(seconds / 60);
  return minutes % 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes / 60} h`;
}

/**
 * How old something is, in whole units: `45 min`, `3 h`, `4 d` (minutes below two hours, hours
 * below three days); `future` for a negative age.
 */
export function humanAge(ms: number): string {
  if (ms < 0) return 'future';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 72) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}
