// The engine adapter for Operaton and Camunda 7 over their REST API (`…/engine-rest`), on OperatonClient. It
// knows the endpoints and their quirks: which time filters are strict (`updatedAfter`, `after`,
// `afterTimestamp`) and which inclusive (`finishedAfter`, `startedAfter`, `occurredAfter`), that a deleted
// variable shows in history only as one more update whose variable instance is DELETED, that task lists can
// carry their variables (7.24+/Operaton) or not (older engines), that candidate starters live only in the BPMN
// XML, that `operatonFormRef` replaced `camundaFormRef`, and that structured variables need the Spin plugin.
import { processAttributesOf } from "../../domain/engine/bpmn-process-attributes.ts";
import {
  decodeTypedValue,
  decodeVariables,
  encodeVariables,
  formatEngineDate,
  hasStructuredValues,
  parseEngineDate,
  shiftIsoDate,
  type EngineVariables,
  type StructuredEncoding,
  type TypedValue,
} from "../../domain/engine/variables.ts";
import type { IsoDate, JsonObject } from "../../domain/types.ts";
import {
  isEngineError,
  type ChangeQuery,
  type DeploymentInfo,
  type EngineAdapter,
  type EngineDescription,
  type EngineTask,
  type EngineTaskWithDetails,
  type FeedName,
  type FinishedTask,
  type InstanceOperation,
  type Page,
  type PageOf,
  type ProcessDefinitionInfo,
  type ProcessInstanceInfo,
  type ProcessInstanceState,
  type StartProcessRequest,
  type VariableUpdate,
} from "../connector/engine-adapter.ts";
import { OperatonClient, type OperatonClientOptions, type Query } from "./operaton-client.ts";

// Wire shapes (only the fields used) ---------------------------------------------------------------------------

interface TaskDto {
  id: string;
  name: string | null;
  assignee: string | null;
  created: string | null;
  lastUpdated?: string | null;
  due: string | null;
  followUp: string | null;
  description: string | null;
  executionId: string | null;
  owner: string | null;
  priority: number | null;
  processDefinitionId: string | null;
  processInstanceId: string | null;
  taskDefinitionKey: string;
  suspended: boolean;
  formKey: string | null;
  tenantId: string | null;
  variables?: Record<string, TypedValue>;
}

interface IdentityLinkDto {
  userId: string | null;
  groupId: string | null;
  type: string;
}

interface HistoricTaskDto {
  id: string;
  processDefinitionKey: string | null;
  processDefinitionId: string | null;
  processInstanceId: string | null;
  executionId: string | null;
  name: string | null;
  description: string | null;
  deleteReason: string | null;
  owner: string | null;
  assignee: string | null;
  startTime: string | null;
  endTime: string | null;
  taskDefinitionKey: string;
  priority: number | null;
  due: string | null;
  followUp: string | null;
  tenantId: string | null;
}

interface IdentityLinkLogDto {
  time: string;
  type: string;
  userId: string | null;
  groupId: string | null;
  operationType: "add" | "delete";
}

interface ProcessDefinitionDto {
  id: string;
  key: string;
  description: string | null;
  name: string | null;
  version: number;
  deploymentId: string | null;
  suspended: boolean;
  tenantId: string | null;
  versionTag: string | null;
  startableInTasklist?: boolean | null;
}

interface DeploymentDto {
  id: string;
  deploymentTime: string;
}

interface HistoricProcessInstanceDto {
  id: string;
  businessKey: string | null;
  processDefinitionId: string;
  processDefinitionKey: string;
  processDefinitionName: string | null;
  startTime: string;
  endTime: string | null;
  startUserId: string | null;
  startActivityId: string | null;
  deleteReason: string | null;
  superProcessInstanceId: string | null;
  tenantId: string | null;
  state: ProcessInstanceState;
}

interface UserOperationDto {
  id: string;
  operationId: string;
  timestamp: string;
  operationType: string;
  entityType: string;
  processInstanceId: string | null;
  processDefinitionKey: string | null;
}

interface HistoricVariableUpdateDto extends TypedValue {
  id: string;
  time: string;
  processInstanceId: string | null;
  processDefinitionId: string | null;
  processDefinitionKey: string | null;
  activityInstanceId: string | null;
  taskId: string | null;
  variableName: string;
  variableInstanceId: string;
  variableType: string;
  revision: number;
  initial?: boolean;
}

