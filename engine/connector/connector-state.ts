// The engine connector's persisted state (tables of migrations/20261123000100_engine_connector.ts), for one
// application: feed watermarks and their de-duplication windows, task shadows (the snapshot the task pool was
// last told, with the pool's stream version), known process definitions and instances, performed interaction
// events, markers, and the polling lease. It lets a restarted connector resume where it stopped: no replay from
// the beginning, no gap. PostgreSQL or PGlite through stores/database.ts.
import type { TaskSnapshot } from "../../domain/task.ts";
import type { IsoDate } from "../../domain/types.ts";
import { DatabaseStore, openDatabase, type Database } from "../../stores/database.ts";
import { engineConnectorMigrations, engineConnectorMigrationsTable } from "../../migrations/engine-connector.ts";

export type TaskShadowStatus = "open" | "completed" | "deleted";

export interface TaskShadow {
  taskId: string;
  status: TaskShadowStatus;
  processInstanceId: string | null;
  snapshot: TaskSnapshot;
  /** The version of the pool's `task-<id>` stream after the connector's last command. */
  streamVersion: number;
  /** The engine's change time of the task when it was last looked at (lastUpdated, else created). */
  engineMarker: string | null;
}

export type InstanceShadowState = "RUNNING" | "SUSPENDED" | "FINISHED" | "CANCELLED";

export interface InstanceShadow {
  instanceId: string;
  state: InstanceShadowState;
  snapshot: Record<string, unknown>;
}

export interface FeedState {
  feed: string;
  watermark: IsoDate | null;
  bootstrapped: boolean;
}

export interface InteractionRecord {
  eventId: string;
  eventType: string;
  outcome: string;
  detail: Record<string, unknown>;
}

/** A row of `connector_tasks` as the driver returns it (a bigint may come back as a string). */
interface TaskRow {
  task_id: string;
  status: TaskShadowStatus;
  process_instance_id: string | null;
  snapshot: unknown;
  stream_version: number | string;
  engine_marker: string | null;
}

export interface ConnectorStateOptions {
  applicationName: string;
  /** postgres://… ; null opens PGlite. */
  databaseUrl: string | null;
  /** PGlite directory; null keeps it in memory. */
  pgliteDir: string | null;
  schema?: string;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

function parsed<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

export class ConnectorState extends DatabaseStore {
  readonly applicationName: string;

  private constructor(applicationName: string, database: Database) {
    super(database);
    this.applicationName = applicationName;
  }

  static async open(options: ConnectorStateOptions): Promise<ConnectorState> {
    const database = await openDatabase({
      url: options.databaseUrl,
      pgliteDir: options.pgliteDir,
      schema: options.schema ?? "connector",
      migrations: engineConnectorMigrations,
      migrationsTable: engineConnectorMigrationsTable,
      poolMax: 4,
    });
    return new ConnectorState(options.applicationName, database);
  }


  private get app() {
    return { application_name: this.applicationName };
  }

  // Feeds ----------------------------------------------------------------------------------------------------------

  async feeds(): Promise<FeedState[]> {
    const rows = await this.knex("connector_feeds").where(this.app).orderBy("feed");
    return rows.map((row) => ({ feed: row.feed, watermark: row.watermark ?? null, bootstrapped: row.bootstrapped === true }));
  }

  async feed(feed: string): Promise<FeedState> {
    const row = await this.knex("connector_feeds").where({ ...this.app, feed }).first();
    return { feed, watermark: row?.watermark ?? null, bootstrapped: row?.bootstrapped === true };
  }

  async saveFeed(state: FeedState): Promise<void> {
    await this.knex("connector_feeds")
      .insert({ ...this.app, feed: state.feed, watermark: state.watermark, bootstrapped: state.bootstrapped, updated_at: this.knex.fn.now() })
      .onConflict(["application_name", "feed"])
      .merge();
  }

