// The catalogue of the domain's event types: the unions of every aggregate and the schema version each type is
// written with. The event store stamps new events with these versions; upcasters (domain/upcasters.ts) lift
// events stored at older versions. A type added to a union without an entry here fails to compile.
import type { DataEntryEvent } from "./data-entry.ts";
import type { ProcessDefinitionEvent } from "./process-definition.ts";
import type { ProcessInstanceEvent } from "./process-instance.ts";
import type { ProcessVariablesEvent } from "./process-variables.ts";
import type { TaskEvent } from "./task.ts";

export type { DataEntryEvent } from "./data-entry.ts";
export type { ProcessDefinitionEvent } from "./process-definition.ts";
export type { ProcessInstanceEvent } from "./process-instance.ts";
export type { ProcessVariablesEvent } from "./process-variables.ts";
export type { TaskEngineEvent, TaskEvent, TaskInteractionEvent } from "./task.ts";

export type AnyDomainEvent = TaskEvent | DataEntryEvent | ProcessDefinitionEvent | ProcessInstanceEvent | ProcessVariablesEvent;
export type DomainEventType = AnyDomainEvent["type"];

export type AggregateName = "task" | "dataEntry" | "processDefinition" | "processInstance" | "processVariables";

// `satisfies Record<Union["type"], number>` makes each table list exactly the types of its union.
const taskVersions = {
  TaskCreated: 1,
  TaskAssigned: 1,
  TaskCompleted: 1,
  TaskDeleted: 1,
  TaskAttributesUpdated: 1,
  TaskCandidateUserAdded: 1,
  TaskCandidateUserDeleted: 1,
  TaskCandidateGroupAdded: 1,
  TaskCandidateGroupDeleted: 1,
  TaskClaimed: 1,
  TaskUnclaimed: 1,
  TaskDeferred: 1,
  TaskUndeferred: 1,
  TaskToBeCompleted: 1,
  TaskInteractionRefused: 1,
} as const satisfies Record<TaskEvent["type"], number>;

const dataEntryVersions = {
  DataEntryCreated: 1,
  DataEntryUpdated: 1,
  DataEntryDeleted: 1,
  DataEntryAnonymized: 1,
} as const satisfies Record<DataEntryEvent["type"], number>;

const processDefinitionVersions = {
  // 2: startsThroughForm (upcaster in domain/upcasters.ts).
  ProcessDefinitionRegistered: 2,
  ProcessStartRequested: 1,
  ProcessStartRefused: 1,
} as const satisfies Record<ProcessDefinitionEvent["type"], number>;

const processInstanceVersions = {
  ProcessInstanceStarted: 1,
  ProcessInstanceFinished: 1,
  ProcessInstanceCancelled: 1,
  ProcessInstanceSuspended: 1,
  ProcessInstanceResumed: 1,
} as const satisfies Record<ProcessInstanceEvent["type"], number>;

const processVariablesVersions = {
  ProcessVariablesChanged: 1,
} as const satisfies Record<ProcessVariablesEvent["type"], number>;

export interface EventTypeInfo {
  type: DomainEventType;
  schemaVersion: number;
}

function list(versions: Partial<Record<DomainEventType, number>>): EventTypeInfo[] {
  return Object.entries(versions).map(([type, schemaVersion]) => ({ type: type as DomainEventType, schemaVersion: schemaVersion! }));
}

/** Every event type with its current schema version, grouped per aggregate. */
export const eventTypes: Readonly<Record<AggregateName, readonly EventTypeInfo[]>> = {
  task: list(taskVersions),
  dataEntry: list(dataEntryVersions),
  processDefinition: list(processDefinitionVersions),
  processInstance: list(processInstanceVersions),
  processVariables: list(processVariablesVersions),
};

const versionByType: ReadonlyMap<string, number> = new Map(
  Object.values(eventTypes).flatMap((infos) => infos.map((info) => [info.type, info.schemaVersion] as const)),
);

/** The schema version new events of `type` are written with; undefined for a type the domain does not know. */
export function eventSchemaVersion(type: string): number | undefined {
  return versionByType.get(type);
}

export function isDomainEventType(type: string): type is DomainEventType {
  return versionByType.has(type);
}
