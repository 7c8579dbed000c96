import { describe, expect, it } from "vitest";
import * as harness from "../../decider-harness.ts";
import { deepFreeze, domainErrorOf } from "../../decider-harness.ts";
import {
  isTaskInteractionEvent,
  taskDecider,
  taskStreamId,
  type CreateTask,
  type TaskCommand,
  type TaskEvent,
  type TaskSnapshot,
  type TaskState,
} from "../../../domain/task.ts";
import type { SourceReference } from "../../../domain/types.ts";

// Frozen inputs make any mutation by decide or evolve throw (ES modules run in strict mode).

const stateAfter = (...events: TaskEvent[]): TaskState => harness.stateAfter(taskDecider, events);
const decideAfter = (history: TaskEvent[], command: TaskCommand): TaskEvent[] => harness.decideAfter(taskDecider, history, command);



const ref: SourceReference = {
  type: "process",
  instanceId: "pi-1",
  executionId: "ex-1",
  definitionId: "approve:1:42",
  definitionKey: "approve",
  name: "Approve request",
  applicationName: "approval-app",
};
const normalizedRef = { ...ref, tenantId: null };
const identity = { id: "t1", sourceReference: normalizedRef, taskDefinitionKey: "user_approve" };

const create: CreateTask = {
  type: "CreateTask",
  id: "t1",
  sourceReference: ref,
  taskDefinitionKey: "user_approve",
  name: "Approve",
  description: "Approve the request",
  formKey: "approve-form",
  businessKey: "BK-1",
  priority: 50,
  createTime: "2024-05-01T10:00:00.000Z",
  dueDate: "2024-05-10T10:00:00.000Z",
  followUpDate: null,
  owner: "kermit",
  assignee: null,
  candidateUsers: ["piggy", "fozzy"],
  candidateGroups: ["muppetshow"],
  payload: { amount: 100, subject: "Salary" },
  correlations: { "io.example.Request": "R-1" },
  enriched: true,
};

const snapshot: TaskSnapshot = {
  ...identity,
  name: "Approve",
  description: "Approve the request",
  formKey: "approve-form",
  businessKey: "BK-1",
  priority: 50,
  createTime: "2024-05-01T10:00:00.000Z",
  dueDate: "2024-05-10T10:00:00.000Z",
  followUpDate: null,
  owner: "kermit",
  assignee: null,
  candidateUsers: ["fozzy", "piggy"],
  candidateGroups: ["muppetshow"],
  payload: { amount: 100, subject: "Salary" },
  correlations: { "io.example.Request": "R-1" },
};

const created: TaskEvent = { type: "TaskCreated", data: snapshot };
const createdAssignedTo = (assignee: string): TaskEvent => ({ type: "TaskCreated", data: { ...snapshot, assignee } });

const everyNonCreateCommand: TaskCommand[] = [
  { type: "AssignTask", id: "t1", assignee: "kermit" },
  { type: "CompleteTask", id: "t1" },
  { type: "DeleteTask", id: "t1" },
  { type: "UpdateTaskAttributes", id: "t1", name: "x", enriched: false },
  { type: "AddCandidateUsers", id: "t1", candidateUsers: ["x"] },
  { type: "DeleteCandidateUsers", id: "t1", candidateUsers: ["piggy"] },
  { type: "AddCandidateGroups", id: "t1", candidateGroups: ["x"] },
  { type: "DeleteCandidateGroups", id: "t1", candidateGroups: ["muppetshow"] },
  { type: "ClaimTask", id: "t1", assignee: "kermit" },
  { type: "UnclaimTask", id: "t1" },
  { type: "DeferTask", id: "t1", followUpDate: "2024-06-01T00:00:00.000Z" },
  { type: "UndeferTask", id: "t1" },
  { type: "RequestTaskCompletion", id: "t1", payload: { ok: true }, assignee: "kermit" },
  { type: "ReportTaskInteractionRefused", id: "t1", interaction: "claim", reason: "task not found in engine" },
];

