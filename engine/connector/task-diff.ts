// The shadow diff of the engine connector: what an engine says about one user task, turned into the task
// pool's snapshot of it (identity, attributes, enriched payload and correlations), and the difference between
// that snapshot and the last one the pool was told, as the smallest ordered list of task commands. Polyflow
// collects per engine event and then sorts and merges the commands of one transaction (§4.7); polling sees
// states rather than events, so the diff yields the merged result directly. Pure: no I/O, no clock.
import { jsonEqual, nameSet, nonEmptyOrNull, orNull, type Correlations, type IsoDate, type Payload, type SourceReference } from "../../domain/types.ts";
import type { TaskSnapshot } from "../../domain/task.ts";
import { assignFromVariables, correlate, filterVariables, type EnrichmentConfig } from "./enrichment.ts";

/** What an engine reports about one open user task, engine-neutral. */
export interface EngineTaskFacts {
  id: string;
  taskDefinitionKey: string;
  name: string | null;
  description: string | null;
  formKey: string | null;
  assignee: string | null;
  owner: string | null;
  priority: number | null;
  createTime: IsoDate | null;
  dueDate: IsoDate | null;
  followUpDate: IsoDate | null;
  processInstanceId: string;
  executionId: string | null;
  processDefinitionId: string;
  tenantId: string | null;
  candidateUsers: string[];
  candidateGroups: string[];
}

/** Where the task lives, beyond what the task itself says. */
export interface TaskContext {
  applicationName: string;
  processDefinitionKey: string;
  /** The process's name (the definition key when it has none). */
  processName: string;
  businessKey: string | null;
  /** All variables visible from the task, as plain JSON. */
  variables: Payload;
}

export function sourceReferenceOf(facts: Pick<EngineTaskFacts, "processInstanceId" | "executionId" | "processDefinitionId" | "tenantId">, context: Pick<TaskContext, "applicationName" | "processDefinitionKey" | "processName">): SourceReference {
  return {
    type: "process",
    instanceId: facts.processInstanceId,
    executionId: facts.executionId ?? facts.processInstanceId,
    definitionId: facts.processDefinitionId,
    definitionKey: context.processDefinitionKey,
    name: context.processName,
    applicationName: context.applicationName,
    tenantId: orNull(facts.tenantId),
  };
}

/** The pool's snapshot of an engine task: enrichment (filters, correlations, assignment) applied. */
export function taskSnapshotOf(facts: EngineTaskFacts, context: TaskContext, enrichment: EnrichmentConfig = {}): TaskSnapshot {
  const scope = { processDefinitionKey: context.processDefinitionKey, taskDefinitionKey: facts.taskDefinitionKey };
  const assignment = assignFromVariables(
    enrichment.assignment,
    { assignee: facts.assignee, candidateUsers: facts.candidateUsers, candidateGroups: facts.candidateGroups },
    context.variables,
  );
  return {
    id: facts.id,
    sourceReference: sourceReferenceOf(facts, context),
    taskDefinitionKey: facts.taskDefinitionKey,
    name: orNull(facts.name),
    description: orNull(facts.description),
    formKey: nonEmptyOrNull(facts.formKey),
    businessKey: nonEmptyOrNull(context.businessKey),
    priority: orNull(facts.priority),
    createTime: orNull(facts.createTime),
    dueDate: orNull(facts.dueDate),
    followUpDate: orNull(facts.followUpDate),
    owner: orNull(facts.owner),
    assignee: orNull(assignment.assignee),
    candidateUsers: nameSet(assignment.candidateUsers),
    candidateGroups: nameSet(assignment.candidateGroups),
    payload: filterVariables(enrichment.variableFilters, scope, context.variables),
    correlations: correlate(enrichment.correlations, scope, context.variables),
  };
}

// Commands ------------------------------------------------------------------------------------------------------

type Attributes = Pick<TaskSnapshot, "businessKey" | "name" | "description" | "formKey" | "priority" | "owner" | "dueDate" | "followUpDate">;

