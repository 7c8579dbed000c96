// Service `engineConnector`: one process application's bridge between its BPMN engine and the task pool.
//
// Engine → pool: change capture by polling (camunda.md §1.5). Each change feed of the engine adapter (open
// tasks, finished tasks, deployments, started and finished instances, instance suspensions, variable updates)
// is read from its watermark minus an overlap window, rows already handled are skipped (de-duplication window),
// and the watermark moves to the newest *engine* timestamp handled. Every open task is turned into the pool's
// snapshot (variable filters, correlations, assignment from variables: domain/engine/enrichment.ts) and diffed
// against its shadow, the snapshot the pool was last told (domain/engine/task-diff.ts); the smallest ordered
// set of commands goes to the `task` service. A task is never declared gone because a list lacks it: only a
// 404 of the task itself, with history saying how it ended, ends it. Reconciliation (at start and periodically)
// walks all open tasks and running instances to repair what the feeds cannot see; the first start imports the
// tasks that existed before. All state (watermarks, windows, shadows) is persisted per application
// (stores/engine/connector-state.ts), so a restart neither replays everything nor misses anything; a shadow
// lost or never written is recovered from the pool's own stream, so a crash between sending and saving does
// not double anything.
//
// Pool → engine: the application's interaction events (TaskClaimed, TaskUnclaimed, TaskDeferred,
// TaskUndeferred, TaskToBeCompleted, ProcessStartRequested), consumed at least once by a tracking processor,
// performed once (a record per event), the task re-read at once so the pool sees the result without waiting
// for the next poll, and every refusal reported with `task.reportInteractionRefused` (a refused start with
// `processDefinition.reportStartRefused`).
//
// Build it with `createEngineConnector({ settings, adapter })`; the default export reads the environment.
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { createHash } from "node:crypto";
import { embeddedDatabaseDirectory } from "../stores/database.ts";
import { TrackingProcessorMixin, type TrackingProcessorOptions } from "../mixins/tracking-processor.mixin.ts";
import { fold } from "../domain/decider.ts";
import { taskDecider, taskStreamId, type TaskEvent, type TaskSnapshot } from "../domain/task.ts";
import type { JsonObject, Payload, SourceReference } from "../domain/types.ts";
import { isVariableIncluded, type EnrichmentConfig } from "../domain/engine/enrichment.ts";
import { advanceWatermark, evictBefore, readFrom, rowsToHandle, type ChangeRow } from "../domain/engine/change-window.ts";
import { applyTaskCommands, diffTask, finishTask, sourceReferenceOf, taskSnapshotOf, type TaskCommandPlan } from "../domain/engine/task-diff.ts";
import { plainValues, processVariableValueOf } from "../domain/engine/variables.ts";
import type { ProcessVariableChange } from "../domain/process-variables.ts";
import {
  EngineError,
  isEngineError,
  type ChangeQuery,
  type EngineAdapter,
  type EngineTask,
  type EngineTaskWithDetails,
  type FeedName,
  type FinishedTask,
  type PageOf,
  type ProcessDefinitionInfo,
  type ProcessInstanceInfo,
  type VariableUpdate,
} from "../stores/engine/engine-adapter.ts";
import { OperatonAdapter } from "../stores/engine/operaton-adapter.ts";
import { engineOf } from "../stores/engine/process-engine.ts";
import { registeredEngineAdapter } from "../engine/embedded/registered-adapter.ts";
import { ConnectorState, type InstanceShadow, type InstanceShadowState, type TaskShadow } from "../stores/engine/connector-state.ts";
import type { RecordedEvent } from "../stores/event-store.ts";
import { readEnvironment } from "../lib/env.ts";
import { isErrorOfType } from "../lib/errors.ts";
import { START_TOKEN } from "../lib/tokens.ts";

type LoggerInstance = ServiceBroker["logger"];

// Settings -----------------------------------------------------------------------------------------------------------

export interface EngineConnectorSettings {
  /** The process application this connector speaks for (`sourceReference.applicationName`). */
  applicationName: string;
  /** REST base of an Operaton / Camunda 7 engine, e.g. http://127.0.0.1:8180/engine-rest (unused with an injected adapter). */
  engineUrl: string | null;
  engineUsername: string | null;
  enginePassword: string | null;
  /** Pause between two polls, ms. */
  pollIntervalMs: number;
  /** How far each read reaches back before the watermark, ms: longer than the longest engine transaction plus clock skew. */
  overlapMs: number;
  /** Full reconciliation every … ms (0: only at start). */
  reconcileIntervalMs: number;
  requestTimeoutMs: number;
  /** Rows per engine request. */
  pageSize: number;
  /** Tasks handled at once (import, reconciliation). */
  concurrency: number;
  /** Polling lease per application, ms (one instance polls; another takes over after this when it dies). */
  leaseMs: number;
  /** Only these process definition keys (null: every process of the engine). */
  processDefinitionKeys: string[] | null;
  /**
   * Keys of processes whose start form is optional: users may also start them directly from the catalogue. Any
   * other process with a start form starts through it only (a direct start is refused with 409).
   */
  directStartKeys: string[];
  /** State database: postgres://… ; null uses PGlite in `pgliteDir`. */
  databaseUrl: string | null;
  /** PGlite directory; "memory" keeps the state in memory (tests). */
  pgliteDir: string;
  /** PostgreSQL schema of the state tables (default "connector"; one schema serves every application). */
  schema?: string;
  enrichment: EnrichmentConfig;
  collectProcessDefinitions: boolean;
  collectProcessInstances: boolean;
  collectProcessVariables: boolean;
  /**
   * A process started on a user's request carries the request id in this variable, so that a repeated request
   * (at-least-once delivery) finds the instance instead of starting a second one. Null: not set.
   */
  requestIdVariable: string | null;
  /** false: no timer; polls happen on `engineConnector.sync` only (tests). */
  autoPoll: boolean;
}

const DEFAULTS: Omit<EngineConnectorSettings, "applicationName" | "engineUrl" | "pgliteDir" | "databaseUrl"> = {
  engineUsername: null,
  enginePassword: null,
  pollIntervalMs: 1000,
  overlapMs: 15_000,
  reconcileIntervalMs: 5 * 60_000,
  requestTimeoutMs: 10_000,
  pageSize: 200,
  concurrency: 4,
  leaseMs: 15_000,
  processDefinitionKeys: null,
  directStartKeys: [],
  enrichment: {},
  collectProcessDefinitions: true,
  collectProcessInstances: true,
  collectProcessVariables: true,
  requestIdVariable: "taskpoolRequestId",
  autoPoll: true,
};

function integerFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`Environment variable ${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

function textFrom(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

/**
 * The connector's settings from the environment: APPLICATION_NAME, ENGINE_URL, ENGINE_USERNAME,
 * ENGINE_PASSWORD, ENGINE_POLL_INTERVAL (ms), ENGINE_OVERLAP (ms), ENGINE_RECONCILE_INTERVAL (ms),
 * ENGINE_PROCESS_KEYS (comma-separated), ENGINE_DIRECT_START_KEYS (comma-separated), ENGINE_ENRICHMENT (JSON of EnrichmentConfig), and DATABASE_URL /
 * DATA_DIR for the state, like the event store.
 */
export function engineConnectorSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<EngineConnectorSettings> {
  const platform = readEnvironment(env);
  const applicationName = textFrom(env, "APPLICATION_NAME");
  const settings: Partial<EngineConnectorSettings> = {
    databaseUrl: platform.databaseUrl,
    pgliteDir: embeddedDatabaseDirectory(platform.dataDir),
  };
  if (applicationName) settings.applicationName = applicationName;
  const url = textFrom(env, "ENGINE_URL");
  if (url) settings.engineUrl = url;
  const username = textFrom(env, "ENGINE_USERNAME");
  if (username) {
    settings.engineUsername = username;
    settings.enginePassword = env.ENGINE_PASSWORD ?? "";
  }
  const poll = integerFrom(env, "ENGINE_POLL_INTERVAL");
  if (poll !== undefined) settings.pollIntervalMs = Math.max(poll, 10);
  const overlap = integerFrom(env, "ENGINE_OVERLAP");
  if (overlap !== undefined) settings.overlapMs = overlap;
  const reconcile = integerFrom(env, "ENGINE_RECONCILE_INTERVAL");
  if (reconcile !== undefined) settings.reconcileIntervalMs = reconcile;
  const keys = textFrom(env, "ENGINE_PROCESS_KEYS");
  if (keys) settings.processDefinitionKeys = keys.split(",").map((k) => k.trim()).filter(Boolean);
  const directStart = textFrom(env, "ENGINE_DIRECT_START_KEYS");
  if (directStart) settings.directStartKeys = directStart.split(",").map((k) => k.trim()).filter(Boolean);
  const enrichment = textFrom(env, "ENGINE_ENRICHMENT");
  if (enrichment) {
    try {
      settings.enrichment = JSON.parse(enrichment) as EnrichmentConfig;
    } catch (err) {
      throw new Error(`Environment variable ENGINE_ENRICHMENT must be JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  return settings;
}

