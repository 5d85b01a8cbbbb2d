import { describe, expect, it } from 'vitest';
import {
  JsonSyntaxError,
  StreamingJsonValidator,
  validateJson,
} from '../../lib/core/restore/json-validator.ts';

const VALID = [
  '{}',
  '[]',
  ' { "a" : [ 1 , -2.5e+10 , 0 , 0.0 , 1E3 , true , false , null , "x\\"y\\\\z\\u00e9\\n" ] } ',
  '"just a string"',
  '42',
  '-0',
  '[[[[]]],{}]',
  '{"nested":{"deeper":{"k":[{"a":1},{"b":"é ünïcødé"}]}}}',
  '\n\t[1]\r\n',
];

const INVALID = [
  '',
  '   ',
  '{',
  '{"a":1',
  '{"a" 1}',
  '{"a":1,}',
  '[1,]',
  '[1 2]',
  '01',
  '1.',
  '-',
  '1e',
  '.5',
  '"unterminated',
  '"bad \\x escape"',
  '"bad \\u12G4"',
  '"tab\tinside"',
  'tru',
  'nul',
  '{"a":1}}',
  '[1] [2]',
  "{'a':1}",
  '{a:1}',
  'NaN',
];

function validateInChunks(text: string, size: number): void {
  const bytes = Buffer.from(text);
  const validator = new StreamingJsonValidator();
  for (let at = 0; at < bytes.length; at += size) validator.write(bytes.subarray(at, at + size));
  validator.end();
}

describe('streaming JSON validator', () => {
  for (const text of VALID) {
    it(`accepts ${JSON.stringify(text)} whole and in odd-sized chunks`, () => {
      expect(() => JSON.parse(text)).not.toThrow();
      for (const size of [text.length || 1, 1, 2, 3, 7])
        expect(() => validateInChunks(text, size)).not.toThrow();
    });
  }
  for (const text of INVALID) {
    it(`rejects ${JSON.stringify(text)} like JSON.parse, in any chunking`, () => {
      expect(() => JSON.parse(text)).toThrow();
      for (const size of [text.length || 1, 1, 3])
        expect(() => validateInChunks(text, size)).toThrow(JsonSyntaxError);
    });
  }

  it('agrees with JSON.parse on every prefix of a document (truncation anywhere is caught)', () => {
    const doc = JSON.stringify({ a: [1, -2.5, 'x"y', { b: null, c: true }], d: 1e21 });
    for (let cut = 0; cut <= doc.length; cut++) {
      const prefix = doc.slice(0, cut);
      let parses = true;
      try {
        JSON.parse(prefix);
      } catch {
        parses = false;
      }
      const validates = (() => {
        try {
          validateJson(Buffer.from(prefix));
          return true;
        } catch {
          return false;
        }
      })();
      expect(validates, `prefix of ${cut} bytes: ${prefix}`).toBe(parses);
    }
  });

  it('names the offset of the error', () => {
    try {
      validateJson(Buffer.from('{"a":1,"b":?}'));
      expect.unreachable();
    } catch (error) {
      expect((error as JsonSyntaxError).offset).toBe(11);
      expect((error as Error).message).toMatch(/unexpected "\?" at byte 11: expected a value/);
    }
  });
});
