// The engine connector (engine/connector/connector.ts) without a broker and without an engine: a fake adapter
// holding one process with one task, a fake `call` recording the pool's commands, the state in PGlite in
// memory. The first poll imports what exists; a poll with nothing new sends nothing; a claim from the pool is
// performed in the engine once and its result reported at once.
import { afterEach, describe, expect, it } from "vitest";
import { EngineConnector } from "../../../../engine/connector/connector.ts";
import type { ActionCall } from "../../../../lib/actions.ts";
import type { EngineAdapter, EngineTask, PageOf, ProcessDefinitionInfo, ProcessInstanceInfo } from "../../../../engine/connector/engine-adapter.ts";
import { resolveSettings } from "../../../../engine/connector/settings.ts";
import { readEnvironment } from "../../../../lib/env.ts";
import type { RecordedEvent } from "../../../../stores/event-store.ts";
import { START_TOKEN } from "../../../../lib/tokens.ts";

const T0 = "2026-03-01T10:00:00.000Z";

const definition: ProcessDefinitionInfo = {
  id: "order:1:d1",
  key: "order",
  version: 1,
  name: "Order",
  versionTag: null,
  description: null,
  tenantId: null,
  suspended: false,
  deploymentId: "dep1",
  startFormKey: null,
  startableInTasklist: true,
  candidateStarterUsers: [],
  candidateStarterGroups: [],
};

const instance: ProcessInstanceInfo = {
  id: "pi1",
  definitionId: definition.id,
  definitionKey: "order",
  definitionName: "Order",
  businessKey: "B-1",
  startTime: T0,
  endTime: null,
  state: "ACTIVE",
  startUserId: null,
  startActivityId: null,
  superProcessInstanceId: null,
  deleteReason: null,
  tenantId: null,
};

function fakeEngine() {
  const task: EngineTask = {
    id: "t1",
    taskDefinitionKey: "check",
    name: "Check the order",
    description: null,
    formKey: null,
    assignee: null,
    owner: null,
    priority: 50,
    createTime: T0,
    lastUpdated: null,
    dueDate: null,
    followUpDate: null,
    processInstanceId: "pi1",
    executionId: "pi1",
    processDefinitionId: definition.id,
    tenantId: null,
    suspended: false,
  };
  const performed: string[] = [];
  const page = <T,>(rows: T[]): PageOf<T> => ({ rows, done: true });
  const none = async () => page([]);
  const adapter: EngineAdapter = {
    describe: async () => ({ product: "fake", version: "1" }),
    listTasksChangedSince: async () => page([{ ...task }]),
    listOpenTasks: async () => page([{ ...task }]),
    getTask: async (id) => (id === task.id ? { ...task } : null),
    loadTaskDetails: async (t) => ({ ...t, candidateUsers: [], candidateGroups: ["clerks"], variables: {} }),
    listFinishedTasksSince: none,
    getFinishedTask: async () => null,
    getFinishedTaskCandidates: async () => ({ candidateUsers: [], candidateGroups: [] }),
    listDeploymentsSince: none,
    listProcessDefinitions: async () => page([definition]),
    getProcessDefinition: async (id) => (id === definition.id ? definition : null),
    listInstancesStartedSince: none,
    listInstancesFinishedSince: none,
    listRunningInstances: async () => page([instance]),
    getProcessInstance: async (id) => (id === instance.id ? instance : null),
    getProcessInstances: async (ids) => (ids.includes(instance.id) ? [instance] : []),
    listInstanceOperationsSince: none,
    listVariableUpdatesSince: none,
    getProcessVariables: async () => ({}),
    newestChangeTime: async () => null,
    claim: async (id, user) => {
      performed.push(`claim ${id} ${user}`);
      task.assignee = user;
      task.lastUpdated = "2026-03-01T10:05:00.000Z";
    },
    unclaim: async () => undefined,
    setAssignee: async () => undefined,
    setFollowUpDate: async () => undefined,
    complete: async () => undefined,
    startProcess: async () => ({ processInstanceId: "pi2" }),
    findInstancesByVariable: async () => [],
  };
  return { adapter, performed };
}