interface HistoricVariableInstanceDto extends TypedValue {
  id: string;
  name: string;
  state: string;
}

// Helpers ----------------------------------------------------------------------------------------------------------

/** The filter value for an inclusive start expressed through a strict (`>`) filter: one millisecond earlier. */
function strictFrom(since: IsoDate): string {
  return formatEngineDate(shiftIsoDate(since, -1));
}

function keyFilter(keys: readonly string[] | null | undefined): ((key: string | null | undefined) => boolean) | null {
  if (keys === null || keys === undefined) return null;
  const set = new Set(keys);
  return (key) => key != null && set.has(key);
}

function page<T>(raw: T[], maxResults: number, keep: (row: T) => boolean = () => true): PageOf<T> {
  return { rows: raw.filter(keep), done: raw.length < maxResults };
}

/** The newest of the raw rows' times (for PageOf.newest). */
function newestOf<T>(raw: T[], timeOf: (row: T) => string | null | undefined): IsoDate | null {
  let newest: IsoDate | null = null;
  for (const row of raw) {
    const time = parseEngineDate(timeOf(row));
    if (time !== null && (newest === null || time > newest)) newest = time;
  }
  return newest;
}

function taskOf(dto: TaskDto): EngineTask {
  const task: EngineTask = {
    id: dto.id,
    taskDefinitionKey: dto.taskDefinitionKey,
    name: dto.name ?? null,
    description: dto.description ?? null,
    formKey: dto.formKey ?? null,
    assignee: dto.assignee ?? null,
    owner: dto.owner ?? null,
    priority: dto.priority ?? null,
    createTime: parseEngineDate(dto.created),
    lastUpdated: parseEngineDate(dto.lastUpdated),
    dueDate: parseEngineDate(dto.due),
    followUpDate: parseEngineDate(dto.followUp),
    processInstanceId: dto.processInstanceId ?? "",
    executionId: dto.executionId ?? null,
    processDefinitionId: dto.processDefinitionId ?? "",
    tenantId: dto.tenantId ?? null,
    suspended: dto.suspended === true,
  };
  if (dto.variables !== undefined) task.variables = decodeVariables(dto.variables);
  return task;
}

function finishedTaskOf(dto: HistoricTaskDto): FinishedTask {
  const reason = dto.deleteReason ?? null;
  return {
    id: dto.id,
    taskDefinitionKey: dto.taskDefinitionKey,
    processInstanceId: dto.processInstanceId ?? null,
    executionId: dto.executionId ?? null,
    processDefinitionId: dto.processDefinitionId ?? null,
    processDefinitionKey: dto.processDefinitionKey ?? null,
    name: dto.name ?? null,
    description: dto.description ?? null,
    assignee: dto.assignee ?? null,
    owner: dto.owner ?? null,
    priority: dto.priority ?? null,
    startTime: parseEngineDate(dto.startTime),
    endTime: parseEngineDate(dto.endTime)!,
    dueDate: parseEngineDate(dto.due),
    followUpDate: parseEngineDate(dto.followUp),
    tenantId: dto.tenantId ?? null,
    // TaskEntity.DELETE_REASON_COMPLETED; everything else is a removal ("deleted", or the caller's reason).
    outcome: reason === "completed" ? "completed" : "deleted",
    deleteReason: reason,
  };
}

function instanceOf(dto: HistoricProcessInstanceDto): ProcessInstanceInfo {
  return {
    id: dto.id,
    definitionId: dto.processDefinitionId,
    definitionKey: dto.processDefinitionKey,
    definitionName: dto.processDefinitionName ?? null,
    businessKey: dto.businessKey ?? null,
    startTime: parseEngineDate(dto.startTime)!,
    endTime: parseEngineDate(dto.endTime),
    state: dto.state,
    startUserId: dto.startUserId ?? null,
    startActivityId: dto.startActivityId ?? null,
    superProcessInstanceId: dto.superProcessInstanceId ?? null,
    deleteReason: dto.deleteReason ?? null,
    tenantId: dto.tenantId ?? null,
  };
}

function candidatesOf(links: IdentityLinkDto[]): { candidateUsers: string[]; candidateGroups: string[] } {
  const users = new Set<string>();
  const groups = new Set<string>();
  for (const link of links) {
    if (link.type !== "candidate") continue;
    if (link.userId) users.add(link.userId);
    if (link.groupId) groups.add(link.groupId);
  }
  return { candidateUsers: [...users].sort(), candidateGroups: [...groups].sort() };
}