// Helpers --------------------------------------------------------------------------------------------------------------

function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(stableStringify(value)).digest("hex").slice(0, 16);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function messageOf(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

/** Runs `work` for every item, at most `limit` at once; returns the items that failed with their errors. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<{ item: T; error: unknown }[]> {
  const failures: { item: T; error: unknown }[] = [];
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failures.push({ item, error });
      }
    }
  });
  await Promise.all(workers);
  return failures;
}

/**
 * The pool refused the data itself (too large, not valid): sending it again cannot succeed, so the row is
 * recorded as an error and passed, instead of holding its feed back for ever. A later change is tried anew.
 */
function isPermanentRejection(err: unknown): boolean {
  return isErrorOfType(err, "VALIDATION_ERROR") || isErrorOfType(err, "EVENT_TOO_LARGE") || isErrorOfType(err, "INVALID_EVENT_DATA");
}

/**
 * What identifies the engine's version of a task: its creation and last-update times (the REST API exposes no
 * revision). Every change through the engine's task service moves `lastUpdated`.
 */
function markerOf(task: Pick<EngineTask, "createTime" | "lastUpdated">): string {
  return `${task.createTime ?? ""}|${task.lastUpdated ?? ""}`;
}

/** Shadows collected while handling one page, written together at its end. */
interface ShadowBatch {
  tasks: Map<string, TaskShadow>;
  instances: Map<string, InstanceShadow>;
}

function newBatch(): ShadowBatch {
  return { tasks: new Map(), instances: new Map() };
}

/**
 * Handles rows one after the other. A transient failure stops there: that row and the ones after it count as
 * failed (not handled), so that the next read sees them again; a permanent rejection is passed over.
 */
async function handleInOrder<T>(rows: readonly T[], work: (row: T) => Promise<void>): Promise<{ item: T; error: unknown }[]> {
  const failures: { item: T; error: unknown }[] = [];
  for (let i = 0; i < rows.length; i++) {
    try {
      await work(rows[i]!);
    } catch (error) {
      if (isPermanentRejection(error)) {
        failures.push({ item: rows[i]!, error });
        continue;
      }
      for (const item of rows.slice(i)) failures.push({ item, error });
      break;
    }
  }
  return failures;
}

interface CommandResult {
  version: number;
  globalPosition: number;
  events: string[];
}

type InteractionName = "claim" | "unclaim" | "defer" | "undefer" | "complete";

const INTERACTION_EVENT_TYPES = ["TaskClaimed", "TaskUnclaimed", "TaskDeferred", "TaskUndeferred", "TaskToBeCompleted", "ProcessStartRequested"];

/** Feeds in the order a poll reads them: definitions before instances before tasks, ends last. */
const FEED_ORDER: FeedName[] = ["deployments", "startedInstances", "tasks", "variableUpdates", "instanceOperations", "finishedTasks", "finishedInstances"];

export interface ConnectorError {
  at: string;
  where: string;
  message: string;
}

export interface EngineConnectorStatus {
  applicationName: string;
  owner: string;
  leased: boolean;
  engine: { url: string | null; product: string | null; version: string | null; reachable: boolean | null };
  polls: number;
  lastPollAt: string | null;
  lastPollMs: number | null;
  reconciliations: number;
  lastReconcileAt: string | null;
  feeds: Record<string, { watermark: string | null; bootstrapped: boolean; window: number }>;
  counts: {
    tasks: Record<string, number>;
    instances: Record<string, number>;
    definitions: number;
    interactions: Record<string, number>;
    commandsSent: number;
    commandsFailed: number;
  };
  errors: ConnectorError[];
}

// The connector ----------------------------------------------------------------------------------------------------------

/** Everything but the Moleculer wiring: polling, diffing, sending, performing interactions. */
export class EngineConnector {
  readonly settings: EngineConnectorSettings;
  readonly adapter: EngineAdapter;
  private readonly broker: ServiceBroker;
  private readonly logger: LoggerInstance;
  readonly owner: string;
  private state: ConnectorState | null = null;
  private readyResolve!: () => void;
  private readyReject!: (err: unknown) => void;
  readonly ready: Promise<void>;

  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake = new AbortController();
  private leaseTimer: NodeJS.Timeout | null = null;
  private leased = false;
  private firstCycleDone = false;
  private resumedWithState = false;
  private lastReconcile = 0;
  private reconcileRetryAt: number | null = null;
  private readonly businessKeys = new Map<string, string | null>();
  private readonly status = {
    product: null as string | null,
    version: null as string | null,
    reachable: null as boolean | null,
    polls: 0,
    lastPollAt: null as string | null,
    lastPollMs: null as number | null,
    reconciliations: 0,
    lastReconcileAt: null as string | null,
    commandsSent: 0,
    commandsFailed: 0,
    errors: [] as ConnectorError[],
  };

  constructor(options: { broker: ServiceBroker; logger: LoggerInstance; settings: EngineConnectorSettings; adapter: EngineAdapter }) {
    this.broker = options.broker;
    this.logger = options.logger;
    this.settings = options.settings;
    this.adapter = options.adapter;
    // Stable across restarts of the same node: a restarted node takes its lease back at once.
    this.owner = `${options.broker.nodeID}/${options.settings.applicationName}`;
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Nobody may be waiting yet; the rejection is observed by whoever awaits `ready` later.
    this.ready.catch(() => undefined);
  }

  private get app(): string {
    return this.settings.applicationName;
  }

  private get keys(): string[] | null {
    return this.settings.processDefinitionKeys;
  }

  private db(): ConnectorState {
    if (!this.state) throw new Error(`engine connector ${this.app} is not started`);
    return this.state;
  }

  private recordError(where: string, err: unknown): void {
    const message = messageOf(err);
    this.status.errors.unshift({ at: new Date().toISOString(), where, message });
    this.status.errors.length = Math.min(this.status.errors.length, 20);
    this.logger.warn(`Engine connector ${this.app}: ${where}: ${message}`);
  }

  /** Serializes everything that reads or writes shadows: polls and interactions never interleave. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // Life cycle ----------------------------------------------------------------------------------------------------------

  async start(): Promise<void> {
    try {
      const memory = this.settings.pgliteDir === "memory";
      this.state = await ConnectorState.open({
        applicationName: this.app,
        databaseUrl: this.settings.databaseUrl,
        pgliteDir: this.settings.databaseUrl ? null : memory ? null : this.settings.pgliteDir,
        schema: this.settings.schema,
      });
      this.resumedWithState = (await this.state.feed("tasks")).bootstrapped;
      this.readyResolve();
    } catch (err) {
      this.readyReject(err);
      throw err;
    }
    await this.renewLease();
    this.leaseTimer = setInterval(() => void this.renewLease(), Math.max(200, Math.floor(this.settings.leaseMs / 3)));
    if (this.settings.autoPoll) this.loop = this.runLoop();
    this.logger.info(
      `Engine connector ${this.app} started (engine ${this.settings.engineUrl ?? "adapter"}; poll every ${this.settings.pollIntervalMs} ms; ` +
        `${this.resumedWithState ? "resuming from its stored watermarks" : "first run: importing the engine's open tasks"})`,
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = null;
    await this.loop;
    // Let the work in flight (a poll or an interaction) finish before the state goes.
    await this.exclusive(async () => undefined);
    if (this.state) {
      if (this.leased) await this.state.releaseLease(this.owner).catch(() => undefined);
      this.leased = false;
      await this.state.close();
      this.state = null;
    }
    await this.adapter.close?.();
  }

  private async renewLease(): Promise<void> {
    if (!this.state || this.stopping) return;
    try {
      const held = await this.state.acquireLease(this.owner, this.settings.leaseMs);
      if (held !== this.leased) this.logger.info(`Engine connector ${this.app}: ${held ? "holds the polling lease" : "standing by (another instance polls)"}`);
      this.leased = held;
    } catch (err) {
      this.leased = false;
      this.recordError("lease", err);
    }
  }

  private async runLoop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.exclusive(() => this.pollCycle(false));
      } catch (err) {
        this.recordError("poll", err);
      }
      if (this.stopping) break;
      this.wake = new AbortController();
      await sleep(this.settings.pollIntervalMs, this.wake.signal);
    }
  }

  /** One poll now (waits for a poll in flight first); `reconcile` forces a full reconciliation. */
  sync(reconcile: boolean): Promise<EngineConnectorStatus> {
    return this.exclusive(async () => {
      await this.renewLease();
      await this.pollCycle(reconcile);
      return this.statusNow();
    });
  }

  private async pollCycle(forceReconcile: boolean): Promise<void> {
    if (!this.state || this.stopping) return;
    if (!this.leased) return;
    const started = Date.now();
    if (this.status.product === null) {
      try {
        const description = await this.adapter.describe();
        this.status.product = description.product;
        this.status.version = description.version;
        this.status.reachable = true;
      } catch (err) {
        this.status.reachable = !isEngineError(err, "unavailable");
        throw err;
      }
    }
    // Feeds start where the engine is now, before the reconciliation looks at what exists: a change that happens
    // while it runs is then read by the feeds, not lost between the two.
    for (const feed of FEED_ORDER) if (this.feedEnabled(feed)) await this.bootstrapFeed(feed);
    const due =
      (this.settings.reconcileIntervalMs > 0 && Date.now() - this.lastReconcile >= this.settings.reconcileIntervalMs) ||
      (this.reconcileRetryAt !== null && Date.now() >= this.reconcileRetryAt);
    // At start: a first run imports what exists (tasks, running instances, definitions); a restart repairs
    // whatever its downtime hid from the feeds.
    if (forceReconcile || !this.firstCycleDone || due) {
      try {
        await this.reconcile();
      } catch (err) {
        // The feeds still run; the reconciliation is tried again in half a minute.
        this.recordError("reconciliation", err);
        this.reconcileRetryAt = Date.now() + 30_000;
      }
    }
    let unreachable = false;
    for (const feed of FEED_ORDER) {
      if (this.stopping) return;
      if (!this.feedEnabled(feed)) continue;
      try {
        await this.pollFeed(feed);
      } catch (err) {
        unreachable ||= isEngineError(err, "unavailable");
        this.recordError(`feed ${feed}`, err);
      }
    }
    this.firstCycleDone = true;
    this.status.reachable = !unreachable;
    this.status.polls++;
    this.status.lastPollAt = new Date().toISOString();
    this.status.lastPollMs = Date.now() - started;
  }

  private feedEnabled(feed: FeedName): boolean {
    switch (feed) {
      case "deployments":
        return this.settings.collectProcessDefinitions;
      case "startedInstances":
      case "finishedInstances":
      case "instanceOperations":
        return this.settings.collectProcessInstances;
      default:
        return true;
    }
  }

  // Feeds -----------------------------------------------------------------------------------------------------------------

  private feedReader(feed: FeedName): (query: ChangeQuery) => Promise<PageOf<unknown>> {
    const a = this.adapter;
    switch (feed) {
      case "tasks":
        return (q) => a.listTasksChangedSince(q);
      case "finishedTasks":
        return (q) => a.listFinishedTasksSince(q);
      case "deployments":
        return (q) => a.listDeploymentsSince(q);
      case "startedInstances":
        return (q) => a.listInstancesStartedSince(q);
      case "finishedInstances":
        return (q) => a.listInstancesFinishedSince(q);
      case "instanceOperations":
        return (q) => a.listInstanceOperationsSince(q);
      case "variableUpdates":
        return (q) => a.listVariableUpdatesSince(q);
    }
  }

  /** The de-duplication key and change time of a feed's row. */
  private changeRowOf(feed: FeedName, row: any): ChangeRow {
    switch (feed) {
      case "tasks": {
        const time = (row as EngineTask).lastUpdated ?? (row as EngineTask).createTime ?? "1970-01-01T00:00:00.000Z";
        return { key: `${row.id}@${markerOf(row as EngineTask)}`, time };
      }
      case "finishedTasks":
        return { key: row.id, time: (row as FinishedTask).endTime };
      case "deployments":
        return { key: row.id, time: row.deploymentTime };
      case "startedInstances":
        return { key: row.id, time: (row as ProcessInstanceInfo).startTime };
      case "finishedInstances":
        return { key: row.id, time: (row as ProcessInstanceInfo).endTime ?? (row as ProcessInstanceInfo).startTime };
      case "instanceOperations":
        return { key: row.id, time: row.time };
      case "variableUpdates":
        return { key: row.id, time: (row as VariableUpdate).time };
    }
  }

  /**
   * Reads one feed from its watermark minus the overlap, handles the rows not handled before, and moves the
   * watermark. On its first run a feed either imports (tasks: a null watermark reads everything open) or starts
   * after what exists (history feeds: their past is not news).
   */
  private async bootstrapFeed(feed: FeedName): Promise<void> {
    const db = this.db();
    const current = await db.feed(feed);
    if (current.bootstrapped) return;
    // The tasks feed keeps no watermark: its first read lists every open task, which is the import. History
    // feeds start after their newest row: their past is not news (reconciliation reports what still runs).
    if (feed !== "tasks") {
      const newest = await this.adapter.newestChangeTime(feed, this.keys);
      if (newest !== null) {
        // What the overlap window reaches back to existed before the connector: mark it handled.
        const existing = await this.readAll(feed, readFrom(newest, this.settings.overlapMs));
        await db.markSeen(feed, existing.map((row) => this.changeRowOf(feed, row)));
        current.watermark = newest;
      }
    }
    await db.saveFeed({ ...current, bootstrapped: true });
  }

  private async pollFeed(feed: FeedName): Promise<void> {
    const db = this.db();
    const { overlapMs, pageSize } = this.settings;
    const current = await db.feed(feed);
    const read = this.feedReader(feed);
    const since = readFrom(current.watermark, overlapMs);
    const handled: ChangeRow[] = [];
    let failedAt: string | null = null;
    for (let firstResult = 0; !this.stopping; firstResult += pageSize) {
      const page = await read({ since, firstResult, maxResults: pageSize, processDefinitionKeys: this.keys });
      // Rows of other processes count as handled: nothing to do for them.
      if (page.newest) handled.push({ key: "", time: page.newest });
      const described = page.rows.map((row) => ({ row, ...this.changeRowOf(feed, row) }));
      const seen = await db.seenKeys(feed, described.map((d) => d.key));
      const todo = rowsToHandle(described, seen);
      const outcome = await this.handleRows(feed, todo.map((d) => d.row));
      const done = todo.filter((d) => !outcome.failed.has(d.row));
      await db.markSeen(feed, done.map((d) => ({ key: d.key, time: d.time })));
      handled.push(...done);
      if (outcome.failed.size > 0) {
        const firstFailure = todo.find((d) => outcome.failed.has(d.row))!;
        failedAt = firstFailure.time;
        this.recordError(`feed ${feed}`, outcome.error);
        break;
      }
      if (page.done) break;
    }
    const watermark = advanceWatermark(current.watermark, handled, failedAt);
    if (watermark !== current.watermark) {
      await db.saveFeed({ ...current, watermark });
      const bound = evictBefore(watermark, overlapMs);
      if (bound) await db.evictSeen(feed, bound);
    }
  }

  private async readAll(feed: FeedName, since: string | null): Promise<unknown[]> {
    const read = this.feedReader(feed);
    const rows: unknown[] = [];
    for (let firstResult = 0; ; firstResult += this.settings.pageSize) {
      const page = await read({ since, firstResult, maxResults: this.settings.pageSize, processDefinitionKeys: this.keys });
      rows.push(...page.rows);
      if (page.done) return rows;
    }
  }

  private async handleRows(feed: FeedName, rows: unknown[]): Promise<{ failed: Set<unknown>; error: unknown }> {
    const all = await this.handleRowsOf(feed, rows);
    const failures: { item: unknown; error: unknown }[] = [];
    for (const failure of all) {
      if (isPermanentRejection(failure.error)) this.recordError(`feed ${feed}: the pool refused a change, passed over`, failure.error);
      else failures.push(failure);
    }
    return { failed: new Set(failures.map((f) => f.item)), error: failures[0]?.error };
  }

  private async handleRowsOf(feed: FeedName, rows: unknown[]): Promise<{ item: unknown; error: unknown }[]> {
    const failures: { item: unknown; error: unknown }[] = [];
    switch (feed) {
      case "tasks": {
        const tasks = rows as EngineTask[];
        const batch = newBatch();
        const shadows = await this.loadShadows(tasks.map((t) => t.id));
        await this.primeBusinessKeys(tasks.map((t) => t.processInstanceId));
        failures.push(...(await forEachLimited(tasks, this.settings.concurrency, (task) => this.observeListedTask(task, shadows.get(task.id) ?? null, batch))));
        await this.flush(batch);
        break;
      }
      case "finishedTasks": {
        const finished = rows as FinishedTask[];
        const batch = newBatch();
        const shadows = await this.loadShadows(finished.map((t) => t.id));
        failures.push(...(await forEachLimited(finished, this.settings.concurrency, (task) => this.observeFinishedTask(task, shadows.get(task.id) ?? null, batch))));
        await this.flush(batch);
        break;
      }
      case "deployments":
        failures.push(...(await handleInOrder(rows as { id: string }[], (row) => this.registerDeployment(row.id))));
        break;
      case "startedInstances":
      case "finishedInstances": {
        const instances = rows as ProcessInstanceInfo[];
        const batch = newBatch();
        const shadows = await this.db().getInstances(instances.map((i) => i.id));
        failures.push(...(await handleInOrder(instances, (row) => this.observeInstance(row, shadows.get(row.id) ?? null, batch))));
        await this.flush(batch);
        break;
      }
      case "instanceOperations":
        failures.push(
          ...(await handleInOrder(rows as { processInstanceId: string }[], async (row) => {
            const instance = await this.adapter.getProcessInstance(row.processInstanceId);
            if (instance) await this.observeInstance(instance);
          })),
        );
        break;
      case "variableUpdates":
        failures.push(...(await this.handleVariableUpdates(rows as VariableUpdate[])));
        break;
    }
    return failures;
  }

  // Commands ---------------------------------------------------------------------------------------------------------------

  private async send(action: string, params: Record<string, unknown>, commandId?: string): Promise<CommandResult> {
    try {
      const result = await this.broker.call<CommandResult, Record<string, unknown>>(action, commandId ? { ...params, commandId } : params);
      this.status.commandsSent++;
      return result;
    } catch (err) {
      this.status.commandsFailed++;
      throw err;
    }
  }

  private commandId(...parts: (string | number)[]): string {
    const id = [this.app, ...parts].join(":");
    // The event store takes ids up to 300 characters; long application names or ids are hashed.
    return id.length <= 300 ? id : `${this.app.slice(0, 100)}:${hashOf(id)}`;
  }

  // Tasks ------------------------------------------------------------------------------------------------------------------

  /** The shadow of a task: from the connector's state, else recovered from the pool's stream (null: the pool has none). */
  private async loadShadow(taskId: string): Promise<TaskShadow | null> {
    const stored = await this.db().getTask(taskId);
    if (stored) return stored;
    return this.shadowFromPool(taskId);
  }

  /** The shadows of several tasks with one read of the state (the pool's streams for those it lacks). */
  private async loadShadows(taskIds: readonly string[]): Promise<Map<string, TaskShadow | null>> {
    const stored = await this.db().getTasks(taskIds);
    const result = new Map<string, TaskShadow | null>(stored);
    const missing = taskIds.filter((id) => !stored.has(id));
    await forEachLimited(missing, this.settings.concurrency, async (id) => {
      result.set(id, await this.shadowFromPool(id));
    }).then((failures) => {
      if (failures.length > 0) throw failures[0]!.error;
    });
    return result;
  }

  /**
   * A task the connector's state does not know may still be known to the pool (the state was lost, or the
   * connector died between sending and saving): fold its stream, so that nothing is reported twice.
   */
  private async shadowFromPool(taskId: string): Promise<TaskShadow | null> {
    const stream = await this.broker.call<{ streamVersion: number; events: RecordedEvent[] }, object>("eventstore.readStream", {
      streamId: taskStreamId(taskId),
      allowEmpty: true,
    });
    if (stream.streamVersion === 0) return null;
    const folded = fold(taskDecider, stream.events.map((e) => ({ type: e.type, data: e.data }) as unknown as TaskEvent));
    if (!folded.task) return null;
    return {
      taskId,
      status: folded.status === "completed" ? "completed" : folded.status === "deleted" ? "deleted" : "open",
      processInstanceId: folded.task.sourceReference.instanceId,
      snapshot: folded.task,
      streamVersion: stream.streamVersion,
      engineMarker: null,
    };
  }

  /** Reads the business keys of many instances in one request (an import would otherwise ask once per task). */
  private async primeBusinessKeys(instanceIds: readonly string[]): Promise<void> {
    const missing = [...new Set(instanceIds)].filter((id) => !this.businessKeys.has(id));
    for (let i = 0; i < missing.length; i += 100) {
      const chunk = missing.slice(i, i + 100);
      const instances = await this.adapter.getProcessInstances(chunk);
      for (const instance of instances) this.rememberBusinessKey(instance.id, instance.businessKey);
    }
  }

  private rememberBusinessKey(instanceId: string, businessKey: string | null): void {
    if (this.businessKeys.size > 10_000) this.businessKeys.clear();
    this.businessKeys.set(instanceId, businessKey);
  }

  private async businessKeyOf(instanceId: string): Promise<string | null> {
    if (this.businessKeys.has(instanceId)) return this.businessKeys.get(instanceId)!;
    const instance = await this.adapter.getProcessInstance(instanceId);
    const key = instance?.businessKey ?? null;
    this.rememberBusinessKey(instanceId, key);
    return key;
  }

  /** Key and name of a definition, or null when the connector does not collect that process. */
  private async definitionOf(definitionId: string | null): Promise<{ key: string; name: string } | null> {
    if (!definitionId) return null;
    const definition = await this.adapter.getProcessDefinition(definitionId);
    if (!definition) return null;
    if (this.keys !== null && !this.keys.includes(definition.key)) return null;
    return { key: definition.key, name: definition.name ?? definition.key };
  }

  private async snapshotOf(task: EngineTaskWithDetails): Promise<TaskSnapshot | null> {
    const definition = await this.definitionOf(task.processDefinitionId);
    if (!definition) return null;
    return taskSnapshotOf(
      { ...task },
      {
        applicationName: this.app,
        processDefinitionKey: definition.key,
        processName: definition.name,
        businessKey: await this.businessKeyOf(task.processInstanceId),
        variables: plainValues(task.variables),
      },
      this.settings.enrichment,
    );
  }

  /**
   * A task from a list: its candidates are read unless the shadow says that nothing changed in the engine since
   * (candidate changes move `lastUpdated`), which keeps reconciliation cheap.
   */
  private async observeListedTask(task: EngineTask, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const shadow = known === undefined ? await this.loadShadow(task.id) : known;
    const marker = markerOf(task);
    let details: EngineTaskWithDetails | null;
    if (shadow && shadow.engineMarker !== null && shadow.engineMarker === marker && task.variables && !this.settings.enrichment.assignment) {
      details = { ...task, candidateUsers: shadow.snapshot.candidateUsers, candidateGroups: shadow.snapshot.candidateGroups, variables: task.variables };
    } else {
      details = await this.adapter.loadTaskDetails(task);
    }
    if (details === null) {
      // Gone between the list and the details: ask the task itself.
      await this.refreshTask(task.id);
      return;
    }
    await this.observeTask(details, shadow, batch);
  }

  private async observeTask(task: EngineTaskWithDetails, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const snapshot = await this.snapshotOf(task);
    if (!snapshot) return;
    const shadow = known === undefined ? await this.loadShadow(task.id) : known;
    // The pool has seen its end already; a late list entry changes nothing.
    if (shadow && shadow.status !== "open") return;
    const marker = markerOf(task);
    const plans = diffTask(shadow?.snapshot ?? null, snapshot);
    if (plans.length === 0) {
      if (shadow && shadow.engineMarker !== marker) await this.keepTaskShadow({ ...shadow, engineMarker: marker }, batch);
      return;
    }
    await this.applyPlans(task.id, shadow, plans, "open", marker, snapshot, batch);
  }

  private async observeFinishedTask(finished: FinishedTask, known?: TaskShadow | null, batch?: ShadowBatch): Promise<void> {
    const shadow = known === undefined ? await this.loadShadow(finished.id) : known;
    if (shadow && shadow.status !== "open") return;
    let snapshot: TaskSnapshot | null = null;
    if (!shadow) {
      // Created and ended between two polls (or before an import caught it): report it whole, then its end.
      const definition = await this.definitionOf(finished.processDefinitionId);
      if (!definition || !finished.processInstanceId || !finished.processDefinitionId) return;
      const [variables, candidates] = await Promise.all([
        this.adapter.getProcessVariables(finished.processInstanceId),
        this.adapter.getFinishedTaskCandidates(finished.id),
      ]);
      snapshot = taskSnapshotOf(
        {
          id: finished.id,
          taskDefinitionKey: finished.taskDefinitionKey,
          name: finished.name,
          description: finished.description,
          formKey: null,
          assignee: finished.assignee,
          owner: finished.owner,
          priority: finished.priority,
          createTime: finished.startTime,
          dueDate: finished.dueDate,
          followUpDate: finished.followUpDate,
          processInstanceId: finished.processInstanceId,
          executionId: finished.executionId,
          processDefinitionId: finished.processDefinitionId,
          tenantId: finished.tenantId,
          ...candidates,
        },
        {
          applicationName: this.app,
          processDefinitionKey: definition.key,
          processName: definition.name,
          businessKey: await this.businessKeyOf(finished.processInstanceId),
          variables: plainValues(variables),
        },
        this.settings.enrichment,
      );
    }
    const plans = finishTask(shadow?.snapshot ?? null, { outcome: finished.outcome, assignee: finished.assignee, deleteReason: finished.deleteReason, snapshot });
    if (plans.length === 0) return;
    await this.applyPlans(finished.id, shadow, plans, finished.outcome, finished.endTime, null, batch);
  }

  /**
   * Sends the commands of one task in order and keeps the new shadow. Command ids combine the pool's stream
   * version with the command's content: a retry of the same change is recognised, a later equal-looking change
   * (after the version moved) is not mistaken for it.
   */
  private async applyPlans(
    taskId: string,
    shadow: TaskShadow | null,
    plans: TaskCommandPlan[],
    status: TaskShadow["status"],
    marker: string | null,
    snapshot: TaskSnapshot | null,
    batch?: ShadowBatch,
  ): Promise<void> {
    let version = shadow?.streamVersion ?? 0;
    let applied: TaskSnapshot | null = shadow?.snapshot ?? null;
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i]!;
      const commandId = this.commandId("task", taskId, `v${version}`, plan.action, hashOf(plan.params));
      try {
        const result = await this.send(`task.${plan.action}`, plan.params as unknown as Record<string, unknown>, commandId);
        version = Math.max(version, result.version);
        applied = applyTaskCommands(applied, [plan]);
      } catch (err) {
        const whole = snapshot ?? applied;
        if (!isErrorOfType(err, "NOT_FOUND") || plan.action === "create" || !whole) throw err;
        // The pool does not know the task (its store was reset): report it whole again, then go on — an open
        // task's create absorbs the rest, an end is reported after it.
        this.logger.warn(`Engine connector ${this.app}: the pool has no task ${taskId}; creating it again`);
        const result = await this.send("task.create", { ...whole, enriched: true }, this.commandId("task", taskId, "recreate", hashOf(whole)));
        version = result.version;
        applied = whole;
        if (snapshot) break;
        i--;
      }
    }
    const finalSnapshot = snapshot ?? applied;
    if (!finalSnapshot) return;
    await this.keepTaskShadow(
      { taskId, status, processInstanceId: finalSnapshot.sourceReference.instanceId, snapshot: finalSnapshot, streamVersion: version, engineMarker: marker },
      batch,
    );
  }

  /**
   * Keeps a shadow: now, or with the rest of a page in one statement. A crash before a page's shadows are
   * written costs nothing but a re-read: the pool's stream tells what was sent.
   */
  private async keepTaskShadow(shadow: TaskShadow, batch?: ShadowBatch): Promise<void> {
    if (batch) batch.tasks.set(shadow.taskId, shadow);
    else await this.db().saveTask(shadow);
  }

  private async keepInstanceShadow(shadow: InstanceShadow, batch?: ShadowBatch): Promise<void> {
    if (batch) batch.instances.set(shadow.instanceId, shadow);
    else await this.db().saveInstance(shadow);
  }

  private async flush(batch: ShadowBatch): Promise<void> {
    await this.db().saveTasks([...batch.tasks.values()]);
    await this.db().saveInstances([...batch.instances.values()]);
    batch.tasks.clear();
    batch.instances.clear();
  }

  /** Reads one task now: open → diff; gone → how it ended, from history. Never concludes an end from absence alone. */
  async refreshTask(taskId: string): Promise<void> {
    const task = await this.adapter.getTask(taskId);
    if (task) {
      const details = await this.adapter.loadTaskDetails(task);
      if (details) {
        await this.observeTask(details);
        return;
      }
    }
    const finished = await this.adapter.getFinishedTask(taskId);
    if (finished) await this.observeFinishedTask(finished);
  }

  /** Re-reads the open tasks of one instance (their payload follows its variables). */
  private async refreshTasksOfInstance(instanceId: string): Promise<void> {
    const engineIds = new Set<string>();
    for (let firstResult = 0; ; firstResult += this.settings.pageSize) {
      const page = await this.adapter.listOpenTasks({ firstResult, maxResults: this.settings.pageSize, processDefinitionKeys: this.keys, processInstanceId: instanceId });
      for (const task of page.rows) {
        engineIds.add(task.id);
        await this.observeListedTask(task);
      }
      if (page.done) break;
    }
    // Tasks of the instance the pool holds open but the engine no longer lists: ask each.
    for (const taskId of await this.db().openTaskIdsOfInstance(instanceId)) {
      if (!engineIds.has(taskId)) await this.refreshTask(taskId);
    }
  }

  // Reconciliation -----------------------------------------------------------------------------------------------------------

  /** Walks everything open in the engine and everything open in the shadows, and repairs the differences. */
  async reconcile(): Promise<void> {
    const started = Date.now();
    this.businessKeys.clear();
    if (this.settings.collectProcessDefinitions) await this.registerDefinitions(null, true);
    // Instances first: their listing also gives the business keys the tasks need.
    if (this.settings.collectProcessInstances) await this.reconcileInstances();
    const listed = new Set<string>();
    for (let firstResult = 0; !this.stopping; firstResult += this.settings.pageSize) {
      const page = await this.adapter.listOpenTasks({ firstResult, maxResults: this.settings.pageSize, processDefinitionKeys: this.keys });
      for (const task of page.rows) listed.add(task.id);
      const shadows = await this.loadShadows(page.rows.map((t) => t.id));
      await this.primeBusinessKeys(page.rows.map((t) => t.processInstanceId));
      const batch = newBatch();
      // Everything is read again (no shortcut on unchanged markers): this is what repairs a change the feeds
      // could not tell apart, such as two changes of one task within one millisecond.
      const failures = await forEachLimited(page.rows, this.settings.concurrency, async (task) => {
        const shadow = shadows.get(task.id) ?? null;
        if (shadow && shadow.status !== "open") return;
        const details = await this.adapter.loadTaskDetails(task);
        if (details) await this.observeTask(details, shadow, batch);
        else await this.confirmTaskGone(task.id);
      });
      await this.flush(batch);
      this.throwTransient(failures, "reconciliation");
      if (page.done) break;
    }
    // Open in the pool, not listed by the engine: confirm one by one (a 404 of the task itself, then history).
    let after: string | null = null;
    for (;;) {
      const ids = await this.db().openTaskIds(after, 500);
      if (ids.length === 0) break;
      for (const taskId of ids) if (!listed.has(taskId)) await this.confirmTaskGone(taskId);
      after = ids[ids.length - 1]!;
    }
    this.lastReconcile = Date.now();
    this.reconcileRetryAt = null;
    this.status.reconciliations++;
    this.status.lastReconcileAt = new Date().toISOString();
    this.logger.info(`Engine connector ${this.app}: reconciled ${listed.size} open tasks in ${Date.now() - started} ms`);
  }


  /** Records permanent rejections and throws the first other failure. */
  private throwTransient(failures: { item: unknown; error: unknown }[], where: string): void {
    for (const failure of failures) if (isPermanentRejection(failure.error)) this.recordError(`${where}: the pool refused a change, passed over`, failure.error);
    const transient = failures.find((failure) => !isPermanentRejection(failure.error));
    if (transient) throw transient.error;
  }

  private async confirmTaskGone(taskId: string): Promise<void> {
    const task = await this.adapter.getTask(taskId);
    if (task) {
      const details = await this.adapter.loadTaskDetails(task);
      if (details) return this.observeTask(details);
    }
    const finished = await this.adapter.getFinishedTask(taskId);
    if (finished) return this.observeFinishedTask(finished);
    if (task) return;
    // The engine answered 404 for the task itself and history has nothing (cleaned up, or history off).
    const shadow = await this.loadShadow(taskId);
    if (!shadow || shadow.status !== "open") return;
    if (this.keys !== null && !this.keys.includes(shadow.snapshot.sourceReference.definitionKey)) return;
    const plans = finishTask(shadow.snapshot, { outcome: "deleted", assignee: null, deleteReason: "gone from the engine without history" });
    await this.applyPlans(taskId, shadow, plans, "deleted", null, null);
  }

  private async reconcileInstances(): Promise<void> {
    const listed = new Set<string>();
    for (let firstResult = 0; !this.stopping; firstResult += this.settings.pageSize) {
      const page = await this.adapter.listRunningInstances({ firstResult, maxResults: this.settings.pageSize, processDefinitionKeys: this.keys });
      const shadows = await this.db().getInstances(page.rows.map((i) => i.id));
      const batch = newBatch();
      for (const instance of page.rows) {
        listed.add(instance.id);
        this.rememberBusinessKey(instance.id, instance.businessKey);
      }
      const failures = await forEachLimited(page.rows, this.settings.concurrency, (instance) => this.observeInstance(instance, shadows.get(instance.id) ?? null, batch));
      await this.flush(batch);
      this.throwTransient(failures, "reconciliation");
      if (page.done) break;
    }
    let after: string | null = null;
    for (;;) {
      const ids = await this.db().runningInstanceIds(after, 500);
      if (ids.length === 0) break;
      for (const id of ids) {
        if (listed.has(id)) continue;
        const instance = await this.adapter.getProcessInstance(id);
        if (instance) await this.observeInstance(instance);
      }
      after = ids[ids.length - 1]!;
    }
  }

  // Process definitions ----------------------------------------------------------------------------------------------------

  private async registerDeployment(deploymentId: string): Promise<void> {
    await this.registerDefinitions(deploymentId, false);
  }

  private async registerDefinitions(deploymentId: string | null, latestOnly: boolean): Promise<void> {
    for (let firstResult = 0; ; firstResult += this.settings.pageSize) {
      const page = await this.adapter.listProcessDefinitions({
        firstResult,
        maxResults: this.settings.pageSize,
        processDefinitionKeys: this.keys,
        deploymentId,
        latestVersionOnly: latestOnly,
      });
      this.throwTransient(await handleInOrder(page.rows, (definition) => this.registerDefinition(definition)), "process definitions");
      if (page.done) break;
    }
  }

  private async registerDefinition(definition: ProcessDefinitionInfo): Promise<void> {
    if (this.keys !== null && !this.keys.includes(definition.key)) return;
    const params = {
      processDefinitionId: definition.id,
      processDefinitionKey: definition.key,
      processDefinitionVersion: definition.version,
      applicationName: this.app,
      processName: definition.name ?? definition.key,
      processVersionTag: definition.versionTag,
      processDescription: definition.description,
      formKey: definition.startFormKey,
      // Said explicitly, so that the catalogue never guesses: a start form is needed unless configured optional.
      startsThroughForm: definition.startFormKey !== null && definition.startFormKey !== "" && !this.settings.directStartKeys.includes(definition.key),
      startableFromTasklist: definition.startableInTasklist,
      candidateStarterUsers: definition.candidateStarterUsers,
      candidateStarterGroups: definition.candidateStarterGroups,
    };
    const known = await this.db().getDefinition(definition.id);
    if (known && hashOf(known) === hashOf(params)) return;
    await this.send("processDefinition.register", params, this.commandId("pd", definition.id, hashOf(params)));
    await this.db().saveDefinition(definition.id, params);
  }

  // Process instances ------------------------------------------------------------------------------------------------------

  private async instanceReference(instance: ProcessInstanceInfo): Promise<SourceReference> {
    const definition = await this.adapter.getProcessDefinition(instance.definitionId);
    return sourceReferenceOf(
      { processInstanceId: instance.id, executionId: instance.id, processDefinitionId: instance.definitionId, tenantId: instance.tenantId },
      { applicationName: this.app, processDefinitionKey: instance.definitionKey, processName: instance.definitionName ?? definition?.name ?? instance.definitionKey },
    );
  }

  /** Brings the pool's instance to the engine's state: start when unknown, then suspend, resume, finish or cancel. */
  async observeInstance(instance: ProcessInstanceInfo, known?: InstanceShadow | null, batch?: ShadowBatch): Promise<void> {
    if (this.keys !== null && !this.keys.includes(instance.definitionKey)) return;
    const target: InstanceShadowState =
      instance.state === "ACTIVE" ? "RUNNING" : instance.state === "SUSPENDED" ? "SUSPENDED" : instance.state === "EXTERNALLY_TERMINATED" ? "CANCELLED" : "FINISHED";
    const db = this.db();
    const shadow = known === undefined ? await db.getInstance(instance.id) : known;
    if (shadow && (shadow.state === target || shadow.state === "FINISHED" || shadow.state === "CANCELLED")) return;
    const sourceReference = await this.instanceReference(instance);
    const base = { processInstanceId: instance.id, sourceReference };
    const start = () =>
      this.send(
        "processInstance.start",
        { ...base, businessKey: instance.businessKey, startUserId: instance.startUserId, superInstanceId: instance.superProcessInstanceId, startActivityId: instance.startActivityId },
        this.commandId("pi", instance.id, "start"),
      );
    const transition = async (): Promise<unknown> => {
      switch (target) {
        // Suspend and resume carry no commandId on purpose: an instance may be suspended and resumed many times, so
        // no id names one occurrence; the decider makes them idempotent by state instead (a retried suspend of a
        // suspended instance adds nothing), which is what a retry after a timeout needs.
        case "RUNNING":
          return shadow?.state === "SUSPENDED" ? this.send("processInstance.resume", base) : undefined;
        case "SUSPENDED":
          return this.send("processInstance.suspend", base);
        case "FINISHED":
          return this.send("processInstance.finish", { ...base, businessKey: instance.businessKey, superInstanceId: instance.superProcessInstanceId }, this.commandId("pi", instance.id, "finish"));
        case "CANCELLED":
          return this.send(
            "processInstance.cancel",
            { ...base, businessKey: instance.businessKey, superInstanceId: instance.superProcessInstanceId, deleteReason: instance.deleteReason },
            this.commandId("pi", instance.id, "cancel"),
          );
      }
    };
    if (!shadow) await start();
    try {
      await transition();
    } catch (err) {
      if (!shadow || !isErrorOfType(err, "NOT_FOUND")) throw err;
      // Known here, unknown to the pool (its store was reset): report the start again, then the change.
      await start();
      await transition();
    }
    await this.keepInstanceShadow({ instanceId: instance.id, state: target, snapshot: { definitionKey: instance.definitionKey, businessKey: instance.businessKey } }, batch);
  }

  // Process variables -------------------------------------------------------------------------------------------------------

  /** Reports variable changes per instance (filtered like payloads), then refreshes the payload of its open tasks. */
  private async handleVariableUpdates(rows: VariableUpdate[]): Promise<{ item: unknown; error: unknown }[]> {
    const byInstance = new Map<string, VariableUpdate[]>();
    for (const row of rows) {
      const list = byInstance.get(row.processInstanceId) ?? [];
      list.push(row);
      byInstance.set(row.processInstanceId, list);
    }
    const failures: { item: unknown; error: unknown }[] = [];
    for (const [instanceId, updates] of byInstance) {
      try {
        if (this.settings.collectProcessVariables) await this.reportVariableChanges(instanceId, updates);
        await this.refreshTasksOfInstance(instanceId);
      } catch (error) {
        for (const update of updates) failures.push({ item: update, error });
      }
    }
    return failures;
  }

  private async reportVariableChanges(instanceId: string, updates: VariableUpdate[]): Promise<void> {
    const first = updates[0]!;
    const definition = await this.definitionOf(first.processDefinitionId);
    if (!definition) return;
    const scope = { processDefinitionKey: definition.key };
    const changes: ProcessVariableChange[] = [];
    for (const update of updates) {
      if (!isVariableIncluded(this.settings.enrichment.variableFilters, scope, update.variableName)) continue;
      const scopeActivityInstanceId = update.activityInstanceId ?? instanceId;
      if (update.kind === "delete") {
        changes.push({ kind: "delete", variableInstanceId: update.variableInstanceId, variableName: update.variableName, scopeActivityInstanceId });
      } else if (update.value !== undefined) {
        changes.push({
          kind: update.kind,
          variableInstanceId: update.variableInstanceId,
          variableName: update.variableName,
          revision: update.revision,
          scopeActivityInstanceId,
          value: processVariableValueOf(update.value),
        });
      }
    }
    if (changes.length === 0) return;
    const sourceReference = sourceReferenceOf(
      { processInstanceId: instanceId, executionId: instanceId, processDefinitionId: first.processDefinitionId ?? "", tenantId: null },
      { applicationName: this.app, processDefinitionKey: definition.key, processName: definition.name },
    );
    await this.send("processVariable.change", { sourceReference, variableChanges: changes }, this.commandId("vars", instanceId, hashOf(updates.map((u) => u.id))));
  }

  // Interactions -------------------------------------------------------------------------------------------------------------

  /**
   * The tracking processor's first token: on the application's very first run, the head of the log — earlier
   * interaction events are from before this connector existed and are not performed months late.
   */
  async interactionStartToken(token: string): Promise<string> {
    await this.ready;
    if (token !== START_TOKEN) return token;
    const db = this.db();
    const stored = await db.getMeta<string>("interactionsFrom");
    if (stored) return stored;
    const head = await this.broker.call<{ token: string }>("eventstore.head");
    await db.setMeta("interactionsFrom", head.token);
    return head.token;
  }

  private isOurs(event: RecordedEvent): boolean {
    const data = event.data as { sourceReference?: { applicationName?: string }; applicationName?: string };
    if (event.type === "ProcessStartRequested") return data.applicationName === this.app;
    return data.sourceReference?.applicationName === this.app;
  }

  async handleInteractionEvents(events: RecordedEvent[], replaying: boolean): Promise<void> {
    await this.ready;
    for (const event of events) {
      if (!this.isOurs(event)) continue;
      if (this.stopping) throw new Error("stopping");
      // A reset replays old intents; performing them again would redo what users did long ago.
      if (replaying) continue;
      await this.exclusive(async () => {
        const record = await this.db().getInteraction(event.eventId);
        if (record && record.outcome !== "pending") return;
        await this.performInteraction(event, record !== null);
      });
    }
  }

  /** Retries what failed for a transient reason (engine unreachable, concurrent change) a few times. */
  private async engineCall<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (!isEngineError(err) || (err.kind !== "unavailable" && err.kind !== "retry") || attempt >= 4 || this.stopping) throw err;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  private async refuse(event: RecordedEvent, interaction: InteractionName, reason: string, username: string | null): Promise<void> {
    const data = event.data as { id: string };
    this.logger.info(`Engine connector ${this.app}: ${interaction} of task ${data.id} refused: ${reason}`);
    try {
      await this.send("task.reportInteractionRefused", { id: data.id, interaction, reason: reason.slice(0, 2000), username }, this.commandId("refused", event.eventId));
    } catch (err) {
      // The pool no longer has the task: nobody to tell.
      if (!isErrorOfType(err, "NOT_FOUND")) throw err;
    }
    await this.db().saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "refused", detail: { reason } });
  }

  private async performInteraction(event: RecordedEvent, retried: boolean): Promise<void> {
    if (event.type === "ProcessStartRequested") return this.performStart(event, retried);
    const data = event.data as { id: string; assignee?: string | null; previousAssignee?: string; followUpDate?: string; payload?: JsonObject };
    const actor = typeof event.metadata?.actor === "string" ? event.metadata.actor : null;
    const taskId = data.id;
    let interaction: InteractionName;
    let username: string | null;
    let perform: () => Promise<void>;
    switch (event.type) {
      case "TaskClaimed":
        interaction = "claim";
        username = data.assignee ?? actor;
        perform = () => this.adapter.claim(taskId, data.assignee!);
        break;
      case "TaskUnclaimed":
        interaction = "unclaim";
        username = data.previousAssignee ?? actor;
        perform = async () => {
          const task = await this.adapter.getTask(taskId);
          if (!task || task.assignee === null) return;
          // Give back only the claim the user saw; someone else's newer claim is not theirs to drop.
          if (data.previousAssignee && task.assignee !== data.previousAssignee) {
            throw new EngineError("conflict", `task ${taskId} is claimed by ${task.assignee}`, { reason: `the task is claimed by ${task.assignee} in the engine, not by ${data.previousAssignee}` });
          }
          await this.adapter.unclaim(taskId);
        };
        break;
      case "TaskDeferred":
        interaction = "defer";
        username = actor;
        perform = () => this.adapter.setFollowUpDate(taskId, data.followUpDate!);
        break;
      case "TaskUndeferred":
        interaction = "undefer";
        username = actor;
        perform = () => this.adapter.setFollowUpDate(taskId, null);
        break;
      case "TaskToBeCompleted":
        interaction = "complete";
        username = data.assignee ?? actor;
        perform = async () => {
          const task = await this.adapter.getTask(taskId);
          if (!task) throw new EngineError("gone", `task ${taskId} is not open`);
          const completer = data.assignee ?? null;
          if (completer && task.assignee && task.assignee !== completer) {
            throw new EngineError("conflict", `task ${taskId} is claimed by ${task.assignee}`, { reason: `the task is claimed by ${task.assignee} in the engine` });
          }
          // The engine records who completed through the assignee.
          if (completer && !task.assignee) await this.adapter.claim(taskId, completer);
          await this.adapter.complete(taskId, data.payload ?? {});
        };
        break;
      default:
        return;
    }
    try {
      await this.engineCall(perform);
      await this.db().saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "performed", detail: { taskId } });
    } catch (err) {
      if (!isEngineError(err)) throw err;
      if (err.kind === "gone") {
        // The task ended in the engine meanwhile (perhaps by an earlier delivery of this very event); the
        // refresh below reports how, which tells the user more than a refusal would.
        await this.db().saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: retried ? "performed" : "gone", detail: { taskId } });
      } else {
        let reason = err.reason;
        if (err.kind === "conflict" && interaction === "claim") {
          const holder = (await this.adapter.getTask(taskId).catch(() => null))?.assignee;
          reason = holder ? `the task is already claimed by ${holder} in the engine` : reason;
        }
        await this.refuse(event, interaction, reason, username ?? null);
      }
    }
    // Read-your-writes: the pool sees the engine's answer now, not at the next poll — after a completion also
    // the tasks the process moved on to.
    await this.refreshTask(taskId).catch((err) => this.recordError(`refresh of task ${taskId}`, err));
    const instanceId = (event.data as { sourceReference?: { instanceId?: string } }).sourceReference?.instanceId;
    if (interaction === "complete" && instanceId) {
      await this.refreshTasksOfInstance(instanceId).catch((err) => this.recordError(`refresh of instance ${instanceId}`, err));
    }
  }

  private async performStart(event: RecordedEvent, retried: boolean): Promise<void> {
    const data = event.data as { processDefinitionId: string; businessKey: string | null; variables: JsonObject; requestId: string; requestedBy: string };
    const db = this.db();
    const variable = this.settings.requestIdVariable;
    let instanceId: string | null = null;
    if (retried && variable) {
      // An earlier delivery may have started it before the connector stopped.
      instanceId = (await this.engineCall(() => this.adapter.findInstancesByVariable(variable, data.requestId)))[0] ?? null;
    }
    if (!instanceId) {
      await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "pending", detail: { requestId: data.requestId } });
      const variables: Payload = { ...data.variables };
      if (variable) variables[variable] = data.requestId;
      try {
        instanceId = (await this.engineCall(() => this.adapter.startProcess({ processDefinitionId: data.processDefinitionId, businessKey: data.businessKey, variables }))).processInstanceId;
      } catch (err) {
        if (!isEngineError(err) || err.kind === "unavailable" || err.kind === "retry") throw err;
        // The engine will not start it (bad variables, suspended or unknown definition, …): the requester learns
        // why through ProcessStartRefused, as a refused task interaction does.
        this.logger.info(`Engine connector ${this.app}: start of ${data.processDefinitionId} requested by ${data.requestedBy} (request ${data.requestId}) refused: ${err.reason}`);
        await this.send(
          "processDefinition.reportStartRefused",
          { processDefinitionId: data.processDefinitionId, requestId: data.requestId, requestedBy: data.requestedBy, reason: (err.reason || err.message).slice(0, 2000) },
          this.commandId("start-refused", event.eventId),
        );
        await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "refused", detail: { requestId: data.requestId, reason: err.reason } });
        return;
      }
    }
    await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "performed", detail: { requestId: data.requestId, processInstanceId: instanceId } });
    try {
      const instance = await this.adapter.getProcessInstance(instanceId);
      if (instance && this.settings.collectProcessInstances) await this.observeInstance(instance);
      await this.refreshTasksOfInstance(instanceId);
    } catch (err) {
      this.recordError(`refresh of instance ${instanceId}`, err);
    }
  }

  // Status -------------------------------------------------------------------------------------------------------------------

  async statusNow(): Promise<EngineConnectorStatus> {
    const db = this.db();
    const [feeds, window, tasks, instances, definitions, interactions] = await Promise.all([
      db.feeds(),
      db.countSeen(),
      db.countTasks(),
      db.countInstances(),
      db.countDefinitions(),
      db.countInteractions(),
    ]);
    return {
      applicationName: this.app,
      owner: this.owner,
      leased: this.leased,
      engine: { url: this.settings.engineUrl, product: this.status.product, version: this.status.version, reachable: this.status.reachable },
      polls: this.status.polls,
      lastPollAt: this.status.lastPollAt,
      lastPollMs: this.status.lastPollMs,
      reconciliations: this.status.reconciliations,
      lastReconcileAt: this.status.lastReconcileAt,
      feeds: Object.fromEntries(feeds.map((f) => [f.feed, { watermark: f.watermark, bootstrapped: f.bootstrapped, window: window[f.feed] ?? 0 }])),
      counts: { tasks, instances, definitions, interactions, commandsSent: this.status.commandsSent, commandsFailed: this.status.commandsFailed },
      errors: [...this.status.errors],
    };
  }
}