describe("task stream id", () => {
  it("prefixes the task id", () => {
    expect(taskStreamId("abc")).toBe("task-abc");
  });
});

describe("rule 1: commands on a task never created", () => {
  it.each(everyNonCreateCommand.map((c) => [c.type, c] as const))("%s → NOT_FOUND", (_name, command) => {
    const error = domainErrorOf(() => taskDecider.decide(command, taskDecider.initialState));
    expect(error.kind).toBe("NOT_FOUND");
    expect(error.details).toEqual({ aggregate: "task", id: "t1" });
  });
});

describe("rule 2: create", () => {
  it("creates a task with the full, normalized snapshot (candidates as sorted sets)", () => {
    expect(decideAfter([], create)).toEqual([created]);
  });

  it("keeps absent fields explicit: null attributes, empty candidate lists, empty payload and correlations", () => {
    const [event] = decideAfter([], { type: "CreateTask", id: "t2", sourceReference: ref, taskDefinitionKey: "k" });
    expect(event).toEqual({
      type: "TaskCreated",
      data: {
        id: "t2",
        sourceReference: normalizedRef,
        taskDefinitionKey: "k",
        name: null,
        description: null,
        formKey: null,
        businessKey: null,
        priority: null,
        createTime: null,
        dueDate: null,
        followUpDate: null,
        owner: null,
        assignee: null,
        candidateUsers: [],
        candidateGroups: [],
        payload: {},
        correlations: {},
      },
    });
  });

  it("keeps only the source reference's own fields", () => {
    const [event] = decideAfter([], { ...create, sourceReference: { ...ref, tenantId: "t-9", extra: "x" } as SourceReference });
    expect((event!.data as TaskSnapshot).sourceReference).toEqual({ ...ref, tenantId: "t-9" });
  });

  it("counts a duplicate candidate once", () => {
    const [event] = decideAfter([], { ...create, candidateUsers: ["piggy", "piggy", "fozzy"] });
    expect((event!.data as TaskSnapshot).candidateUsers).toEqual(["fozzy", "piggy"]);
  });

  it("is idempotent: the same snapshot again yields nothing", () => {
    expect(decideAfter([created], create)).toEqual([]);
  });

  it("treats candidates as sets and payload keys as unordered when comparing", () => {
    const same: CreateTask = {
      ...create,
      candidateUsers: ["fozzy", "piggy", "fozzy"],
      payload: { subject: "Salary", amount: 100 },
      sourceReference: { ...ref, tenantId: null },
    };
    expect(decideAfter([created], same)).toEqual([]);
  });

  it("a re-import with a different snapshot emits TaskCreated carrying the new snapshot", () => {
    const events = decideAfter([created], { ...create, name: "Approve now", assignee: "kermit" });
    expect(events).toEqual([{ type: "TaskCreated", data: { ...snapshot, name: "Approve now", assignee: "kermit" } }]);
    expect(stateAfter(created, ...events).task).toEqual({ ...snapshot, name: "Approve now", assignee: "kermit" });
  });

  it("a re-import that was not enriched keeps the known payload and correlations", () => {
    const events = decideAfter([created], { ...create, name: "Renamed", payload: {}, correlations: {}, enriched: false });
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ name: "Renamed", payload: snapshot.payload, correlations: snapshot.correlations });
  });

  it("the first create takes the payload as given even when not enriched", () => {
    const [event] = decideAfter([], { ...create, enriched: false });
    expect((event!.data as TaskSnapshot).payload).toEqual(snapshot.payload);
  });
});

