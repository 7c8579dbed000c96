// Enrichment of engine tasks with process data, after Polyflow's collector (§4.4–4.6 of the Polyflow notes):
// which variables become a task's payload (variable filters), which data entries a task belongs to
// (correlations), and, optionally, who the task is for (assignment from variables). The same filters decide
// which process variables the connector reports. Pure: configuration and variables in, data out.
import type { Correlations, JsonValue, Payload } from "../../domain/types.ts";

export type FilterMode = "INCLUDE" | "EXCLUDE";

/** Includes or excludes variables for every task of one process (key given) or of all processes (key null). */
export interface ProcessVariableFilter {
  kind: "process";
  processDefinitionKey?: string | null;
  mode: FilterMode;
  variables: string[];
}

/**
 * Includes or excludes variables per task of one process. A task that is not listed is not restricted, so that
 * adding a filter for one task does not empty the payload of the others.
 */
export interface TaskVariableFilter {
  kind: "task";
  processDefinitionKey: string;
  mode: FilterMode;
  tasks: Record<string, string[]>;
}

export type VariableFilter = ProcessVariableFilter | TaskVariableFilter;

/** One data entry a variable points at: the variable's value is the entry's id. */
export interface CorrelationDefinition {
  variable: string;
  entryType: string;
}

/** Correlations of one process: for every task (`global`) and per task definition key. */
export interface ProcessCorrelations {
  processDefinitionKey: string;
  global?: CorrelationDefinition[];
  tasks?: Record<string, CorrelationDefinition[]>;
}

/**
 * Assignment from process variables: the named variables, when set, decide the task's assignee and candidates
 * instead of the engine's own values (strings, comma-separated strings, or arrays of strings).
 */
export interface AssignmentFromVariables {
  assignee?: string | null;
  candidateUsers?: string | null;
  candidateGroups?: string | null;
}

export interface EnrichmentConfig {
  variableFilters?: VariableFilter[];
  correlations?: ProcessCorrelations[];
  assignment?: AssignmentFromVariables | null;
}

/** The scope a variable is looked at in: a process, and a task of it (absent for process variables). */
export interface VariableScope {
  processDefinitionKey: string;
  taskDefinitionKey?: string | null;
}

function filterIncludes(filter: VariableFilter, taskDefinitionKey: string | null | undefined, name: string): boolean {
  if (filter.kind === "process") return (filter.mode === "INCLUDE") === filter.variables.includes(name);
  const listed = taskDefinitionKey == null ? undefined : filter.tasks[taskDefinitionKey];
  if (listed === undefined) return true;
  return (filter.mode === "INCLUDE") === listed.includes(name);
}

/**
 * The filters that apply to a process: its own filters when it has any, else the global ones (Polyflow:
 * process-specific filters take precedence over global ones; filters of one scope must all include a variable).
 */
export function filtersFor(filters: readonly VariableFilter[] | undefined, processDefinitionKey: string): VariableFilter[] {
  const all = filters ?? [];
  const own = all.filter((f) => f.processDefinitionKey != null && f.processDefinitionKey === processDefinitionKey);
  return own.length > 0 ? own : all.filter((f) => f.processDefinitionKey == null);
}

/** Whether a variable passes the filters of its scope. Without any filter, every variable does. */
export function isVariableIncluded(filters: readonly VariableFilter[] | undefined, scope: VariableScope, name: string): boolean {
  return filtersFor(filters, scope.processDefinitionKey).every((filter) => filterIncludes(filter, scope.taskDefinitionKey, name));
}

/** The variables that pass the filters of their scope. */
export function filterVariables(filters: readonly VariableFilter[] | undefined, scope: VariableScope, values: Payload): Payload {
  const applicable = filtersFor(filters, scope.processDefinitionKey);
  if (applicable.length === 0) return { ...values };
  const result: Payload = {};
  for (const [name, value] of Object.entries(values)) {
    if (applicable.every((filter) => filterIncludes(filter, scope.taskDefinitionKey, name))) result[name] = value;
  }
  return result;
}

/** A variable's value as a data entry id: strings as they are, numbers and booleans as text; others give null. */
function entryIdOf(value: JsonValue | undefined): string | null {
  if (typeof value === "string") return value === "" ? null : value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return null;
}

/**
 * The correlations of a task: for every definition (global first, then the task's own) whose variable is set,
 * entryType → the variable's value. One variable may feed several entry types (Polyflow 4.5, #1201). Computed
 * from all variables, not the filtered payload: a correlation key need not be shown to users.
 */
export function correlate(all: readonly ProcessCorrelations[] | undefined, scope: VariableScope, values: Payload): Correlations {
  const result: Correlations = {};
  const process = (all ?? []).find((c) => c.processDefinitionKey === scope.processDefinitionKey);
  if (!process) return result;
  const definitions = [...(process.global ?? []), ...(scope.taskDefinitionKey ? (process.tasks?.[scope.taskDefinitionKey] ?? []) : [])];
  for (const definition of definitions) {
    const entryId = entryIdOf(values[definition.variable]);
    if (entryId !== null) result[definition.entryType] = entryId;
  }
  return result;
}

function namesOf(value: JsonValue | undefined): string[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") {
    const names = value.split(",").map((name) => name.trim()).filter((name) => name !== "");
    return names;
  }
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string" && v.trim() !== "").map((v) => v.trim());
  return null;
}

export interface Assignment {
  assignee: string | null;
  candidateUsers: string[];
  candidateGroups: string[];
}

/**
 * Applies assignment from variables to what the engine says. A configured variable that is set wins over the
 * engine's value; one that is absent or null leaves the engine's value.
 */
export function assignFromVariables(config: AssignmentFromVariables | null | undefined, engine: Assignment, values: Payload): Assignment {
  if (!config) return engine;
  const result = { ...engine };
  if (config.assignee) {
    const value = values[config.assignee];
    if (typeof value === "string") result.assignee = value.trim() === "" ? null : value.trim();
  }
  if (config.candidateUsers) {
    const names = namesOf(values[config.candidateUsers]);
    if (names !== null) result.candidateUsers = names;
  }
  if (config.candidateGroups) {
    const names = namesOf(values[config.candidateGroups]);
    if (names !== null) result.candidateGroups = names;
  }
  return result;
}
