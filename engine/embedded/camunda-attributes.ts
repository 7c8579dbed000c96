// What the `camunda:` attributes of a BPMN element mean for the embedded engine, resolved against the
// variables an element sees: a user task's name, description (its documentation), form key, assignee,
// candidate users and groups, due and follow-up dates and priority — each possibly a `${…}` expression, as in
// Camunda 7 — and `camunda:inputOutput` input and output parameters (text with expressions, `camunda:list`,
// `camunda:map`). The element's shape is what camunda-bpmn-moddle gives bpmn-engine as `activity.behaviour`.
// Pure: no I/O; the clock comes in as a parameter.
import { ExpressionError, hasExpression, resolveTemplate, type ExpressionScope } from "../../domain/engine/expressions.ts";
import { parseEngineDate } from "../../domain/engine/variables.ts";
import type { JsonObject, JsonValue } from "../../domain/types.ts";
import { documentationOf } from "../bpmn-model.ts";

/** The parts of a moddle element (bpmn-engine's `activity.behaviour`) that are read here. */
export interface ElementBehaviour {
  name?: string;
  documentation?: { text?: string }[];
  formKey?: string;
  assignee?: string;
  candidateUsers?: string;
  candidateGroups?: string;
  dueDate?: string;
  followUpDate?: string;
  priority?: string | number;
  type?: string;
  topic?: string;
  extensionElements?: { values?: ExtensionElement[] };
}

interface ExtensionElement {
  $type: string;
  inputParameters?: ParameterElement[];
  outputParameters?: ParameterElement[];
}

interface ParameterElement {
  name: string;
  value?: string;
  definition?: ParameterDefinition;
}

interface ParameterDefinition {
  $type: string;
  value?: string;
  items?: ParameterDefinition[];
  entries?: { key: string; value?: string; definition?: ParameterDefinition }[];
}

export interface UserTaskAttributes {
  name: string | null;
  description: string | null;
  formKey: string | null;
  assignee: string | null;
  candidateUsers: string[];
  candidateGroups: string[];
  dueDate: string | null;
  followUpDate: string | null;
  priority: number;
}

/** Camunda 7's priority of a task that names none. */
export const DEFAULT_PRIORITY = 50;

