// The process variables aggregate: the variables of one process instance (aggregate id = process instance id),
// as the engine reports their changes. It owns the filtering of reports that change nothing, so that connectors
// may resend freely without flooding the event store.
import { assertNever, type Decider, type DomainEvent } from "./decider.ts";
import { jsonEqual, normalizeSourceReference, orNull, type JsonValue, type SourceReference } from "./types.ts";

export function processVariablesStreamId(processInstanceId: string): string {
  return `processVariables-${processInstanceId}`;
}

export type ProcessVariableValueType = "PRIMITIVE" | "OBJECT" | "TYPED";

export interface ProcessVariableValue {
  type: ProcessVariableValueType;
  value: JsonValue;
  /** The engine's own type name for TYPED values (e.g. "Date", "Json"). */
  valueType?: string | null;
}

export interface ProcessVariable {
  variableInstanceId: string;
  variableName: string;
  revision: number;
  scopeActivityInstanceId: string;
  value: ProcessVariableValue;
}

export interface ProcessVariableUpsert extends ProcessVariable {
  kind: "create" | "update";
}

export interface ProcessVariableDelete {
  kind: "delete";
  variableInstanceId: string;
  variableName: string;
  scopeActivityInstanceId: string;
}

export type ProcessVariableChange = ProcessVariableUpsert | ProcessVariableDelete;

// Commands and events -------------------------------------------------------------------------------------------

export interface ChangeProcessVariables {
  type: "ChangeProcessVariables";
  sourceReference: SourceReference;
  variableChanges: ProcessVariableChange[];
}

export type ProcessVariablesCommand = ChangeProcessVariables;

export type ProcessVariablesChanged = DomainEvent<
  "ProcessVariablesChanged",
  { sourceReference: SourceReference; variableChanges: ProcessVariableChange[] }
>;

export type ProcessVariablesEvent = ProcessVariablesChanged;

// State ---------------------------------------------------------------------------------------------------------

export interface ProcessVariablesState {
  /** Null until the first change; the latest reported reference afterwards. */
  sourceReference: SourceReference | null;
  /** Keyed by variableInstanceId. */
  variables: Record<string, ProcessVariable>;
}

export const initialProcessVariablesState: ProcessVariablesState = { sourceReference: null, variables: {} };

// ---------------------------------------------------------------------------------------------------------------

function normalizedChange(change: ProcessVariableChange): ProcessVariableChange {
  if (change.kind === "delete") {
    return {
      kind: "delete",
      variableInstanceId: change.variableInstanceId,
      variableName: change.variableName,
      scopeActivityInstanceId: change.scopeActivityInstanceId,
    };
  }
  return {
    kind: change.kind,
    variableInstanceId: change.variableInstanceId,
    variableName: change.variableName,
    revision: change.revision,
    scopeActivityInstanceId: change.scopeActivityInstanceId,
    value: { type: change.value.type, value: change.value.value, valueType: orNull(change.value.valueType) },
  };
}

function variableOf(change: ProcessVariableUpsert): ProcessVariable {
  return {
    variableInstanceId: change.variableInstanceId,
    variableName: change.variableName,
    revision: change.revision,
    scopeActivityInstanceId: change.scopeActivityInstanceId,
    value: change.value,
  };
}

/** Applies one change to a working copy of the variables; false when it changes nothing. */
function applyChange(variables: Map<string, ProcessVariable>, change: ProcessVariableChange): boolean {
  const current = variables.get(change.variableInstanceId);
  switch (change.kind) {
    case "delete":
      return variables.delete(change.variableInstanceId);
    case "create":
    case "update": {
      const next = variableOf(change);
      if (current !== undefined) {
        // A lower revision is an older report that arrived late: applying it would roll the variable back.
        if (next.revision < current.revision || jsonEqual(next, current)) return false;
      }
      variables.set(change.variableInstanceId, next);
      return true;
    }
    default:
      return assertNever(change, "process variable change");
  }
}

function decide(command: ProcessVariablesCommand, state: ProcessVariablesState): ProcessVariablesEvent[] {
  switch (command.type) {
    case "ChangeProcessVariables": {
      // Later changes in the same command see the earlier ones (create then update of one variable is two changes).
      const working = new Map(Object.entries(state.variables));
      const effective = command.variableChanges.map(normalizedChange).filter((change) => applyChange(working, change));
      if (effective.length === 0) return [];
      return [
        {
          type: "ProcessVariablesChanged",
          data: { sourceReference: normalizeSourceReference(command.sourceReference), variableChanges: effective },
        },
      ];
    }
    default:
      return assertNever(command.type, "process variables command");
  }
}

function evolve(state: ProcessVariablesState, event: ProcessVariablesEvent): ProcessVariablesState {
  switch (event.type) {
    case "ProcessVariablesChanged": {
      const variables = { ...state.variables };
      for (const change of event.data.variableChanges) {
        if (change.kind === "delete") delete variables[change.variableInstanceId];
        else variables[change.variableInstanceId] = variableOf(change);
      }
      return { sourceReference: event.data.sourceReference, variables };
    }
    default:
      return assertNever(event.type, "process variables event");
  }
}

export const processVariablesDecider: Decider<ProcessVariablesCommand, ProcessVariablesState, ProcessVariablesEvent> = {
  initialState: initialProcessVariablesState,
  decide,
  evolve,
};
