// The embedded engine's tables (engine/embedded/engine-store.ts) on an in-memory PGlite and on the test
// PostgreSQL server (a schema of its own, dropped afterwards): records read exactly as
// they were written (knex's aliased columns, jsonb parsed by the driver, no stray columns such as change_time or
// seq), rows as the first version of the store wrote them (JSON as text, variable values wrapped) read the same,
// and the listings' and feeds' queries.
import type { Knex } from "knex";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, testDatabaseUrl, unique } from "../helpers.ts";
import { EngineStore, type DefinitionRecord, type ExternalTaskRecord, type InstanceRecord, type TaskRecord, type VariableUpdateRecord } from "../../engine/embedded/engine-store.ts";

const T0 = "2026-11-23T10:00:00.000Z";
const T1 = "2026-11-23T10:00:01.000Z";
const T2 = "2026-11-23T10:00:02.000Z";
const WINDOW = { firstResult: 0, maxResults: 100 };


const definition = (key: string, overrides: Partial<Omit<DefinitionRecord, "id">> = {}): Omit<DefinitionRecord, "id" | "version"> & { id: (version: number) => string } => ({
  id: (version) => `${key}:${version}`,
  key,
  name: `Process ${key}`,
  versionTag: "7",
  description: null,
  deploymentId: `deployment-${key}`,
  resourceName: `${key}.bpmn`,
  startFormKey: "start-form",
  startableInTasklist: false,
  candidateStarterUsers: ["kermit"],
  candidateStarterGroups: ["avengers", "muppetshow"],
  suspended: false,
  serializedSource: "{}",
  ...overrides,
});

function instance(id: string, definitionId: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    definitionId,
    definitionKey: definitionId.split(":")[0]!,
    businessKey: `bk-${id}`,
    state: "ACTIVE",
    startTime: T0,
    endTime: null,
    startActivityId: "start",
    deleteReason: null,
    variables: { amount: 500, tags: ["a", "b"], nested: { x: null } },
    variableMeta: { amount: { id: "v1", revision: 0 } },
    engineState: { definitions: [{ id: "d" }] },
    revision: 0,
    ...overrides,
  };
}

function task(id: string, owner: InstanceRecord, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    instanceId: owner.id,
    definitionId: owner.definitionId,
    definitionKey: owner.definitionKey,
    executionId: `exec-${id}`,
    taskDefinitionKey: "approve",
    name: "Approve",
    description: "Decide",
    formKey: "approve-form",
    assignee: null,
    owner: null,
    priority: 23,
    createTime: T0,
    lastUpdated: null,
    dueDate: T2,
    followUpDate: null,
    candidateUsers: ["fozzy", "gonzo"],
    candidateGroups: ["muppetshow"],
    localVariables: { auditState: "Submitted" },
    suspended: false,
    status: "open",
    endTime: null,
    deleteReason: null,
    ...overrides,
  };
}

function externalTask(id: string, owner: InstanceRecord, overrides: Partial<ExternalTaskRecord> = {}): ExternalTaskRecord {
  return {
    id,
    instanceId: owner.id,
    definitionId: owner.definitionId,
    definitionKey: owner.definitionKey,
    executionId: `exec-${id}`,
    activityId: "load",
    topic: "load-topic",
    localVariables: {},
    createTime: T0,
    status: "open",
    retries: null,
    retryAt: null,
    lockUntil: null,
    workerId: null,
    errorMessage: null,
    errorDetails: null,
    incidentTime: null,
    endTime: null,
    ...overrides,
  };
}

function update(id: string, owner: InstanceRecord, name: string, value: VariableUpdateRecord["value"], time = T1): VariableUpdateRecord {
  return {
    id,
    time,
    instanceId: owner.id,
    definitionId: owner.definitionId,
    definitionKey: owner.definitionKey,
    variableInstanceId: `vi-${name}`,
    name,
    revision: 1,
    kind: "update",
    type: typeof value === "string" ? "String" : "Json",
    value,
    taskId: null,
    activityInstanceId: null,
  };
}

