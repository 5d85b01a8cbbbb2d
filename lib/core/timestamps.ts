/** A timestamp found in a backup's name: where it is and what it says (UTC). */
export interface NameTimestamp {
  index: number;
  length: number;
  date: Date;
}

const PATTERNS: RegExp[] = [
  // 2025-06-25T11-46-22Z, 2025-06-25_11:46:22, 2025-06-25 11.46.22
  /(?<!\d)(\d{4})-(\d{2})-(\d{2})[T_ -](\d{2})[-:.]?(\d{2})[-:.]?(\d{2})(?:\.\d+)?(Z)?(?!\d)/g,
  // 20250625_114622, 20250625T114622Z, 20250625-1146
  /(?<!\d)(\d{4})(\d{2})(\d{2})[T_-](\d{2})(\d{2})(\d{2})?(Z)?(?!\d)/g,
  // 2025-06-25
  /(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)/g,
  // 20250625
  /(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)/g,
];

function toDate(parts: Array<string | undefined>): Date | undefined {
  const [y, mo, d, h = '0', mi = '0', s = '0'] = parts.map((p) =>
    p === undefined || p === 'Z' ? undefined : p,
  );
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (year < 1990 || year > 2100 || month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return date.getUTCDate() === day ? date : undefined;
}

/** Every timestamp in a name, longest form first where forms overlap, in order of position. */
export function findTimestamps(name: string): NameTimestamp[] {
  const found: NameTimestamp[] = [];
  const taken = new Array<boolean>(name.length).fill(false);
  for (const pattern of PATTERNS) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(name); m !== null; m = pattern.exec(name)) {
      const start = m.index;
      const end = start + m[0].length;
      if (taken.slice(start, end).some(Boolean)) continue;
      const date = toDate(m.slice(1));
      if (!date) continue;
      for (let i = start; i < end; i++) taken[i] = true;
      found.push({ index: start, length: m[0].length, date });
    }
  }
  return found.sort((a, b) => a.index - b.index);
}

/** The name with its timestamps taken out and the separators around them tidied. */
export function withoutTimestamps(name: string): string {
  const pieces: string[] = [];
  let at = 0;
  for (const stamp of findTimestamps(name)) {
    pieces.push(name.slice(at, stamp.index));
    at = stamp.index + stamp.length;
  }
  pieces.push(name.slice(at));
  return pieces
    .map((piece) => piece.replace(/^[-_.\s]+|[-_.\s]+$/g, ''))
    .filter((piece) => piece.length > 0)
    .join('-');
}