describe("rule 3: nothing after complete or delete", () => {
  const completed: TaskEvent = { type: "TaskCompleted", data: { ...identity, assignee: null } };
  const deleted: TaskEvent = { type: "TaskDeleted", data: { ...identity, deleteReason: null } };
  const cases = [create, { ...create, name: "other" }, ...everyNonCreateCommand].flatMap((command) => [
    ["completed", command.type, command, completed] as const,
    ["deleted", command.type, command, deleted] as const,
  ]);

  it.each(cases)("%s task: %s yields nothing", (_end, _name, command, end) => {
    expect(decideAfter([created, end], command)).toEqual([]);
  });
});

describe("rule 4: assign", () => {
  it("emits TaskAssigned when the assignee changes", () => {
    expect(decideAfter([created], { type: "AssignTask", id: "t1", assignee: "kermit" })).toEqual([
      { type: "TaskAssigned", data: { ...identity, assignee: "kermit" } },
    ]);
  });

  it("yields nothing when the assignee is the same", () => {
    expect(decideAfter([createdAssignedTo("kermit")], { type: "AssignTask", id: "t1", assignee: "kermit" })).toEqual([]);
  });

  it("null unassigns", () => {
    expect(decideAfter([createdAssignedTo("kermit")], { type: "AssignTask", id: "t1", assignee: null })).toEqual([
      { type: "TaskAssigned", data: { ...identity, assignee: null } },
    ]);
  });

  it("unassigning an unassigned task yields nothing", () => {
    expect(decideAfter([created], { type: "AssignTask", id: "t1", assignee: null })).toEqual([]);
  });
});

describe("rule 5: complete", () => {
  it("with a different assignee emits TaskAssigned first, then TaskCompleted", () => {
    expect(decideAfter([createdAssignedTo("piggy")], { type: "CompleteTask", id: "t1", assignee: "kermit" })).toEqual([
      { type: "TaskAssigned", data: { ...identity, assignee: "kermit" } },
      { type: "TaskCompleted", data: { ...identity, assignee: "kermit" } },
    ]);
  });

  it("on an unassigned task with an assignee emits TaskAssigned then TaskCompleted", () => {
    expect(decideAfter([created], { type: "CompleteTask", id: "t1", assignee: "kermit" }).map((e) => e.type)).toEqual([
      "TaskAssigned",
      "TaskCompleted",
    ]);
  });

  it("with the current assignee emits only TaskCompleted", () => {
    expect(decideAfter([createdAssignedTo("kermit")], { type: "CompleteTask", id: "t1", assignee: "kermit" })).toEqual([
      { type: "TaskCompleted", data: { ...identity, assignee: "kermit" } },
    ]);
  });

  it("without an assignee emits only TaskCompleted, naming the current assignee", () => {
    expect(decideAfter([createdAssignedTo("kermit")], { type: "CompleteTask", id: "t1" })).toEqual([
      { type: "TaskCompleted", data: { ...identity, assignee: "kermit" } },
    ]);
    expect(decideAfter([createdAssignedTo("kermit")], { type: "CompleteTask", id: "t1", assignee: null })).toEqual([
      { type: "TaskCompleted", data: { ...identity, assignee: "kermit" } },
    ]);
  });
});

describe("delete", () => {
  it("emits TaskDeleted with the reason, null when absent", () => {
    expect(decideAfter([created], { type: "DeleteTask", id: "t1", deleteReason: "cancelled" })).toEqual([
      { type: "TaskDeleted", data: { ...identity, deleteReason: "cancelled" } },
    ]);
    expect(decideAfter([created], { type: "DeleteTask", id: "t1" })).toEqual([
      { type: "TaskDeleted", data: { ...identity, deleteReason: null } },
    ]);
  });
});

