// The engine adapter of the embedded engine: the engine connector's contract (engine-adapter.ts) answered from
// the embedded engine's tables, with Operaton's semantics — open tasks changed at or after a time (last update,
// else creation), finished tasks by end time with "completed" or a deletion, deployments and definitions with
// candidate starters and start form keys, instances started and finished, suspensions, variable updates with
// revisions — every time the engine's own, ISO UTC. Interactions (claim, complete, start, …) go to the engine,
// which runs them as steps. Closing the adapter leaves the engine alone: its application owns it.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { encodeTypedValue, type EngineVariables } from "../../domain/engine/variables.ts";
import type { IsoDate, JsonObject } from "../../domain/types.ts";
import type {
  ChangeQuery,
  DeploymentInfo,
  EngineAdapter,
  EngineDescription,
  EngineTask,
  EngineTaskWithDetails,
  FeedName,
  FinishedTask,
  InstanceOperation,
  Page,
  PageOf,
  ProcessDefinitionInfo,
  ProcessInstanceInfo,
  StartProcessRequest,
  VariableUpdate,
} from "../connector/engine-adapter.ts";
import type { DefinitionRecord, EngineStore, InstanceRecord, TaskRecord } from "./engine-store.ts";

/** What the adapter needs of the engine (engine.ts). */
export interface EmbeddedEngineCore extends Pick<EngineAdapter, "claim" | "unclaim" | "setAssignee" | "setFollowUpDate" | "complete" | "startProcess"> {
  store(): Promise<EngineStore>;
}

/** Plain variables with the engine's type names (as Operaton would report them). */
export function typedVariables(values: JsonObject): EngineVariables {
  const result: EngineVariables = {};
  for (const [name, value] of Object.entries(values)) result[name] = { type: encodeTypedValue(value).type, value };
  return result;
}

let engineVersion: string | null | undefined;

/** The installed bpmn-engine's version (its package exports no package.json, so it is read next to its entry). */
function bpmnEngineVersion(): string | null {
  if (engineVersion !== undefined) return engineVersion;
  try {
    let dir = dirname(createRequire(import.meta.url).resolve("bpmn-engine"));
    for (let i = 0; i < 3 && engineVersion === undefined; i++, dir = dirname(dir)) {
      try {
        const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
        if (manifest.name === "bpmn-engine") engineVersion = manifest.version ?? null;
      } catch {
        // Not here; one directory up.
      }
    }
  } catch {
    // Unknown: the description says so.
  }
  engineVersion ??= null;
  return engineVersion;
}

function pageOf<T>(rows: T[], query: Page): PageOf<T> {
  return { rows, done: rows.length < query.maxResults };
}

/** Key filters: none (null) means every process; an empty list means none. */
function nothingWanted(query: Page): boolean {
  return Array.isArray(query.processDefinitionKeys) && query.processDefinitionKeys.length === 0;
}

function taskOf(record: TaskRecord, variables?: JsonObject): EngineTask {
  const task: EngineTask = {
    id: record.id,
    taskDefinitionKey: record.taskDefinitionKey,
    name: record.name,
    description: record.description,
    formKey: record.formKey,
    assignee: record.assignee,
    owner: record.owner,
    priority: record.priority,
    createTime: record.createTime,
    lastUpdated: record.lastUpdated,
    dueDate: record.dueDate,
    followUpDate: record.followUpDate,
    processInstanceId: record.instanceId,
    executionId: record.executionId,
    processDefinitionId: record.definitionId,
    tenantId: null,
    suspended: record.suspended,
    candidateUsers: [...record.candidateUsers],
    candidateGroups: [...record.candidateGroups],
  };
  if (variables) task.variables = typedVariables({ ...variables, ...record.localVariables });
  return task;
}

function finishedTaskOf(record: TaskRecord): FinishedTask {
  return {
    id: record.id,
    taskDefinitionKey: record.taskDefinitionKey,
    processInstanceId: record.instanceId,
    executionId: record.executionId,
    processDefinitionId: record.definitionId,
    processDefinitionKey: record.definitionKey,
    name: record.name,
    description: record.description,
    assignee: record.assignee,
    owner: record.owner,
    priority: record.priority,
    startTime: record.createTime,
    endTime: record.endTime!,
    dueDate: record.dueDate,
    followUpDate: record.followUpDate,
    tenantId: null,
    outcome: record.status === "completed" ? "completed" : "deleted",
    deleteReason: record.deleteReason,
  };
}

