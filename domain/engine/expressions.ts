// Camunda-style expressions (`${…}` and `#{…}`, the JUEL subset that BPMN files use) evaluated over process
// variables, for the embedded engine: gateway conditions such as `${approveDecision == "APPROVE"}`, task
// attributes such as `camunda:assignee="${originator}"`, input parameters. One BPMN file serves Operaton and the
// embedded engine, so the semantics follow the Unified EL where it matters: `==` and `<` coerce numbers,
// booleans and strings the way EL does, `and`/`or`/`not`/`eq`/`ne`/`lt`/`gt`/`le`/`ge`/`empty` are keywords,
// an unknown identifier is an error (as in the engine: "Cannot resolve identifier"), and a property of null
// is null.
//
// Safe by construction: a hand-written tokenizer and recursive-descent parser, no `eval`, no `Function`, no
// method calls, and property access reads own properties only (no `constructor`, no prototype). Pure: no I/O.

export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExpressionError";
  }
}

/** The variables an expression sees; identifiers resolve to their own properties only. */
export type ExpressionScope = Readonly<Record<string, unknown>>;

// Syntax tree ----------------------------------------------------------------------------------------------------

type BinaryOperator = "||" | "&&" | "==" | "!=" | "<" | ">" | "<=" | ">=" | "+" | "-" | "*" | "/" | "%";

type Node =
  | { kind: "literal"; value: unknown }
  | { kind: "identifier"; name: string }
  | { kind: "member"; object: Node; property: Node }
  | { kind: "unary"; operator: "!" | "-" | "empty"; operand: Node }
  | { kind: "binary"; operator: BinaryOperator; left: Node; right: Node }
  | { kind: "conditional"; test: Node; consequent: Node; alternate: Node };

/** A template: literal text and expressions, in order. */
type Part = { kind: "text"; text: string } | { kind: "expression"; node: Node; source: string };

// Tokenizer ------------------------------------------------------------------------------------------------------

type Token =
  | { type: "number"; value: number; at: number }
  | { type: "string"; value: string; at: number }
  | { type: "name"; value: string; at: number }
  | { type: "punct"; value: string; at: number }
  | { type: "end"; at: number };

/** Word operators of EL and the symbol each one means. */
const KEYWORD_OPERATORS: Record<string, string> = { and: "&&", or: "||", not: "!", eq: "==", ne: "!=", lt: "<", gt: ">", le: "<=", ge: ">=", div: "/", mod: "%" };
const PUNCTUATION = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ".", "?", ":", "+", "-", "*", "/", "%", "}"];

/**
 * Reads the tokens of one expression starting at `from`, up to its closing `}` (or the end of the text when
 * `closed` is false). Braces inside string literals do not close it, since strings are read whole.
 */
function tokenize(text: string, from: number, closed: boolean): { tokens: Token[]; next: number } {
  const tokens: Token[] = [];
  let i = from;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "}" && closed) {
      tokens.push({ type: "end", at: i });
      return { tokens, next: i + 1 };
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(text[i + 1] ?? ""))) {
      const match = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i))!;
      tokens.push({ type: "number", value: Number(match[0]), at: i });
      i += match[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let value = "";
      let j = i + 1;
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === "\\" && j + 1 < text.length) j++;
        value += text[j];
      }
      if (j >= text.length) throw new ExpressionError(`Unterminated string starting at position ${i} in "${text}"`);
      tokens.push({ type: "string", value, at: i });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const match = /^[A-Za-z_$][\w$]*/.exec(text.slice(i))!;
      const word = match[0];
      const operator = Object.hasOwn(KEYWORD_OPERATORS, word) ? KEYWORD_OPERATORS[word]! : null;
      tokens.push(operator ? { type: "punct", value: operator, at: i } : { type: "name", value: word, at: i });
      i += word.length;
      continue;
    }
    const punct = PUNCTUATION.find((p) => text.startsWith(p, i));
    if (!punct || punct === "}") throw new ExpressionError(`Unexpected character "${c}" at position ${i} in "${text}"`);
    tokens.push({ type: "punct", value: punct, at: i });
    i += punct.length;
  }
  if (closed) throw new ExpressionError(`Missing "}" at the end of "${text}"`);
  tokens.push({ type: "end", at: i });
  return { tokens, next: i };
}

// Parser ---------------------------------------------------------------------------------------------------------

class Parser {
  private position = 0;
  private readonly tokens: Token[];
  private readonly text: string;

  constructor(tokens: Token[], text: string) {
    this.tokens = tokens;
    this.text = text;
  }

  parse(): Node {
    if (this.peek().type === "end") throw this.error("Empty expression");
    const node = this.conditional();
    if (this.peek().type !== "end") throw this.error("Unexpected token");
    return node;
  }

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private isPunct(value: string): boolean {
    const token = this.peek();
    return token.type === "punct" && token.value === value;
  }

  private take(value: string): boolean {
    if (!this.isPunct(value)) return false;
    this.position++;
    return true;
  }

