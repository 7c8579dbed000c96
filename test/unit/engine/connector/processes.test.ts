// Engine → pool for processes (engine/connector/processes.ts) with a fake SyncContext: no broker, no database.
// An instance is brought to the engine's state with the fewest commands; definitions say explicitly whether they
// start through their form; what the settings leave out is not reported.
import { describe, expect, it } from "vitest";
import { ProcessSync } from "../../../../engine/connector/processes.ts";
import { TaskSync } from "../../../../engine/connector/tasks.ts";
import { DEFAULT_SETTINGS, type EngineConnectorSettings } from "../../../../engine/connector/settings.ts";
import { commandIdOf, isPermanentRejection } from "../../../../engine/connector/support.ts";
import { newBatch, type SyncContext } from "../../../../engine/connector/sync-context.ts";
import type { ConnectorState, InstanceShadow } from "../../../../engine/connector/connector-state.ts";
import type { EngineAdapter, ProcessDefinitionInfo, ProcessInstanceInfo } from "../../../../engine/connector/engine-adapter.ts";

const definition: ProcessDefinitionInfo = {
  id: "order:2:d2",
  key: "order",
  version: 2,
  name: null,
  versionTag: "v2",
  description: null,
  tenantId: null,
  suspended: false,
  deploymentId: "dep2",
  startFormKey: "embedded:app:forms/start.html",
  startableInTasklist: true,
  candidateStarterUsers: ["ann"],
  candidateStarterGroups: [],
};

const running: ProcessInstanceInfo = {
  id: "pi1",
  definitionId: definition.id,
  definitionKey: "order",
  definitionName: null,
  businessKey: "B-1",
  startTime: "2026-03-01T10:00:00.000Z",
  endTime: null,
  state: "ACTIVE",
  startUserId: "ann",
  startActivityId: "start",
  superProcessInstanceId: null,
  deleteReason: null,
  tenantId: null,
};

function setup(overrides: Partial<EngineConnectorSettings> = {}) {
  const sent: { action: string; params: Record<string, unknown>; commandId?: string }[] = [];
  const saved: Record<string, unknown> = {};
  const state = {
    getDefinition: async (id: string) => (saved[id] as Record<string, unknown> | undefined) ?? null,
    saveDefinition: async (id: string, snapshot: Record<string, unknown>) => void (saved[id] = snapshot),
  } as unknown as ConnectorState;
  const adapter = {
    getProcessDefinition: async (id: string) => (id === definition.id ? definition : null),
    listProcessDefinitions: async () => ({ rows: [definition], done: true }),
  } as unknown as EngineAdapter;
  const settings: EngineConnectorSettings = { ...DEFAULT_SETTINGS, applicationName: "shop", engineUrl: null, databaseUrl: null, pgliteDir: "memory", ...overrides };
  const ctx: SyncContext = {
    app: "shop",
    settings,
    adapter,
    logger: { info: () => undefined, warn: () => undefined },
    keys: settings.processDefinitionKeys,
    state: () => state,
    isStopping: () => false,
    call: async () => {
      throw new Error("no calls expected");
    },
    send: async (action, params, commandId) => {
      sent.push({ action, params: params as Record<string, unknown>, commandId });
      return { aggregateId: "", version: sent.length, globalPosition: sent.length, events: [] };
    },
    commandId: (...parts) => commandIdOf("shop", ...parts),
    recordError: () => undefined,
    throwTransient: (failures) => {
      const transient = failures.find((f) => !isPermanentRejection(f.error));
      if (transient) throw transient.error;
    },
    flush: async () => undefined,
  };
  return { processes: new ProcessSync(ctx, new TaskSync(ctx)), sent };
}

describe("ProcessSync instances", () => {
  it("reports an instance the pool does not know as started, then brings it to the engine's state", async () => {
    const { processes, sent } = setup();
    const batch = newBatch();
    await processes.observeInstance({ ...running, state: "SUSPENDED" }, null, batch);
    expect(sent.map((s) => s.action)).toEqual(["processInstance.start", "processInstance.suspend"]);
    expect(sent[0]!.params).toMatchObject({ processInstanceId: "pi1", businessKey: "B-1", startUserId: "ann", startActivityId: "start" });
    expect(sent[0]!.params.sourceReference).toMatchObject({ applicationName: "shop", definitionKey: "order", name: "order", instanceId: "pi1" });
    expect(sent[0]!.commandId).toBe("shop:pi:pi1:start");
    // Suspend carries no command id: it may happen many times, the decider makes it idempotent by state.
    expect(sent[1]!.commandId).toBeUndefined();
    expect(batch.instances.get("pi1")).toEqual({ instanceId: "pi1", state: "SUSPENDED", snapshot: { definitionKey: "order", businessKey: "B-1" } });
  });

  it("resumes a suspended one, and leaves an ended one alone", async () => {
    const { processes, sent } = setup();
    const suspended: InstanceShadow = { instanceId: "pi1", state: "SUSPENDED", snapshot: {} };
    await processes.observeInstance(running, suspended, newBatch());
    expect(sent.map((s) => s.action)).toEqual(["processInstance.resume"]);
    const finished: InstanceShadow = { instanceId: "pi1", state: "FINISHED", snapshot: {} };
    await processes.observeInstance({ ...running, state: "EXTERNALLY_TERMINATED" }, finished, newBatch());
    expect(sent).toHaveLength(1);
  });

  it("cancels with the reason, and ignores processes outside its keys", async () => {
    const { processes, sent } = setup({ processDefinitionKeys: ["invoice"] });
    await processes.observeInstance(running, null, newBatch());
    expect(sent).toEqual([]);
    const all = setup();
    const known: InstanceShadow = { instanceId: "pi1", state: "RUNNING", snapshot: {} };
    await all.processes.observeInstance({ ...running, state: "EXTERNALLY_TERMINATED", deleteReason: "withdrawn" }, known, newBatch());
    expect(all.sent.map((s) => [s.action, s.params.deleteReason, s.commandId])).toEqual([["processInstance.cancel", "withdrawn", "shop:pi:pi1:cancel"]]);
  });
});

describe("ProcessSync definitions", () => {
  it("registers a definition once per content, starting through its form unless its key allows a direct start", async () => {
    const { processes, sent } = setup();
    await processes.registerDefinitions(null, true);
    await processes.registerDefinitions(null, true);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.action).toBe("processDefinition.register");
    expect(sent[0]!.params).toMatchObject({ processDefinitionId: "order:2:d2", processName: "order", formKey: definition.startFormKey, startsThroughForm: true, candidateStarterUsers: ["ann"] });
    const direct = setup({ directStartKeys: ["order"] });
    await direct.processes.registerDefinitions(null, true);
    expect(direct.sent[0]!.params.startsThroughForm).toBe(false);
  });
});