describe("rule 6: claim", () => {
  it("an unassigned task → TaskClaimed", () => {
    expect(decideAfter([created], { type: "ClaimTask", id: "t1", assignee: "kermit" })).toEqual([
      { type: "TaskClaimed", data: { ...identity, formKey: "approve-form", assignee: "kermit" } },
    ]);
  });

  it("assigned to the same user → nothing", () => {
    expect(decideAfter([createdAssignedTo("kermit")], { type: "ClaimTask", id: "t1", assignee: "kermit" })).toEqual([]);
  });

  // Issue 13, defect 2: a claim is respected (Camunda's TaskAlreadyClaimedException).
  it("assigned to another user → CONFLICT naming the assignee", () => {
    expect(() => decideAfter([createdAssignedTo("piggy")], { type: "ClaimTask", id: "t1", assignee: "kermit" })).toThrow(
      expect.objectContaining({ kind: "CONFLICT", message: "task t1 is claimed by piggy", details: expect.objectContaining({ assignee: "piggy" }) }),
    );
  });
});

describe("rule 7: unclaim", () => {
  it("emits TaskUnclaimed naming the previous assignee when one is set", () => {
    expect(decideAfter([createdAssignedTo("piggy")], { type: "UnclaimTask", id: "t1" })).toEqual([
      { type: "TaskUnclaimed", data: { ...identity, formKey: "approve-form", previousAssignee: "piggy" } },
    ]);
  });

  it("yields nothing on an unassigned task", () => {
    expect(decideAfter([created], { type: "UnclaimTask", id: "t1" })).toEqual([]);
  });
});

describe("issue 13, defect 2: claims are respected by every user intent", () => {
  const intents: TaskCommand[] = [
    { type: "ClaimTask", id: "t1", assignee: "kermit" },
    { type: "UnclaimTask", id: "t1", username: "kermit" },
    { type: "DeferTask", id: "t1", followUpDate: "2027-01-01T00:00:00.000Z", username: "kermit" },
    { type: "UndeferTask", id: "t1", username: "kermit" },
    { type: "RequestTaskCompletion", id: "t1", payload: {}, assignee: "kermit" },
  ];
  it.each(intents.map((c) => [c.type, c] as const))("%s of a task gonzo holds, by kermit → CONFLICT naming gonzo", (_type, command) => {
    expect(() => decideAfter([createdAssignedTo("gonzo")], command)).toThrow(expect.objectContaining({ kind: "CONFLICT", details: expect.objectContaining({ assignee: "gonzo" }) }));
  });
  it.each(intents.map((c) => [c.type, c] as const))("%s by the holder or on an unclaimed task passes", (_type, command) => {
    expect(() => decideAfter([createdAssignedTo("kermit")], command)).not.toThrow();
    expect(() => decideAfter([created], command)).not.toThrow();
  });
  it("an engine's report without a user (unclaim) still passes", () => {
    expect(decideAfter([createdAssignedTo("gonzo")], { type: "UnclaimTask", id: "t1" })).toHaveLength(1);
  });
});

describe("rule 8: request completion", () => {
  const payload = { approved: true };
  const toBeCompleted = (assignee: string | null): TaskEvent => ({
    type: "TaskToBeCompleted",
    data: { ...identity, formKey: "approve-form", payload, assignee },
  });

  it("unassigned, with an assignee → TaskClaimed then TaskToBeCompleted", () => {
    expect(decideAfter([created], { type: "RequestTaskCompletion", id: "t1", payload, assignee: "kermit" })).toEqual([
      { type: "TaskClaimed", data: { ...identity, formKey: "approve-form", assignee: "kermit" } },
      toBeCompleted("kermit"),
    ]);
  });

  // Issue 13, defect 2: completing a task someone else holds is refused.
  it("assigned to another user → CONFLICT naming the assignee", () => {
    expect(() => decideAfter([createdAssignedTo("piggy")], { type: "RequestTaskCompletion", id: "t1", payload, assignee: "kermit" })).toThrow(
      expect.objectContaining({ kind: "CONFLICT", message: "task t1 is claimed by piggy" }),
    );
  });

  it("assigned to the same user → only TaskToBeCompleted", () => {
    expect(
      decideAfter([createdAssignedTo("kermit")], { type: "RequestTaskCompletion", id: "t1", payload, assignee: "kermit" }),
    ).toEqual([toBeCompleted("kermit")]);
  });

  it("without an assignee → only TaskToBeCompleted, naming the current assignee", () => {
    expect(decideAfter([createdAssignedTo("piggy")], { type: "RequestTaskCompletion", id: "t1", payload })).toEqual([
      toBeCompleted("piggy"),
    ]);
    expect(decideAfter([created], { type: "RequestTaskCompletion", id: "t1", payload, assignee: null })).toEqual([
      toBeCompleted(null),
    ]);
  });
});