// The service ------------------------------------------------------------------------------------------------------------

export interface EngineConnectorOptions {
  /** Service name (default `engineConnector`). */
  name?: string;
  /** Overrides of the settings read from the environment. */
  settings?: Partial<EngineConnectorSettings>;
  /** The engine, when not Operaton / Camunda 7 at `engineUrl` (e.g. the embedded engine). */
  adapter?: EngineAdapter | ((settings: EngineConnectorSettings) => EngineAdapter);
  /** Tracking processor options for the interaction events (lease, retries). */
  processor?: Partial<Omit<TrackingProcessorOptions, "processor" | "eventTypes">>;
  /** Read settings from this environment instead of process.env. */
  env?: NodeJS.ProcessEnv;
}

function resolveSettings(options: EngineConnectorOptions): EngineConnectorSettings {
  const fromEnv = engineConnectorSettingsFromEnv(options.env ?? process.env);
  const merged = { ...DEFAULTS, engineUrl: null, databaseUrl: null, pgliteDir: "memory", applicationName: "", ...fromEnv, ...options.settings };
  if (options.settings?.applicationName && !options.settings.pgliteDir && !options.settings.databaseUrl && fromEnv.pgliteDir) {
    merged.pgliteDir = embeddedDatabaseDirectory(readEnvironment(options.env ?? process.env).dataDir);
  }
  return merged as EngineConnectorSettings;
}

