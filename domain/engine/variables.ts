// Engine variables as plain JSON, and back. A BPMN engine keeps typed values (`{ type, value, valueInfo }` in
// Camunda 7 / Operaton); the task pool keeps JSON payloads. This module owns both directions of that mapping and
// the process-variable value shape of the `processVariable` aggregate, so that every adapter (REST or embedded)
// maps the same way. Pure: no I/O.
import type { JsonObject, JsonValue } from "../types.ts";
import type { ProcessVariableValue } from "../process-variables.ts";

/** A variable as an engine reports it, already decoded to JSON; `type` is the engine's own type name. */
export interface EngineValue {
  type: string;
  value: JsonValue;
}

export type EngineVariables = Record<string, EngineValue>;

/** The wire shape of a Camunda 7 typed value. */
export interface TypedValue {
  type: string;
  value: unknown;
  valueInfo?: Record<string, unknown> | null;
}

/** Types whose values are JSON scalars already. */
const PRIMITIVE_TYPES = new Set(["string", "boolean", "integer", "long", "short", "double", "null"]);
/** Types that carry binary content: not representable as JSON, so they stay out of payloads. */
const BINARY_TYPES = new Set(["bytes", "file"]);

const ENGINE_DATE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses an engine date (`2026-11-23T19:59:36.120+0000`, any offset, or `Z`) into ISO-8601 UTC with
 * milliseconds (`2026-11-23T19:59:36.120Z`). Null and unparseable input give null.
 */
export function parseEngineDate(value: unknown): string | null {
  if (typeof value !== "string" || value === "") return null;
  const match = ENGINE_DATE.exec(value);
  if (!match) return null;
  const fraction = (match[2] ?? "0").padEnd(3, "0").slice(0, 3);
  let offset = match[3] ?? "Z";
  if (offset !== "Z" && !offset.includes(":")) offset = `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const millis = Date.parse(`${match[1]}.${fraction}${offset}`);
  return Number.isNaN(millis) ? null : new Date(millis).toISOString();
}

/**
 * Formats a date for the engine: `yyyy-MM-ddTHH:mm:ss.SSS+0000`. The engine's Java pattern `Z` wants an RFC-822
 * offset, so `Z` itself is not sent; UTC keeps the watermarks comparable whatever the server's time zone.
 */
export function formatEngineDate(value: string | number | Date): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new RangeError(`Not a date: ${String(value)}`);
  return date.toISOString().replace("Z", "+0000");
}

/** Shifts an ISO date by `ms` (negative: earlier). */
export function shiftIsoDate(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

function parseJsonText(text: unknown): JsonValue {
  if (typeof text !== "string") return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    // Not JSON after all: keep the text rather than lose the value.
    return text;
  }
}

/**
 * Decodes one typed value (read with `deserializeValues=false`) into JSON. Returns undefined for values that have
 * no JSON form (bytes, files, Java-serialized objects): they are left out of payloads instead of being mangled.
 */
export function decodeTypedValue(typed: TypedValue): EngineValue | undefined {
  const type = typed.type ?? "Null";
  const lower = type.toLowerCase();
  if (PRIMITIVE_TYPES.has(lower)) return { type, value: (typed.value ?? null) as JsonValue };
  if (lower === "date") return { type, value: parseEngineDate(typed.value) };
  if (lower === "json") return { type, value: parseJsonText(typed.value) };
  if (lower === "object") {
    const format = String(typed.valueInfo?.serializationDataFormat ?? "");
    if (format.startsWith("application/json")) return { type, value: parseJsonText(typed.value) };
    return undefined;
  }
  if (BINARY_TYPES.has(lower)) return undefined;
  // Xml and engine plugins' own types come as text.
  return typeof typed.value === "string" ? { type, value: typed.value } : undefined;
}

/** Decodes a variables map of the REST API, dropping what has no JSON form. */
export function decodeVariables(raw: Record<string, TypedValue> | null | undefined): EngineVariables {
  const result: EngineVariables = {};
  for (const [name, typed] of Object.entries(raw ?? {})) {
    const decoded = decodeTypedValue(typed);
    if (decoded !== undefined) result[name] = decoded;
  }
  return result;
}

/** The variables' plain values. */
export function plainValues(variables: EngineVariables): JsonObject {
  const result: JsonObject = {};
  for (const [name, variable] of Object.entries(variables)) result[name] = variable.value;
  return result;
}

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/**
 * How structured values (objects, arrays) are written: `Json` needs the engine's Spin plugin; without it the
 * engine refuses that type, and the JSON text goes as a `String`.
 */
export type StructuredEncoding = "Json" | "String";

/** Encodes one JSON value as a typed value the engine accepts. */
export function encodeTypedValue(value: JsonValue | undefined, structured: StructuredEncoding = "Json"): TypedValue {
  if (value === null || value === undefined) return { type: "Null", value: null };
  switch (typeof value) {
    case "boolean":
      return { type: "Boolean", value };
    case "string":
      return { type: "String", value };
    case "number":
      if (Number.isInteger(value)) return { type: value >= INT_MIN && value <= INT_MAX ? "Integer" : "Long", value };
      return { type: "Double", value };
    default:
      return { type: structured, value: JSON.stringify(value) };
  }
}

export function encodeVariables(values: JsonObject, structured: StructuredEncoding = "Json"): Record<string, TypedValue> {
  const result: Record<string, TypedValue> = {};
  for (const [name, value] of Object.entries(values)) result[name] = encodeTypedValue(value, structured);
  return result;
}

/** True when the values contain something that is encoded as structured (object or array). */
export function hasStructuredValues(values: JsonObject): boolean {
  return Object.values(values).some((value) => value !== null && typeof value === "object");
}

/** The `processVariable` aggregate's value shape for an engine value. */
export function processVariableValueOf(variable: EngineValue): ProcessVariableValue {
  const lower = variable.type.toLowerCase();
  if (PRIMITIVE_TYPES.has(lower)) return { type: "PRIMITIVE", value: variable.value, valueType: null };
  if (lower === "json" || lower === "object") return { type: "OBJECT", value: variable.value, valueType: variable.type };
  return { type: "TYPED", value: variable.value, valueType: variable.type };
}