describe("rule 9: defer, undefer, and interaction events leave the state alone", () => {
  it("defer always emits, even twice in a row", () => {
    const defer: TaskCommand = { type: "DeferTask", id: "t1", followUpDate: "2024-06-01T00:00:00.000Z" };
    const expected = { type: "TaskDeferred", data: { ...identity, formKey: "approve-form", followUpDate: "2024-06-01T00:00:00.000Z" } };
    const first = decideAfter([created], defer);
    expect(first).toEqual([expected]);
    expect(decideAfter([created, ...first], defer)).toEqual([expected]);
  });

  it("undefer always emits, even without a follow-up date", () => {
    expect(decideAfter([created], { type: "UndeferTask", id: "t1" })).toEqual([
      { type: "TaskUndeferred", data: { ...identity, formKey: "approve-form" } },
    ]);
  });

  it("after TaskClaimed the task is still unassigned: claiming again claims again", () => {
    const claim: TaskCommand = { type: "ClaimTask", id: "t1", assignee: "kermit" };
    const first = decideAfter([created], claim);
    expect(decideAfter([created, ...first], claim)).toEqual(first);
  });

  const interactionEvents: TaskEvent[] = [
    { type: "TaskClaimed", data: { ...identity, formKey: "f", assignee: "kermit" } },
    { type: "TaskUnclaimed", data: { ...identity, formKey: "f", previousAssignee: "kermit" } },
    { type: "TaskDeferred", data: { ...identity, formKey: "f", followUpDate: "2024-06-01T00:00:00.000Z" } },
    { type: "TaskUndeferred", data: { ...identity, formKey: "f" } },
    { type: "TaskToBeCompleted", data: { ...identity, formKey: "f", payload: { a: 1 }, assignee: "kermit" } },
    { type: "TaskInteractionRefused", data: { ...identity, interaction: "claim", reason: "no", username: null } },
  ];

  it.each(interactionEvents.map((e) => [e.type, e] as const))("evolve(%s) returns the state unchanged", (_name, event) => {
    const state = stateAfter(created);
    expect(taskDecider.evolve(state, deepFreeze(event))).toBe(state);
    expect(isTaskInteractionEvent(event)).toBe(true);
  });

  it("engine events are not interaction events", () => {
    expect(isTaskInteractionEvent(created)).toBe(false);
  });
});

describe("interaction refused", () => {
  it("emits TaskInteractionRefused with the task identity, username null when absent", () => {
    expect(
      decideAfter([created], { type: "ReportTaskInteractionRefused", id: "t1", interaction: "complete", reason: "validation failed" }),
    ).toEqual([
      { type: "TaskInteractionRefused", data: { ...identity, interaction: "complete", reason: "validation failed", username: null } },
    ]);
  });

  it("names the user whose interaction was refused", () => {
    const [event] = decideAfter([created], {
      type: "ReportTaskInteractionRefused",
      id: "t1",
      interaction: "defer",
      reason: "x",
      username: "kermit",
    });
    expect(event!.data).toMatchObject({ username: "kermit", interaction: "defer" });
  });
});

