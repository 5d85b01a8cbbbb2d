/** A root SHA256SUMS checked against the members the archive held. */
import {
  forEachSha256SumsLine,
  MANIFEST_NAME,
  MAX_MANIFEST_BYTES,
  normalizeRelativePath,
} from '../manifest.ts';
import type { RootManifestCheck } from './archive-inspection.ts';
import type { MemberTable } from './member-table.ts';

/** The member a manifest path names, following symbolic links inside the archive. */
function resolveMember(members: MemberTable, path: string): number | undefined {
  let slot = members.find(path);
  let current = path;
  for (let hops = 0; slot !== undefined && members.type(slot) === 'symlink' && hops < 16; hops++) {
    const target = members.linkTarget(slot) ?? '';
    const base = current.includes('/') ? current.slice(0, current.lastIndexOf('/') + 1) : '';
    const next = normalizeRelativePath(target.startsWith('/') ? '' : `${base}${target}`);
    if (next === undefined) return undefined;
    current = next;
    slot = members.find(next);
  }
  return slot;
}

/**
 * Checks the manifest line by line against the member table: no parsed copy of the manifest
 * is held, so the check adds little to the pass's memory at its end.
 */
export function checkRootManifest(
  memberPath: string,
  text: Buffer | undefined,
  tooLarge: boolean,
  members: MemberTable,
  incomplete: boolean,
): RootManifestCheck {
  const check: RootManifestCheck = {
    memberPath,
    incomplete,
    errors: [],
    verified: 0,
    mismatched: [],
    missing: [],
    unlisted: [],
  };
  if (tooLarge || text === undefined) {
    check.errors.push({
      line: 0,
      text: '',
      message: `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes and was not read`,
    });
    return check;
  }
  if (members.dropped > 0) {
    check.errors.push({
      line: 0,
      text: '',
      message: `the archive's member list passed the ${members.maxBytes}-byte memory limit after ${members.recorded} members (${members.dropped} more were not recorded), so the manifest was not checked`,
    });
    return check;
  }
  // Paths listed that are not members (or not files): few, so kept by name for repeats.
  const listedElsewhere = new Map<string, { sha256: string; line: number }>();
  const listedAgain = (line: number, lineText: string, path: string, first: number) =>
    check.errors.push({
      line,
      text: lineText,
      message: `"${path}" is listed again with a different checksum (first on line ${first})`,
    });
  forEachSha256SumsLine(
    text,
    (entry, lineText) => {
      const direct = members.find(entry.path);
      if (direct !== undefined) {
        const first = members.listedLine(direct);
        if (first > 0) {
          // The first listing was compared already; a repeat only needs the same checksum.
          const earlier =
            check.mismatched.find((m) => m.path === entry.path)?.expected ?? members.sha256(direct);
          if (earlier !== entry.sha256) listedAgain(entry.line, lineText, entry.path, first);
          return;
        }
        members.markListed(direct, entry.line);
      } else {
        const earlier = listedElsewhere.get(entry.path);
        if (earlier) {
          if (earlier.sha256 !== entry.sha256) listedAgain(entry.line, lineText, entry.path, earlier.line);
          return;
        }
        listedElsewhere.set(entry.path, { sha256: entry.sha256, line: entry.line });
      }
      const slot = resolveMember(members, entry.path);
      const type = slot === undefined ? undefined : members.type(slot);
      if (slot === undefined || type === 'directory' || type === 'other' || type === 'symlink') {
        if (!incomplete) check.missing.push({ path: entry.path, expected: entry.sha256 });
        return;
      }
      const actual = members.sha256(slot);
      if (actual !== entry.sha256) {
        check.mismatched.push({ path: entry.path, expected: entry.sha256, actual });
      } else check.verified++;
    },
    (error) => check.errors.push(error),
  );
  if (incomplete) return check;
  for (const [path, slot] of members.entries()) {
    if (path === MANIFEST_NAME || members.listedLine(slot) > 0) continue;
    const type = members.type(slot);
    if (type === 'file' || type === 'hardlink') check.unlisted.push(path);
  }
  return check;
}