/** The `engineConnector` service for one application. */
export function createEngineConnector(options: EngineConnectorOptions = {}): ServiceSchema {
  const settings = resolveSettings(options);
  return {
    name: options.name ?? "engineConnector",
    settings: {
      // Shown by $node.services; the password stays out.
      $secureSettings: ["enginePassword"],
      ...settings,
    },
    mixins: [
      TrackingProcessorMixin({
        onError: "park",
        attempts: 5,
        retryDelayMs: 500,
        ...options.processor,
        processor: `engine-connector:${settings.applicationName || "unconfigured"}`,
        eventTypes: INTERACTION_EVENT_TYPES,
      }),
    ],

    actions: {
      /** The connector's watermarks, last poll, counts and recent errors. */
      status: {
        async handler(this: any): Promise<EngineConnectorStatus> {
          await this.connector.ready;
          return this.connector.statusNow();
        },
      },
      /** Polls the engine now (and reconciles everything when asked); answers with the status afterwards. */
      sync: {
        params: { reconcile: { type: "boolean", optional: true, default: false } },
        async handler(this: any, ctx: Context<{ reconcile: boolean }>): Promise<EngineConnectorStatus> {
          await this.connector.ready;
          return this.connector.sync(ctx.params.reconcile);
        },
      },
    },

    methods: {
      async handleEvents(this: any, events: RecordedEvent[], context: { replaying: boolean }): Promise<void> {
        await this.connector.handleInteractionEvents(events, context.replaying);
      },
      async loadProcessorToken(this: any, token: string): Promise<string> {
        return this.connector.interactionStartToken(token);
      },
    },

    created(this: any) {
      if (!settings.applicationName) throw new Error("engineConnector: APPLICATION_NAME (settings.applicationName) is required");
      let adapter: EngineAdapter;
      if (typeof options.adapter === "function") adapter = options.adapter(settings);
      else if (options.adapter) adapter = options.adapter;
      // No engine URL: the in-process engine its application registered (embedded platform); `started` waits for it.
      else if (!settings.engineUrl) adapter = registeredEngineAdapter(settings.applicationName);
      else {
        adapter = new OperatonAdapter({
          baseUrl: settings.engineUrl,
          username: settings.engineUsername,
          password: settings.enginePassword,
          timeoutMs: settings.requestTimeoutMs,
        });
      }
      this.connector = new EngineConnector({ broker: this.broker, logger: this.logger, settings, adapter });
    },

    async started(this: any) {
      if (!options.adapter && !settings.engineUrl) await engineOf(settings.applicationName);
      await this.connector.start();
    },

    async stopped(this: any) {
      // The interaction processor first (it may wait for the connector), then the connector.
      await this.stopProcessorLoop();
      await this.connector.stop();
    },
  };
}

export default createEngineConnector();
