import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { taskDecider, type TaskCommand, type TaskEvent, type TaskSnapshot, type TaskState } from "../../../domain/task.ts";
import {
  applyTaskCommands,
  diffTask,
  finishTask,
  taskCommandOrder,
  taskSnapshotOf,
  type EngineTaskFacts,
  type TaskCommandPlan,
} from "../../../engine/connector/task-diff.ts";
import type { SourceReference } from "../../../domain/types.ts";

const sourceReference: SourceReference = {
  type: "process",
  instanceId: "pi-1",
  executionId: "ex-1",
  definitionId: "approve:1:x",
  definitionKey: "approve",
  name: "Request Approval",
  applicationName: "example",
  tenantId: null,
};

function snapshot(overrides: Partial<TaskSnapshot> = {}): TaskSnapshot {
  return {
    id: "t-1",
    sourceReference,
    taskDefinitionKey: "approve",
    name: "Approve",
    description: null,
    formKey: "approve-form",
    businessKey: "BK-1",
    priority: 50,
    createTime: "2026-11-23T10:00:00.000Z",
    dueDate: null,
    followUpDate: null,
    owner: null,
    assignee: null,
    candidateUsers: ["gonzo"],
    candidateGroups: ["muppetshow"],
    payload: { amount: 1 },
    correlations: { Request: "R-1" },
    ...overrides,
  };
}

const COMMAND_TYPES: Record<TaskCommandPlan["action"], TaskCommand["type"]> = {
  create: "CreateTask",
  assign: "AssignTask",
  complete: "CompleteTask",
  delete: "DeleteTask",
  updateAttributes: "UpdateTaskAttributes",
  addCandidateUsers: "AddCandidateUsers",
  deleteCandidateUsers: "DeleteCandidateUsers",
  addCandidateGroups: "AddCandidateGroups",
  deleteCandidateGroups: "DeleteCandidateGroups",
};

/** Runs the plans through the real task decider, as the `task` service would. */
function run(state: TaskState, plans: TaskCommandPlan[]): { state: TaskState; events: TaskEvent[] } {
  const events: TaskEvent[] = [];
  for (const plan of plans) {
    const command = { type: COMMAND_TYPES[plan.action], ...plan.params } as TaskCommand;
    const decided = taskDecider.decide(command, state);
    events.push(...decided);
    state = decided.reduce(taskDecider.evolve, state);
  }
  return { state, events };
}

function created(task: TaskSnapshot): TaskState {
  return run(taskDecider.initialState, diffTask(null, task)).state;
}

describe("task snapshot of an engine task", () => {
  const facts: EngineTaskFacts = {
    id: "t-1",
    taskDefinitionKey: "approve",
    name: "Approve",
    description: null,
    formKey: "",
    assignee: null,
    owner: null,
    priority: 60,
    createTime: "2026-11-23T10:00:00.000Z",
    dueDate: null,
    followUpDate: null,
    processInstanceId: "pi-1",
    executionId: null,
    processDefinitionId: "approve:1:x",
    tenantId: null,
    candidateUsers: ["b", "a", "a"],
    candidateGroups: [],
  };

  it("builds the source reference, applies filters, correlations and assignment, and normalises sets and empty keys", () => {
    const task = taskSnapshotOf(
      facts,
      { applicationName: "example", processDefinitionKey: "approve", processName: "Request Approval", businessKey: "", variables: { requestId: "R-1", secret: "s", owner: "kermit" } },
      {
        variableFilters: [{ kind: "process", processDefinitionKey: "approve", mode: "EXCLUDE", variables: ["secret"] }],
        correlations: [{ processDefinitionKey: "approve", global: [{ variable: "requestId", entryType: "Request" }] }],
        assignment: { assignee: "owner" },
      },
    );
    expect(task).toMatchObject({
      sourceReference: { ...sourceReference, executionId: "pi-1" },
      formKey: null,
      businessKey: null,
      assignee: "kermit",
      candidateUsers: ["a", "b"],
      payload: { requestId: "R-1", owner: "kermit" },
      correlations: { Request: "R-1" },
    });
  });
});

