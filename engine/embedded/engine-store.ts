// The embedded engine's tables (migrations/20261123000300_embedded_engine.ts) on PostgreSQL or PGlite: records
// in and out, the queries the change feeds need, and the one transaction that records an engine step — the
// instance's new state (guarded by its revision), the tasks and external tasks it created or ended, and the
// variable updates — so that a crash never leaves half a step behind.
import type { Knex } from "knex";
import type { IsoDate, JsonObject, JsonValue } from "../../domain/types.ts";
import { DatabaseStore, openDatabase, type Database } from "../../stores/database.ts";
import { embeddedEngineMigrations, embeddedEngineMigrationsTable } from "../../migrations/embedded-engine.ts";
import type { ProcessInstanceState } from "../connector/engine-adapter.ts";

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


// Columns ----------------------------------------------------------------------------------------------------------------
// Each record's fields with their columns, named as the migration names them: the field's name in snake_case. Reading,
// knex selects the columns under the fields' names (`select({ instanceId: "instance_id" })`) and the pg driver (and
// PGlite) parses jsonb, integers and booleans, so a row is the record as it comes; writing, the same map names the
// columns.

/** A record's columns by field. */
type Columns<R> = { readonly [K in keyof R]-?: string };

/** The fields given, when they are all of the record's; otherwise a type that names the missing ones. */
type AllFields<R, F extends readonly (keyof R)[]> = [Exclude<keyof R, F[number]>] extends [never] ? F : { missing: Exclude<keyof R, F[number]> };

/** The columns of a record's fields, every one of which is listed (the compiler says which are not). */
function columnsOf<R>() {
  return <const F extends readonly (keyof R & string)[]>(fields: F & AllFields<R, F>): Columns<R> =>
    Object.fromEntries(fields.map((field) => [field, field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)])) as Columns<R>;
}

const DEPLOYMENT_COLUMNS = columnsOf<DeploymentRecord>()(["id", "name", "deploymentTime"]);

const RESOURCE_COLUMNS = columnsOf<ResourceRecord>()(["deploymentId", "name", "content", "hash"]);

const DEFINITION_COLUMNS = columnsOf<DefinitionRecord>()([
  "id", "key", "version", "name", "versionTag", "description", "deploymentId", "resourceName", "startFormKey", "startableInTasklist", "candidateStarterUsers", "candidateStarterGroups",
  "suspended", "serializedSource",
]);

const INSTANCE_COLUMNS = columnsOf<InstanceRecord>()([
  "id", "definitionId", "definitionKey", "businessKey", "state", "startTime", "endTime", "startActivityId", "deleteReason", "variables", "variableMeta", "engineState", "revision",
]);

const TASK_COLUMNS = columnsOf<TaskRecord>()([
  "id", "instanceId", "definitionId", "definitionKey", "executionId", "taskDefinitionKey", "name", "description", "formKey", "assignee", "owner", "priority", "createTime", "lastUpdated",
  "dueDate", "followUpDate", "candidateUsers", "candidateGroups", "localVariables", "suspended", "status", "endTime", "deleteReason",
]);

const EXTERNAL_TASK_COLUMNS = columnsOf<ExternalTaskRecord>()([
  "id", "instanceId", "definitionId", "definitionKey", "executionId", "activityId", "topic", "localVariables", "createTime", "status", "retries", "retryAt", "lockUntil", "workerId",
  "errorMessage", "errorDetails", "incidentTime", "endTime",
]);

const VARIABLE_UPDATE_COLUMNS = columnsOf<VariableUpdateRecord>()([
  "id", "time", "instanceId", "definitionId", "definitionKey", "variableInstanceId", "name", "revision", "kind", "type", "value", "taskId", "activityInstanceId",
]);

const OPERATION_COLUMNS = columnsOf<OperationRecord>()(["id", "time", "instanceId", "definitionKey", "operation"]);

/** The columns of a table under an alias (`t.instance_id`), for joins. */
function qualified<C extends Record<string, string>>(columns: C, alias: string): C {
  return Object.fromEntries(Object.entries(columns).map(([field, column]) => [field, `${alias}.${column}`])) as C;
}

/** The columns but one (a listing that leaves a column out, a column read otherwise). */
function without<C extends Record<string, string>, K extends keyof C>(columns: C, field: K): Omit<C, K> {
  const { [field]: _left, ...rest } = columns;
  return rest;
}