async function orNullWhenGone<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (isEngineError(err, "gone")) return null;
    throw err;
  }
}

/** The engine refused a structured type: it has no Spin plugin for Json (nor for JSON-serialized objects). */
function refusesStructured(err: unknown): boolean {
  return isEngineError(err) && /Unsupported value type 'Json'|Cannot find serializer|Json/i.test(err.reason) && (err.kind === "invalid" || err.kind === "failed");
}

const TASK_FIELDS_FOR_UPDATE = ["name", "description", "priority", "assignee", "owner", "delegationState", "due", "followUp", "parentTaskId", "caseInstanceId", "tenantId"] as const;

export class OperatonAdapter implements EngineAdapter {
  readonly client: OperatonClient;
  private readonly definitions = new Map<string, ProcessDefinitionDto>();
  /** Json until the engine refuses it once; then structured values go as JSON text. */
  private structured: StructuredEncoding = "Json";

  constructor(options: OperatonClientOptions | OperatonClient) {
    this.client = options instanceof OperatonClient ? options : new OperatonClient(options);
  }

  async describe(): Promise<EngineDescription> {
    const { version } = await this.client.get<{ version: string }>("/version");
    // Operaton restarted the numbering at 1.0; Camunda 7 is 7.x.
    const product = /^7\./.test(version) ? "Camunda 7" : "Operaton";
    return { product, version };
  }

  // Open tasks ---------------------------------------------------------------------------------------------------

  private async queryTasks(body: Record<string, unknown>, query: Page): Promise<PageOf<EngineTask>> {
    if (query.processDefinitionKeys && query.processDefinitionKeys.length === 0) return { rows: [], done: true };
    const dtos = await this.client.post<TaskDto[]>(
      "/task",
      {
        ...body,
        ...(query.processDefinitionKeys ? { processDefinitionKeyIn: query.processDefinitionKeys } : {}),
        // 7.24+ and Operaton return the variables with the list; older engines ignore the flag.
        withTaskVariablesInReturn: true,
        sorting: [{ sortBy: "id", sortOrder: "asc" }],
      },
      { firstResult: query.firstResult, maxResults: query.maxResults },
      { read: true },
    );
    // Tasks of CMMN cases and standalone tasks have no process instance: not ours to report.
    const kept = page(dtos, query.maxResults, (dto) => dto.processInstanceId != null && dto.processDefinitionId != null);
    return { rows: kept.rows.map(taskOf), done: kept.done };
  }

  listTasksChangedSince(query: ChangeQuery): Promise<PageOf<EngineTask>> {
    // updatedAfter is strict and covers both: LAST_UPDATED_ > x OR (LAST_UPDATED_ IS NULL AND CREATE_TIME_ > x).
    return this.queryTasks(query.since ? { updatedAfter: strictFrom(query.since) } : {}, query);
  }

  listOpenTasks(query: Page & { processInstanceId?: string | null }): Promise<PageOf<EngineTask>> {
    return this.queryTasks(query.processInstanceId ? { processInstanceId: query.processInstanceId } : {}, query);
  }

  async getTask(taskId: string): Promise<EngineTask | null> {
    const dto = await orNullWhenGone(this.client.get<TaskDto>(`/task/${encodeURIComponent(taskId)}`));
    if (!dto || dto.processInstanceId == null) return null;
    return taskOf(dto);
  }

  async loadTaskDetails(task: EngineTask): Promise<EngineTaskWithDetails | null> {
    const id = encodeURIComponent(task.id);
    const [links, variables] = await Promise.all([
      orNullWhenGone(this.client.get<IdentityLinkDto[]>(`/task/${id}/identity-links`)),
      task.variables
        ? Promise.resolve(task.variables)
        : orNullWhenGone(this.client.get<Record<string, TypedValue>>(`/task/${id}/variables`, { deserializeValues: false })).then((raw) =>
            raw === null ? null : decodeVariables(raw),
          ),
    ]);
    if (links === null || variables === null) return null;
    return { ...task, ...candidatesOf(links), variables };
  }

  // Finished tasks -----------------------------------------------------------------------------------------------

