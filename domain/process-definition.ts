// The process definition aggregate: one deployed version of a process, as registered by its application's
// connector; it is what the "start a process" catalogue lists. It also turns a user's wish to start the process
// into an interaction event for the owning application, which is the only one that can start it.
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

export type ProcessDefinitionCommand = RegisterProcessDefinition | RequestProcessStart;

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

export type ProcessDefinitionEvent = ProcessDefinitionRegistered | ProcessStartRequested;

// State ---------------------------------------------------------------------------------------------------------

export interface ProcessDefinitionState {
  status: "initial" | "registered";
  definition: ProcessDefinition | null;
}

export const initialProcessDefinitionState: ProcessDefinitionState = { status: "initial", definition: null };

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
      const definition = state.definition;
      if (definition === null) {
        throw new DomainError("NOT_FOUND", `process definition ${command.processDefinitionId} is not registered`, {
          aggregate: "processDefinition",
          id: command.processDefinitionId,
        });
      }
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
    default:
      return assertNever(command, "process definition command");
  }
}

function evolve(state: ProcessDefinitionState, event: ProcessDefinitionEvent): ProcessDefinitionState {
  switch (event.type) {
    case "ProcessDefinitionRegistered":
      return { status: "registered", definition: event.data };
    case "ProcessStartRequested":
      // An intent for the owning application; the started instance arrives as its own aggregate.
      return state;
    default:
      return assertNever(event, "process definition event");
  }
}

export const processDefinitionDecider: Decider<ProcessDefinitionCommand, ProcessDefinitionState, ProcessDefinitionEvent> = {
  initialState: initialProcessDefinitionState,
  decide,
  evolve,
};