describe("diffTask", () => {
  it("creates an unknown task, with everything in the create", () => {
    const next = snapshot({ assignee: "kermit" });
    const plans = diffTask(null, next);
    expect(plans).toEqual([{ action: "create", params: { ...next, enriched: true } }]);
  });

  it("yields nothing when nothing changed, and nothing for an absent businessKey or formKey (the pool keeps them)", () => {
    expect(diffTask(snapshot(), snapshot())).toEqual([]);
    expect(diffTask(snapshot(), snapshot({ businessKey: null, formKey: null }))).toEqual([]);
  });

  it("orders assignment, candidate additions and removals, then one attribute update", () => {
    const plans = diffTask(
      snapshot(),
      snapshot({ assignee: "fozzie", candidateUsers: ["animal"], candidateGroups: ["avengers", "muppetshow"], dueDate: "2026-12-24T17:00:00.000Z", payload: { amount: 2 } }),
    );
    expect(plans.map((p) => p.action)).toEqual(["assign", "addCandidateUsers", "deleteCandidateUsers", "addCandidateGroups", "updateAttributes"]);
    expect(plans.map((p) => taskCommandOrder[p.action])).toEqual([0, 1, 1, 1, 2]);
    expect(plans[1]!.params).toEqual({ id: "t-1", candidateUsers: ["animal"] });
    expect(plans[2]!.params).toEqual({ id: "t-1", candidateUsers: ["gonzo"] });
    expect(plans[4]!.params).toMatchObject({ dueDate: "2026-12-24T17:00:00.000Z", payload: { amount: 2 }, correlations: { Request: "R-1" }, enriched: true, name: "Approve" });
  });

  it("reports a cleared follow-up date or a changed correlation as an attribute update", () => {
    expect(diffTask(snapshot({ followUpDate: "2027-01-01T00:00:00.000Z" }), snapshot()).map((p) => p.action)).toEqual(["updateAttributes"]);
    expect(diffTask(snapshot(), snapshot({ correlations: {} })).map((p) => p.action)).toEqual(["updateAttributes"]);
  });

  const names = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d"), { maxLength: 4 }).map((n) => [...n].sort());
  const optionalDate = fc.option(fc.constantFrom("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"), { nil: null });
  const arbitrarySnapshot = fc.record({
    name: fc.option(fc.constantFrom("A", "B"), { nil: null }),
    description: fc.option(fc.constantFrom("d1", "d2"), { nil: null }),
    formKey: fc.constantFrom("f1", "f2"),
    businessKey: fc.constantFrom("BK-1", "BK-2"),
    priority: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
    dueDate: optionalDate,
    followUpDate: optionalDate,
    owner: fc.option(fc.constantFrom("o1", "o2"), { nil: null }),
    assignee: fc.option(fc.constantFrom("kermit", "piggy"), { nil: null }),
    candidateUsers: names,
    candidateGroups: names,
    payload: fc.dictionary(fc.constantFrom("x", "y", "z"), fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.constant(null))),
    correlations: fc.dictionary(fc.constantFrom("R", "S"), fc.constantFrom("1", "2")),
  }).map((overrides) => snapshot(overrides));

  it("brings the real task aggregate from any known state to any engine state, with one event per real change (property)", () => {
    fc.assert(
      fc.property(arbitrarySnapshot, arbitrarySnapshot, (previous, next) => {
        const plans = diffTask(previous, next);
        const { state, events } = run(created(previous), plans);
        expect(state.task).toEqual(next);
        // Smallest: every command changes something, so every command yields at least one event.
        expect(events.length).toBeGreaterThanOrEqual(plans.length);
        // The shadow kept after sending is what the pool now holds.
        expect(applyTaskCommands(previous, plans)).toEqual(next);
        // Sending the same commands again changes nothing.
        expect(run(state, plans).events).toEqual([]);
        expect(diffTask(next, next)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe("finishTask", () => {
  it("completes a known task with the completer (a last assignment absorbed), or deletes it with the reason", () => {
    expect(finishTask(snapshot({ assignee: "gonzo" }), { outcome: "completed", assignee: "kermit", deleteReason: "completed" })).toEqual([
      { action: "complete", params: { id: "t-1", assignee: "kermit" } },
    ]);
    expect(finishTask(snapshot({ assignee: "gonzo" }), { outcome: "completed", assignee: null, deleteReason: "completed" })).toEqual([
      { action: "complete", params: { id: "t-1", assignee: "gonzo" } },
    ]);
    expect(finishTask(snapshot(), { outcome: "deleted", assignee: null, deleteReason: "cancelled" })).toEqual([{ action: "delete", params: { id: "t-1", deleteReason: "cancelled" } }]);
  });

  it("creates an unseen task from its end snapshot first, and does nothing without one", () => {
    const end = snapshot({ assignee: "animal" });
    const plans = finishTask(null, { outcome: "completed", assignee: "animal", deleteReason: "completed", snapshot: end });
    expect(plans.map((p) => p.action)).toEqual(["create", "complete"]);
    expect(run(taskDecider.initialState, plans).events.map((e) => e.type)).toEqual(["TaskCreated", "TaskCompleted"]);
    expect(finishTask(null, { outcome: "deleted", assignee: null, deleteReason: null })).toEqual([]);
  });
});
