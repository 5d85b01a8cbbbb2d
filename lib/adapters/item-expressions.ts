/**
 * DynamoDB's expression language (condition, key-condition, update and projection expressions)
 * over plain document items, as the DocumentClient hands them over: what the embedded ledger
 * needs to run the DynamoDB ledger's own conditional writes in process, with DynamoDB's rules
 * (comparisons only between values of one type, strings ordered by UTF-8 bytes, a missing
 * attribute compares false).
 */

export type Item = Record<string, unknown>;
export type Names = Record<string, string> | undefined;
export type Values = Record<string, unknown> | undefined;

type PathStep = { name: string } | { index: number };
type Operand =
  | { kind: 'path'; path: PathStep[] }
  | { kind: 'value'; name: string }
  | { kind: 'call'; fn: string; args: Operand[] };
export type Condition =
  | { kind: 'and' | 'or'; left: Condition; right: Condition }
  | { kind: 'not'; inner: Condition }
  | { kind: 'compare'; op: string; left: Operand; right: Operand }
  | { kind: 'between'; value: Operand; low: Operand; high: Operand }
  | { kind: 'in'; value: Operand; list: Operand[] }
  | { kind: 'function'; fn: string; args: Operand[] };
type SetValue = { left: Operand; op?: '+' | '-'; right?: Operand };
export interface UpdatePlan {
  set: Array<{ path: PathStep[]; value: SetValue }>;
  remove: PathStep[][];
}

export class ExpressionError extends Error {
  override readonly name = 'ValidationException';
}

const TOKEN = /\s*(<>|<=|>=|[=<>(),.[\]+-]|[#:]?[A-Za-z0-9_]+)/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) throw new ExpressionError(`invalid expression at "${text.slice(at)}": ${text}`);
    tokens.push(match[1] as string);
  }
  return tokens;
}

class Parser {
  private at = 0;
  private readonly tokens: string[];
  constructor(
    private readonly text: string,
    private readonly names: Names,
  ) {
    this.tokens = tokenize(text);
  }

  peek(offset = 0): string | undefined {
    return this.tokens[this.at + offset];
  }
  keyword(word: string): boolean {
    if (this.peek()?.toUpperCase() !== word) return false;
    this.at++;
    return true;
  }
  expect(token: string): void {
    if (this.tokens[this.at] !== token) this.fail(`expected "${token}"`);
    this.at++;
  }
  done(): boolean {
    return this.at >= this.tokens.length;
  }
  fail(why: string): never {
    throw new ExpressionError(`${why} at token ${this.at} of: ${this.text}`);
  }