export interface CreateTaskParams extends TaskSnapshot {
  enriched: true;
}

export interface UpdateTaskAttributesParams extends Attributes {
  id: string;
  sourceReference: SourceReference;
  taskDefinitionKey: string;
  payload: Payload;
  correlations: Correlations;
  enriched: true;
}

/** One command for the `task` service: `task.<action>` with these params. */
export type TaskCommandPlan =
  | { action: "create"; params: CreateTaskParams }
  | { action: "complete"; params: { id: string; assignee: string | null } }
  | { action: "delete"; params: { id: string; deleteReason: string | null } }
  | { action: "assign"; params: { id: string; assignee: string | null } }
  | { action: "addCandidateUsers" | "deleteCandidateUsers"; params: { id: string; candidateUsers: string[] } }
  | { action: "addCandidateGroups" | "deleteCandidateGroups"; params: { id: string; candidateGroups: string[] } }
  | { action: "updateAttributes"; params: UpdateTaskAttributesParams };

export type TaskAction = TaskCommandPlan["action"];

/** Polyflow's command order (EngineTaskCommandSorter): create, complete, delete, assignment, candidates, attributes. */
export const taskCommandOrder: Record<TaskAction, number> = {
  create: -3,
  complete: -2,
  delete: -1,
  assign: 0,
  addCandidateUsers: 1,
  deleteCandidateUsers: 1,
  addCandidateGroups: 1,
  deleteCandidateGroups: 1,
  updateAttributes: 2,
};

const attributeKeys = ["businessKey", "name", "description", "formKey", "priority", "owner", "dueDate", "followUpDate"] as const;

function attributesOf(snapshot: TaskSnapshot): Attributes {
  return {
    businessKey: snapshot.businessKey,
    name: snapshot.name,
    description: snapshot.description,
    formKey: snapshot.formKey,
    priority: snapshot.priority,
    owner: snapshot.owner,
    dueDate: snapshot.dueDate,
    followUpDate: snapshot.followUpDate,
  };
}

function createOf(snapshot: TaskSnapshot): TaskCommandPlan {
  return { action: "create", params: { ...snapshot, candidateUsers: nameSet(snapshot.candidateUsers), candidateGroups: nameSet(snapshot.candidateGroups), enriched: true } };
}

function updateOf(snapshot: TaskSnapshot): TaskCommandPlan {
  return {
    action: "updateAttributes",
    params: {
      id: snapshot.id,
      sourceReference: snapshot.sourceReference,
      taskDefinitionKey: snapshot.taskDefinitionKey,
      ...attributesOf(snapshot),
      payload: snapshot.payload,
      correlations: snapshot.correlations,
      enriched: true,
    },
  };
}

function minus(a: readonly string[], b: readonly string[]): string[] {
  const other = new Set(b);
  return nameSet(a.filter((name) => !other.has(name)));
}

/** True when the two snapshots differ in what an attribute update carries. */
export function attributesDiffer(previous: TaskSnapshot, next: TaskSnapshot): boolean {
  // The pool keeps businessKey and formKey when a report has none, so "none" is no difference.
  if (next.businessKey !== null && next.businessKey !== previous.businessKey) return true;
  if (next.formKey !== null && next.formKey !== previous.formKey) return true;
  return (
    attributeKeys.some((key) => key !== "businessKey" && key !== "formKey" && previous[key] !== next[key]) ||
    !jsonEqual(previous.payload, next.payload) ||
    !jsonEqual(previous.correlations, next.correlations)
  );
}

/**
 * The commands that bring the pool from `previous` (what it was told; null: nothing) to `next`, in Polyflow's
 * order: a create absorbs everything; otherwise assignment, candidate additions and removals (set difference),
 * then one attribute update carrying the whole attribute set, payload and correlations.
 */