/** An attribute or parameter could not be resolved; says which one and why. */
export class AttributeError extends Error {
  constructor(element: string, attribute: string, cause: unknown) {
    super(`${element}: ${attribute}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "AttributeError";
  }
}

function resolve(elementId: string, attribute: string, text: string | undefined, scope: ExpressionScope): unknown {
  if (text === undefined || text === null) return null;
  try {
    return hasExpression(text) ? resolveTemplate(text, scope) : text;
  } catch (err) {
    throw new AttributeError(elementId, attribute, err);
  }
}

function textOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
  return text === "" ? null : text;
}

/** A list of names: a comma-separated text or a list (what `${…}` may give), trimmed, unique, sorted. */
export function namesOf(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const items = Array.isArray(value) ? value.flatMap((item) => namesOf(item)) : String(value).split(",");
  return [...new Set(items.map((name) => name.trim()).filter((name) => name !== ""))].sort();
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * A date attribute's value as ISO-8601 UTC: an ISO date-time (an offset, `Z`, or none, read as UTC), a date
 * (midnight UTC), epoch milliseconds, a Date, or an ISO-8601 duration such as `P3D` counted from `now`.
 */
export function dateOf(value: unknown, now: string): string | null {
  if (value === null || value === undefined || value === "") return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === "number") return Number.isFinite(value) ? new Date(value).toISOString() : null;
  if (typeof value !== "string") return null;
  const text = value.trim();
  const duration = DURATION.exec(text);
  if (duration && text !== "P" && !text.endsWith("T")) {
    const [, years, months, weeks, days, hours, minutes, seconds] = duration.map((part) => Number(part ?? 0));
    const date = new Date(now);
    date.setUTCFullYear(date.getUTCFullYear() + years!, date.getUTCMonth() + months!, date.getUTCDate() + weeks! * 7 + days!);
    return new Date(date.getTime() + ((hours! * 60 + minutes!) * 60 + seconds!) * 1000).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return parseEngineDate(`${text}T00:00:00`);
  const parsed = parseEngineDate(text);
  if (parsed) return parsed;
  const millis = Date.parse(text);
  return Number.isNaN(millis) ? null : new Date(millis).toISOString();
}

function priorityOf(value: unknown): number {
  if (value === null || value === undefined || value === "") return DEFAULT_PRIORITY;
  const number = typeof value === "number" ? value : Number(String(value).trim());
  if (!Number.isInteger(number)) throw new ExpressionError(`the priority must be an integer, got ${JSON.stringify(value)}`);
  return number;
}

/** The attributes of a user task as they are when it is created, in the scope of its variables. */
export function userTaskAttributes(elementId: string, behaviour: ElementBehaviour, scope: ExpressionScope, now: string): UserTaskAttributes {
  const at = (attribute: string, text: string | undefined) => resolve(elementId, attribute, text, scope);
  const documentation = documentationOf(behaviour);
  const date = (attribute: string, text: string | undefined): string | null => {
    const value = at(attribute, text);
    const parsed = dateOf(value, now);
    if (value !== null && value !== "" && parsed === null) throw new AttributeError(elementId, attribute, `not a date: ${JSON.stringify(value)}`);
    return parsed;
  };
  let priority: number;
  try {
    priority = priorityOf(at("priority", behaviour.priority === undefined ? undefined : String(behaviour.priority)));
  } catch (err) {
    throw err instanceof AttributeError ? err : new AttributeError(elementId, "priority", err);
  }
  return {
    name: textOf(at("name", behaviour.name)),
    description: documentation === null ? null : textOf(at("documentation", documentation)),
    formKey: textOf(at("formKey", behaviour.formKey)),
    assignee: textOf(at("assignee", behaviour.assignee)),
    candidateUsers: namesOf(at("candidateUsers", behaviour.candidateUsers)),
    candidateGroups: namesOf(at("candidateGroups", behaviour.candidateGroups)),
    dueDate: date("dueDate", behaviour.dueDate),
    followUpDate: date("followUpDate", behaviour.followUpDate),
    priority,
  };
}

function inputOutputOf(behaviour: ElementBehaviour): ExtensionElement | null {
  return behaviour.extensionElements?.values?.find((value) => value.$type === "camunda:InputOutput") ?? null;
}

function parameterValue(elementId: string, name: string, parameter: { value?: string; definition?: ParameterDefinition }, scope: ExpressionScope): JsonValue {
  const definition = parameter.definition;
  if (!definition) return (resolve(elementId, `parameter ${name}`, parameter.value ?? "", scope) ?? null) as JsonValue;
  switch (definition.$type) {
    case "camunda:List":
      return (definition.items ?? []).map((item) => (item.$type === "camunda:Value" || !item.$type ? parameterValue(elementId, name, { value: item.value ?? "" }, scope) : parameterValue(elementId, name, { definition: item }, scope)));
    case "camunda:Map": {
      const map: JsonObject = {};
      for (const entry of definition.entries ?? []) map[entry.key] = parameterValue(elementId, name, entry, scope);
      return map;
    }
    case "camunda:Value":
      return parameterValue(elementId, name, { value: definition.value ?? "" }, scope);
    default:
      throw new AttributeError(elementId, `parameter ${name}`, `${definition.$type} is not supported by the embedded engine (use a value, a list or a map)`);
  }
}

/** The element's input parameters (`camunda:inputParameter`), resolved in the scope of the process variables. */
export function inputParameters(elementId: string, behaviour: ElementBehaviour, scope: ExpressionScope): JsonObject {
  const result: JsonObject = {};
  for (const parameter of inputOutputOf(behaviour)?.inputParameters ?? []) {
    // Later parameters see earlier ones, as in the engine's input mapping.
    result[parameter.name] = parameterValue(elementId, parameter.name, parameter, { ...scope, ...result });
  }
  return result;
}

/** The element's output parameters (`camunda:outputParameter`), resolved in the scope of the element's variables. */
export function outputParameters(elementId: string, behaviour: ElementBehaviour, scope: ExpressionScope): JsonObject {
  const result: JsonObject = {};
  for (const parameter of inputOutputOf(behaviour)?.outputParameters ?? []) result[parameter.name] = parameterValue(elementId, parameter.name, parameter, scope);
  return result;
}

/** True for a service task that the engine hands to a worker (`camunda:type="external"` with a topic). */
export function isExternalTask(behaviour: ElementBehaviour): boolean {
  return behaviour.type === "external";
}