  async listFinishedTasksSince(query: ChangeQuery): Promise<PageOf<FinishedTask>> {
    const matches = keyFilter(query.processDefinitionKeys);
    const dtos = await this.client.get<HistoricTaskDto[]>("/history/task", {
      finished: true,
      // finishedAfter is inclusive (END_TIME_ >= x).
      finishedAfter: query.since ? formatEngineDate(query.since) : undefined,
      // The history task query has no key-list filter; one key can be asked for, several are filtered here.
      processDefinitionKey: query.processDefinitionKeys?.length === 1 ? query.processDefinitionKeys[0] : undefined,
      sortBy: "endTime",
      sortOrder: "asc",
      firstResult: query.firstResult,
      maxResults: query.maxResults,
    });
    const kept = page(dtos, query.maxResults, (dto) => dto.processInstanceId != null && (matches === null || matches(dto.processDefinitionKey)));
    return { rows: kept.rows.map(finishedTaskOf), done: kept.done, newest: newestOf(dtos, (dto) => dto.endTime) };
  }

  async getFinishedTask(taskId: string): Promise<FinishedTask | null> {
    const dtos = await this.client.get<HistoricTaskDto[]>("/history/task", { taskId, finished: true });
    const dto = dtos[0];
    return dto && dto.endTime ? finishedTaskOf(dto) : null;
  }

  async getFinishedTaskCandidates(taskId: string): Promise<{ candidateUsers: string[]; candidateGroups: string[] }> {
    // The identity-link log (history level full) replays additions and removals in time order.
    const entries = await this.client.get<IdentityLinkLogDto[]>("/history/identity-link-log", { taskId, type: "candidate", sortBy: "time", sortOrder: "asc", maxResults: 10_000 });
    const users = new Set<string>();
    const groups = new Set<string>();
    for (const entry of entries) {
      const target = entry.userId ? users : groups;
      const name = entry.userId ?? entry.groupId;
      if (!name) continue;
      if (entry.operationType === "add") target.add(name);
      else target.delete(name);
    }
    return { candidateUsers: [...users].sort(), candidateGroups: [...groups].sort() };
  }

  // Process definitions ------------------------------------------------------------------------------------------

  async listDeploymentsSince(query: ChangeQuery): Promise<PageOf<DeploymentInfo>> {
    const dtos = await this.client.get<DeploymentDto[]>("/deployment", {
      // `after` is strict (DEPLOY_TIME_ > x).
      after: query.since ? strictFrom(query.since) : undefined,
      sortBy: "deploymentTime",
      sortOrder: "asc",
      firstResult: query.firstResult,
      maxResults: query.maxResults,
    });
    return { rows: dtos.map((dto) => ({ id: dto.id, deploymentTime: parseEngineDate(dto.deploymentTime)! })), done: dtos.length < query.maxResults };
  }

  async listProcessDefinitions(query: Page & { deploymentId?: string | null; latestVersionOnly?: boolean }): Promise<PageOf<ProcessDefinitionInfo>> {
    if (query.processDefinitionKeys && query.processDefinitionKeys.length === 0) return { rows: [], done: true };
    const dtos = await this.client.get<ProcessDefinitionDto[]>("/process-definition", {
      deploymentId: query.deploymentId ?? undefined,
      latestVersion: query.latestVersionOnly ? true : undefined,
      keysIn: query.processDefinitionKeys ?? undefined,
      sortBy: "id",
      sortOrder: "asc",
      firstResult: query.firstResult,
      maxResults: query.maxResults,
    });
    const rows: ProcessDefinitionInfo[] = [];
    for (const dto of dtos) {
      this.definitions.set(dto.id, dto);
      rows.push(await this.definitionInfo(dto));
    }
    return { rows, done: dtos.length < query.maxResults };
  }

  private async definitionInfo(dto: ProcessDefinitionDto): Promise<ProcessDefinitionInfo> {
    const id = encodeURIComponent(dto.id);
    const [xml, startForm] = await Promise.all([
      orNullWhenGone(this.client.get<{ bpmn20Xml: string }>(`/process-definition/${id}/xml`)),
      orNullWhenGone(this.client.get<{ key: string | null }>(`/process-definition/${id}/startForm`)),
    ]);
    const attributes = xml?.bpmn20Xml ? processAttributesOf(xml.bpmn20Xml, dto.key) : null;
    return {
      id: dto.id,
      key: dto.key,
      version: dto.version,
      name: dto.name ?? null,
      versionTag: dto.versionTag ?? attributes?.versionTag ?? null,
      description: dto.description ?? null,
      tenantId: dto.tenantId ?? null,
      suspended: dto.suspended === true,
      deploymentId: dto.deploymentId ?? null,
      startFormKey: startForm?.key ?? null,
      startableInTasklist: dto.startableInTasklist ?? attributes?.startableInTasklist ?? true,
      candidateStarterUsers: attributes?.candidateStarterUsers ?? [],
      candidateStarterGroups: attributes?.candidateStarterGroups ?? [],
    };
  }