export function diffTask(previous: TaskSnapshot | null, next: TaskSnapshot): TaskCommandPlan[] {
  if (previous === null) return [createOf(next)];
  const id = next.id;
  const commands: TaskCommandPlan[] = [];
  if (previous.assignee !== next.assignee) commands.push({ action: "assign", params: { id, assignee: next.assignee } });
  const addedUsers = minus(next.candidateUsers, previous.candidateUsers);
  const removedUsers = minus(previous.candidateUsers, next.candidateUsers);
  const addedGroups = minus(next.candidateGroups, previous.candidateGroups);
  const removedGroups = minus(previous.candidateGroups, next.candidateGroups);
  if (addedUsers.length > 0) commands.push({ action: "addCandidateUsers", params: { id, candidateUsers: addedUsers } });
  if (removedUsers.length > 0) commands.push({ action: "deleteCandidateUsers", params: { id, candidateUsers: removedUsers } });
  if (addedGroups.length > 0) commands.push({ action: "addCandidateGroups", params: { id, candidateGroups: addedGroups } });
  if (removedGroups.length > 0) commands.push({ action: "deleteCandidateGroups", params: { id, candidateGroups: removedGroups } });
  if (attributesDiffer(previous, next)) commands.push(updateOf(next));
  return commands;
}

/** The state the pool is in after `commands`, starting from `previous`: the shadow to keep after sending them. */
export function applyTaskCommands(previous: TaskSnapshot | null, commands: readonly TaskCommandPlan[]): TaskSnapshot | null {
  let snapshot = previous;
  for (const command of commands) {
    if (command.action === "create") {
      const { enriched: _enriched, ...rest } = command.params;
      snapshot = rest;
      continue;
    }
    if (snapshot === null) continue;
    switch (command.action) {
      case "assign":
        snapshot = { ...snapshot, assignee: command.params.assignee };
        break;
      case "complete":
        snapshot = { ...snapshot, assignee: command.params.assignee ?? snapshot.assignee };
        break;
      case "delete":
        break;
      case "addCandidateUsers":
        snapshot = { ...snapshot, candidateUsers: nameSet([...snapshot.candidateUsers, ...command.params.candidateUsers]) };
        break;
      case "deleteCandidateUsers":
        snapshot = { ...snapshot, candidateUsers: minus(snapshot.candidateUsers, command.params.candidateUsers) };
        break;
      case "addCandidateGroups":
        snapshot = { ...snapshot, candidateGroups: nameSet([...snapshot.candidateGroups, ...command.params.candidateGroups]) };
        break;
      case "deleteCandidateGroups":
        snapshot = { ...snapshot, candidateGroups: minus(snapshot.candidateGroups, command.params.candidateGroups) };
        break;
      case "updateAttributes": {
        const p = command.params;
        snapshot = {
          ...snapshot,
          businessKey: p.businessKey ?? snapshot.businessKey,
          formKey: p.formKey ?? snapshot.formKey,
          name: p.name,
          description: p.description,
          priority: p.priority,
          owner: p.owner,
          dueDate: p.dueDate,
          followUpDate: p.followUpDate,
          payload: p.payload,
          correlations: p.correlations,
        };
        break;
      }
    }
  }
  return snapshot;
}

/** How a task left the engine. */
export interface TaskEnd {
  outcome: "completed" | "deleted";
  /** The assignee when it ended (the completer, for a completed task). */
  assignee: string | null;
  deleteReason: string | null;
  /**
   * The task as it was at its end, for a task the pool never saw (created and ended between two polls); it is
   * created first, so that the pool's history has it.
   */
  snapshot?: TaskSnapshot | null;
}

/** The commands that report the end of a task: complete (absorbing a last assignment) or delete. */
export function finishTask(previous: TaskSnapshot | null, end: TaskEnd): TaskCommandPlan[] {
  const commands: TaskCommandPlan[] = [];
  let known = previous;
  if (known === null) {
    if (!end.snapshot) return [];
    commands.push(createOf(end.snapshot));
    known = end.snapshot;
  }
  if (end.outcome === "completed") {
    commands.push({ action: "complete", params: { id: known.id, assignee: end.assignee ?? known.assignee } });
  } else {
    commands.push({ action: "delete", params: { id: known.id, deleteReason: end.deleteReason } });
  }
  return commands;
}