describe.each([
  ["PGlite", false],
  ["PostgreSQL", true],
])("embedded engine store on %s", (_name, server) => {
  const schema = unique("engine_store_test");
  let store: EngineStore;
  let knex: Knex;

  beforeAll(async () => {
    store = await EngineStore.open({ databaseUrl: server ? testDatabaseUrl() : null, pgliteDir: null, schema });
    knex = (store as unknown as { knex: Knex }).knex;
  });

  afterAll(async () => {
    await store?.close();
    if (server) await dropSchema(schema);
  });

  it("reads records exactly as they were written", async () => {
    const [created] = await store.insertDeployment(
      { id: "deployment-a", name: "app", deploymentTime: T0 },
      [{ deploymentId: "deployment-a", name: "a.bpmn", content: "<xml/>", hash: "h1" }],
      [definition("a", { deploymentId: "deployment-a" })],
    );
    expect(created).toMatchObject({ id: "a:1", version: 1 });
    expect(await store.definition("a:1")).toEqual(created);
    expect(await store.latestResourceHash("app", "a.bpmn")).toBe("h1");
    expect(await store.resource("deployment-a", "a.bpmn")).toEqual({ deploymentId: "deployment-a", name: "a.bpmn", content: "<xml/>", hash: "h1" });

    const running = instance("i1", "a:1");
    const open = task("t1", running);
    const external = externalTask("x1", running);
    const updates = [update("u1", running, "text", "{\"looks\":\"like json\"}"), update("u2", running, "nothing", null), update("u3", running, "list", [1, "two", { three: 3 }])];
    await store.writeStep({ instance: running, expectedRevision: null, tasks: [open], externalTasks: [external], variableUpdates: updates, operations: [] });

    expect(await store.instance("i1")).toEqual(running);
    expect(await store.instances(["i1"])).toEqual([{ ...running, engineState: null }]);
    expect(await store.task("t1")).toEqual(open);
    expect(await store.externalTask("x1")).toEqual(external);
    expect(await store.variableUpdatesSince(null, null, WINDOW)).toEqual(updates);
    expect(await store.instanceIdsByVariable("amount", "500")).toEqual(["i1"]);
    expect(await store.definitionNames(["a:1", "a:1"])).toEqual(new Map([["a:1", "Process a"]]));

    // A second step: the task is claimed and completed, the instance moves on; a revision that moved on is refused.
    const claimed = { ...open, assignee: "kermit", lastUpdated: T1 };
    await store.updateTask(claimed);
    expect(await store.openTasks({ changedSince: T1 }, WINDOW)).toEqual([claimed]);
    const done = { ...claimed, status: "completed" as const, endTime: T2, deleteReason: "completed" };
    const ended = { ...running, state: "COMPLETED" as const, endTime: T2, engineState: null, revision: 1 };
    await store.writeStep({ instance: ended, expectedRevision: 0, tasks: [done], externalTasks: [], variableUpdates: [], operations: [{ id: "op1", time: T2, instanceId: "i1", definitionKey: "a", operation: "Suspend" }] });
    await expect(store.writeStep({ instance: ended, expectedRevision: 0, tasks: [], externalTasks: [], variableUpdates: [] })).rejects.toThrow("changed concurrently");
    expect(await store.finishedTasksSince(T2, ["a"], WINDOW)).toEqual([done]);
    expect(await store.instancesFinishedSince(null, null, WINDOW)).toEqual([ended]);
    expect(await store.operationsSince(null, ["a"], WINDOW)).toEqual([{ id: "op1", time: T2, instanceId: "i1", definitionKey: "a", operation: "Suspend" }]);
    expect(await store.newest("engine_tasks", "end_time", { whereNot: { status: "open" } })).toBe(T2);
  });

  it("reads rows as the first version of the store wrote them", async () => {
    await knex("engine_deployments").insert({ id: "deployment-old", name: "old", deployment_time: T0 });
    await knex("engine_definitions").insert({
      id: "old:1",
      key: "old",
      version: 1,
      name: null,
      version_tag: null,
      description: "Old",
      deployment_id: "deployment-old",
      resource_name: "old.bpmn",
      start_form_key: null,
      startable_in_tasklist: true,
      candidate_starter_users: "[]",
      candidate_starter_groups: '["g"]',
      suspended: true,
      serialized_source: "{}",
    });
    await knex("engine_instances").insert({
      id: "old-i",
      definition_id: "old:1",
      definition_key: "old",
      business_key: null,
      state: "SUSPENDED",
      start_time: T0,
      end_time: null,
      start_activity_id: null,
      delete_reason: null,
      variables: '{"s":"text"}',
      variable_meta: "{}",
      engine_state: '{"state":"running"}',
      revision: 3,
    });
    await knex("engine_external_tasks").insert({
      id: "old-x",
      instance_id: "old-i",
      definition_id: "old:1",
      definition_key: "old",
      execution_id: "e",
      activity_id: "act",
      topic: "old-topic",
      local_variables: '{"n":1}',
      create_time: T0,
      status: "open",
      retries: 0,
      retry_at: null,
      lock_until: null,
      worker_id: "w",
      error_message: "boom",
      error_details: "stack",
      incident_time: T1,
      end_time: null,
    });
    await knex("engine_variable_updates").insert([
      { id: "old-u1", time: T0, instance_id: "old-i", definition_id: "old:1", definition_key: "old", variable_instance_id: "vi", name: "s", revision: 0, kind: "create", type: "String", value: '{"value":"text"}', task_id: "t", activity_instance_id: "a" },
      { id: "old-u2", time: T0, instance_id: "old-i", definition_id: "old:1", definition_key: "old", variable_instance_id: "vi", name: "s", revision: 1, kind: "delete", type: "Null", value: '{"value":null}', task_id: null, activity_instance_id: null },
    ]);

    expect(await store.definitions({ keys: ["old"], latestVersionOnly: true }, WINDOW)).toEqual([
      {
        id: "old:1",
        key: "old",
        version: 1,
        name: null,
        versionTag: null,
        description: "Old",
        deploymentId: "deployment-old",
        resourceName: "old.bpmn",
        startFormKey: null,
        startableInTasklist: true,
        candidateStarterUsers: [],
        candidateStarterGroups: ["g"],
        suspended: true,
        serializedSource: "{}",
      },
    ]);
    expect(await store.instance("old-i")).toMatchObject({ variables: { s: "text" }, variableMeta: {}, engineState: { state: "running" }, revision: 3, businessKey: null });
    expect(await store.incidents()).toEqual([
      externalTask("old-x", instance("old-i", "old:1"), { topic: "old-topic", activityId: "act", executionId: "e", localVariables: { n: 1 }, retries: 0, workerId: "w", errorMessage: "boom", errorDetails: "stack", incidentTime: T1 }),
    ]);
    expect(await store.externalTaskCounts()).toEqual({ open: 2, locked: 0, incidents: 1, completed: 0 });
    const old = (await store.variableUpdatesSince(null, ["old"], WINDOW)).map((row) => [row.id, row.value, row.taskId, row.activityInstanceId, row.revision]);
    expect(old).toEqual([
      ["old-u1", "text", "t", "a", 0],
      ["old-u2", null, null, null, 1],
    ]);
  });

  it("hands out due external tasks of active instances only, and locks each once", async () => {
    const active = instance("i-due", "a:1", { revision: 0 });
    await store.writeStep({ instance: active, expectedRevision: null, tasks: [], externalTasks: [externalTask("due-1", active, { topic: "due" })], variableUpdates: [] });
    const due = await store.dueExternalTasks("due", ["a"], T1, [], 10);
    expect(due).toEqual([externalTask("due-1", active, { topic: "due" })]);
    expect(await store.lockExternalTask("due-1", "w1", T1, T2)).toBe(true);
    expect(await store.lockExternalTask("due-1", "w2", T1, T2)).toBe(false);
    expect(await store.dueExternalTasks("due", null, T1, [], 10)).toEqual([]);
    await store.failExternalTask("due-1", { retries: 2, retryAt: T2, errorMessage: "failed", errorDetails: null, incidentTime: null });
    expect(await store.externalTask("due-1")).toMatchObject({ retries: 2, retryAt: T2, errorMessage: "failed", lockUntil: null, workerId: "w1" });
    expect(await store.dueExternalTasks("due", null, T2, [], 10)).toHaveLength(1);
    expect(await store.dueExternalTasks("due", null, T2, ["due-1"], 10)).toEqual([]);
  });
});
