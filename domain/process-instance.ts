// The process instance aggregate: the life of one running process as its engine reports it — started,
// suspended and resumed, then finished or cancelled. It owns the lifecycle guards, so that late, repeated or
// replayed reports from a connector do not produce contradictory events.
import { assertNever, DomainError, type Decider, type DomainEvent } from "./decider.ts";
import { normalizeSourceReference, orNull, type SourceReference } from "./types.ts";

export function processInstanceStreamId(processInstanceId: string): string {
  return `processInstance-${processInstanceId}`;
}

export type ProcessInstanceStatus = "RUNNING" | "SUSPENDED" | "FINISHED" | "CANCELLED";

export interface ProcessInstance {
  processInstanceId: string;
  sourceReference: SourceReference;
  businessKey: string | null;
  startUserId: string | null;
  superInstanceId: string | null;
  startActivityId: string | null;
  endActivityId: string | null;
  deleteReason: string | null;
}

// Commands ------------------------------------------------------------------------------------------------------

export interface StartProcessInstance {
  type: "StartProcessInstance";
  processInstanceId: string;
  sourceReference: SourceReference;
  businessKey?: string | null;
  startUserId?: string | null;
  superInstanceId?: string | null;
  startActivityId?: string | null;
}

export interface FinishProcessInstance {
  type: "FinishProcessInstance";
  processInstanceId: string;
  sourceReference: SourceReference;
  businessKey?: string | null;
  superInstanceId?: string | null;
  endActivityId?: string | null;
}

export interface CancelProcessInstance {
  type: "CancelProcessInstance";
  processInstanceId: string;
  sourceReference: SourceReference;
  businessKey?: string | null;
  superInstanceId?: string | null;
  endActivityId?: string | null;
  deleteReason?: string | null;
}

export interface SuspendProcessInstance {
  type: "SuspendProcessInstance";
  processInstanceId: string;
  sourceReference: SourceReference;
}

export interface ResumeProcessInstance {
  type: "ResumeProcessInstance";
  processInstanceId: string;
  sourceReference: SourceReference;
}

export type ProcessInstanceCommand =
  | StartProcessInstance
  | FinishProcessInstance
  | CancelProcessInstance
  | SuspendProcessInstance
  | ResumeProcessInstance;

// Events --------------------------------------------------------------------------------------------------------

export type ProcessInstanceStarted = DomainEvent<
  "ProcessInstanceStarted",
  {
    processInstanceId: string;
    sourceReference: SourceReference;
    businessKey: string | null;
    startUserId: string | null;
    superInstanceId: string | null;
    startActivityId: string | null;
  }
>;
export type ProcessInstanceFinished = DomainEvent<
  "ProcessInstanceFinished",
  {
    processInstanceId: string;
    sourceReference: SourceReference;
    businessKey: string | null;
    superInstanceId: string | null;
    endActivityId: string | null;
  }
>;
export type ProcessInstanceCancelled = DomainEvent<
  "ProcessInstanceCancelled",
  {
    processInstanceId: string;
    sourceReference: SourceReference;
    businessKey: string | null;
    superInstanceId: string | null;
    endActivityId: string | null;
    deleteReason: string | null;
  }
>;
export type ProcessInstanceSuspended = DomainEvent<
  "ProcessInstanceSuspended",
  { processInstanceId: string; sourceReference: SourceReference }
>;
export type ProcessInstanceResumed = DomainEvent<"ProcessInstanceResumed", { processInstanceId: string; sourceReference: SourceReference }>;

export type ProcessInstanceEvent =
  | ProcessInstanceStarted
  | ProcessInstanceFinished
  | ProcessInstanceCancelled
  | ProcessInstanceSuspended
  | ProcessInstanceResumed;

// State ---------------------------------------------------------------------------------------------------------

export interface ProcessInstanceState {
  status: "initial" | ProcessInstanceStatus;
  instance: ProcessInstance | null;
}

export const initialProcessInstanceState: ProcessInstanceState = { status: "initial", instance: null };

