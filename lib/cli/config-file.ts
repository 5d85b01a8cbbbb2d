import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Config, parseConfig } from '../core/config.ts';
import { UsageError } from '../core/errors.ts';

/** The `--config` document: parsed and checked, or a usage error naming the file and where in it. */
export async function loadConfigFile(
  path: string | undefined,
  cwd: string,
): Promise<{ config: Config; document: unknown }> {
  if (path === undefined) return { config: parseConfig(undefined), document: undefined };
  const file = resolve(cwd, path);
  let textContent: string;
  try {
    textContent = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read configuration file ${file}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  let document: unknown;
  try {
    document = JSON.parse(textContent);
  } catch (error) {
    const { line, column } = lineAndColumn(textContent, jsonErrorOffset(textContent));
    throw new UsageError(
      `${file}:${line}:${column}: the configuration is not valid JSON: ${describe((error as Error).message)}`,
      undefined,
      { cause: error },
    );
  }
  try {
    return { config: parseConfig(document), document };
  } catch (error) {
    if (error instanceof UsageError)
      throw new UsageError(`${file}: ${error.message}`, error.key, { cause: error });
    throw error;
  }
}

/** V8's message without its offset or its quote of the document (the line and column say where). */
function describe(message: string): string {
  return message
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'the document ends too early');
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/**
 * Where the first JSON syntax error of `text` is (a UTF-16 offset; its length when the text ends
 * early). V8 gives no position for some errors ("Unexpected token"), so the grammar is walked here.
 */
export function jsonErrorOffset(text: string): number {
  let at = 0;
  class Stop extends Error {}
  const fail = (position = at): never => {
    at = position;
    throw new Stop();
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at] as string)) at++;
  };
  const literal = (word: string) => {
    for (let i = 0; i < word.length; i++) if (text[at + i] !== word[i]) fail(at + i);
    at += word.length;
  };
  const quoted = () => {
    at++;
    for (;;) {
      const char = text[at];
      if (char === undefined || char < ' ') fail();
      if (char === '"') {
        at++;
        return;
      }
      if (char === '\\') {
        const escaped = text[at + 1];
        if (escaped === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) fail(at + 1);
          at += 6;
        } else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) at += 2;
        else fail(at + 1);
      } else at++;
    }
  };
  const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const number = () => {
    NUMBER.lastIndex = at;
    if (!NUMBER.test(text)) fail();
    at = NUMBER.lastIndex;
  };
  /** The items of an object or array, `at` on its opening bracket. */
  const items = (close: '}' | ']', item: () => void) => {
    at++;
    space();
    if (text[at] === close) {
      at++;
      return;
    }
    for (;;) {
      item();
      space();
      if (text[at] === close) {
        at++;
        return;
      }
      if (text[at] !== ',') fail();
      at++;
    }
  };
  const member = () => {
    space();
    if (text[at] !== '"') fail();
    quoted();
    space();
    if (text[at] !== ':') fail();
    at++;
    value();
  };
  const value = (): void => {
    space();
    const char = text[at];
    if (char === '{') items('}', member);
    else if (char === '[') items(']', value);
    else if (char === '"') quoted();
    else if (char === 't') literal('true');
    else if (char === 'f') literal('false');
    else if (char === 'n') literal('null');
    else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) number();
    else fail();
  };
  try {
    value();
    space();
    if (at < text.length) fail();
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
  }
  return Math.min(at, text.length);
}
