// The embedded engine's tables (migrations/20261123000300_embedded_engine.ts) on PostgreSQL or PGlite: records
// in and out, the queries the change feeds need, and the one transaction that records an engine step — the
// instance's new state (guarded by its revision), the tasks and external tasks it created or ended, and the
// variable updates — so that a crash never leaves half a step behind.
import type { Knex } from "knex";
import type { IsoDate, JsonObject, JsonValue } from "../../domain/types.ts";
import { openDatabase, type Database } from "../../stores/database.ts";
import { embeddedEngineMigrations, embeddedEngineMigrationsTable } from "../../migrations/embedded-engine.ts";
import type { ProcessInstanceState } from "../../stores/engine/engine-adapter.ts";

export interface DeploymentRecord {
  id: string;
  name: string;
  deploymentTime: IsoDate;
}

export interface ResourceRecord {
  deploymentId: string;
  name: string;
  content: string;
  hash: string;
}

export interface DefinitionRecord {
  id: string;
  key: string;
  version: number;
  name: string | null;
  versionTag: string | null;
  description: string | null;
  deploymentId: string;
  resourceName: string;
  startFormKey: string | null;
  startableInTasklist: boolean;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
  suspended: boolean;
  serializedSource: string;
}

export interface VariableMeta {
  /** The variable instance's id (a new one after a deletion). */
  id: string;
  revision: number;
}

export interface InstanceRecord {
  id: string;
  definitionId: string;
  definitionKey: string;
  businessKey: string | null;
  state: ProcessInstanceState;
  startTime: IsoDate;
  endTime: IsoDate | null;
  startActivityId: string | null;
  deleteReason: string | null;
  variables: JsonObject;
  variableMeta: Record<string, VariableMeta>;
  /** bpmn-engine's saved state while the instance runs; null once it ended. */
  engineState: JsonObject | null;
  revision: number;
}

export type TaskStatus = "open" | "completed" | "deleted";

export interface TaskRecord {
  id: string;
  instanceId: string;
  definitionId: string;
  definitionKey: string;
  executionId: string;
  taskDefinitionKey: string;
  name: string | null;
  description: string | null;
  formKey: string | null;
  assignee: string | null;
  owner: string | null;
  priority: number;
  createTime: IsoDate;
  lastUpdated: IsoDate | null;
  dueDate: IsoDate | null;
  followUpDate: IsoDate | null;
  candidateUsers: string[];
  candidateGroups: string[];
  localVariables: JsonObject;
  suspended: boolean;
  status: TaskStatus;
  endTime: IsoDate | null;
  deleteReason: string | null;
}

export interface ExternalTaskRecord {
  id: string;
  instanceId: string;
  definitionId: string;
  definitionKey: string;
  executionId: string;
  activityId: string;
  topic: string;
  localVariables: JsonObject;
  createTime: IsoDate;
  status: TaskStatus;
  /** Retries left; null before the first failure. */
  retries: number | null;
  retryAt: IsoDate | null;
  lockUntil: IsoDate | null;
  workerId: string | null;
  errorMessage: string | null;
  errorDetails: string | null;
  /** Set when the retries ran out: the task stays until someone resolves the incident. */
  incidentTime: IsoDate | null;
  endTime: IsoDate | null;
}

export interface VariableUpdateRecord {
  id: string;
  time: IsoDate;
  instanceId: string;
  definitionId: string;
  definitionKey: string;
  variableInstanceId: string;
  name: string;
  revision: number;
  kind: "create" | "update" | "delete";
  type: string;
  value: JsonValue;
  taskId: string | null;
  activityInstanceId: string | null;
}

export interface OperationRecord {
  id: string;
  time: IsoDate;
  instanceId: string;
  definitionKey: string;
  operation: "Suspend" | "Activate";
}

/** Everything one engine step changed, written in one transaction. */
export interface StepWrite {
  instance: InstanceRecord;
  /** The revision the step started from; null for a new instance. */
  expectedRevision: number | null;
  tasks: TaskRecord[];
  externalTasks: ExternalTaskRecord[];
  variableUpdates: VariableUpdateRecord[];
  operations?: OperationRecord[];
}

