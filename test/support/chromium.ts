import { execFile, execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Debian's `chromium` (the project's test set-up installs it: .ci/run). */
export function chromiumPath(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`])
        .toString()
        .trim();
    } catch {}
  }
  throw new Error('headless Chromium is needed for the report tests: apt-get install chromium');
}

export interface PageLook {
  /** Console messages, page errors and blocked requests Chromium logged while loading the page. */
  console: string[];
  /** The DOM after loading and layout. */
  dom: string;
}

const QUIET = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-sync',
  '--disable-extensions',
  // The browser's own services never leave this machine: every connection goes to a closed local port.
  '--proxy-server=http://127.0.0.1:9',
  '--proxy-bypass-list=<-loopback>',
  '--enable-logging=stderr',
  '--v=0',
];

/**
 * Opens a page as a person's browser would, takes a screenshot and dumps the DOM after layout. Any
 * request the page tried would be blocked by its Content-Security-Policy and logged as "Refused to".
 */
export async function lookAt(htmlFile: string, screenshot: string, userDataDir: string): Promise<PageLook> {
  const args = [...QUIET, `--user-data-dir=${userDataDir}`, '--window-size=1280,1800'];
  const url = pathToFileURL(htmlFile).href;
  const options = { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 };
  const shot = await run(chromiumPath(), [...args, `--screenshot=${screenshot}`, url], options);
  const dump = await run(chromiumPath(), [...args, '--dump-dom', url], options);
  const console = `${shot.stderr}\n${dump.stderr}`
    .split('\n')
    .filter((line) => /CONSOLE|Uncaught|Refused to|Content Security Policy/.test(line));
  return { console, dom: dump.stdout };
}

/** Every URL the DOM would fetch: sources, links, styles' url() and imports. A self-contained page has none. */
export function fetchedUrls(dom: string): string[] {
  const urls = [
    ...dom.matchAll(/\s(?:src|href|srcset|action|data|poster|background)\s*=\s*"([^"]*)"/gi),
    ...dom.matchAll(/url\(\s*['"]?([^'")]+)/gi),
    ...dom.matchAll(/@import\s+['"]([^'"]+)/gi),
  ].map((m) => m[1] as string);
  return urls.filter((u) => !u.startsWith('#') && !u.startsWith('data:'));
}