  private expect(value: string): void {
    if (!this.take(value)) throw this.error(`Expected "${value}"`);
  }

  private error(message: string): ExpressionError {
    const token = this.peek();
    const found = token.type === "end" ? "the end" : `"${"value" in token ? String(token.value) : ""}"`;
    return new ExpressionError(`${message} at position ${token.at} (found ${found}) in "${this.text}"`);
  }

  private conditional(): Node {
    const test = this.binary(0);
    if (!this.take("?")) return test;
    const consequent = this.conditional();
    this.expect(":");
    const alternate = this.conditional();
    return { kind: "conditional", test, consequent, alternate };
  }

  /** Binary operators by precedence, loosest first. */
  private static readonly LEVELS: BinaryOperator[][] = [["||"], ["&&"], ["==", "!="], ["<", ">", "<=", ">="], ["+", "-"], ["*", "/", "%"]];

  private binary(level: number): Node {
    if (level >= Parser.LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const operator = Parser.LEVELS[level]!.find((op) => this.isPunct(op));
      if (!operator) return left;
      this.position++;
      left = { kind: "binary", operator, left, right: this.binary(level + 1) };
    }
  }

  private unary(): Node {
    if (this.take("!")) return { kind: "unary", operator: "!", operand: this.unary() };
    if (this.take("-")) return { kind: "unary", operator: "-", operand: this.unary() };
    const token = this.peek();
    if (token.type === "name" && token.value === "empty") {
      this.position++;
      return { kind: "unary", operator: "empty", operand: this.unary() };
    }
    return this.postfix();
  }

  private postfix(): Node {
    let node = this.primary();
    for (;;) {
      if (this.take(".")) {
        const token = this.peek();
        if (token.type !== "name") throw this.error("Expected a property name");
        this.position++;
        node = { kind: "member", object: node, property: { kind: "literal", value: token.value } };
      } else if (this.take("[")) {
        const property = this.conditional();
        this.expect("]");
        node = { kind: "member", object: node, property };
      } else if (this.isPunct("(")) {
        throw this.error("Method and function calls are not supported");
      } else {
        return node;
      }
    }
  }

  private primary(): Node {
    const token = this.peek();
    switch (token.type) {
      case "number":
      case "string":
        this.position++;
        return { kind: "literal", value: token.value };
      case "name":
        this.position++;
        if (token.value === "true") return { kind: "literal", value: true };
        if (token.value === "false") return { kind: "literal", value: false };
        if (token.value === "null") return { kind: "literal", value: null };
        return { kind: "identifier", name: token.value };
      case "punct":
        if (this.take("(")) {
          const inner = this.conditional();
          this.expect(")");
          return inner;
        }
        throw this.error("Unexpected token");
      case "end":
        throw this.error("Unexpected end of expression");
    }
  }
}

// Coercions (Unified EL, 1.23) ---------------------------------------------------------------------------------------

function describe(value: unknown): string {
  return value === null || value === undefined ? "null" : Array.isArray(value) ? "list" : typeof value;
}

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === "number") return value;
  if (typeof value === "boolean") throw new ExpressionError(`Cannot coerce a boolean to a number`);
  if (typeof value === "string") {
    const trimmed = value.trim();
    const number = trimmed === "" ? 0 : Number(trimmed);
    if (Number.isNaN(number)) throw new ExpressionError(`Cannot coerce "${value}" to a number`);
    return number;
  }
  throw new ExpressionError(`Cannot coerce a ${describe(value)} to a number`);
}

function toBoolean(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") return value.trim().toLowerCase() === "true";
  throw new ExpressionError(`Cannot coerce a ${describe(value)} to a boolean`);
}