describe("rule 10: candidates", () => {
  it("adds one event per user actually added; an existing candidate and duplicates count once", () => {
    expect(
      decideAfter([created], { type: "AddCandidateUsers", id: "t1", candidateUsers: ["piggy", "gonzo", "animal", "gonzo"] }),
    ).toEqual([
      { type: "TaskCandidateUserAdded", data: { ...identity, userId: "animal" } },
      { type: "TaskCandidateUserAdded", data: { ...identity, userId: "gonzo" } },
    ]);
  });

  it("deletes one event per user actually removed; an absent one yields nothing", () => {
    expect(
      decideAfter([created], { type: "DeleteCandidateUsers", id: "t1", candidateUsers: ["piggy", "gonzo", "piggy"] }),
    ).toEqual([{ type: "TaskCandidateUserDeleted", data: { ...identity, userId: "piggy" } }]);
  });

  it("adds groups the same way", () => {
    expect(
      decideAfter([created], { type: "AddCandidateGroups", id: "t1", candidateGroups: ["muppetshow", "avengers", "avengers"] }),
    ).toEqual([{ type: "TaskCandidateGroupAdded", data: { ...identity, groupId: "avengers" } }]);
  });

  it("deletes groups the same way", () => {
    expect(
      decideAfter([created], { type: "DeleteCandidateGroups", id: "t1", candidateGroups: ["muppetshow", "muppetshow", "x"] }),
    ).toEqual([{ type: "TaskCandidateGroupDeleted", data: { ...identity, groupId: "muppetshow" } }]);
  });

  it("yields nothing when no candidate changes", () => {
    expect(decideAfter([created], { type: "AddCandidateUsers", id: "t1", candidateUsers: ["piggy"] })).toEqual([]);
    expect(decideAfter([created], { type: "DeleteCandidateGroups", id: "t1", candidateGroups: ["nobody"] })).toEqual([]);
    expect(decideAfter([created], { type: "AddCandidateGroups", id: "t1", candidateGroups: [] })).toEqual([]);
  });
});