/**
 * A record as a row to write. JSON goes as text: the pg driver would write an array as a PostgreSQL array (and an
 * object as JSON anyway).
 */
function rowOf<R extends object>(columns: Columns<R>, record: R): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const field of Object.keys(columns) as (keyof R & string)[]) {
    const value = record[field];
    row[columns[field]] = value !== null && typeof value === "object" ? JSON.stringify(value) : value;
  }
  return row;
}

// The store ----------------------------------------------------------------------------------------------------------------

export class EngineStore extends DatabaseStore {
  private constructor(database: Database) {
    super(database);
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
    return new EngineStore(database);
  }


  private page<T extends Knex.QueryBuilder>(query: T, window: Window): T {
    return query.offset(window.firstResult).limit(window.maxResults) as T;
  }

  private definitionRows(): Knex.QueryBuilder {
    return this.knex("engine_definitions").select(DEFINITION_COLUMNS);
  }

  private instanceRows(): Knex.QueryBuilder {
    return this.knex("engine_instances").select(INSTANCE_COLUMNS);
  }

  /** Instances without their bpmn-engine state (listings). */
  private instanceListing(): Knex.QueryBuilder {
    return this.knex("engine_instances").select(without(INSTANCE_COLUMNS, "engineState"), this.knex.raw("NULL AS ??", ["engineState"]));
  }

  private taskRows(): Knex.QueryBuilder {
    return this.knex("engine_tasks").select(TASK_COLUMNS);
  }

  private externalTaskRows(): Knex.QueryBuilder {
    return this.knex("engine_external_tasks").select(EXTERNAL_TASK_COLUMNS);
  }

  // Deployments and definitions -------------------------------------------------------------------------------------------

