// The process definition aggregate: one deployed version of a process, as registered by its application's
// connector; it is what the "start a process" catalogue lists. It also turns a user's wish to start the process
// into an interaction event for the owning application, which is the only one that can start it, and records
// the application's refusal when its engine would not start it.
//
// A definition either starts through its start form (the application's own page collects what the process
// needs, and starts it itself) or directly from the task list's catalogue. A direct start of a process that
// needs its form would start an instance without its data, which then fails in the engine: it is refused here.
import { assertNever, DomainError, type Decider, type DomainEvent } from "./decider.ts";
import { jsonEqual, nameSet, orNull, type JsonObject } from "./types.ts";

export function processDefinitionStreamId(processDefinitionId: string): string {
  return `processDefinition-${processDefinitionId}`;
}

export interface ProcessDefinition {
  processDefinitionId: string;
  processDefinitionKey: string;
  processDefinitionVersion: number;
  applicationName: string;
  processName: string;
  processVersionTag: string | null;
  processDescription: string | null;
  /** The start form. */
  formKey: string | null;
  /** True: users start it through its start form only; false: a direct start from the catalogue works. */
  startsThroughForm: boolean;
  startableFromTasklist: boolean;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
}

// Commands ------------------------------------------------------------------------------------------------------

export interface RegisterProcessDefinition {
  type: "RegisterProcessDefinition";
  processDefinitionId: string;
  processDefinitionKey: string;
  processDefinitionVersion: number;
  applicationName: string;
  processName: string;
  processVersionTag?: string | null;
  processDescription?: string | null;
  formKey?: string | null;
  /** Absent: a definition with a start form starts through it, one without starts directly. */
  startsThroughForm?: boolean | null;
  startableFromTasklist: boolean;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
}

export interface RequestProcessStart {
  type: "RequestProcessStart";
  processDefinitionId: string;
  businessKey?: string | null;
  variables: JsonObject;
  /** Username of the requester; whether they may start the process is checked where the User is known. */
  requestedBy: string;
  /** Chosen by the requester, so that the started instance can be traced back to the request. */
  requestId: string;
}

/** Reported by the owning application's connector: its engine would not start the requested instance. */
export interface ReportProcessStartRefused {
  type: "ReportProcessStartRefused";
  processDefinitionId: string;
  requestId: string;
  /** Who asked (from ProcessStartRequested): the one to tell. */
  requestedBy: string;
  /** The engine's words, fit to show the user. */
  reason: string;
}

export type ProcessDefinitionCommand = RegisterProcessDefinition | RequestProcessStart | ReportProcessStartRefused;

// Events --------------------------------------------------------------------------------------------------------

export type ProcessDefinitionRegistered = DomainEvent<"ProcessDefinitionRegistered", ProcessDefinition>;
export type ProcessStartRequested = DomainEvent<
  "ProcessStartRequested",
  {
    processDefinitionId: string;
    processDefinitionKey: string;
    applicationName: string;
    businessKey: string | null;
    variables: JsonObject;
    requestedBy: string;
    requestId: string;
  }
>;

export type ProcessStartRefused = DomainEvent<
  "ProcessStartRefused",
  {
    processDefinitionId: string;
    processDefinitionKey: string;
    applicationName: string;
    requestId: string;
    requestedBy: string;
    reason: string;
  }
>;

export type ProcessDefinitionEvent = ProcessDefinitionRegistered | ProcessStartRequested | ProcessStartRefused;

// State ---------------------------------------------------------------------------------------------------------

/** What became of one request to start the process, as far as the pool knows. */
export interface StartRequestRecord {
  requestId: string;
  requestedBy: string;
  status: "requested" | "refused";
  reason: string | null;
}

export interface ProcessDefinitionState {
  status: "initial" | "registered";
  definition: ProcessDefinition | null;
  /**
   * The latest start requests (at most START_WINDOW, oldest first), so that a request's outcome can be looked up
   * and a repeated report is recognised. Bounded: a definition started a million times must still fold fast.
   */
  starts: readonly StartRequestRecord[];
}

/** How many recent start requests a definition remembers; connectors answer within seconds, users look soon after. */
export const START_WINDOW = 500;

export const initialProcessDefinitionState: ProcessDefinitionState = { status: "initial", definition: null, starts: [] };

/** A start request the definition still remembers, or null. */
export function startRequestOf(state: ProcessDefinitionState, requestId: string): StartRequestRecord | null {
  for (let i = state.starts.length - 1; i >= 0; i--) if (state.starts[i]!.requestId === requestId) return state.starts[i]!;
  return null;
}