describe("rule 11: update attributes", () => {
  const fullUpdate = {
    type: "UpdateTaskAttributes",
    id: "t1",
    businessKey: "BK-1",
    name: "Approve",
    description: "Approve the request",
    formKey: "approve-form",
    priority: 50,
    owner: "kermit",
    dueDate: "2024-05-10T10:00:00.000Z",
    followUpDate: null,
    enriched: false,
  } as const satisfies TaskCommand;
  const unchangedAttributes = {
    ...identity,
    businessKey: "BK-1",
    name: "Approve",
    description: "Approve the request",
    formKey: "approve-form",
    priority: 50,
    owner: "kermit",
    dueDate: "2024-05-10T10:00:00.000Z",
    followUpDate: null,
  };

  it("yields nothing when nothing changes", () => {
    expect(decideAfter([created], fullUpdate)).toEqual([]);
  });

  it("takes new name, description, priority, owner, due and follow-up dates", () => {
    const changes = {
      name: "N",
      description: "D",
      priority: 10,
      owner: "gonzo",
      dueDate: "2025-01-01T00:00:00.000Z",
      followUpDate: "2024-12-01T00:00:00.000Z",
    };
    const events = decideAfter([created], { ...fullUpdate, ...changes });
    expect(events).toEqual([{ type: "TaskAttributesUpdated", data: { ...unchangedAttributes, ...changes } }]);
    expect(stateAfter(created, ...events).task).toEqual({ ...snapshot, ...changes });
  });

  it.each(["name", "description", "priority", "owner", "dueDate"] as const)("a null %s clears it", (key) => {
    const [event] = decideAfter([created], { ...fullUpdate, [key]: null });
    expect(event).toEqual({ type: "TaskAttributesUpdated", data: { ...unchangedAttributes, [key]: null } });
  });

  it("a null follow-up date clears it (Polyflow bug #1227)", () => {
    const deferred = { type: "TaskCreated", data: { ...snapshot, followUpDate: "2024-06-01T00:00:00.000Z" } } as TaskEvent;
    const events = decideAfter([deferred], { ...fullUpdate, followUpDate: null });
    expect(events).toEqual([{ type: "TaskAttributesUpdated", data: { ...unchangedAttributes, followUpDate: null } }]);
    expect(stateAfter(deferred, ...events).task!.followUpDate).toBeNull();
  });

  it("an absent attribute counts as null (the engine reports the whole set)", () => {
    const [event] = decideAfter([created], { type: "UpdateTaskAttributes", id: "t1", enriched: false });
    expect(event!.data).toEqual({
      ...identity,
      businessKey: "BK-1",
      formKey: "approve-form",
      name: null,
      description: null,
      priority: null,
      owner: null,
      dueDate: null,
      followUpDate: null,
    });
  });

  it.each([null, undefined, ""])("businessKey and formKey keep the old value when the new one is %j", (value) => {
    const events = decideAfter([created], { ...fullUpdate, businessKey: value, formKey: value, name: "changed" });
    expect(events).toEqual([{ type: "TaskAttributesUpdated", data: { ...unchangedAttributes, name: "changed" } }]);
  });

  it("businessKey and formKey take a new non-empty value", () => {
    const [event] = decideAfter([created], { ...fullUpdate, businessKey: "BK-2", formKey: "other-form" });
    expect(event!.data).toMatchObject({ businessKey: "BK-2", formKey: "other-form" });
  });

  it("payload and correlations are ignored when not enriched", () => {
    expect(decideAfter([created], { ...fullUpdate, payload: { x: 1 }, correlations: { T: "1" }, enriched: false })).toEqual([]);
  });

  it("payload and correlations are replaced when enriched, and only then appear in the event", () => {
    const events = decideAfter([created], { ...fullUpdate, payload: { x: 1 }, correlations: { T: "1" }, enriched: true });
    expect(events).toEqual([
      { type: "TaskAttributesUpdated", data: { ...unchangedAttributes, payload: { x: 1 }, correlations: { T: "1" } } },
    ]);
    expect(stateAfter(created, ...events).task).toMatchObject({ payload: { x: 1 }, correlations: { T: "1" } });
  });

  it("an enriched update replaces only what differs; unchanged payload is not repeated", () => {
    const [event] = decideAfter([created], { ...fullUpdate, payload: { subject: "Salary", amount: 100 }, correlations: { T: "1" }, enriched: true });
    expect(event!.data).toEqual({ ...unchangedAttributes, correlations: { T: "1" } });
    expect("payload" in event!.data).toBe(false);
  });

  it("an enriched update without payload keeps the payload", () => {
    expect(decideAfter([created], { ...fullUpdate, enriched: true })).toEqual([]);
  });

  it("never changes the source reference or the task definition key", () => {
    const events = decideAfter([created], {
      ...fullUpdate,
      name: "changed",
      sourceReference: { ...ref, instanceId: "other" },
      taskDefinitionKey: "other",
    });
    expect(events[0]!.data).toMatchObject(identity);
    expect(stateAfter(created, ...events).task).toMatchObject(identity);
    expect(decideAfter([created], { ...fullUpdate, taskDefinitionKey: "other" })).toEqual([]);
  });
});

describe("every event names the task", () => {
  it("carries id, sourceReference and taskDefinitionKey", () => {
    const history = [createdAssignedTo("kermit")];
    for (const command of everyNonCreateCommand) {
      for (const event of decideAfter(history, command)) {
        expect(event.data).toMatchObject(identity);
      }
    }
  });
});