  /** The content hash of the newest resource of that name among deployments of that name, or null. */
  async latestResourceHash(deploymentName: string, resourceName: string): Promise<string | null> {
    const row: { hash: string } | undefined = await this.knex("engine_resources as r")
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
      await trx("engine_deployments").insert(rowOf(DEPLOYMENT_COLUMNS, deployment));
      for (const resource of resources) await trx("engine_resources").insert(rowOf(RESOURCE_COLUMNS, resource));
      const created: DefinitionRecord[] = [];
      for (const definition of definitions) {
        const row: { version?: number | null } | undefined = await trx("engine_definitions").where({ key: definition.key }).max({ version: "version" }).first();
        const version = (row?.version ?? 0) + 1;
        const record: DefinitionRecord = { ...definition, id: definition.id(version), version };
        await trx("engine_definitions").insert(rowOf(DEFINITION_COLUMNS, record));
        created.push(record);
      }
      return created;
    });
  }

  async resource(deploymentId: string, name: string): Promise<ResourceRecord | null> {
    return (await this.knex("engine_resources").select(RESOURCE_COLUMNS).where({ deployment_id: deploymentId, name }).first()) ?? null;
  }

  async deploymentsSince(since: IsoDate | null, window: Window): Promise<DeploymentRecord[]> {
    const query = this.knex("engine_deployments").select(DEPLOYMENT_COLUMNS).orderBy("deployment_time").orderBy("id");
    if (since) query.where("deployment_time", ">=", since);
    return this.page(query, window);
  }

  async definition(id: string): Promise<DefinitionRecord | null> {
    return (await this.definitionRows().where({ id }).first()) ?? null;
  }

  async latestDefinition(key: string): Promise<DefinitionRecord | null> {
    return (await this.definitionRows().where({ key }).orderBy("version", "desc").first()) ?? null;
  }

  async definitions(filter: { deploymentId?: string | null; latestVersionOnly?: boolean; keys?: readonly string[] | null }, window: Window): Promise<DefinitionRecord[]> {
    const query = this.knex("engine_definitions as d").select(qualified(DEFINITION_COLUMNS, "d")).orderBy("d.id");
    if (filter.deploymentId) query.where("d.deployment_id", filter.deploymentId);
    if (filter.keys) query.whereIn("d.key", filter.keys);
    if (filter.latestVersionOnly) {
      query.whereRaw("d.version = (SELECT max(v.version) FROM engine_definitions v WHERE v.key = d.key)");
    }
    return this.page(query, window);
  }

  async setDefinitionSuspended(id: string, suspended: boolean): Promise<boolean> {
    return (await this.knex("engine_definitions").where({ id }).update({ suspended })) > 0;
  }

  // Instances -----------------------------------------------------------------------------------------------------------------

  async instance(id: string): Promise<InstanceRecord | null> {
    return (await this.instanceRows().where({ id }).first()) ?? null;
  }

  /** Instances without their bpmn-engine state (listings). */
  async instances(ids: readonly string[]): Promise<InstanceRecord[]> {
    const result: InstanceRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows: InstanceRecord[] = await this.instanceListing().whereIn("id", ids.slice(i, i + 500));
      result.push(...rows);
    }
    return result;
  }

  async instancesStartedSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().orderBy("start_time").orderBy("id");
    if (since) query.where("start_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  async instancesFinishedSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().whereNotNull("end_time").orderBy("end_time").orderBy("id");
    if (since) query.where("end_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  async runningInstances(keys: readonly string[] | null | undefined, window: Window): Promise<InstanceRecord[]> {
    const query = this.instanceListing().whereNull("end_time").orderBy("id");
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  async instanceIdsByVariable(name: string, value: string, limit = 100): Promise<string[]> {
    return this.knex("engine_instances").whereRaw("variables ->> ? = ?", [name, value]).orderBy("start_time").limit(limit).pluck("id");
  }

  /** Definition names by id (instance listings show them). */
  async definitionNames(ids: readonly string[]): Promise<Map<string, string | null>> {
    const rows: { id: string; name: string | null }[] = ids.length === 0 ? [] : await this.knex("engine_definitions").whereIn("id", [...new Set(ids)]).select("id", "name");
    return new Map(rows.map((row) => [row.id, row.name]));
  }

  // Tasks -----------------------------------------------------------------------------------------------------------------------

  async task(id: string): Promise<TaskRecord | null> {
    return (await this.taskRows().where({ id }).first()) ?? null;
  }

  async tasksOfInstance(instanceId: string, status?: TaskStatus): Promise<TaskRecord[]> {
    const query = this.taskRows().where({ instance_id: instanceId }).orderBy("id");
    if (status) query.where({ status });
    return query;
  }

  async openTasks(filter: { changedSince?: IsoDate | null; instanceId?: string | null; keys?: readonly string[] | null }, window: Window): Promise<TaskRecord[]> {
    const query = this.taskRows().where({ status: "open" }).orderBy("id");
    if (filter.changedSince) query.where("change_time", ">=", filter.changedSince);
    if (filter.instanceId) query.where({ instance_id: filter.instanceId });
    if (filter.keys) query.whereIn("definition_key", filter.keys);
    return this.page(query, window);
  }

  async finishedTasksSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<TaskRecord[]> {
    const query = this.taskRows().whereNot({ status: "open" }).orderBy("end_time").orderBy("id");
    if (since) query.where("end_time", ">=", since);
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  /** A task as a row, with the open-task feed's change time as the engine defines it: last update, else creation. */
  private taskRow(record: TaskRecord): Record<string, unknown> {
    return { ...rowOf(TASK_COLUMNS, record), change_time: record.lastUpdated ?? record.createTime };
  }

  /** Writes one open task's changed attributes (claim, follow-up date, …). */
  async updateTask(record: TaskRecord): Promise<void> {
    await this.knex("engine_tasks").where({ id: record.id }).update(this.taskRow(record));
  }

  // External tasks ---------------------------------------------------------------------------------------------------------------

  async externalTask(id: string): Promise<ExternalTaskRecord | null> {
    return (await this.externalTaskRows().where({ id }).first()) ?? null;
  }

  async externalTasksOfInstance(instanceId: string, status?: TaskStatus): Promise<ExternalTaskRecord[]> {
    const query = this.externalTaskRows().where({ instance_id: instanceId }).orderBy("id");
    if (status) query.where({ status });
    return query;
  }

  /** Open external tasks of a topic that may be worked on now: not locked, not waiting for a retry, no incident, instance active. */
  async dueExternalTasks(topic: string, keys: readonly string[] | null, now: IsoDate, exclude: readonly string[], limit: number): Promise<ExternalTaskRecord[]> {
    const query = this.knex("engine_external_tasks as t")
      .select(qualified(EXTERNAL_TASK_COLUMNS, "t"))
      .join("engine_instances as i", "i.id", "t.instance_id")
      .where("t.status", "open")
      .where("i.state", "ACTIVE")
      .where("t.topic", topic)
      .whereNull("t.incident_time")
      .where((q) => q.whereNull("t.retry_at").orWhere("t.retry_at", "<=", now))
      .where((q) => q.whereNull("t.lock_until").orWhere("t.lock_until", "<=", now))
      .orderBy("t.create_time")
      .orderBy("t.id")
      .limit(limit);
    if (keys) query.whereIn("t.definition_key", keys);
    if (exclude.length > 0) query.whereNotIn("t.id", exclude);
    return query;
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
    // count(*) is a bigint, which the driver gives as text: cast to integer in SQL.
    const row: { open: number; locked: number; incidents: number; completed: number } | undefined = await this.knex("engine_external_tasks")
      .select(
        this.knex.raw("(count(*) FILTER (WHERE status = 'open'))::integer AS open"),
        this.knex.raw("(count(*) FILTER (WHERE status = 'open' AND lock_until IS NOT NULL))::integer AS locked"),
        this.knex.raw("(count(*) FILTER (WHERE status = 'open' AND incident_time IS NOT NULL))::integer AS incidents"),
        this.knex.raw("(count(*) FILTER (WHERE status = 'completed'))::integer AS completed"),
      )
      .first();
    return row ?? { open: 0, locked: 0, incidents: 0, completed: 0 };
  }

  async incidents(limit = 50): Promise<ExternalTaskRecord[]> {
    return this.externalTaskRows().where({ status: "open" }).whereNotNull("incident_time").orderBy("incident_time", "desc").limit(limit);
  }

  // History --------------------------------------------------------------------------------------------------------------------

  async variableUpdatesSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<VariableUpdateRecord[]> {
    // The value is stored wrapped (see writeStep): read back what it wraps.
    const query = this.knex("engine_variable_updates")
      .select(without(VARIABLE_UPDATE_COLUMNS, "value"), this.knex.raw("?? -> 'value' AS ??", [VARIABLE_UPDATE_COLUMNS.value, "value"]))
      .orderBy("time")
      .orderBy("seq");
    if (since) query.where("time", ">=", since);
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  async operationsSince(since: IsoDate | null, keys: readonly string[] | null | undefined, window: Window): Promise<OperationRecord[]> {
    const query = this.knex("engine_operations").select(OPERATION_COLUMNS).orderBy("time").orderBy("id");
    if (since) query.where("time", ">=", since);
    if (keys) query.whereIn("definition_key", keys);
    return this.page(query, window);
  }

  /** The newest value of a time column (optionally among some process keys). */
  async newest(table: string, column: string, filter: { keys?: readonly string[] | null; where?: Record<string, unknown>; whereNot?: Record<string, unknown> } = {}): Promise<IsoDate | null> {
    const query = this.knex(table).max({ newest: column });
    if (filter.where) query.where(filter.where);
    if (filter.whereNot) query.whereNot(filter.whereNot);
    if (filter.keys) query.whereIn("definition_key", filter.keys);
    const row: { newest?: IsoDate | null } | undefined = await query.first();
    return row?.newest ?? null;
  }

  // Steps --------------------------------------------------------------------------------------------------------------------------

  /** Records one engine step, all or nothing; ConcurrentStepError when the instance moved on meanwhile. */
  async writeStep(step: StepWrite): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const instance = rowOf(INSTANCE_COLUMNS, step.instance);
      if (step.expectedRevision === null) {
        await trx("engine_instances").insert(instance);
      } else {
        const count = await trx("engine_instances").where({ id: step.instance.id, revision: step.expectedRevision }).update(instance);
        if (count === 0) throw new ConcurrentStepError(step.instance.id);
      }
      for (const task of step.tasks) await trx("engine_tasks").insert(this.taskRow(task)).onConflict("id").merge();
      for (const task of step.externalTasks) await trx("engine_external_tasks").insert(rowOf(EXTERNAL_TASK_COLUMNS, task)).onConflict("id").merge();
      if (step.variableUpdates.length > 0) {
        // Wrapped: a bare JSON string would be indistinguishable from JSON text when read back.
        await trx("engine_variable_updates").insert(step.variableUpdates.map((update) => rowOf(VARIABLE_UPDATE_COLUMNS, { ...update, value: { value: update.value } })));
      }
      for (const operation of step.operations ?? []) await trx("engine_operations").insert(rowOf(OPERATION_COLUMNS, operation));
    });
  }
}