/** Another writer changed the instance since the step read it. */
export class ConcurrentStepError extends Error {
  constructor(instanceId: string) {
    super(`process instance ${instanceId} was changed concurrently`);
    this.name = "ConcurrentStepError";
  }
}

export interface Window {
  firstResult: number;
  maxResults: number;
}

export interface EngineStoreOptions {
  /** postgres://… ; null opens PGlite. */
  databaseUrl: string | null;
  /** PGlite directory; null keeps it in memory. */
  pgliteDir: string | null;
  schema?: string;
}

function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

function parsed<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

// Row mapping ----------------------------------------------------------------------------------------------------------

function definitionOf(row: Record<string, any>): DefinitionRecord {
  return {
    id: row.id,
    key: row.key,
    version: Number(row.version),
    name: row.name ?? null,
    versionTag: row.version_tag ?? null,
    description: row.description ?? null,
    deploymentId: row.deployment_id,
    resourceName: row.resource_name,
    startFormKey: row.start_form_key ?? null,
    startableInTasklist: row.startable_in_tasklist !== false,
    candidateStarterUsers: parsed<string[]>(row.candidate_starter_users) ?? [],
    candidateStarterGroups: parsed<string[]>(row.candidate_starter_groups) ?? [],
    suspended: row.suspended === true,
    serializedSource: row.serialized_source,
  };
}

function definitionRow(record: DefinitionRecord): Record<string, unknown> {
  return {
    id: record.id,
    key: record.key,
    version: record.version,
    name: record.name,
    version_tag: record.versionTag,
    description: record.description,
    deployment_id: record.deploymentId,
    resource_name: record.resourceName,
    start_form_key: record.startFormKey,
    startable_in_tasklist: record.startableInTasklist,
    candidate_starter_users: json(record.candidateStarterUsers),
    candidate_starter_groups: json(record.candidateStarterGroups),
    suspended: record.suspended,
    serialized_source: record.serializedSource,
  };
}

function instanceOf(row: Record<string, any>): InstanceRecord {
  return {
    id: row.id,
    definitionId: row.definition_id,
    definitionKey: row.definition_key,
    businessKey: row.business_key ?? null,
    state: row.state,
    startTime: row.start_time,
    endTime: row.end_time ?? null,
    startActivityId: row.start_activity_id ?? null,
    deleteReason: row.delete_reason ?? null,
    variables: parsed<JsonObject>(row.variables) ?? {},
    variableMeta: parsed<Record<string, VariableMeta>>(row.variable_meta) ?? {},
    engineState: row.engine_state === undefined ? null : parsed<JsonObject | null>(row.engine_state),
    revision: Number(row.revision),
  };
}

function instanceRow(record: InstanceRecord): Record<string, unknown> {
  return {
    id: record.id,
    definition_id: record.definitionId,
    definition_key: record.definitionKey,
    business_key: record.businessKey,
    state: record.state,
    start_time: record.startTime,
    end_time: record.endTime,
    start_activity_id: record.startActivityId,
    delete_reason: record.deleteReason,
    variables: json(record.variables),
    variable_meta: json(record.variableMeta),
    engine_state: record.engineState === null ? null : json(record.engineState),
    revision: record.revision,
  };
}

function taskOf(row: Record<string, any>): TaskRecord {
  return {
    id: row.id,
    instanceId: row.instance_id,
    definitionId: row.definition_id,
    definitionKey: row.definition_key,
    executionId: row.execution_id,
    taskDefinitionKey: row.task_definition_key,
    name: row.name ?? null,
    description: row.description ?? null,
    formKey: row.form_key ?? null,
    assignee: row.assignee ?? null,
    owner: row.owner ?? null,
    priority: Number(row.priority),
    createTime: row.create_time,
    lastUpdated: row.last_updated ?? null,
    dueDate: row.due_date ?? null,
    followUpDate: row.follow_up_date ?? null,
    candidateUsers: parsed<string[]>(row.candidate_users) ?? [],
    candidateGroups: parsed<string[]>(row.candidate_groups) ?? [],
    localVariables: parsed<JsonObject>(row.local_variables) ?? {},
    suspended: row.suspended === true,
    status: row.status,
    endTime: row.end_time ?? null,
    deleteReason: row.delete_reason ?? null,
  };
}