describe("rule 12: evolve", () => {
  it("starts in the initial state", () => {
    expect(taskDecider.initialState).toEqual({ status: "initial", task: null });
  });

  it("TaskCreated activates with the snapshot", () => {
    expect(stateAfter(created)).toEqual({ status: "active", task: snapshot });
  });

  it("TaskAssigned sets the assignee", () => {
    expect(stateAfter(created, { type: "TaskAssigned", data: { ...identity, assignee: "kermit" } }).task!.assignee).toBe("kermit");
    expect(
      stateAfter(createdAssignedTo("kermit"), { type: "TaskAssigned", data: { ...identity, assignee: null } }).task!.assignee,
    ).toBeNull();
  });

  it("TaskCompleted completes and records the assignee", () => {
    const state = stateAfter(created, { type: "TaskCompleted", data: { ...identity, assignee: "kermit" } });
    expect(state.status).toBe("completed");
    expect(state.task!.assignee).toBe("kermit");
  });

  it("TaskDeleted deletes, keeping the last snapshot", () => {
    expect(stateAfter(created, { type: "TaskDeleted", data: { ...identity, deleteReason: "x" } })).toEqual({
      status: "deleted",
      task: snapshot,
    });
  });

  it("TaskAttributesUpdated without payload keeps payload and correlations", () => {
    const state = stateAfter(created, {
      type: "TaskAttributesUpdated",
      data: { ...identity, businessKey: "b", name: "n", description: null, formKey: "f", priority: 1, owner: null, dueDate: null, followUpDate: null },
    });
    expect(state.task).toEqual({
      ...snapshot,
      businessKey: "b",
      name: "n",
      description: null,
      formKey: "f",
      priority: 1,
      owner: null,
      dueDate: null,
      followUpDate: null,
    });
  });

  it("candidate events keep the sets sorted and duplicate-free", () => {
    const state = stateAfter(
      created,
      { type: "TaskCandidateUserAdded", data: { ...identity, userId: "animal" } },
      { type: "TaskCandidateUserAdded", data: { ...identity, userId: "animal" } },
      { type: "TaskCandidateUserDeleted", data: { ...identity, userId: "piggy" } },
      { type: "TaskCandidateGroupAdded", data: { ...identity, groupId: "avengers" } },
      { type: "TaskCandidateGroupDeleted", data: { ...identity, groupId: "muppetshow" } },
    );
    expect(state.task!.candidateUsers).toEqual(["animal", "fozzy"]);
    expect(state.task!.candidateGroups).toEqual(["avengers"]);
  });

  it("a re-created task after update takes the new snapshot whole", () => {
    const state = stateAfter(
      created,
      { type: "TaskAssigned", data: { ...identity, assignee: "kermit" } },
      { type: "TaskCreated", data: { ...snapshot, name: "fresh" } },
    );
    expect(state.task).toEqual({ ...snapshot, name: "fresh" });
  });

  it("ignores events of a stream that lacks its TaskCreated", () => {
    const initial = taskDecider.initialState;
    expect(taskDecider.evolve(initial, { type: "TaskAssigned", data: { ...identity, assignee: "x" } })).toBe(initial);
    expect(taskDecider.evolve(initial, { type: "TaskCompleted", data: { ...identity, assignee: "x" } })).toBe(initial);
  });

  it("a full life folds to the expected state", () => {
    const life: TaskCommand[] = [
      create,
      { type: "AssignTask", id: "t1", assignee: "piggy" },
      { type: "AddCandidateGroups", id: "t1", candidateGroups: ["avengers"] },
      { type: "UpdateTaskAttributes", ...snapshot, priority: 80, payload: { amount: 200 }, enriched: true },
      { type: "ClaimTask", id: "t1", assignee: "piggy" },
      { type: "CompleteTask", id: "t1", assignee: "kermit" },
    ];
    let events: TaskEvent[] = [];
    for (const command of life) events = [...events, ...decideAfter(events, command)];
    expect(events.map((e) => e.type)).toEqual([
      "TaskCreated",
      "TaskAssigned",
      "TaskCandidateGroupAdded",
      "TaskAttributesUpdated",
      "TaskAssigned",
      "TaskCompleted",
    ]);
    expect(stateAfter(...events)).toEqual({
      status: "completed",
      task: { ...snapshot, assignee: "kermit", candidateGroups: ["avengers", "muppetshow"], priority: 80, payload: { amount: 200 } },
    });
  });
});