  async getProcessDefinition(definitionId: string): Promise<Pick<ProcessDefinitionInfo, "id" | "key" | "name" | "version" | "tenantId"> | null> {
    let dto = this.definitions.get(definitionId);
    if (!dto) {
      const fetched = await orNullWhenGone(this.client.get<ProcessDefinitionDto>(`/process-definition/${encodeURIComponent(definitionId)}`));
      if (!fetched) return null;
      // Definitions never change once deployed, so they can be kept for the adapter's lifetime.
      this.definitions.set(definitionId, fetched);
      dto = fetched;
    }
    return { id: dto.id, key: dto.key, name: dto.name ?? null, version: dto.version, tenantId: dto.tenantId ?? null };
  }

  // Process instances --------------------------------------------------------------------------------------------

  private async queryInstances(params: Query, query: Page): Promise<PageOf<ProcessInstanceInfo>> {
    if (query.processDefinitionKeys && query.processDefinitionKeys.length === 0) return { rows: [], done: true };
    const dtos = await this.client.get<HistoricProcessInstanceDto[]>("/history/process-instance", {
      ...params,
      processDefinitionKeyIn: query.processDefinitionKeys ?? undefined,
      firstResult: query.firstResult,
      maxResults: query.maxResults,
    });
    return { rows: dtos.map(instanceOf), done: dtos.length < query.maxResults };
  }

  listInstancesStartedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>> {
    // startedAfter is inclusive (START_TIME_ >= x).
    return this.queryInstances({ startedAfter: query.since ? formatEngineDate(query.since) : undefined, sortBy: "startTime", sortOrder: "asc" }, query);
  }

  listInstancesFinishedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>> {
    return this.queryInstances({ finished: true, finishedAfter: query.since ? formatEngineDate(query.since) : undefined, sortBy: "endTime", sortOrder: "asc" }, query);
  }

  listRunningInstances(query: Page): Promise<PageOf<ProcessInstanceInfo>> {
    return this.queryInstances({ unfinished: true, sortBy: "instanceId", sortOrder: "asc" }, query);
  }

  async getProcessInstance(instanceId: string): Promise<ProcessInstanceInfo | null> {
    const dto = await orNullWhenGone(this.client.get<HistoricProcessInstanceDto>(`/history/process-instance/${encodeURIComponent(instanceId)}`));
    return dto ? instanceOf(dto) : null;
  }

  async getProcessInstances(instanceIds: readonly string[]): Promise<ProcessInstanceInfo[]> {
    if (instanceIds.length === 0) return [];
    const dtos = await this.client.post<HistoricProcessInstanceDto[]>(
      "/history/process-instance",
      { processInstanceIds: instanceIds },
      { maxResults: instanceIds.length },
      { read: true },
    );
    return dtos.map(instanceOf);
  }

  async listInstanceOperationsSince(query: ChangeQuery): Promise<PageOf<InstanceOperation>> {
    const matches = keyFilter(query.processDefinitionKeys);
    const dtos = await this.client.get<UserOperationDto[]>("/history/user-operation", {
      entityType: "ProcessInstance",
      // afterTimestamp is strict (TIMESTAMP_ > x). The log is written for unauthenticated calls only when the
      // engine sets restrictUserOperationLogToAuthenticatedUsers=false; reconciliation covers the rest.
      afterTimestamp: query.since ? strictFrom(query.since) : undefined,
      sortBy: "timestamp",
      sortOrder: "asc",
      firstResult: query.firstResult,
      maxResults: query.maxResults,
    });
    const rows: InstanceOperation[] = [];
    for (const dto of dtos) {
      if (dto.operationType !== "Suspend" && dto.operationType !== "Activate") continue;
      if (!dto.processInstanceId || (matches !== null && !matches(dto.processDefinitionKey))) continue;
      rows.push({
        id: `${dto.operationId}:${dto.processInstanceId}`,
        time: parseEngineDate(dto.timestamp)!,
        processInstanceId: dto.processInstanceId,
        processDefinitionKey: dto.processDefinitionKey ?? null,
        operation: dto.operationType,
      });
    }
    return { rows, done: dtos.length < query.maxResults, newest: newestOf(dtos, (dto) => dto.timestamp) };
  }

