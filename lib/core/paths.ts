import { realpath } from 'node:fs/promises';
import path from 'node:path';

/** The folder the tool keeps its own files in; a folder source never lists it. */
export const TOOL_FOLDER = '.backup-validator';

/**
 * Where a local path really is: symbolic links of its existing part resolved, the part that
 * does not exist yet appended as given. So a ledger about to be made is judged where it will land.
 */
export async function realLocation(target: string): Promise<string> {
  let existing = path.resolve(target);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(target);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** Whether `child` is `parent` or lies below it (both absolute and already resolved). */
export function isWithin(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

/** The first local folder source that `target` lies in (links resolved), or undefined. */
export async function sourceHolding(target: string, sources: readonly string[]): Promise<string | undefined> {
  const where = await realLocation(target);
  for (const source of sources) {
    if (source.startsWith('s3://')) continue;
    if (isWithin(where, await realLocation(source))) return source;
  }
  return undefined;
}