function taskRow(record: TaskRecord): Record<string, unknown> {
  return {
    id: record.id,
    instance_id: record.instanceId,
    definition_id: record.definitionId,
    definition_key: record.definitionKey,
    execution_id: record.executionId,
    task_definition_key: record.taskDefinitionKey,
    name: record.name,
    description: record.description,
    form_key: record.formKey,
    assignee: record.assignee,
    owner: record.owner,
    priority: record.priority,
    create_time: record.createTime,
    last_updated: record.lastUpdated,
    // The open-task feed's change time, as the engine defines it: last update, else creation.
    change_time: record.lastUpdated ?? record.createTime,
    due_date: record.dueDate,
    follow_up_date: record.followUpDate,
    candidate_users: json(record.candidateUsers),
    candidate_groups: json(record.candidateGroups),
    local_variables: json(record.localVariables),
    suspended: record.suspended,
    status: record.status,
    end_time: record.endTime,
    delete_reason: record.deleteReason,
  };
}

function externalTaskOf(row: Record<string, any>): ExternalTaskRecord {
  return {
    id: row.id,
    instanceId: row.instance_id,
    definitionId: row.definition_id,
    definitionKey: row.definition_key,
    executionId: row.execution_id,
    activityId: row.activity_id,
    topic: row.topic,
    localVariables: parsed<JsonObject>(row.local_variables) ?? {},
    createTime: row.create_time,
    status: row.status,
    retries: row.retries === null || row.retries === undefined ? null : Number(row.retries),
    retryAt: row.retry_at ?? null,
    lockUntil: row.lock_until ?? null,
    workerId: row.worker_id ?? null,
    errorMessage: row.error_message ?? null,
    errorDetails: row.error_details ?? null,
    incidentTime: row.incident_time ?? null,
    endTime: row.end_time ?? null,
  };
}

function externalTaskRow(record: ExternalTaskRecord): Record<string, unknown> {
  return {
    id: record.id,
    instance_id: record.instanceId,
    definition_id: record.definitionId,
    definition_key: record.definitionKey,
    execution_id: record.executionId,
    activity_id: record.activityId,
    topic: record.topic,
    local_variables: json(record.localVariables),
    create_time: record.createTime,
    status: record.status,
    retries: record.retries,
    retry_at: record.retryAt,
    lock_until: record.lockUntil,
    worker_id: record.workerId,
    error_message: record.errorMessage,
    error_details: record.errorDetails,
    incident_time: record.incidentTime,
    end_time: record.endTime,
  };
}

function variableUpdateOf(row: Record<string, any>): VariableUpdateRecord {
  return {
    id: row.id,
    time: row.time,
    instanceId: row.instance_id,
    definitionId: row.definition_id,
    definitionKey: row.definition_key,
    variableInstanceId: row.variable_instance_id,
    name: row.name,
    revision: Number(row.revision),
    kind: row.kind,
    type: row.type,
    value: (parsed<{ value?: JsonValue } | null>(row.value)?.value ?? null) as JsonValue,
    taskId: row.task_id ?? null,
    activityInstanceId: row.activity_instance_id ?? null,
  };
}

// The store ----------------------------------------------------------------------------------------------------------------

export class EngineStore {
  private readonly database: Database;
  private readonly knex: Knex;

  private constructor(database: Database, knex: Knex) {
    this.database = database;
    this.knex = knex;
  }