function definitionInfoOf(record: DefinitionRecord): ProcessDefinitionInfo {
  return {
    id: record.id,
    key: record.key,
    version: record.version,
    name: record.name,
    versionTag: record.versionTag,
    description: record.description,
    tenantId: null,
    suspended: record.suspended,
    deploymentId: record.deploymentId,
    startFormKey: record.startFormKey,
    startableInTasklist: record.startableInTasklist,
    candidateStarterUsers: [...record.candidateStarterUsers],
    candidateStarterGroups: [...record.candidateStarterGroups],
  };
}

function instanceInfoOf(record: InstanceRecord, definitionName: string | null): ProcessInstanceInfo {
  return {
    id: record.id,
    definitionId: record.definitionId,
    definitionKey: record.definitionKey,
    definitionName,
    businessKey: record.businessKey,
    startTime: record.startTime,
    endTime: record.endTime,
    state: record.state,
    startUserId: null,
    startActivityId: record.startActivityId,
    superProcessInstanceId: null,
    deleteReason: record.deleteReason,
    tenantId: null,
  };
}

export class EmbeddedAdapter implements EngineAdapter {
  private readonly engine: EmbeddedEngineCore;

  constructor(engine: EmbeddedEngineCore) {
    this.engine = engine;
  }

  private store(): Promise<EngineStore> {
    return this.engine.store();
  }

  async describe(): Promise<EngineDescription> {
    await this.store();
    return { product: "bpmn-engine (embedded)", version: bpmnEngineVersion() };
  }

  // Open tasks ---------------------------------------------------------------------------------------------------------

  /** Tasks with the variables they see (their instance's and their own), as Operaton 7.24+ lists them. */
  private async withVariables(records: TaskRecord[]): Promise<EngineTask[]> {
    const store = await this.store();
    const instances = new Map((await store.instances([...new Set(records.map((r) => r.instanceId))])).map((i) => [i.id, i.variables]));
    return records.map((record) => taskOf(record, instances.get(record.instanceId) ?? {}));
  }