function toText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function sameStructure(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => Object.hasOwn(b, key) && sameStructure((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function equals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const aNull = a === null || a === undefined;
  const bNull = b === null || b === undefined;
  if (aNull || bNull) return aNull && bNull;
  if (typeof a === "number" || typeof b === "number") return toNumber(a) === toNumber(b);
  if (typeof a === "boolean" || typeof b === "boolean") return toBoolean(a) === toBoolean(b);
  if (typeof a === "string" || typeof b === "string") return toText(a) === toText(b);
  return sameStructure(a, b);
}

function compare(operator: "<" | ">" | "<=" | ">=", a: unknown, b: unknown): boolean {
  if (a === b && (operator === "<=" || operator === ">=")) return true;
  if (a === null || a === undefined || b === null || b === undefined) return false;
  let order: number;
  if (typeof a === "number" || typeof b === "number") order = toNumber(a) - toNumber(b);
  else if (typeof a === "string" && typeof b === "string") order = a < b ? -1 : a > b ? 1 : 0;
  else throw new ExpressionError(`Cannot compare a ${describe(a)} with a ${describe(b)}`);
  switch (operator) {
    case "<":
      return order < 0;
    case ">":
      return order > 0;
    case "<=":
      return order <= 0;
    case ">=":
      return order >= 0;
  }
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.keys(value).length === 0;
  return false;
}

// Evaluation -------------------------------------------------------------------------------------------------------

function member(object: unknown, property: unknown): unknown {
  if (object === null || object === undefined) return null;
  if (Array.isArray(object)) {
    const index = toNumber(property);
    return Number.isInteger(index) && index >= 0 && index < object.length ? object[index] : null;
  }
  if (typeof object !== "object") return null;
  const key = toText(property);
  return Object.hasOwn(object, key) ? (object as Record<string, unknown>)[key] : null;
}

function evaluate(node: Node, scope: ExpressionScope): unknown {
  switch (node.kind) {
    case "literal":
      return node.value;
    case "identifier":
      if (!Object.hasOwn(scope, node.name)) throw new ExpressionError(`Cannot resolve identifier '${node.name}'`);
      return scope[node.name] ?? null;
    case "member":
      return member(evaluate(node.object, scope), evaluate(node.property, scope));
    case "unary": {
      const operand = evaluate(node.operand, scope);
      if (node.operator === "!") return !toBoolean(operand);
      if (node.operator === "-") return -toNumber(operand);
      return isEmpty(operand);
    }
    case "conditional":
      return toBoolean(evaluate(node.test, scope)) ? evaluate(node.consequent, scope) : evaluate(node.alternate, scope);
    case "binary": {
      const { operator } = node;
      // Short-circuit, as in EL.
      if (operator === "&&") return toBoolean(evaluate(node.left, scope)) && toBoolean(evaluate(node.right, scope));
      if (operator === "||") return toBoolean(evaluate(node.left, scope)) || toBoolean(evaluate(node.right, scope));
      const left = evaluate(node.left, scope);
      const right = evaluate(node.right, scope);
      switch (operator) {
        case "==":
          return equals(left, right);
        case "!=":
          return !equals(left, right);
        case "<":
        case ">":
        case "<=":
        case ">=":
          return compare(operator, left, right);
        case "+":
          return toNumber(left) + toNumber(right);
        case "-":
          return toNumber(left) - toNumber(right);
        case "*":
          return toNumber(left) * toNumber(right);
        case "/":
          return toNumber(left) / toNumber(right);
        case "%":
          return toNumber(left) % toNumber(right);
      }
    }
  }
}

// Templates ---------------------------------------------------------------------------------------------------------

const START = /[$#]\{/;
const cache = new Map<string, Part[]>();
const CACHE_LIMIT = 2000;

/** Splits a text into literal parts and parsed expressions (cached: BPMN attributes repeat). */
function partsOf(text: string): Part[] {
  const cached = cache.get(text);
  if (cached) return cached;
  const parts: Part[] = [];
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const found = START.exec(rest);
    if (!found) {
      parts.push({ kind: "text", text: rest });
      break;
    }
    if (found.index > 0) parts.push({ kind: "text", text: rest.slice(0, found.index) });
    const begin = i + found.index + 2;
    const { tokens, next } = tokenize(text, begin, true);
    parts.push({ kind: "expression", node: new Parser(tokens, text).parse(), source: text.slice(i + found.index, next) });
    i = next;
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(text, parts);
  return parts;
}

/** True when the text contains an expression (`${…}` or `#{…}`). */
export function hasExpression(text: unknown): boolean {
  return typeof text === "string" && START.test(text);
}

/** True when the text is one expression and nothing else, e.g. `${amount > 100}`. */
export function isExpression(text: unknown): boolean {
  if (typeof text !== "string") return false;
  const trimmed = text.trim();
  if (!/^[$#]\{/.test(trimmed)) return false;
  try {
    const parts = partsOf(trimmed);
    return parts.length === 1 && parts[0]!.kind === "expression";
  } catch {
    return false;
  }
}

/** Checks the syntax of a text with expressions; throws ExpressionError when it is not valid. */
export function parseTemplate(text: string): void {
  partsOf(text);
}

/** Evaluates a bare expression (without `${` `}`), e.g. `approveDecision == "APPROVE"`. */
export function evaluateExpression(expression: string, scope: ExpressionScope): unknown {
  const { tokens } = tokenize(expression, 0, false);
  return evaluate(new Parser(tokens, expression).parse(), scope);
}

/**
 * Resolves a text that may contain expressions: a text that is one expression gives its value as it is (a
 * boolean, a number, a list…); expressions inside other text are replaced by their text (null: empty); a
 * text without expressions is returned unchanged.
 */
export function resolveTemplate(text: string, scope: ExpressionScope): unknown {
  const parts = partsOf(text);
  if (parts.length === 1 && parts[0]!.kind === "expression") return evaluateWith(parts[0]!, scope);
  let result = "";
  for (const part of parts) result += part.kind === "text" ? part.text : toText(evaluateWith(part, scope));
  return result;
}

function evaluateWith(part: Extract<Part, { kind: "expression" }>, scope: ExpressionScope): unknown {
  try {
    return evaluate(part.node, scope);
  } catch (err) {
    if (err instanceof ExpressionError) throw new ExpressionError(`${err.message} in ${part.source}`);
    throw err;
  }
}