  async listVariableUpdatesSince(query: ChangeQuery): Promise<PageOf<VariableUpdate>> {
    const matches = keyFilter(query.processDefinitionKeys);
    // POST, because only its body takes several sort keys: updates of one command share a millisecond, and
    // without the tie-breaker paging over them could return one twice and skip another.
    const dtos = await this.client.post<HistoricVariableUpdateDto[]>(
      "/history/detail",
      {
        variableUpdates: true,
        // occurredAfter is inclusive (TIME_ >= x).
        ...(query.since ? { occurredAfter: formatEngineDate(query.since) } : {}),
        sorting: [
          { sortBy: "time", sortOrder: "asc" },
          { sortBy: "occurrence", sortOrder: "asc" },
        ],
      },
      { deserializeValues: false, firstResult: query.firstResult, maxResults: query.maxResults },
      { read: true },
    );
    const kept = dtos.filter((dto) => dto.processInstanceId != null && (matches === null || matches(dto.processDefinitionKey)));
    // A removed variable shows as one more update; only its variable instance says DELETED.
    const deleted = await this.deletedVariableRevisions(kept);
    const updates = kept.map((dto): VariableUpdate => {
      const lastRevision = deleted.get(dto.variableInstanceId);
      return {
        id: dto.id,
        time: parseEngineDate(dto.time)!,
        processInstanceId: dto.processInstanceId!,
        processDefinitionId: dto.processDefinitionId ?? null,
        processDefinitionKey: dto.processDefinitionKey ?? null,
        variableInstanceId: dto.variableInstanceId,
        variableName: dto.variableName,
        revision: dto.revision ?? 0,
        activityInstanceId: dto.activityInstanceId ?? null,
        taskId: dto.taskId ?? null,
        value: decodeTypedValue({ type: dto.variableType ?? dto.type, value: dto.value, valueInfo: dto.valueInfo }),
        kind: lastRevision !== undefined && dto.revision === lastRevision ? "delete" : dto.revision === 0 || dto.initial ? "create" : "update",
      };
    });
    return { rows: updates, done: dtos.length < query.maxResults, newest: newestOf(dtos, (dto) => dto.time) };
  }