/** The pool as far as the connector sees it: commands answered with growing versions, empty streams. */
function fakePool() {
  const commands: { action: string; params: Record<string, unknown> }[] = [];
  const versions = new Map<string, number>();
  // Answers the actions the connector calls, as far as it reads them.
  const call = (async <R,>(action: string, params?: object): Promise<R> => {
    const p = (params ?? {}) as Record<string, unknown>;
    if (action === "eventstore.readStream") return { streamVersion: 0, events: [] } as R;
    if (action === "eventstore.head") return { token: "head-token" } as R;
    commands.push({ action, params: p });
    const key = String(p.id ?? p.processInstanceId ?? p.processDefinitionId ?? action);
    const version = (versions.get(key) ?? 0) + 1;
    versions.set(key, version);
    return { version, globalPosition: commands.length, events: [] } as R;
  }) as unknown as ActionCall;
  return { call, commands };
}

const quiet = { info: () => undefined, warn: () => undefined };
let connector: EngineConnector | null = null;

afterEach(async () => {
  await connector?.stop();
  connector = null;
});

async function startConnector() {
  const engine = fakeEngine();
  const pool = fakePool();
  const settings = resolveSettings(readEnvironment({}), { applicationName: "shop", pgliteDir: "memory", databaseUrl: null, autoPoll: false, reconcileIntervalMs: 0 });
  connector = new EngineConnector({ call: pool.call, logger: quiet, nodeId: "node-1", settings, adapter: engine.adapter });
  await connector.start();
  return { connector, engine, pool };
}

// PGlite starts and migrates per connector: seconds on a busy machine.
describe("EngineConnector", { timeout: 120_000 }, () => {
  it("imports what exists at its first poll and sends nothing when nothing changed", async () => {
    const { connector, pool } = await startConnector();
    const status = await connector.sync(false);
    expect(status.owner).toBe("node-1/shop");
    expect(status.leased).toBe(true);
    expect(status.engine.product).toBe("fake");
    const actions = pool.commands.map((c) => c.action);
    expect(actions).toEqual(["processDefinition.register", "processInstance.start", "task.create"]);
    const create = pool.commands[2]!;
    expect(create.params).toMatchObject({ id: "t1", name: "Check the order", candidateGroups: ["clerks"], businessKey: "B-1" });
    expect(create.params.sourceReference).toMatchObject({ applicationName: "shop", definitionKey: "order", instanceId: "pi1" });
    expect(create.params.commandId).toMatch(/^shop:task:t1:v0:create:[0-9a-f]{16}$/);

    const again = await connector.sync(true);
    expect(pool.commands).toHaveLength(3);
    expect(again.counts.tasks).toEqual({ open: 1 });
    expect(again.reconciliations).toBe(2);
  });

  it("performs a claim from the pool once, not when a reset replays it, and reports the engine's answer at once", async () => {
    const { connector, engine, pool } = await startConnector();
    await connector.sync(false);
    expect(await connector.interactionStartToken(START_TOKEN)).toBe("head-token");
    const claimed = {
      eventId: "e1",
      type: "TaskClaimed",
      data: { id: "t1", assignee: "ann", sourceReference: { applicationName: "shop", instanceId: "pi1" } },
      metadata: { actor: "ann" },
    } as unknown as RecordedEvent;
    const elsewhere = { ...claimed, eventId: "e2", data: { id: "t9", assignee: "bob", sourceReference: { applicationName: "other" } } } as unknown as RecordedEvent;
    // A reset replays old intents: not performed.
    await connector.handleInteractionEvents([claimed], true);
    expect(engine.performed).toEqual([]);
    await connector.handleInteractionEvents([claimed, elsewhere], false);
    // Delivered again (at least once): not performed a second time.
    await connector.handleInteractionEvents([claimed], false);
    expect(engine.performed).toEqual(["claim t1 ann"]);
    expect(pool.commands.slice(3).map((c) => [c.action, c.params.assignee])).toEqual([["task.assign", "ann"]]);
    expect((await connector.statusNow()).counts.interactions).toEqual({ performed: 1 });
  });
});
