/**
 * A streaming JSON validator: a state machine over byte chunks that checks RFC 8259 syntax
 * without building values, so a multi-GiB JSON file is checked in constant memory.
 * (UTF-8 well-formedness is not checked; JSON.parse does not check it either.)
 */

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const VALUE = 0;
const KEY = 1;
const COLON = 2;
const AFTER = 3;
const DONE = 4;
const STRING = 5;
const ESCAPE = 6;
const UNICODE = 7;
const LITERAL = 8;
const N_MINUS = 9;
const N_ZERO = 10;
const N_INT = 11;
const N_DOT = 12;
const N_FRAC = 13;
const N_EXP = 14;
const N_EXP_SIGN = 15;
const N_EXP_DIGITS = 16;

const OBJECT = 1;
const ARRAY = 2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export class StreamingJsonValidator {
  private state = VALUE;
  private readonly stack: number[] = [];
  private offset = 0;
  /** After `[` or `{`: the closing bracket may come at once. */
  private emptyAllowed = false;
  private inKey = false;
  private literal = '';
  private literalIndex = 0;
  private hexLeft = 0;
  private sawAnything = false;

  write(chunk: Uint8Array): void {
    const length = chunk.length;
    let i = 0;
    while (i < length) {
      if (this.state === STRING) {
        // Fast path: run to the next quote, backslash or control character.
        let c = chunk[i] as number;
        while (c !== QUOTE && c !== BACKSLASH && c >= 0x20) {
          if (++i === length) break;
          c = chunk[i] as number;
        }
        if (i === length) break;
      }
      this.step(chunk[i] as number, this.offset + i);
      i++;
    }
    this.offset += length;
  }

  /** The input ended: the top-level value must be complete. */
  end(): void {
    if (
      this.stack.length === 0 &&
      (this.state === N_ZERO || this.state === N_INT || this.state === N_FRAC || this.state === N_EXP_DIGITS)
    ) {
      this.state = DONE;
    }
    if (this.state !== DONE) {
      throw new JsonSyntaxError(
        this.sawAnything
          ? `the JSON ends at byte ${this.offset} before its value is complete (truncated?)`
          : 'the file holds no JSON value (empty or only whitespace)',
        this.offset,
      );
    }
  }

  private syntaxError(at: number, c: number, expected: string): JsonSyntaxError {
    const shown = c >= 0x20 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `byte 0x${c.toString(16)}`;
    return new JsonSyntaxError(`unexpected ${shown} at byte ${at}: expected ${expected}`, at);
  }

  private afterValue(): void {
    this.state = this.stack.length === 0 ? DONE : AFTER;
  }

  private step(c: number, at: number): void {
    switch (this.state) {
      case VALUE:
        if (isWhitespace(c)) return;
        this.sawAnything = true;
        if (c === 0x5d && this.emptyAllowed && this.stack[this.stack.length - 1] === ARRAY) {
          this.stack.pop();
          this.emptyAllowed = false;
          this.afterValue();
          return;
        }
        this.emptyAllowed = false;
        switch (c) {
          case 0x7b:
            this.stack.push(OBJECT);
            this.state = KEY;
            this.emptyAllowed = true;
            return;
          case 0x5b:
            this.stack.push(ARRAY);
            this.state = VALUE;
            this.emptyAllowed = true;
            return;
          case QUOTE:
            this.inKey = false;
            this.state = STRING;
            return;
          case 0x2d:
            this.state = N_MINUS;
            return;
          case 0x30:
            this.state = N_ZERO;
            return;
          case 0x74:
            this.startLiteral('true');
            return;
          case 0x66:
            this.startLiteral('false');
            return;
          case 0x6e:
            this.startLiteral('null');
            return;
        }
        if (c >= 0x31 && c <= 0x39) {
          this.state = N_INT;
          return;
        }
        throw this.syntaxError(at, c, 'a value');
      case KEY:
        if (isWhitespace(c)) return;
        if (c === QUOTE) {
          this.emptyAllowed = false;
          this.inKey = true;
          this.state = STRING;
          return;
        }
        if (c === 0x7d && this.emptyAllowed) {
          this.emptyAllowed = false;
          this.stack.pop();
          this.afterValue();
          return;
        }
        throw this.syntaxError(at, c, 'a quoted key');
      case COLON:
        if (isWhitespace(c)) return;
        if (c === 0x3a) {
          this.state = VALUE;
          return;
        }
        throw this.syntaxError(at, c, '":"');
      case AFTER: {
        if (isWhitespace(c)) return;
        const top = this.stack[this.stack.length - 1];
        if (c === 0x2c) {
          this.state = top === OBJECT ? KEY : VALUE;
          return;
        }
        if ((c === 0x7d && top === OBJECT) || (c === 0x5d && top === ARRAY)) {
          this.stack.pop();
          this.afterValue();
          return;
        }
        throw this.syntaxError(at, c, top === OBJECT ? '"," or "}"' : '"," or "]"');
      }
      case DONE:
        if (isWhitespace(c)) return;
        throw this.syntaxError(at, c, 'nothing after the top-level value');
      case STRING:
        if (c === QUOTE) {
          if (this.inKey) this.state = COLON;
          else this.afterValue();
          return;
        }
        if (c === BACKSLASH) {
          this.state = ESCAPE;
          return;
        }
        throw this.syntaxError(at, c, 'no control character inside a string');
      case ESCAPE:
        if (c === 0x75) {
          this.hexLeft = 4;
          this.state = UNICODE;
          return;
        }
        if (
          c === QUOTE ||
          c === BACKSLASH ||
          c === 0x2f ||
          c === 0x62 ||
          c === 0x66 ||
          c === 0x6e ||
          c === 0x72 ||
          c === 0x74
        ) {
          this.state = STRING;
          return;
        }
        throw this.syntaxError(at, c, 'a valid escape');
      case UNICODE:
        if (!isHex(c)) throw this.syntaxError(at, c, 'a hex digit');
        if (--this.hexLeft === 0) this.state = STRING;
        return;
      case LITERAL:
        if (c !== this.literal.charCodeAt(this.literalIndex))
          throw this.syntaxError(at, c, `"${this.literal}"`);
        if (++this.literalIndex === this.literal.length) this.afterValue();
        return;
      case N_MINUS:
        if (c === 0x30) this.state = N_ZERO;
        else if (isDigit(c)) this.state = N_INT;
        else throw this.syntaxError(at, c, 'a digit');
        return;
      case N_ZERO:
      case N_INT:
        if (this.state === N_INT && isDigit(c)) return;
        if (c === 0x2e) {
          this.state = N_DOT;
          return;
        }
        if (c === 0x65 || c === 0x45) {
          this.state = N_EXP;
          return;
        }
        this.endNumber(c, at);
        return;
      case N_DOT:
        if (!isDigit(c)) throw this.syntaxError(at, c, 'a digit after "."');
        this.state = N_FRAC;
        return;
      case N_FRAC:
        if (isDigit(c)) return;
        if (c === 0x65 || c === 0x45) {
          this.state = N_EXP;
          return;
        }
        this.endNumber(c, at);
        return;
      case N_EXP:
        if (c === 0x2b || c === 0x2d) {
          this.state = N_EXP_SIGN;
          return;
        }
        if (!isDigit(c)) throw this.syntaxError(at, c, 'an exponent');
        this.state = N_EXP_DIGITS;
        return;
      case N_EXP_SIGN:
        if (!isDigit(c)) throw this.syntaxError(at, c, 'an exponent digit');
        this.state = N_EXP_DIGITS;
        return;
      case N_EXP_DIGITS:
        if (isDigit(c)) return;
        this.endNumber(c, at);
        return;
    }
  }

  private startLiteral(word: string): void {
    this.literal = word;
    this.literalIndex = 1;
    this.state = LITERAL;
  }

  /** A number ends at the first byte that cannot continue it; that byte is then read normally. */
  private endNumber(c: number, at: number): void {
    this.afterValue();
    this.step(c, at);
  }
}

/** Validates a whole buffer (convenience for tests and small inputs). */
export function validateJson(data: Uint8Array): void {
  const validator = new StreamingJsonValidator();
  validator.write(data);
  validator.end();
}