function remember(starts: readonly StartRequestRecord[], record: StartRequestRecord): StartRequestRecord[] {
  const rest = starts.filter((s) => s.requestId !== record.requestId);
  rest.push(record);
  return rest.length > START_WINDOW ? rest.slice(rest.length - START_WINDOW) : rest;
}

// ---------------------------------------------------------------------------------------------------------------

function definitionOf(command: RegisterProcessDefinition): ProcessDefinition {
  return {
    processDefinitionId: command.processDefinitionId,
    processDefinitionKey: command.processDefinitionKey,
    processDefinitionVersion: command.processDefinitionVersion,
    applicationName: command.applicationName,
    processName: command.processName,
    processVersionTag: orNull(command.processVersionTag),
    processDescription: orNull(command.processDescription),
    formKey: orNull(command.formKey),
    startsThroughForm: command.startsThroughForm ?? orNull(command.formKey) !== null,
    startableFromTasklist: command.startableFromTasklist,
    candidateStarterUsers: nameSet(command.candidateStarterUsers),
    candidateStarterGroups: nameSet(command.candidateStarterGroups),
  };
}

function decide(command: ProcessDefinitionCommand, state: ProcessDefinitionState): ProcessDefinitionEvent[] {
  switch (command.type) {
    case "RegisterProcessDefinition": {
      const definition = definitionOf(command);
      // Connectors register every definition on each start-up; only a change is news.
      if (state.definition !== null && jsonEqual(definition, state.definition)) return [];
      return [{ type: "ProcessDefinitionRegistered", data: definition }];
    }
    case "RequestProcessStart": {
      const definition = registeredDefinition(state, command.processDefinitionId);
      if (definition.startsThroughForm) {
        // Started without its form the instance would lack what the form collects, and fail in the engine.
        throw new DomainError(
          "CONFLICT",
          `${definition.processName} (${definition.processDefinitionKey}) starts through its start form${definition.formKey ? ` "${definition.formKey}"` : ""}: open the form to start it`,
          { aggregate: "processDefinition", id: definition.processDefinitionId, startsThroughForm: true },
        );
      }
      if (startRequestOf(state, command.requestId)) return [];
      return [
        {
          type: "ProcessStartRequested",
          data: {
            processDefinitionId: definition.processDefinitionId,
            processDefinitionKey: definition.processDefinitionKey,
            applicationName: definition.applicationName,
            businessKey: orNull(command.businessKey),
            variables: command.variables,
            requestedBy: command.requestedBy,
            requestId: command.requestId,
          },
        },
      ];
    }
    case "ReportProcessStartRefused": {
      const definition = registeredDefinition(state, command.processDefinitionId);
      // A connector reports again after a restart; the user was told once. (A request older than the window is
      // reported anyway: telling the user twice is better than not at all.)
      if (startRequestOf(state, command.requestId)?.status === "refused") return [];
      return [
        {
          type: "ProcessStartRefused",
          data: {
            processDefinitionId: definition.processDefinitionId,
            processDefinitionKey: definition.processDefinitionKey,
            applicationName: definition.applicationName,
            requestId: command.requestId,
            requestedBy: command.requestedBy,
            reason: command.reason,
          },
        },
      ];
    }
    default:
      return assertNever(command, "process definition command");
  }
}

function registeredDefinition(state: ProcessDefinitionState, processDefinitionId: string): ProcessDefinition {
  if (state.definition === null) {
    throw new DomainError("NOT_FOUND", `process definition ${processDefinitionId} is not registered`, {
      aggregate: "processDefinition",
      id: processDefinitionId,
    });
  }
  return state.definition;
}

function evolve(state: ProcessDefinitionState, event: ProcessDefinitionEvent): ProcessDefinitionState {
  switch (event.type) {
    case "ProcessDefinitionRegistered":
      return { ...state, status: "registered", definition: event.data };
    case "ProcessStartRequested":
      // An intent for the owning application; the started instance arrives as its own aggregate.
      return { ...state, starts: remember(state.starts, { requestId: event.data.requestId, requestedBy: event.data.requestedBy, status: "requested", reason: null }) };
    case "ProcessStartRefused":
      return { ...state, starts: remember(state.starts, { requestId: event.data.requestId, requestedBy: event.data.requestedBy, status: "refused", reason: event.data.reason }) };
    default:
      return assertNever(event, "process definition event");
  }
}

export const processDefinitionDecider: Decider<ProcessDefinitionCommand, ProcessDefinitionState, ProcessDefinitionEvent> = {
  initialState: initialProcessDefinitionState,
  decide,
  evolve,
};