  async listTasksChangedSince(query: ChangeQuery): Promise<PageOf<EngineTask>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).openTasks({ changedSince: query.since, keys: query.processDefinitionKeys }, query);
    return pageOf(await this.withVariables(records), query);
  }

  async listOpenTasks(query: Page & { processInstanceId?: string | null }): Promise<PageOf<EngineTask>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).openTasks({ instanceId: query.processInstanceId, keys: query.processDefinitionKeys }, query);
    return pageOf(await this.withVariables(records), query);
  }

  async getTask(taskId: string): Promise<EngineTask | null> {
    const record = await (await this.store()).task(taskId);
    return record && record.status === "open" ? taskOf(record) : null;
  }

  async loadTaskDetails(task: EngineTask): Promise<EngineTaskWithDetails | null> {
    const store = await this.store();
    const record = await store.task(task.id);
    if (!record || record.status !== "open") return null;
    const instance = await store.instance(record.instanceId);
    return taskOf(record, instance?.variables ?? {}) as EngineTaskWithDetails;
  }

  // Finished tasks ---------------------------------------------------------------------------------------------------------

  async listFinishedTasksSince(query: ChangeQuery): Promise<PageOf<FinishedTask>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).finishedTasksSince(query.since, query.processDefinitionKeys, query);
    return pageOf(records.map(finishedTaskOf), query);
  }

  async getFinishedTask(taskId: string): Promise<FinishedTask | null> {
    const record = await (await this.store()).task(taskId);
    return record && record.status !== "open" ? finishedTaskOf(record) : null;
  }

  async getFinishedTaskCandidates(taskId: string): Promise<{ candidateUsers: string[]; candidateGroups: string[] }> {
    const record = await (await this.store()).task(taskId);
    return { candidateUsers: [...(record?.candidateUsers ?? [])], candidateGroups: [...(record?.candidateGroups ?? [])] };
  }

  // Processes ----------------------------------------------------------------------------------------------------------------

  async listDeploymentsSince(query: ChangeQuery): Promise<PageOf<DeploymentInfo>> {
    const rows = await (await this.store()).deploymentsSince(query.since, query);
    return pageOf(
      rows.map((row) => ({ id: row.id, deploymentTime: row.deploymentTime })),
      query,
    );
  }

  async listProcessDefinitions(query: Page & { deploymentId?: string | null; latestVersionOnly?: boolean }): Promise<PageOf<ProcessDefinitionInfo>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).definitions({ deploymentId: query.deploymentId, latestVersionOnly: query.latestVersionOnly, keys: query.processDefinitionKeys }, query);
    return pageOf(records.map(definitionInfoOf), query);
  }

  async getProcessDefinition(definitionId: string): Promise<Pick<ProcessDefinitionInfo, "id" | "key" | "name" | "version" | "tenantId"> | null> {
    const record = await (await this.store()).definition(definitionId);
    return record ? { id: record.id, key: record.key, name: record.name, version: record.version, tenantId: null } : null;
  }

  private async instanceInfos(records: InstanceRecord[]): Promise<ProcessInstanceInfo[]> {
    const names = await (await this.store()).definitionNames(records.map((r) => r.definitionId));
    return records.map((record) => instanceInfoOf(record, names.get(record.definitionId) ?? null));
  }

  async listInstancesStartedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).instancesStartedSince(query.since, query.processDefinitionKeys, query);
    return pageOf(await this.instanceInfos(records), query);
  }

  async listInstancesFinishedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).instancesFinishedSince(query.since, query.processDefinitionKeys, query);
    return pageOf(await this.instanceInfos(records), query);
  }

  async listRunningInstances(query: Page): Promise<PageOf<ProcessInstanceInfo>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const records = await (await this.store()).runningInstances(query.processDefinitionKeys, query);
    return pageOf(await this.instanceInfos(records), query);
  }

  async getProcessInstance(instanceId: string): Promise<ProcessInstanceInfo | null> {
    const [info] = await this.getProcessInstances([instanceId]);
    return info ?? null;
  }

  async getProcessInstances(instanceIds: readonly string[]): Promise<ProcessInstanceInfo[]> {
    if (instanceIds.length === 0) return [];
    return this.instanceInfos(await (await this.store()).instances(instanceIds));
  }

  async listInstanceOperationsSince(query: ChangeQuery): Promise<PageOf<InstanceOperation>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const rows = await (await this.store()).operationsSince(query.since, query.processDefinitionKeys, query);
    return pageOf(
      rows.map((row) => ({ id: row.id, time: row.time, processInstanceId: row.instanceId, processDefinitionKey: row.definitionKey, operation: row.operation })),
      query,
    );
  }

  async listVariableUpdatesSince(query: ChangeQuery): Promise<PageOf<VariableUpdate>> {
    if (nothingWanted(query)) return { rows: [], done: true };
    const rows = await (await this.store()).variableUpdatesSince(query.since, query.processDefinitionKeys, query);
    return pageOf(
      rows.map((row) => ({
        id: row.id,
        time: row.time,
        processInstanceId: row.instanceId,
        processDefinitionId: row.definitionId,
        processDefinitionKey: row.definitionKey,
        variableInstanceId: row.variableInstanceId,
        variableName: row.name,
        revision: row.revision,
        activityInstanceId: row.activityInstanceId,
        taskId: row.taskId,
        value: { type: row.type, value: row.value },
        kind: row.kind,
      })),
      query,
    );
  }

  async getProcessVariables(instanceId: string): Promise<EngineVariables> {
    const instance = await (await this.store()).instance(instanceId);
    return typedVariables(instance?.variables ?? {});
  }

  async newestChangeTime(feed: FeedName, processDefinitionKeys?: readonly string[] | null): Promise<IsoDate | null> {
    const store = await this.store();
    const keys = processDefinitionKeys ?? null;
    switch (feed) {
      case "tasks":
        return store.newest("engine_tasks", "create_time", { where: { status: "open" } });
      case "finishedTasks":
        return store.newest("engine_tasks", "end_time", { whereNot: { status: "open" }, keys });
      case "deployments":
        return store.newest("engine_deployments", "deployment_time");
      case "startedInstances":
        return store.newest("engine_instances", "start_time", { keys });
      case "finishedInstances":
        return store.newest("engine_instances", "end_time", { keys });
      case "instanceOperations":
        return store.newest("engine_operations", "time", { keys });
      case "variableUpdates":
        return store.newest("engine_variable_updates", "time", { keys });
    }
  }

  // Interactions -----------------------------------------------------------------------------------------------------------

  claim(taskId: string, userId: string): Promise<void> {
    return this.engine.claim(taskId, userId);
  }

  unclaim(taskId: string): Promise<void> {
    return this.engine.unclaim(taskId);
  }

  setAssignee(taskId: string, userId: string | null): Promise<void> {
    return this.engine.setAssignee(taskId, userId);
  }

  setFollowUpDate(taskId: string, followUpDate: IsoDate | null): Promise<void> {
    return this.engine.setFollowUpDate(taskId, followUpDate);
  }

  complete(taskId: string, variables: JsonObject): Promise<void> {
    return this.engine.complete(taskId, variables);
  }

  startProcess(request: StartProcessRequest): Promise<{ processInstanceId: string }> {
    return this.engine.startProcess(request);
  }

  async findInstancesByVariable(name: string, value: string): Promise<string[]> {
    return (await this.store()).instanceIdsByVariable(name, value);
  }
}