  static async open(options: EngineStoreOptions): Promise<EngineStore> {
    const database = await openDatabase({
      url: options.databaseUrl,
      pgliteDir: options.pgliteDir,
      schema: options.schema ?? "engine",
      migrations: embeddedEngineMigrations,
      migrationsTable: embeddedEngineMigrationsTable,
      poolMax: 4,
    });
    return new EngineStore(database, database.knex);
  }

  get embedded(): boolean {
    return this.database.embedded;
  }

  close(): Promise<void> {
    return this.database.close();
  }

  private page<T extends Knex.QueryBuilder>(query: T, window: Window): T {
    return query.offset(window.firstResult).limit(window.maxResults) as T;
  }

  // Deployments and definitions -------------------------------------------------------------------------------------------

  /** The content hash of the newest resource of that name among deployments of that name, or null. */
  async latestResourceHash(deploymentName: string, resourceName: string): Promise<string | null> {
    const row = await this.knex("engine_resources as r")
      .join("engine_deployments as d", "d.id", "r.deployment_id")
      .where({ "d.name": deploymentName, "r.name": resourceName })
      .orderBy("d.deployment_time", "desc")
      .orderBy("d.id", "desc")
      .first("r.hash");
    return row?.hash ?? null;
  }

  /** Records a deployment with its resources and definitions; versions are numbered inside the transaction. */
  async insertDeployment(
    deployment: DeploymentRecord,
    resources: ResourceRecord[],
    definitions: (Omit<DefinitionRecord, "id" | "version"> & { id: (version: number) => string })[],
  ): Promise<DefinitionRecord[]> {
    return this.knex.transaction(async (trx) => {
      await trx("engine_deployments").insert({ id: deployment.id, name: deployment.name, deployment_time: deployment.deploymentTime });
      for (const resource of resources) {
        await trx("engine_resources").insert({ deployment_id: resource.deploymentId, name: resource.name, content: resource.content, hash: resource.hash });
      }
      const created: DefinitionRecord[] = [];
      for (const definition of definitions) {
        const row = await trx("engine_definitions").where({ key: definition.key }).max({ version: "version" }).first();
        const version = Number(row?.version ?? 0) + 1;
        const record: DefinitionRecord = { ...definition, id: definition.id(version), version };
        await trx("engine_definitions").insert(definitionRow(record));
        created.push(record);
      }
      return created;
    });
  }

  async resource(deploymentId: string, name: string): Promise<ResourceRecord | null> {
    const row = await this.knex("engine_resources").where({ deployment_id: deploymentId, name }).first();
    return row ? { deploymentId: row.deployment_id, name: row.name, content: row.content, hash: row.hash } : null;
  }

  async deploymentsSince(since: IsoDate | null, window: Window): Promise<DeploymentRecord[]> {
    const query = this.knex("engine_deployments").orderBy("deployment_time").orderBy("id");
    if (since) query.where("deployment_time", ">=", since);
    const rows = await this.page(query, window);
    return rows.map((row: any) => ({ id: row.id, name: row.name, deploymentTime: row.deployment_time }));
  }

  async definition(id: string): Promise<DefinitionRecord | null> {
    const row = await this.knex("engine_definitions").where({ id }).first();
    return row ? definitionOf(row) : null;
  }

  async latestDefinition(key: string): Promise<DefinitionRecord | null> {
    const row = await this.knex("engine_definitions").where({ key }).orderBy("version", "desc").first();
    return row ? definitionOf(row) : null;
  }

  async definitions(filter: { deploymentId?: string | null; latestVersionOnly?: boolean; keys?: readonly string[] | null }, window: Window): Promise<DefinitionRecord[]> {
    const query = this.knex("engine_definitions as d").select("d.*").orderBy("d.id");
    if (filter.deploymentId) query.where("d.deployment_id", filter.deploymentId);
    if (filter.keys) query.whereIn("d.key", filter.keys as string[]);
    if (filter.latestVersionOnly) {
      query.whereRaw("d.version = (SELECT max(v.version) FROM engine_definitions v WHERE v.key = d.key)");
    }
    const rows = await this.page(query, window);
    return rows.map(definitionOf);
  }