  /** The keys among `keys` that were handled already (within the de-duplication window). */
  async seenKeys(feed: string, keys: readonly string[]): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < keys.length; i += 1000) {
      const rows = await this.knex("connector_seen").where({ ...this.app, feed }).whereIn("row_key", keys.slice(i, i + 1000)).select("row_key");
      for (const row of rows) seen.add(row.row_key);
    }
    return seen;
  }

  async markSeen(feed: string, rows: readonly { key: string; time: IsoDate }[]): Promise<void> {
    // Paging an engine list under an unstable order can return a row twice; one upsert may name a key once.
    const unique = [...new Map(rows.map((row) => [row.key, row])).values()];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500).map((row) => ({ ...this.app, feed, row_key: row.key, row_time: row.time }));
      await this.knex("connector_seen").insert(chunk).onConflict(["application_name", "feed", "row_key"]).merge();
    }
  }

  async evictSeen(feed: string, before: IsoDate): Promise<number> {
    return this.knex("connector_seen").where({ ...this.app, feed }).where("row_time", "<", before).delete();
  }

  async countSeen(): Promise<Record<string, number>> {
    const rows = await this.knex("connector_seen").where(this.app).groupBy("feed").select("feed").count({ n: "*" });
    return Object.fromEntries((rows as Record<string, unknown>[]).map((row) => [row.feed as string, Number(row.n)]));
  }

  // Tasks ----------------------------------------------------------------------------------------------------------

  private taskOf(row: TaskRow): TaskShadow {
    return {
      taskId: row.task_id,
      status: row.status,
      processInstanceId: row.process_instance_id ?? null,
      snapshot: parsed<TaskSnapshot>(row.snapshot),
      streamVersion: Number(row.stream_version),
      engineMarker: row.engine_marker ?? null,
    };
  }

  async getTask(taskId: string): Promise<TaskShadow | null> {
    const row = await this.knex("connector_tasks").where({ ...this.app, task_id: taskId }).first();
    return row ? this.taskOf(row) : null;
  }

  async getTasks(taskIds: readonly string[]): Promise<Map<string, TaskShadow>> {
    const result = new Map<string, TaskShadow>();
    for (let i = 0; i < taskIds.length; i += 1000) {
      const rows = await this.knex("connector_tasks").where(this.app).whereIn("task_id", taskIds.slice(i, i + 1000));
      for (const row of rows) result.set(row.task_id, this.taskOf(row));
    }
    return result;
  }

  async saveTask(shadow: TaskShadow): Promise<void> {
    await this.knex("connector_tasks")
      .insert({
        ...this.app,
        task_id: shadow.taskId,
        status: shadow.status,
        process_instance_id: shadow.processInstanceId,
        snapshot: json(shadow.snapshot),
        stream_version: shadow.streamVersion,
        engine_marker: shadow.engineMarker,
        updated_at: this.knex.fn.now(),
      })
      .onConflict(["application_name", "task_id"])
      .merge();
  }

  /** Many shadows in one statement (the end of a page). */
  async saveTasks(shadows: readonly TaskShadow[]): Promise<void> {
    for (let i = 0; i < shadows.length; i += 500) {
      const rows = shadows.slice(i, i + 500).map((shadow) => ({
        ...this.app,
        task_id: shadow.taskId,
        status: shadow.status,
        process_instance_id: shadow.processInstanceId,
        snapshot: json(shadow.snapshot),
        stream_version: shadow.streamVersion,
        engine_marker: shadow.engineMarker,
        updated_at: this.knex.fn.now(),
      }));
      await this.knex("connector_tasks").insert(rows).onConflict(["application_name", "task_id"]).merge();
    }
  }

  /** Ids of the tasks the pool holds open, in id order, a page at a time. */
  async openTaskIds(afterId: string | null, limit: number): Promise<string[]> {
    const query = this.knex("connector_tasks").where({ ...this.app, status: "open" }).orderBy("task_id").limit(limit).select("task_id");
    if (afterId !== null) query.where("task_id", ">", afterId);
    return (await query).map((row) => row.task_id);
  }

  async openTaskIdsOfInstance(instanceId: string): Promise<string[]> {
    const rows = await this.knex("connector_tasks").where({ ...this.app, status: "open", process_instance_id: instanceId }).select("task_id");
    return rows.map((row) => row.task_id);
  }

  async countTasks(): Promise<Record<string, number>> {
    const rows = await this.knex("connector_tasks").where(this.app).groupBy("status").select("status").count({ n: "*" });
    return Object.fromEntries((rows as Record<string, unknown>[]).map((row) => [row.status as string, Number(row.n)]));
  }

  // Process definitions and instances -------------------------------------------------------------------------------

  async getDefinition(definitionId: string): Promise<Record<string, unknown> | null> {
    const row = await this.knex("connector_definitions").where({ ...this.app, definition_id: definitionId }).first();
    return row ? parsed<Record<string, unknown>>(row.snapshot) : null;
  }

  async saveDefinition(definitionId: string, snapshot: Record<string, unknown>): Promise<void> {
    await this.knex("connector_definitions")
      .insert({ ...this.app, definition_id: definitionId, snapshot: json(snapshot), updated_at: this.knex.fn.now() })
      .onConflict(["application_name", "definition_id"])
      .merge();
  }

  async countDefinitions(): Promise<number> {
    const row = await this.knex("connector_definitions").where(this.app).count({ n: "*" }).first();
    return Number(row?.n ?? 0);
  }

  async getInstance(instanceId: string): Promise<InstanceShadow | null> {
    const row = await this.knex("connector_instances").where({ ...this.app, instance_id: instanceId }).first();
    return row ? { instanceId: row.instance_id, state: row.state, snapshot: parsed<Record<string, unknown>>(row.snapshot) } : null;
  }

  async getInstances(instanceIds: readonly string[]): Promise<Map<string, InstanceShadow>> {
    const result = new Map<string, InstanceShadow>();
    for (let i = 0; i < instanceIds.length; i += 1000) {
      const rows = await this.knex("connector_instances").where(this.app).whereIn("instance_id", instanceIds.slice(i, i + 1000));
      for (const row of rows) result.set(row.instance_id, { instanceId: row.instance_id, state: row.state, snapshot: parsed<Record<string, unknown>>(row.snapshot) });
    }
    return result;
  }

  async saveInstances(shadows: readonly InstanceShadow[]): Promise<void> {
    for (let i = 0; i < shadows.length; i += 500) {
      const rows = shadows.slice(i, i + 500).map((shadow) => ({
        ...this.app,
        instance_id: shadow.instanceId,
        state: shadow.state,
        snapshot: json(shadow.snapshot),
        updated_at: this.knex.fn.now(),
      }));
      await this.knex("connector_instances").insert(rows).onConflict(["application_name", "instance_id"]).merge();
    }
  }

  async saveInstance(shadow: InstanceShadow): Promise<void> {
    await this.knex("connector_instances")
      .insert({ ...this.app, instance_id: shadow.instanceId, state: shadow.state, snapshot: json(shadow.snapshot), updated_at: this.knex.fn.now() })
      .onConflict(["application_name", "instance_id"])
      .merge();
  }

  /** Ids of the instances the pool holds running or suspended, in id order, a page at a time. */
  async runningInstanceIds(afterId: string | null, limit: number): Promise<string[]> {
    const query = this.knex("connector_instances").where(this.app).whereIn("state", ["RUNNING", "SUSPENDED"]).orderBy("instance_id").limit(limit).select("instance_id");
    if (afterId !== null) query.where("instance_id", ">", afterId);
    return (await query).map((row) => row.instance_id);
  }

  async countInstances(): Promise<Record<string, number>> {
    const rows = await this.knex("connector_instances").where(this.app).groupBy("state").select("state").count({ n: "*" });
    return Object.fromEntries((rows as Record<string, unknown>[]).map((row) => [row.state as string, Number(row.n)]));
  }

  // Interactions, markers, lease --------------------------------------------------------------------------------------

  async getInteraction(eventId: string): Promise<InteractionRecord | null> {
    const row = await this.knex("connector_interactions").where({ ...this.app, event_id: eventId }).first();
    return row ? { eventId: row.event_id, eventType: row.event_type, outcome: row.outcome, detail: parsed<Record<string, unknown>>(row.detail) } : null;
  }

  async saveInteraction(record: InteractionRecord): Promise<void> {
    await this.knex("connector_interactions")
      .insert({ ...this.app, event_id: record.eventId, event_type: record.eventType, outcome: record.outcome, detail: json(record.detail), handled_at: this.knex.fn.now() })
      .onConflict(["application_name", "event_id"])
      .merge();
  }

  async countInteractions(): Promise<Record<string, number>> {
    const rows = await this.knex("connector_interactions").where(this.app).groupBy("outcome").select("outcome").count({ n: "*" });
    return Object.fromEntries((rows as Record<string, unknown>[]).map((row) => [row.outcome as string, Number(row.n)]));
  }

  // Meta values are stored wrapped in an object: a bare JSON string would come back from jsonb already parsed and
  // could not be told from raw JSON text.
  async getMeta<T>(key: string): Promise<T | null> {
    const row = await this.knex("connector_meta").where({ ...this.app, key }).first();
    return row ? (parsed<{ value: T }>(row.value).value ?? null) : null;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.knex("connector_meta").insert({ ...this.app, key, value: json({ value }) }).onConflict(["application_name", "key"]).merge();
  }

  /**
   * Takes or renews the polling lease of this application; judged by the database clock, so that node clocks do
   * not matter. True when `owner` holds it afterwards.
   */
  async acquireLease(owner: string, leaseMs: number): Promise<boolean> {
    const result = await this.knex.raw(
      `INSERT INTO connector_leases (application_name, owner, lease_until)
       VALUES (?, ?, now() + (? * interval '1 millisecond'))
       ON CONFLICT (application_name) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
         WHERE connector_leases.owner = EXCLUDED.owner OR connector_leases.lease_until < now()
       RETURNING owner`,
      [this.applicationName, owner, leaseMs],
    );
    return (result.rows as { owner: string }[]).some((row) => row.owner === owner);
  }

  async releaseLease(owner: string): Promise<void> {
    await this.knex("connector_leases").where({ ...this.app, owner }).delete();
  }
}
