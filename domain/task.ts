// The task aggregate: one user task of one engine, from creation to completion or deletion. It owns the task
// pool's rules — idempotent create, nothing after the end, assignment and candidate changes, the attribute merge
// — and turns a user's interaction intents (claim, defer, complete, …) into interaction events that the owning
// engine's connector performs. Interaction events never change the task: the engine's echo does.
import { assertNever, DomainError, type Decider, type DomainEvent } from "./decider.ts";
import {
  jsonEqual,
  nameSet,
  nonEmptyOrNull,
  normalizeSourceReference,
  orNull,
  type Correlations,
  type IsoDate,
  type Payload,
  type SourceReference,
} from "./types.ts";

export function taskStreamId(id: string): string {
  return `task-${id}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes

export interface TaskIdentity {
  id: string;
  sourceReference: SourceReference;
  taskDefinitionKey: string;
}

/** The whole task as the pool knows it; the data of TaskCreated, kept current by evolve. */
export interface TaskSnapshot extends TaskIdentity {
  name: string | null;
  description: string | null;
  formKey: string | null;
  businessKey: string | null;
  priority: number | null;
  createTime: IsoDate | null;
  dueDate: IsoDate | null;
  followUpDate: IsoDate | null;
  owner: string | null;
  assignee: string | null;
  candidateUsers: string[];
  candidateGroups: string[];
  payload: Payload;
  correlations: Correlations;
}

export type TaskInteraction = "claim" | "unclaim" | "defer" | "undefer" | "complete";

// Commands ------------------------------------------------------------------------------------------------------

export interface CreateTask {
  type: "CreateTask";
  id: string;
  sourceReference: SourceReference;
  taskDefinitionKey: string;
  name?: string | null;
  description?: string | null;
  formKey?: string | null;
  businessKey?: string | null;
  priority?: number | null;
  createTime?: IsoDate | null;
  dueDate?: IsoDate | null;
  followUpDate?: IsoDate | null;
  owner?: string | null;
  assignee?: string | null;
  candidateUsers?: string[] | null;
  candidateGroups?: string[] | null;
  payload?: Payload | null;
  correlations?: Correlations | null;
  /** false: the sender did not collect payload and correlations, so a re-create keeps the known ones. */
  enriched?: boolean | null;
}

export interface AssignTask {
  type: "AssignTask";
  id: string;
  /** null unassigns. */
  assignee: string | null;
}

export interface CompleteTask {
  type: "CompleteTask";
  id: string;
  assignee?: string | null;
}

export interface DeleteTask {
  type: "DeleteTask";
  id: string;
  deleteReason?: string | null;
}

export interface UpdateTaskAttributes {
  type: "UpdateTaskAttributes";
  id: string;
  /** Accepted for compatibility with senders that always send the identity; never changes the task. */
  sourceReference?: SourceReference | null;
  /** Accepted for compatibility with senders that always send the identity; never changes the task. */
  taskDefinitionKey?: string | null;
  businessKey?: string | null;
  name?: string | null;
  description?: string | null;
  formKey?: string | null;
  priority?: number | null;
  owner?: string | null;
  dueDate?: IsoDate | null;
  followUpDate?: IsoDate | null;
  payload?: Payload | null;
  correlations?: Correlations | null;
  enriched: boolean;
}

export interface AddCandidateUsers {
  type: "AddCandidateUsers";
  id: string;
  candidateUsers: string[];
}

export interface DeleteCandidateUsers {
  type: "DeleteCandidateUsers";
  id: string;
  candidateUsers: string[];
}

export interface AddCandidateGroups {
  type: "AddCandidateGroups";
  id: string;
  candidateGroups: string[];
}

export interface DeleteCandidateGroups {
  type: "DeleteCandidateGroups";
  id: string;
  candidateGroups: string[];
}

export interface ClaimTask {
  type: "ClaimTask";
  id: string;
  assignee: string;
}

export interface UnclaimTask {
  type: "UnclaimTask";
  id: string;
  /** The user who asks; when set, the task must be theirs or nobody's (see assertNotClaimedByOther). */
  username?: string | null;
}

export interface DeferTask {
  type: "DeferTask";
  id: string;
  followUpDate: IsoDate;
  /** The user who asks; when set, the task must be theirs or nobody's. */
  username?: string | null;
}

export interface UndeferTask {
  type: "UndeferTask";
  id: string;
  /** The user who asks; when set, the task must be theirs or nobody's. */
  username?: string | null;
}

export interface RequestTaskCompletion {
  type: "RequestTaskCompletion";
  id: string;
  payload: Payload;
  assignee?: string | null;
}

/** Sent by an engine connector when its engine refused to perform an interaction event. */
export interface ReportTaskInteractionRefused {
  type: "ReportTaskInteractionRefused";
  id: string;
  interaction: TaskInteraction;
  reason: string;
  username?: string | null;
}

export type TaskEngineCommand =
  | CreateTask
  | AssignTask
  | CompleteTask
  | DeleteTask
  | UpdateTaskAttributes
  | AddCandidateUsers
  | DeleteCandidateUsers
  | AddCandidateGroups
  | DeleteCandidateGroups;

export type TaskInteractionCommand = ClaimTask | UnclaimTask | DeferTask | UndeferTask | RequestTaskCompletion;

export type TaskCommand = TaskEngineCommand | TaskInteractionCommand | ReportTaskInteractionRefused;

// Events --------------------------------------------------------------------------------------------------------

export interface TaskAttributesUpdatedData extends TaskIdentity {
  businessKey: string | null;
  name: string | null;
  description: string | null;
  formKey: string | null;
  priority: number | null;
  owner: string | null;
  dueDate: IsoDate | null;
  followUpDate: IsoDate | null;
  /** Present only when the update replaced the payload. */
  payload?: Payload;
  /** Present only when the update replaced the correlations. */
  correlations?: Correlations;
}

export type TaskCreated = DomainEvent<"TaskCreated", TaskSnapshot>;
export type TaskAssigned = DomainEvent<"TaskAssigned", TaskIdentity & { assignee: string | null }>;
export type TaskCompleted = DomainEvent<"TaskCompleted", TaskIdentity & { assignee: string | null }>;
export type TaskDeleted = DomainEvent<"TaskDeleted", TaskIdentity & { deleteReason: string | null }>;
export type TaskAttributesUpdated = DomainEvent<"TaskAttributesUpdated", TaskAttributesUpdatedData>;
export type TaskCandidateUserAdded = DomainEvent<"TaskCandidateUserAdded", TaskIdentity & { userId: string }>;
export type TaskCandidateUserDeleted = DomainEvent<"TaskCandidateUserDeleted", TaskIdentity & { userId: string }>;
export type TaskCandidateGroupAdded = DomainEvent<"TaskCandidateGroupAdded", TaskIdentity & { groupId: string }>;
export type TaskCandidateGroupDeleted = DomainEvent<"TaskCandidateGroupDeleted", TaskIdentity & { groupId: string }>;

export type TaskClaimed = DomainEvent<"TaskClaimed", TaskIdentity & { formKey: string | null; assignee: string }>;
export type TaskUnclaimed = DomainEvent<"TaskUnclaimed", TaskIdentity & { formKey: string | null; previousAssignee: string }>;
export type TaskDeferred = DomainEvent<"TaskDeferred", TaskIdentity & { formKey: string | null; followUpDate: IsoDate }>;
export type TaskUndeferred = DomainEvent<"TaskUndeferred", TaskIdentity & { formKey: string | null }>;
export type TaskToBeCompleted = DomainEvent<
  "TaskToBeCompleted",
  TaskIdentity & { formKey: string | null; payload: Payload; assignee: string | null }
>;
export type TaskInteractionRefused = DomainEvent<
  "TaskInteractionRefused",
  TaskIdentity & { interaction: TaskInteraction; reason: string; username: string | null }
>;

/** Facts reported by the engine: they change the task. */
export type TaskEngineEvent =
  | TaskCreated
  | TaskAssigned
  | TaskCompleted
  | TaskDeleted
  | TaskAttributesUpdated
  | TaskCandidateUserAdded
  | TaskCandidateUserDeleted
  | TaskCandidateGroupAdded
  | TaskCandidateGroupDeleted;

/** Intents for the owning engine (and its refusals): they leave the task as it is. */
export type TaskInteractionEvent =
  | TaskClaimed
  | TaskUnclaimed
  | TaskDeferred
  | TaskUndeferred
  | TaskToBeCompleted
  | TaskInteractionRefused;

export type TaskEvent = TaskEngineEvent | TaskInteractionEvent;

const interactionEventTypes: ReadonlySet<string> = new Set<TaskInteractionEvent["type"]>([
  "TaskClaimed",
  "TaskUnclaimed",
  "TaskDeferred",
  "TaskUndeferred",
  "TaskToBeCompleted",
  "TaskInteractionRefused",
]);

export function isTaskInteractionEvent(event: DomainEvent): event is TaskInteractionEvent {
  return interactionEventTypes.has(event.type);
}

// State ---------------------------------------------------------------------------------------------------------

export type TaskStatus = "initial" | "active" | "completed" | "deleted";

export interface TaskState {
  status: TaskStatus;
  task: TaskSnapshot | null;
}

export const initialTaskState: TaskState = { status: "initial", task: null };

// ---------------------------------------------------------------------------------------------------------------
// Decide

function identityOf(task: TaskSnapshot): TaskIdentity {
  return { id: task.id, sourceReference: task.sourceReference, taskDefinitionKey: task.taskDefinitionKey };
}

function snapshotOf(command: CreateTask, previous: TaskSnapshot | null): TaskSnapshot {
  const keepCollected = previous !== null && command.enriched === false;
  return {
    id: command.id,
    sourceReference: normalizeSourceReference(command.sourceReference),
    taskDefinitionKey: command.taskDefinitionKey,
    name: orNull(command.name),
    description: orNull(command.description),
    formKey: orNull(command.formKey),
    businessKey: orNull(command.businessKey),
    priority: orNull(command.priority),
    createTime: orNull(command.createTime),
    dueDate: orNull(command.dueDate),
    followUpDate: orNull(command.followUpDate),
    owner: orNull(command.owner),
    assignee: orNull(command.assignee),
    candidateUsers: nameSet(command.candidateUsers),
    candidateGroups: nameSet(command.candidateGroups),
    payload: keepCollected ? previous.payload : (command.payload ?? {}),
    correlations: keepCollected ? previous.correlations : (command.correlations ?? {}),
  };
}

function decideCreate(command: CreateTask, previous: TaskSnapshot | null): TaskEvent[] {
  const snapshot = snapshotOf(command, previous);
  // A re-import of an unchanged task must not produce events; a changed one refreshes the snapshot.
  if (previous !== null && jsonEqual(snapshot, previous)) return [];
  return [{ type: "TaskCreated", data: snapshot }];
}

/** The names of `requested` that would change `current`: missing ones when adding, present ones when deleting. */
function effectiveCandidates(current: string[], requested: string[], adding: boolean): string[] {
  const known = new Set(current);
  return nameSet(requested).filter((name) => known.has(name) !== adding);
}

/**
 * Camunda's claim rule (TaskAlreadyClaimedException), applied to every intent of a user: a task that someone holds
 * is theirs — nobody else may claim, unclaim, defer, undefer or complete it. Checked here, in the decider, so that
 * every front door (the platform's API, an application's API, the REPL, a connector) gives the same answer. A
 * command without a user (an engine's own report, an operator's call) is not a user's intent and passes.
 */
function assertNotClaimedByOther(task: TaskSnapshot, username: string | null | undefined, interaction: TaskInteraction): void {
  const actor = orNull(username);
  if (actor === null || task.assignee === null || task.assignee === actor) return;
  throw new DomainError("CONFLICT", `task ${task.id} is claimed by ${task.assignee}`, {
    aggregate: "task",
    id: task.id,
    assignee: task.assignee,
    interaction,
  });
}

function claimEvents(task: TaskSnapshot, assignee: string): TaskEvent[] {
  const events: TaskEvent[] = [];
  if (task.assignee !== null) {
    events.push({ type: "TaskUnclaimed", data: { ...identityOf(task), formKey: task.formKey, previousAssignee: task.assignee } });
  }
  events.push({ type: "TaskClaimed", data: { ...identityOf(task), formKey: task.formKey, assignee } });
  return events;
}

const mergedAttributeKeys = [
  "businessKey",
  "name",
  "description",
  "formKey",
  "priority",
  "owner",
  "dueDate",
  "followUpDate",
] as const;

function decideUpdate(command: UpdateTaskAttributes, task: TaskSnapshot): TaskEvent[] {
  const merged = {
    // The engine does not always report these two; an empty value means "not reported", not "cleared".
    businessKey: nonEmptyOrNull(command.businessKey) ?? task.businessKey,
    formKey: nonEmptyOrNull(command.formKey) ?? task.formKey,
    name: orNull(command.name),
    description: orNull(command.description),
    priority: orNull(command.priority),
    owner: orNull(command.owner),
    dueDate: orNull(command.dueDate),
    // A null follow-up date clears it (Polyflow kept the old one, its bug #1227).
    followUpDate: orNull(command.followUpDate),
  };
  // Without enrichment the sender did not look at the variables, so its (empty) payload says nothing.
  const payloadReplaced = command.enriched && command.payload != null && !jsonEqual(command.payload, task.payload);
  const correlationsReplaced =
    command.enriched && command.correlations != null && !jsonEqual(command.correlations, task.correlations);
  const attributesChanged = mergedAttributeKeys.some((key) => merged[key] !== task[key]);
  if (!attributesChanged && !payloadReplaced && !correlationsReplaced) return [];

  const data: TaskAttributesUpdatedData = {
    ...identityOf(task),
    businessKey: merged.businessKey,
    name: merged.name,
    description: merged.description,
    formKey: merged.formKey,
    priority: merged.priority,
    owner: merged.owner,
    dueDate: merged.dueDate,
    followUpDate: merged.followUpDate,
  };
  if (payloadReplaced) data.payload = command.payload!;
  if (correlationsReplaced) data.correlations = command.correlations!;
  return [{ type: "TaskAttributesUpdated", data }];
}

function decide(command: TaskCommand, state: TaskState): TaskEvent[] {
  // Once the engine reported the end, late or replayed commands (and user clicks) have nothing left to act on.
  if (state.status === "completed" || state.status === "deleted") return [];
  if (command.type === "CreateTask") return decideCreate(command, state.task);

  const task = state.task;
  if (state.status === "initial" || task === null) {
    throw new DomainError("NOT_FOUND", `task ${command.id} does not exist`, { aggregate: "task", id: command.id });
  }
  const identity = identityOf(task);

  switch (command.type) {
    case "AssignTask": {
      const assignee = orNull(command.assignee);
      return assignee === task.assignee ? [] : [{ type: "TaskAssigned", data: { ...identity, assignee } }];
    }
    case "CompleteTask": {
      const assignee = orNull(command.assignee);
      if (assignee !== null && assignee !== task.assignee) {
        return [
          { type: "TaskAssigned", data: { ...identity, assignee } },
          { type: "TaskCompleted", data: { ...identity, assignee } },
        ];
      }
      return [{ type: "TaskCompleted", data: { ...identity, assignee: task.assignee } }];
    }
    case "DeleteTask":
      return [{ type: "TaskDeleted", data: { ...identity, deleteReason: orNull(command.deleteReason) } }];
    case "UpdateTaskAttributes":
      return decideUpdate(command, task);
    case "AddCandidateUsers":
      return effectiveCandidates(task.candidateUsers, command.candidateUsers, true).map((userId) => ({
        type: "TaskCandidateUserAdded",
        data: { ...identity, userId },
      }));
    case "DeleteCandidateUsers":
      return effectiveCandidates(task.candidateUsers, command.candidateUsers, false).map((userId) => ({
        type: "TaskCandidateUserDeleted",
        data: { ...identity, userId },
      }));
    case "AddCandidateGroups":
      return effectiveCandidates(task.candidateGroups, command.candidateGroups, true).map((groupId) => ({
        type: "TaskCandidateGroupAdded",
        data: { ...identity, groupId },
      }));
    case "DeleteCandidateGroups":
      return effectiveCandidates(task.candidateGroups, command.candidateGroups, false).map((groupId) => ({
        type: "TaskCandidateGroupDeleted",
        data: { ...identity, groupId },
      }));
    case "ClaimTask":
      assertNotClaimedByOther(task, command.assignee, "claim");
      return command.assignee === task.assignee ? [] : claimEvents(task, command.assignee);
    case "UnclaimTask":
      assertNotClaimedByOther(task, command.username, "unclaim");
      return task.assignee === null
        ? []
        : [{ type: "TaskUnclaimed", data: { ...identity, formKey: task.formKey, previousAssignee: task.assignee } }];
    case "DeferTask":
      assertNotClaimedByOther(task, command.username, "defer");
      return [{ type: "TaskDeferred", data: { ...identity, formKey: task.formKey, followUpDate: command.followUpDate } }];
    case "UndeferTask":
      assertNotClaimedByOther(task, command.username, "undefer");
      return [{ type: "TaskUndeferred", data: { ...identity, formKey: task.formKey } }];
    case "RequestTaskCompletion": {
      const assignee = orNull(command.assignee);
      assertNotClaimedByOther(task, assignee, "complete");
      // The engine completes as the task's assignee, so a different completer claims it first.
      const events = assignee !== null && assignee !== task.assignee ? claimEvents(task, assignee) : [];
      events.push({
        type: "TaskToBeCompleted",
        data: { ...identity, formKey: task.formKey, payload: command.payload ?? {}, assignee: assignee ?? task.assignee },
      });
      return events;
    }
    case "ReportTaskInteractionRefused":
      return [
        {
          type: "TaskInteractionRefused",
          data: { ...identity, interaction: command.interaction, reason: command.reason, username: orNull(command.username) },
        },
      ];
    default:
      return assertNever(command, "task command");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Evolve

function evolve(state: TaskState, event: TaskEvent): TaskState {
  if (event.type === "TaskCreated") return { status: "active", task: event.data };
  const task = state.task;
  // A stream that does not start with TaskCreated cannot be applied; keeping the state lets it still be read.
  if (task === null) return state;

  switch (event.type) {
    case "TaskAssigned":
      return { ...state, task: { ...task, assignee: event.data.assignee } };
    case "TaskCompleted":
      return { status: "completed", task: { ...task, assignee: event.data.assignee } };
    case "TaskDeleted":
      return { status: "deleted", task };
    case "TaskAttributesUpdated": {
      const data = event.data;
      return {
        ...state,
        task: {
          ...task,
          businessKey: data.businessKey,
          name: data.name,
          description: data.description,
          formKey: data.formKey,
          priority: data.priority,
          owner: data.owner,
          dueDate: data.dueDate,
          followUpDate: data.followUpDate,
          payload: data.payload ?? task.payload,
          correlations: data.correlations ?? task.correlations,
        },
      };
    }
    case "TaskCandidateUserAdded":
      return { ...state, task: { ...task, candidateUsers: nameSet([...task.candidateUsers, event.data.userId]) } };
    case "TaskCandidateUserDeleted":
      return { ...state, task: { ...task, candidateUsers: task.candidateUsers.filter((u) => u !== event.data.userId) } };
    case "TaskCandidateGroupAdded":
      return { ...state, task: { ...task, candidateGroups: nameSet([...task.candidateGroups, event.data.groupId]) } };
    case "TaskCandidateGroupDeleted":
      return { ...state, task: { ...task, candidateGroups: task.candidateGroups.filter((g) => g !== event.data.groupId) } };
    case "TaskClaimed":
    case "TaskUnclaimed":
    case "TaskDeferred":
    case "TaskUndeferred":
    case "TaskToBeCompleted":
    case "TaskInteractionRefused":
      // Intents only: the engine reports the real change later (assign, update, complete).
      return state;
    default:
      return assertNever(event, "task event");
  }
}

export const taskDecider: Decider<TaskCommand, TaskState, TaskEvent> = {
  initialState: initialTaskState,
  decide,
  evolve,
};