  async setDefinitionSuspended(id: string, suspended: boolean): Promise<boolean> {
    return (await this.knex("engine_definitions").where({ id }).update({ suspended })) > 0;
  }

  // Instances -----------------------------------------------------------------------------------------------------------------

  async instance(id: string): Promise<InstanceRecord | null> {
    const row = await this.knex("engine_instances").where({ id }).first();
    return row ? instanceOf(row) : null;
  }

  /** Instances without their bpmn-engine state (listings). */
  async instances(ids: readonly string[]): Promise<InstanceRecord[]> {
    const result: InstanceRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.instanceListing().whereIn("id", ids.slice(i, i + 500) as string[]);
      result.push(...rows.map(instanceOf));
    }
    return result;
  }

  private instanceListing(): Knex.QueryBuilder {
    return this.knex("engine_instances").select(
      "id",
      "definition_id",
      "definition_key",
      "business_key",
      "state",
      "start_time",
      "end_time",
      "start_activity_id",
      "delete_reason",
      "variables",
      "variable_meta",
      "revision",
    );
  }

  async instancesStartedSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().orderBy("start_time").orderBy("id");
    if (since) query.where("start_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys as string[]);
    return (await this.page(query, window)).map(instanceOf);
  }

  async instancesFinishedSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().whereNotNull("end_time").orderBy("end_time").orderBy("id");
    if (since) query.where("end_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys as string[]);
    return (await this.page(query, window)).map(instanceOf);
  }

  async runningInstances(keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().whereNull("end_time").orderBy("id");
    if (keys) query.whereIn("definition_key", keys as string[]);
    return (await this.page(query, window)).map(instanceOf);
  }

  async instanceIdsByVariable(name: string, value: string, limit = 100): Promise<string[]> {
    const rows = await this.knex("engine_instances").whereRaw("variables ->> ? = ?", [name, value]).orderBy("start_time").limit(limit).select("id");
    return rows.map((row: any) => row.id);
  }

  /** Definition names by id (instance listings show them). */
  async definitionNames(ids: readonly string[]): Promise<Map<string, string | null>> {
    const rows = ids.length === 0 ? [] : await this.knex("engine_definitions").whereIn("id", [...new Set(ids)]).select("id", "name");
    return new Map(rows.map((row: any) => [row.id, row.name ?? null]));
  }

  // Tasks -----------------------------------------------------------------------------------------------------------------------

  async task(id: string): Promise<TaskRecord | null> {
    const row = await this.knex("engine_tasks").where({ id }).first();
    return row ? taskOf(row) : null;
  }

  async tasksOfInstance(instanceId: string, status?: TaskStatus): Promise<TaskRecord[]> {
    const query = this.knex("engine_tasks").where({ instance_id: instanceId }).orderBy("id");
    if (status) query.where({ status });
    return (await query).map(taskOf);
  }

  async openTasks(filter: { changedSince?: IsoDate | null; instanceId?: string | null; keys?: readonly string[] | null }, window: Window): Promise<TaskRecord[]> {
    const query = this.knex("engine_tasks").where({ status: "open" }).orderBy("id");
    if (filter.changedSince) query.where("change_time", ">=", filter.changedSince);
    if (filter.instanceId) query.where({ instance_id: filter.instanceId });
    if (filter.keys) query.whereIn("definition_key", filter.keys as string[]);
    return (await this.page(query, window)).map(taskOf);
  }

  async finishedTasksSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<TaskRecord[]> {
    const query = this.knex("engine_tasks").whereNot({ status: "open" }).orderBy("end_time").orderBy("id");
    if (since) query.where("end_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys as string[]);
    return (await this.page(query, window)).map(taskOf);
  }

  /** Writes one open task's changed attributes (claim, follow-up date, …). */
  async updateTask(record: TaskRecord): Promise<void> {
    await this.knex("engine_tasks").where({ id: record.id }).update(taskRow(record));
  }

  // External tasks ---------------------------------------------------------------------------------------------------------------

  async externalTask(id: string): Promise<ExternalTaskRecord | null> {
    const row = await this.knex("engine_external_tasks").where({ id }).first();
    return row ? externalTaskOf(row) : null;
  }

  async externalTasksOfInstance(instanceId: string, status?: TaskStatus): Promise<ExternalTaskRecord[]> {
    const query = this.knex("engine_external_tasks").where({ instance_id: instanceId }).orderBy("id");
    if (status) query.where({ status });
    return (await query).map(externalTaskOf);
  }

  /** Open external tasks of a topic that may be worked on now: not locked, not waiting for a retry, no incident, instance active. */
  async dueExternalTasks(topic: string, keys: readonly string[] | null, now: IsoDate, exclude: readonly string[], limit: number): Promise<ExternalTaskRecord[]> {
    const query = this.knex("engine_external_tasks as t")
      .join("engine_instances as i", "i.id", "t.instance_id")
      .where("t.status", "open")
      .where("i.state", "ACTIVE")
      .where("t.topic", topic)
      .whereNull("t.incident_time")
      .where((q) => q.whereNull("t.retry_at").orWhere("t.retry_at", "<=", now))
      .where((q) => q.whereNull("t.lock_until").orWhere("t.lock_until", "<=", now))
      .orderBy("t.create_time")
      .orderBy("t.id")
      .limit(limit)
      .select("t.*");
    if (keys) query.whereIn("t.definition_key", keys as string[]);
    if (exclude.length > 0) query.whereNotIn("t.id", exclude as string[]);
    return (await query).map(externalTaskOf);
  }

  /** Locks an external task for a worker, when nobody else holds it; false when it was taken meanwhile. */
  async lockExternalTask(id: string, workerId: string, now: IsoDate, until: IsoDate): Promise<boolean> {
    const count = await this.knex("engine_external_tasks")
      .where({ id, status: "open" })
      .whereNull("incident_time")
      .where((q) => q.whereNull("lock_until").orWhere("lock_until", "<=", now))
      .update({ lock_until: until, worker_id: workerId });
    return count > 0;
  }

  async extendExternalTaskLock(id: string, workerId: string, until: IsoDate): Promise<boolean> {
    return (await this.knex("engine_external_tasks").where({ id, status: "open", worker_id: workerId }).update({ lock_until: until })) > 0;
  }

  /** Records a failed attempt: fewer retries, when to try again, and the incident when none are left. */
  async failExternalTask(id: string, failure: { retries: number; retryAt: IsoDate | null; errorMessage: string; errorDetails: string | null; incidentTime: IsoDate | null }): Promise<void> {
    await this.knex("engine_external_tasks").where({ id, status: "open" }).update({
      retries: failure.retries,
      retry_at: failure.retryAt,
      error_message: failure.errorMessage,
      error_details: failure.errorDetails,
      incident_time: failure.incidentTime,
      lock_until: null,
    });
  }

  /** Hands back the locks of workers that are gone (the embedded engine is its tables' only user). */
  async releaseExternalTaskLocks(exceptWorker: string): Promise<number> {
    return this.knex("engine_external_tasks").where({ status: "open" }).whereNotNull("lock_until").whereNot({ worker_id: exceptWorker }).update({ lock_until: null });
  }

  /** Gives an incident's task new retries (an operator resolved its cause). */
  async retryExternalTask(id: string, retries: number): Promise<boolean> {
    return (await this.knex("engine_external_tasks").where({ id, status: "open" }).update({ retries, retry_at: null, incident_time: null, lock_until: null })) > 0;
  }

  async externalTaskCounts(): Promise<{ open: number; locked: number; incidents: number; completed: number }> {
    const row = await this.knex("engine_external_tasks")
      .select(
        this.knex.raw("count(*) FILTER (WHERE status = 'open') AS open"),
        this.knex.raw("count(*) FILTER (WHERE status = 'open' AND lock_until IS NOT NULL) AS locked"),
        this.knex.raw("count(*) FILTER (WHERE status = 'open' AND incident_time IS NOT NULL) AS incidents"),
        this.knex.raw("count(*) FILTER (WHERE status = 'completed') AS completed"),
      )
      .first();
    return { open: Number(row?.open ?? 0), locked: Number(row?.locked ?? 0), incidents: Number(row?.incidents ?? 0), completed: Number(row?.completed ?? 0) };
  }

  async incidents(limit = 50): Promise<ExternalTaskRecord[]> {
    const rows = await this.knex("engine_external_tasks").where({ status: "open" }).whereNotNull("incident_time").orderBy("incident_time", "desc").limit(limit);
    return rows.map(externalTaskOf);
  }

  // History --------------------------------------------------------------------------------------------------------------------

  async variableUpdatesSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<VariableUpdateRecord[]> {
    const query = this.knex("engine_variable_updates").orderBy("time").orderBy("seq");
    if (since) query.where("time", ">=", since);
    if (keys) query.whereIn("definition_key", keys as string[]);
    return (await this.page(query, window)).map(variableUpdateOf);
  }

  async operationsSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<OperationRecord[]> {
    const query = this.knex("engine_operations").orderBy("time").orderBy("id");
    if (since) query.where("time", ">=", since);
    if (keys) query.whereIn("definition_key", keys as string[]);
    const rows = await this.page(query, window);
    return rows.map((row: any) => ({ id: row.id, time: row.time, instanceId: row.instance_id, definitionKey: row.definition_key, operation: row.operation }));
  }

  /** The newest value of a time column (optionally among some process keys). */
  async newest(table: string, column: string, filter: { keys?: readonly string[] | null; where?: Record<string, unknown>; whereNot?: Record<string, unknown> } = {}): Promise<IsoDate | null> {
    const query = this.knex(table).max({ newest: column });
    if (filter.where) query.where(filter.where);
    if (filter.whereNot) query.whereNot(filter.whereNot);
    if (filter.keys) query.whereIn("definition_key", filter.keys as string[]);
    const row = await query.first();
    return (row?.newest as string | null | undefined) ?? null;
  }

  // Steps --------------------------------------------------------------------------------------------------------------------------

  /** Records one engine step, all or nothing; ConcurrentStepError when the instance moved on meanwhile. */
  async writeStep(step: StepWrite): Promise<void> {
    await this.knex.transaction(async (trx) => {
      if (step.expectedRevision === null) {
        await trx("engine_instances").insert(instanceRow(step.instance));
      } else {
        const count = await trx("engine_instances").where({ id: step.instance.id, revision: step.expectedRevision }).update(instanceRow(step.instance));
        if (count === 0) throw new ConcurrentStepError(step.instance.id);
      }
      for (const task of step.tasks) await trx("engine_tasks").insert(taskRow(task)).onConflict("id").merge();
      for (const task of step.externalTasks) await trx("engine_external_tasks").insert(externalTaskRow(task)).onConflict("id").merge();
      if (step.variableUpdates.length > 0) {
        await trx("engine_variable_updates").insert(
          step.variableUpdates.map((update) => ({
            id: update.id,
            time: update.time,
            instance_id: update.instanceId,
            definition_id: update.definitionId,
            definition_key: update.definitionKey,
            variable_instance_id: update.variableInstanceId,
            name: update.name,
            revision: update.revision,
            kind: update.kind,
            type: update.type,
            // Wrapped: a bare JSON string would be indistinguishable from JSON text when read back.
            value: json({ value: update.value }),
            task_id: update.taskId,
            activity_instance_id: update.activityInstanceId,
          })),
        );
      }
      for (const operation of step.operations ?? []) {
        await trx("engine_operations").insert({ id: operation.id, time: operation.time, instance_id: operation.instanceId, definition_key: operation.definitionKey, operation: operation.operation });
      }
    });
  }
}