// ---------------------------------------------------------------------------------------------------------------

function decide(command: ProcessInstanceCommand, state: ProcessInstanceState): ProcessInstanceEvent[] {
  const sourceReference = normalizeSourceReference(command.sourceReference);
  const { processInstanceId } = command;
  if (command.type === "StartProcessInstance") {
    // Connectors report starts again after a restart or an import; the first report wins.
    if (state.status !== "initial") return [];
    return [
      {
        type: "ProcessInstanceStarted",
        data: {
          processInstanceId,
          sourceReference,
          businessKey: orNull(command.businessKey),
          startUserId: orNull(command.startUserId),
          superInstanceId: orNull(command.superInstanceId),
          startActivityId: orNull(command.startActivityId),
        },
      },
    ];
  }

  if (state.status === "initial") {
    throw new DomainError("NOT_FOUND", `process instance ${processInstanceId} does not exist`, {
      aggregate: "processInstance",
      id: processInstanceId,
    });
  }
  // An ended instance stays ended: reports that arrive after the end change nothing.
  if (state.status === "FINISHED" || state.status === "CANCELLED") return [];

  switch (command.type) {
    case "FinishProcessInstance":
      return [
        {
          type: "ProcessInstanceFinished",
          data: {
            processInstanceId,
            sourceReference,
            businessKey: orNull(command.businessKey),
            superInstanceId: orNull(command.superInstanceId),
            endActivityId: orNull(command.endActivityId),
          },
        },
      ];
    case "CancelProcessInstance":
      return [
        {
          type: "ProcessInstanceCancelled",
          data: {
            processInstanceId,
            sourceReference,
            businessKey: orNull(command.businessKey),
            superInstanceId: orNull(command.superInstanceId),
            endActivityId: orNull(command.endActivityId),
            deleteReason: orNull(command.deleteReason),
          },
        },
      ];
    case "SuspendProcessInstance":
      return state.status === "SUSPENDED" ? [] : [{ type: "ProcessInstanceSuspended", data: { processInstanceId, sourceReference } }];
    case "ResumeProcessInstance":
      return state.status === "RUNNING" ? [] : [{ type: "ProcessInstanceResumed", data: { processInstanceId, sourceReference } }];
    default:
      return assertNever(command, "process instance command");
  }
}

function evolve(state: ProcessInstanceState, event: ProcessInstanceEvent): ProcessInstanceState {
  if (event.type === "ProcessInstanceStarted") {
    return {
      status: "RUNNING",
      instance: { ...event.data, endActivityId: null, deleteReason: null },
    };
  }
  const instance = state.instance;
  // A stream that does not start with ProcessInstanceStarted cannot be applied; keeping the state lets it be read.
  if (instance === null) return state;

  switch (event.type) {
    case "ProcessInstanceFinished":
      return {
        status: "FINISHED",
        instance: {
          ...instance,
          sourceReference: event.data.sourceReference,
          // The end report may lack what the start report had; it only adds.
          businessKey: event.data.businessKey ?? instance.businessKey,
          superInstanceId: event.data.superInstanceId ?? instance.superInstanceId,
          endActivityId: event.data.endActivityId,
        },
      };
    case "ProcessInstanceCancelled":
      return {
        status: "CANCELLED",
        instance: {
          ...instance,
          sourceReference: event.data.sourceReference,
          businessKey: event.data.businessKey ?? instance.businessKey,
          superInstanceId: event.data.superInstanceId ?? instance.superInstanceId,
          endActivityId: event.data.endActivityId,
          deleteReason: event.data.deleteReason,
        },
      };
    case "ProcessInstanceSuspended":
      return { status: "SUSPENDED", instance };
    case "ProcessInstanceResumed":
      return { status: "RUNNING", instance };
    default:
      return assertNever(event, "process instance event");
  }
}

export const processInstanceDecider: Decider<ProcessInstanceCommand, ProcessInstanceState, ProcessInstanceEvent> = {
  initialState: initialProcessInstanceState,
  decide,
  evolve,
};