  condition(): Condition {
    let left = this.conjunction();
    while (this.keyword('OR')) left = { kind: 'or', left, right: this.conjunction() };
    return left;
  }
  private conjunction(): Condition {
    let left = this.negation();
    while (this.keyword('AND')) left = { kind: 'and', left, right: this.negation() };
    return left;
  }
  private negation(): Condition {
    if (this.keyword('NOT')) return { kind: 'not', inner: this.negation() };
    return this.primary();
  }
  private primary(): Condition {
    if (this.peek() === '(') {
      this.at++;
      const inner = this.condition();
      this.expect(')');
      return inner;
    }
    const token = this.peek() ?? '';
    if (/^(attribute_exists|attribute_not_exists|attribute_type|begins_with|contains)$/.test(token)) {
      this.at++;
      return { kind: 'function', fn: token, args: this.args() };
    }
    const left = this.operand();
    if (this.keyword('BETWEEN')) {
      const low = this.operand();
      if (!this.keyword('AND')) this.fail('expected AND in BETWEEN');
      return { kind: 'between', value: left, low, high: this.operand() };
    }
    if (this.keyword('IN')) return { kind: 'in', value: left, list: this.args() };
    const op = this.peek();
    if (op === undefined || !['=', '<>', '<', '<=', '>', '>='].includes(op))
      this.fail('expected a comparison');
    this.at++;
    return { kind: 'compare', op, left, right: this.operand() };
  }
  private args(): Operand[] {
    this.expect('(');
    const list = [this.operand()];
    while (this.peek() === ',') {
      this.at++;
      list.push(this.operand());
    }
    this.expect(')');
    return list;
  }
  operand(): Operand {
    const token = this.peek();
    if (token === undefined) this.fail('expected an operand');
    if (token.startsWith(':')) {
      this.at++;
      return { kind: 'value', name: token };
    }
    if (this.peek(1) === '(' && /^(if_not_exists|list_append|size)$/.test(token)) {
      this.at++;
      return { kind: 'call', fn: token, args: this.args() };
    }
    return { kind: 'path', path: this.path() };
  }
  path(): PathStep[] {
    const steps: PathStep[] = [{ name: this.name() }];
    for (;;) {
      if (this.peek() === '.') {
        this.at++;
        steps.push({ name: this.name() });
      } else if (this.peek() === '[') {
        this.at++;
        const index = Number(this.peek());
        if (!Number.isInteger(index)) this.fail('expected a list index');
        this.at++;
        this.expect(']');
        steps.push({ index });
      } else return steps;
    }
  }
  private name(): string {
    const token = this.peek();
    if (token === undefined || !/^#?[A-Za-z0-9_]+$/.test(token)) this.fail('expected an attribute name');
    this.at++;
    if (!token.startsWith('#')) return token;
    const name = this.names?.[token];
    if (name === undefined) this.fail(`${token} is not in ExpressionAttributeNames`);
    return name;
  }
}

const conditionCache = new Map<string, Condition>();
const updateCache = new Map<string, UpdatePlan>();

function cacheKey(text: string, names: Names): string {
  return names ? `${text}\u0000${JSON.stringify(names)}` : text;
}

export function parseCondition(text: string, names: Names): Condition {
  const key = cacheKey(text, names);
  let parsed = conditionCache.get(key);
  if (!parsed) {
    const parser = new Parser(text, names);
    parsed = parser.condition();
    if (!parser.done()) parser.fail('unexpected text');
    conditionCache.set(key, parsed);
  }
  return parsed;
}

export function parseUpdate(text: string, names: Names): UpdatePlan {
  const key = cacheKey(text, names);
  const cached = updateCache.get(key);
  if (cached) return cached;
  const parser = new Parser(text, names);
  const plan: UpdatePlan = { set: [], remove: [] };
  while (!parser.done()) {
    if (parser.keyword('SET')) {
      do {
        const path = parser.path();
        parser.expect('=');
        const left = parser.operand();
        const op = parser.peek();
        if (op === '+' || op === '-') {
          parser.expect(op);
          plan.set.push({ path, value: { left, op, right: parser.operand() } });
        } else plan.set.push({ path, value: { left } });
      } while (parser.peek() === ',' && parser.expect(',') === undefined);
    } else if (parser.keyword('REMOVE')) {
      do plan.remove.push(parser.path());
      while (parser.peek() === ',' && parser.expect(',') === undefined);
    } else parser.fail('expected SET or REMOVE');
  }
  updateCache.set(key, plan);
  return plan;
}

/** The attribute names a projection expression keeps (top-level only, as the ledger projects). */
export function parseProjection(text: string, names: Names): string[] {
  return text.split(',').map((part) => {
    const parser = new Parser(part.trim(), names);
    const path = parser.path();
    return 'name' in (path[0] as PathStep) ? (path[0] as { name: string }).name : '';
  });
}

function resolve(item: Item | undefined, path: PathStep[]): unknown {
  let current: unknown = item;
  for (const step of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current =
      'name' in step
        ? Array.isArray(current)
          ? undefined
          : (current as Item)[step.name]
        : Array.isArray(current)
          ? current[step.index]
          : undefined;
  }
  return current;
}

function operandValue(operand: Operand, item: Item | undefined, values: Values): unknown {
  if (operand.kind === 'path') return resolve(item, operand.path);
  if (operand.kind === 'value') {
    if (!values || !(operand.name in values))
      throw new ExpressionError(`${operand.name} is not in ExpressionAttributeValues`);
    return values[operand.name];
  }
  const [a, b] = operand.args as [Operand, Operand];
  if (operand.fn === 'if_not_exists') {
    const current = operandValue(a, item, values);
    return current === undefined ? operandValue(b, item, values) : current;
  }
  if (operand.fn === 'list_append') {
    const x = operandValue(a, item, values);
    const y = operandValue(b, item, values);
    if (!Array.isArray(x) || !Array.isArray(y)) throw new ExpressionError('list_append needs two lists');
    return [...x, ...y];
  }
  const v = operandValue(a, item, values);
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (v instanceof Set) return v.size;
  if (v && typeof v === 'object') return Object.keys(v).length;
  return undefined;
}

function typeOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (value === null) return 'NULL';
  if (typeof value === 'string') return 'S';
  if (typeof value === 'number' || typeof value === 'bigint') return 'N';
  if (typeof value === 'boolean') return 'BOOL';
  if (value instanceof Uint8Array) return 'B';
  if (Array.isArray(value)) return 'L';
  if (value instanceof Set) return 'SS';
  return 'M';
}

