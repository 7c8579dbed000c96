// Value types shared by the aggregates (source references, payloads, correlations, users) and the few
// normalisations every decider needs so that event data is explicit, duplicate-free and plain JSON.
import type { JsonObject, JsonValue } from "../lib/json.ts";

export type { JsonObject, JsonValue };

/** An ISO-8601 date-time string. Deciders never read the clock: times arrive in commands. */
export type IsoDate = string;

export type SourceReferenceType = "process" | "case" | "generic";

/** Why a task or process instance exists; `applicationName` routes interactions back to the owning engine. */
export interface SourceReference {
  type: SourceReferenceType;
  instanceId: string;
  executionId: string;
  definitionId: string;
  definitionKey: string;
  name: string;
  applicationName: string;
  tenantId?: string | null;
}

export type Payload = Record<string, JsonValue>;

/** Links to data entries: entryType → entryId. */
export type Correlations = Record<string, string>;

export interface User {
  username: string;
  groups: string[];
}

/** Absent becomes null, so that event data says "no value" explicitly and carries no `undefined`. */
export function orNull<T>(value: T | null | undefined): T | null {
  return value === undefined ? null : value;
}

/** Like orNull, but an empty string also counts as "no value" (keys such as businessKey and formKey). */
export function nonEmptyOrNull(value: string | null | undefined): string | null {
  return value === undefined || value === null || value === "" ? null : value;
}

/** A source reference with every optional field made explicit and nothing but its own fields. */
export function normalizeSourceReference(ref: SourceReference): SourceReference {
  return {
    type: ref.type,
    instanceId: ref.instanceId,
    executionId: ref.executionId,
    definitionId: ref.definitionId,
    definitionKey: ref.definitionKey,
    name: ref.name,
    applicationName: ref.applicationName,
    tenantId: orNull(ref.tenantId),
  };
}

/**
 * A set of names as a sorted, duplicate-free array: sets travel as JSON arrays, and a canonical order makes two
 * equal sets compare equal and keeps folds deterministic.
 */
export function nameSet(names: Iterable<string> | null | undefined): string[] {
  return [...new Set(names ?? [])].sort();
}

/** Structural equality of JSON values; the order of object keys does not matter, the order of arrays does. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => jsonEqual(item, other[i]));
  }
  // Absent and undefined are the same thing in JSON.
  const left = Object.entries(a).filter(([, v]) => v !== undefined);
  const right = new Map(Object.entries(b).filter(([, v]) => v !== undefined));
  return left.length === right.size && left.every(([key, value]) => right.has(key) && jsonEqual(value, right.get(key)));
}