  /** For the deleted variables among these updates: their last revision, which is the deletion. */
  private async deletedVariableRevisions(updates: HistoricVariableUpdateDto[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    const instanceIds = [...new Set(updates.map((u) => u.processInstanceId!))];
    const variableIds = new Set(updates.map((u) => u.variableInstanceId));
    for (let i = 0; i < instanceIds.length; i += 50) {
      const instances = await this.client.post<HistoricVariableInstanceDto[]>(
        "/history/variable-instance",
        { processInstanceIdIn: instanceIds.slice(i, i + 50), includeDeleted: true },
        { deserializeValues: false, maxResults: 10_000 },
        { read: true },
      );
      for (const variable of instances) {
        if (variable.state !== "DELETED" || !variableIds.has(variable.id)) continue;
        const history = await this.client.get<HistoricVariableUpdateDto[]>("/history/detail", {
          variableInstanceId: variable.id,
          variableUpdates: true,
          deserializeValues: false,
          maxResults: 10_000,
        });
        result.set(variable.id, Math.max(...history.map((h) => h.revision ?? 0)));
      }
    }
    return result;
  }

  async getProcessVariables(instanceId: string): Promise<EngineVariables> {
    const runtime = await orNullWhenGone(
      this.client.get<Record<string, TypedValue>>(`/process-instance/${encodeURIComponent(instanceId)}/variables`, { deserializeValues: false }),
    );
    if (runtime) return decodeVariables(runtime);
    // Ended: history keeps the last values.
    const history = await this.client.get<HistoricVariableInstanceDto[]>("/history/variable-instance", {
      processInstanceId: instanceId,
      deserializeValues: false,
      maxResults: 10_000,
    });
    const raw: Record<string, TypedValue> = {};
    for (const variable of history) if (variable.state !== "DELETED") raw[variable.name] = variable;
    return decodeVariables(raw);
  }

  async newestChangeTime(feed: FeedName, processDefinitionKeys?: readonly string[] | null): Promise<IsoDate | null> {
    const single = processDefinitionKeys?.length === 1 ? processDefinitionKeys[0] : undefined;
    const newest = async (path: string, field: string, query: Query): Promise<IsoDate | null> => {
      const rows = await this.client.get<Record<string, string>[]>(path, { ...query, sortOrder: "desc", firstResult: 0, maxResults: 1 });
      return parseEngineDate(rows[0]?.[field]);
    };
    switch (feed) {
      case "tasks": {
        const rows = await this.client.post<TaskDto[]>("/task", { sorting: [{ sortBy: "created", sortOrder: "desc" }] }, { firstResult: 0, maxResults: 1 }, { read: true });
        return parseEngineDate(rows[0]?.created);
      }
      case "finishedTasks":
        return newest("/history/task", "endTime", { finished: true, sortBy: "endTime", processDefinitionKey: single });
      case "deployments":
        return newest("/deployment", "deploymentTime", { sortBy: "deploymentTime" });
      case "startedInstances":
        return newest("/history/process-instance", "startTime", { sortBy: "startTime", processDefinitionKeyIn: processDefinitionKeys ?? undefined });
      case "finishedInstances":
        return newest("/history/process-instance", "endTime", { finished: true, sortBy: "endTime", processDefinitionKeyIn: processDefinitionKeys ?? undefined });
      case "instanceOperations":
        return newest("/history/user-operation", "timestamp", { entityType: "ProcessInstance", sortBy: "timestamp" });
      case "variableUpdates":
        return newest("/history/detail", "time", { variableUpdates: true, sortBy: "time" });
    }
  }

  // Interactions -------------------------------------------------------------------------------------------------

  async claim(taskId: string, userId: string): Promise<void> {
    await this.client.post(`/task/${encodeURIComponent(taskId)}/claim`, { userId });
  }

  async unclaim(taskId: string): Promise<void> {
    await this.client.post(`/task/${encodeURIComponent(taskId)}/unclaim`);
  }

  async setAssignee(taskId: string, userId: string | null): Promise<void> {
    await this.client.post(`/task/${encodeURIComponent(taskId)}/assignee`, { userId });
  }

  async setFollowUpDate(taskId: string, followUpDate: IsoDate | null): Promise<void> {
    // PUT /task/{id} overwrites every field and has no revision check: read, change one field, write back at
    // once, and start over when the engine reports a concurrent change.
    const path = `/task/${encodeURIComponent(taskId)}`;
    for (let attempt = 1; ; attempt++) {
      const current = await this.client.get<Record<string, unknown>>(path);
      const body: Record<string, unknown> = {};
      for (const field of TASK_FIELDS_FOR_UPDATE) body[field] = current[field] ?? null;
      body.followUp = followUpDate === null ? null : formatEngineDate(followUpDate);
      if (body.followUp === current.followUp) return;
      try {
        await this.client.put(path, body);
        return;
      } catch (err) {
        if (!isEngineError(err, "retry") || attempt >= 3) throw err;
      }
    }
  }

  /** Runs a write with structured variables, falling back to JSON text when the engine has no Json type. */
  private async withVariables<T>(values: JsonObject, write: (variables: Record<string, TypedValue>) => Promise<T>): Promise<T> {
    try {
      return await write(encodeVariables(values, this.structured));
    } catch (err) {
      if (this.structured === "Json" && hasStructuredValues(values) && refusesStructured(err)) {
        this.structured = "String";
        return write(encodeVariables(values, this.structured));
      }
      throw err;
    }
  }

  async complete(taskId: string, variables: JsonObject): Promise<void> {
    await this.withVariables(variables, (encoded) => this.client.post(`/task/${encodeURIComponent(taskId)}/complete`, { variables: encoded }));
  }

  async startProcess(request: StartProcessRequest): Promise<{ processInstanceId: string }> {
    const started = await this.withVariables(request.variables, (encoded) =>
      this.client.post<{ id: string }>(`/process-definition/${encodeURIComponent(request.processDefinitionId)}/start`, {
        businessKey: request.businessKey ?? undefined,
        variables: encoded,
      }),
    );
    return { processInstanceId: started.id };
  }

  async findInstancesByVariable(name: string, value: string): Promise<string[]> {
    const dtos = await this.client.post<HistoricProcessInstanceDto[]>(
      "/history/process-instance",
      { variables: [{ name, operator: "eq", value }] },
      { maxResults: 100 },
      { read: true },
    );
    return dtos.map((dto) => dto.id);
  }
}

