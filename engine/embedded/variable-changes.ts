// How one engine step changes the process variables, as the engine's history records it: each variable
// created (revision 0, a new variable instance id), updated (next revision; only when the value really changed)
// or deleted — and where values set on an element go (its own input parameters first, then the process), as
// in Camunda 7's variable scopes. Pure: no I/O; ids come from the caller.
import { encodeTypedValue } from "../../domain/engine/variables.ts";
import { jsonEqual, type IsoDate, type JsonObject } from "../../domain/types.ts";
import type { VariableMeta, VariableUpdateRecord } from "./engine-store.ts";

/** Splits values set on an element into those of its own (input parameters) and those of the process. */
export function splitByScope(values: JsonObject, local: JsonObject): { process: JsonObject; local: JsonObject } {
  const result = { process: {} as JsonObject, local: { ...local } };
  // As in the engine: a variable is set where it is visible first, the element's own scope before the process.
  for (const [name, value] of Object.entries(values)) {
    if (Object.hasOwn(local, name)) result.local[name] = value;
    else result.process[name] = value;
  }
  return result;
}

/** The variable updates between two sets of process variables, with the variables' new ids and revisions. */
export function diffVariables(
  before: JsonObject,
  after: JsonObject,
  meta: Record<string, VariableMeta>,
  context: { time: IsoDate; instanceId: string; definitionId: string; definitionKey: string; newId: () => string },
): { updates: VariableUpdateRecord[]; meta: Record<string, VariableMeta> } {
  const updates: VariableUpdateRecord[] = [];
  const next: Record<string, VariableMeta> = { ...meta };
  const record = (name: string, kind: VariableUpdateRecord["kind"], variable: VariableMeta, value: unknown) => {
    updates.push({
      id: context.newId(),
      time: context.time,
      instanceId: context.instanceId,
      definitionId: context.definitionId,
      definitionKey: context.definitionKey,
      variableInstanceId: variable.id,
      name,
      revision: variable.revision,
      kind,
      type: encodeTypedValue(value as never).type,
      value: (value ?? null) as never,
      taskId: null,
      activityInstanceId: null,
    });
  };
  for (const [name, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, name)) {
      next[name] = { id: context.newId(), revision: 0 };
      record(name, "create", next[name]!, value);
    } else if (!jsonEqual(before[name], value)) {
      next[name] = { id: meta[name]?.id ?? context.newId(), revision: (meta[name]?.revision ?? 0) + 1 };
      record(name, "update", next[name]!, value);
    }
  }
  for (const name of Object.keys(before)) {
    if (Object.hasOwn(after, name)) continue;
    const variable = { id: meta[name]?.id ?? context.newId(), revision: (meta[name]?.revision ?? 0) + 1 };
    delete next[name];
    record(name, "delete", variable, null);
  }
  return { updates, meta: next };
}