/** DynamoDB's order: numbers by value, strings by UTF-8 bytes; undefined across types. */
function order(a: unknown, b: unknown): number | undefined {
  const type = typeOf(a);
  if (type === undefined || type !== typeOf(b)) return undefined;
  if (type === 'N') return Number(a) - Number(b);
  if (type === 'S') return compareUtf8(a as string, b as string);
  if (type === 'B') return Buffer.compare(a as Uint8Array, b as Uint8Array);
  return undefined;
}

export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals UTF-8 order unless a surrogate meets a code unit above it.
  if (!/[\ud800-\udfff]/.test(a) && !/[\ud800-\udfff]/.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function equal(a: unknown, b: unknown): boolean {
  if (typeOf(a) === undefined || typeOf(a) !== typeOf(b)) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

export function evaluate(condition: Condition, item: Item | undefined, values: Values): boolean {
  switch (condition.kind) {
    case 'and':
      return evaluate(condition.left, item, values) && evaluate(condition.right, item, values);
    case 'or':
      return evaluate(condition.left, item, values) || evaluate(condition.right, item, values);
    case 'not':
      return !evaluate(condition.inner, item, values);
    case 'between': {
      const v = operandValue(condition.value, item, values);
      const low = order(v, operandValue(condition.low, item, values));
      const high = order(v, operandValue(condition.high, item, values));
      return low !== undefined && high !== undefined && low >= 0 && high <= 0;
    }
    case 'in': {
      const v = operandValue(condition.value, item, values);
      return condition.list.some((o) => equal(v, operandValue(o, item, values)));
    }
    case 'function': {
      const [a, b] = condition.args as [Operand, Operand];
      const path = a.kind === 'path' ? a.path : undefined;
      if (condition.fn === 'attribute_exists') return path !== undefined && resolve(item, path) !== undefined;
      if (condition.fn === 'attribute_not_exists')
        return path !== undefined && resolve(item, path) === undefined;
      const v = operandValue(a, item, values);
      const w = operandValue(b, item, values);
      if (condition.fn === 'attribute_type') return typeOf(v) === w;
      if (condition.fn === 'begins_with')
        return typeof v === 'string' && typeof w === 'string' && v.startsWith(w);
      if (typeof v === 'string') return typeof w === 'string' && v.includes(w);
      if (Array.isArray(v)) return v.some((x) => equal(x, w));
      if (v instanceof Set) return v.has(w);
      return false;
    }
    case 'compare': {
      const a = operandValue(condition.left, item, values);
      const b = operandValue(condition.right, item, values);
      if (condition.op === '=') return equal(a, b);
      if (condition.op === '<>') return a !== undefined && b !== undefined && !equal(a, b);
      const o = order(a, b);
      if (o === undefined) return false;
      return condition.op === '<'
        ? o < 0
        : condition.op === '<='
          ? o <= 0
          : condition.op === '>'
            ? o > 0
            : o >= 0;
    }
  }
}

/** Applies an update to a copy of the item (a new item when there is none) and returns it. */
export function applyUpdate(item: Item | undefined, key: Item, plan: UpdatePlan, values: Values): Item {
  const next = structuredClone(item ?? key) as Item;
  const computed = plan.set.map(({ path, value }) => {
    const left = operandValue(value.left, item, values);
    if (!value.op) return { path, v: left };
    const right = operandValue(value.right as Operand, item, values);
    if (typeof left !== 'number' || typeof right !== 'number')
      throw new ExpressionError('+ and - need two numbers');
    return { path, v: value.op === '+' ? left + right : left - right };
  });
  for (const { path, v } of computed) assign(next, path, structuredClone(v));
  for (const path of plan.remove) assign(next, path, undefined);
  for (const name of Object.keys(key)) {
    if (next[name] !== key[name])
      throw new ExpressionError(`an update cannot change the key attribute ${name}`);
  }
  return next;
}

function assign(item: Item, path: PathStep[], value: unknown): void {
  let parent: unknown = item;
  for (const step of path.slice(0, -1)) {
    parent = 'name' in step ? (parent as Item)[step.name] : (parent as unknown[])[step.index];
    if (parent === null || typeof parent !== 'object')
      throw new ExpressionError('the document path of an update does not exist');
  }
  const last = path[path.length - 1] as PathStep;
  if ('name' in last) {
    if (value === undefined) delete (parent as Item)[last.name];
    else (parent as Item)[last.name] = value;
  } else {
    const list = parent as unknown[];
    if (value === undefined) list.splice(last.index, 1);
    else list[Math.min(last.index, list.length)] = value;
  }
}
