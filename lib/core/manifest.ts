/**
 * Reference checksum files: `SHA256SUMS` manifests (GNU coreutils `sha256sum` output, also
 * its `--tag` form) and `<archive>.sha256` sidecars.
 */

export const MANIFEST_NAME = 'SHA256SUMS';
export const SIDECAR_SUFFIX = '.sha256';
/** Reference files are small; a larger one is refused rather than held in memory. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export interface ManifestEntry {
  /** Normalized path relative to the folder holding the manifest (no `./`, `/`-separated). */
  path: string;
  /** Lower-case hex. */
  sha256: string;
  binary: boolean;
  line: number;
}

export interface ManifestLineError {
  line: number;
  text: string;
  message: string;
}

export interface ParsedManifest {
  entries: ManifestEntry[];
  errors: ManifestLineError[];
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** `./a//b` -> `a/b`; undefined when the path is empty, absolute or climbs out with `..`. */
export function normalizeRelativePath(raw: string): string | undefined {
  if (raw.startsWith('/')) return undefined;
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.length === 0 ? undefined : parts.join('/');
}

function unescapeName(name: string): string | undefined {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = name[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === 'r') out += '\r';
    else return undefined;
  }
  return out;
}

/** One checksum line: `<hex>  <path>`, `<hex> *<path>`, `\<hex>  <escaped path>` or `SHA256 (<path>) = <hex>`. */
function parseLine(raw: string): { sha256: string; path: string; binary: boolean } | string {
  let line = raw;
  let escaped = false;
  if (line.startsWith('\\')) {
    escaped = true;
    line = line.slice(1);
  }
  const tagged = /^SHA256 \((.*)\) = ([0-9a-fA-F]+)$/.exec(line);
  let sha256: string;
  let name: string;
  let binary = false;
  if (tagged) {
    name = tagged[1] as string;
    sha256 = tagged[2] as string;
  } else {
    const hex = line.slice(0, 64);
    if (!HEX64.test(hex)) {
      const firstToken = line.split(/\s/, 1)[0] ?? '';
      return /^[0-9a-fA-F]+$/.test(firstToken)
        ? `the checksum has ${firstToken.length} hex digits, a SHA-256 has 64`
        : 'it does not start with a 64-digit hex SHA-256';
    }
    const separator = line.slice(64, 66);
    if (separator === '  ' || separator === ' *') {
      binary = separator === ' *';
      name = line.slice(66);
    } else if (separator === ' ' || line.length === 64) {
      return 'the checksum is not followed by a file name';
    } else {
      return 'the checksum must be followed by two spaces (or " *") and the file name';
    }
    sha256 = hex;
  }
  if (!HEX64.test(sha256)) return `the checksum has ${sha256.length} hex digits, a SHA-256 has 64`;
  if (escaped) {
    const unescaped = unescapeName(name);
    if (unescaped === undefined) return 'the file name has an unknown backslash escape';
    name = unescaped;
  }
  if (name === '') return 'the file name is empty';
  return { sha256: sha256.toLowerCase(), path: name, binary };
}

/**
 * Visits each line of a SHA256SUMS text (a string, or its UTF-8 bytes) in order, one at a time,
 * so a manifest of 100,000 lines can be checked without holding them all, nor a decoded copy of
 * it. Repeated paths are not detected here.
 */
export function forEachSha256SumsLine(
  text: string | Buffer,
  onEntry: (entry: ManifestEntry, lineText: string) => void,
  onError: (error: ManifestLineError) => void,
): void {
  let start = 0;
  let lineNumber = 0;
  while (start < text.length) {
    const newline = typeof text === 'string' ? text.indexOf('\n', start) : text.indexOf(0x0a, start);
    const stop = newline === -1 ? text.length : newline;
    lineNumber++;
    let line = typeof text === 'string' ? text.slice(start, stop) : text.toString('utf8', start, stop);
    start = stop + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const parsed = parseLine(line);
    if (typeof parsed === 'string') {
      onError({ line: lineNumber, text: line, message: parsed });
      continue;
    }
    const path = normalizeRelativePath(parsed.path);
    if (path === undefined) {
      onError({
        line: lineNumber,
        text: line,
        message: `the path "${parsed.path}" is absolute, empty or leaves the manifest's folder`,
      });
      continue;
    }
    onEntry({ path, sha256: parsed.sha256, binary: parsed.binary, line: lineNumber }, line);
  }
}

/** Parses a SHA256SUMS text; every malformed line becomes an error with its line number, never a throw. */
export function parseSha256Sums(text: string): ParsedManifest {
  const entries: ManifestEntry[] = [];
  const errors: ManifestLineError[] = [];
  const seen = new Map<string, ManifestEntry>();
  forEachSha256SumsLine(
    text,
    (entry, lineText) => {
      const earlier = seen.get(entry.path);
      if (!earlier) {
        seen.set(entry.path, entry);
        entries.push(entry);
      } else if (earlier.sha256 !== entry.sha256) {
        errors.push({
          line: entry.line,
          text: lineText,
          message: `"${entry.path}" is listed again with a different checksum (first on line ${earlier.line})`,
        });
      }
    },
    (error) => errors.push(error),
  );
  return { entries, errors };
}

export type SidecarParse = { ok: true; sha256: string; namedPath?: string } | { ok: false; message: string };

/** `<archive>.sha256`: a bare hex SHA-256, or one coreutils line naming the archive. */
export function parseSidecar(text: string, archiveName: string): SidecarParse {
  const lines = text
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (lines.length === 0) return { ok: false, message: 'the sidecar is empty' };
  if (lines.length > 1) {
    return { ok: false, message: `the sidecar has ${lines.length} checksum lines; it should hold one` };
  }
  const line = (lines[0] as string).trim();
  if (HEX64.test(line)) return { ok: true, sha256: line.toLowerCase() };
  const parsed = parseLine(lines[0] as string);
  if (typeof parsed === 'string') return { ok: false, message: parsed };
  const base = parsed.path.split('/').pop() ?? parsed.path;
  const archiveBase = archiveName.split('/').pop() ?? archiveName;
  if (base !== archiveBase) {
    return {
      ok: false,
      message: `the sidecar names "${parsed.path}", not the archive "${archiveBase}"`,
    };
  }
  return { ok: true, sha256: parsed.sha256, namedPath: parsed.path };
}

/** Formats a manifest line error the same way everywhere. */
export function describeManifestError(manifestPath: string, error: ManifestLineError): string {
  // Line 0: the manifest as a whole could not be checked (too large, or too many members to hold).
  if (error.line === 0) {
    return `${manifestPath} was not checked: ${error.message}; the files it lists cannot be verified against it`;
  }
  const shown = error.text.length > 120 ? `${error.text.slice(0, 117)}...` : error.text;
  return `${manifestPath} line ${error.line} is malformed (${error.message}): "${shown}"; the file it names cannot be verified; regenerate the manifest with sha256sum`;
}
