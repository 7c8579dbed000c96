// The engine connector itself, without Moleculer: one process application's bridge between its BPMN engine and
// the task pool. services/engine-connector.service.ts wires it into the broker; everything it needs of the
// platform comes in as parameters (a `call` of the pool's actions, a logger, the node id, its settings and its
// engine adapter), so that it runs as well under a test with fakes.
//
// Engine → pool: change capture by polling (camunda.md §1.5). Each change feed of the engine adapter (open
// tasks, finished tasks, deployments, started and finished instances, instance suspensions, variable updates;
// feeds.ts) is read from its watermark minus an overlap window, rows already handled are skipped
// (de-duplication window, change-window.ts), and the watermark moves to the newest *engine* timestamp handled.
// Every open task is turned into the pool's snapshot (variable filters, correlations, assignment from variables:
// enrichment.ts) and diffed against its shadow, the snapshot the pool was last told (task-diff.ts); the
// smallest ordered set of commands goes to the `task` service. A task is never declared gone because a list
// lacks it: only a 404 of the task itself, with history saying how it ended, ends it. Reconciliation (at start
// and periodically) walks all open tasks and running instances to repair what the feeds cannot see; the first
// start imports the tasks that existed before. All state (watermarks, windows, shadows) is persisted per
// application (connector-state.ts), so a restart neither replays everything nor misses anything; a shadow lost
// or never written is recovered from the pool's own stream, so a crash between sending and saving does not
// double anything.
//
// Pool → engine: the application's interaction events, performed once each (interactions.ts), serialized with
// the polls so that both never work on the same shadows at once.
import { fold } from "../../domain/decider.ts";
import type { ProcessVariableChange } from "../../domain/process-variables.ts";
import { taskDecider, taskStreamId, type TaskEvent, type TaskSnapshot } from "../../domain/task.ts";
import type { SourceReference } from "../../domain/types.ts";
import { plainValues, processVariableValueOf } from "../../domain/engine/variables.ts";
import { isErrorOfType } from "../../lib/errors.ts";
import { sleep } from "../../lib/sleep.ts";
import { START_TOKEN } from "../../lib/tokens.ts";
import type { RecordedEvent } from "../../stores/event-store.ts";
import { advanceWatermark, evictBefore, readFrom, rowsToHandle, type ChangeRow } from "./change-window.ts";
import { ConnectorState, type InstanceShadow, type InstanceShadowState, type TaskShadow } from "./connector-state.ts";
import {
  isEngineError,
  type DeploymentInfo,
  type EngineAdapter,
  type EngineTask,
  type EngineTaskWithDetails,
  type FeedName,
  type FinishedTask,
  type InstanceOperation,
  type ProcessDefinitionInfo,
  type ProcessInstanceInfo,
  type VariableUpdate,
} from "./engine-adapter.ts";
import { isVariableIncluded } from "./enrichment.ts";
import { changeRowOf, FEED_ORDER, feedEnabled, readFeed, type FeedRow, type FeedRows } from "./feeds.ts";
import { isOwnInteraction, performInteraction, type InteractionHost } from "./interactions.ts";
import type { EngineConnectorSettings } from "./settings.ts";
import { commandIdOf, forEachLimited, handleInOrder, hashOf, isPermanentRejection, markerOf, messageOf, type Failure } from "./support.ts";
import { applyTaskCommands, diffTask, finishTask, sourceReferenceOf, taskSnapshotOf, type TaskCommandPlan } from "./task-diff.ts";

interface CommandResult {
  version: number;
  globalPosition: number;
  events: string[];
}

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

/** The messages the connector logs. */
export interface ConnectorLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Calls an action of the platform (a command of the pool, a read of the event store) and answers with its result. */
export type CallAction = <R>(action: string, params?: object) => Promise<R>;

export interface ConnectorDependencies {
  call: CallAction;
  logger: ConnectorLogger;
  /** The node this connector runs on: with the application, it names the connector's polling lease. */
  nodeId: string;
  settings: EngineConnectorSettings;
  adapter: EngineAdapter;
}

/** Shadows collected while handling one page, written together at its end. */
interface ShadowBatch {
  tasks: Map<string, TaskShadow>;
  instances: Map<string, InstanceShadow>;
}

function newBatch(): ShadowBatch {
  return { tasks: new Map(), instances: new Map() };
}

/** Everything but the Moleculer wiring: polling, diffing, sending, performing interactions. */
export class EngineConnector {
  readonly settings: EngineConnectorSettings;
  readonly adapter: EngineAdapter;
  private readonly call: CallAction;
  private readonly logger: ConnectorLogger;
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
  private readonly interactionHost: InteractionHost;
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

  constructor(options: ConnectorDependencies) {
    this.call = options.call;
    this.logger = options.logger;
    this.settings = options.settings;
    this.adapter = options.adapter;
    // Stable across restarts of the same node: a restarted node takes its lease back at once.
    this.owner = `${options.nodeId}/${options.settings.applicationName}`;
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Nobody may be waiting yet; the rejection is observed by whoever awaits `ready` later.
    this.ready.catch(() => undefined);
    this.interactionHost = {
      applicationName: this.app,
      settings: this.settings,
      adapter: this.adapter,
      logger: this.logger,
      state: () => this.db(),
      isStopping: () => this.stopping,
      send: (action, params, commandId) => this.send(action, params, commandId),
      commandId: (...parts) => this.commandId(...parts),
      recordError: (where, err) => this.recordError(where, err),
      refreshTask: (taskId) => this.refreshTask(taskId),
      refreshTasksOfInstance: (instanceId) => this.refreshTasksOfInstance(instanceId),
      observeInstance: (instance) => this.observeInstance(instance),
    };
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
    for (const feed of FEED_ORDER) if (feedEnabled(this.settings, feed)) await this.bootstrapFeed(feed);
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
      if (!feedEnabled(this.settings, feed)) continue;
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

  // Feeds -----------------------------------------------------------------------------------------------------------------

  /**
   * Reads one feed from its watermark minus the overlap, handles the rows not handled before, and moves the
   * watermark. On its first run a feed either imports (tasks: a null watermark reads everything open) or starts
   * after what exists (history feeds: their past is not news).
   */
  private async bootstrapFeed<F extends FeedName>(feed: F): Promise<void> {
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
        await db.markSeen(feed, existing.map((row) => changeRowOf(feed, row)));
        current.watermark = newest;
      }
    }
    await db.saveFeed({ ...current, bootstrapped: true });
  }

  private async pollFeed<F extends FeedName>(feed: F): Promise<void> {
    const db = this.db();
    const { overlapMs, pageSize } = this.settings;
    const current = await db.feed(feed);
    const since = readFrom(current.watermark, overlapMs);
    const handled: ChangeRow[] = [];
    let failedAt: string | null = null;
    for (let firstResult = 0; !this.stopping; firstResult += pageSize) {
      const page = await readFeed(this.adapter, feed, { since, firstResult, maxResults: pageSize, processDefinitionKeys: this.keys });
      // Rows of other processes count as handled: nothing to do for them.
      if (page.newest) handled.push({ key: "", time: page.newest });
      const described = page.rows.map((row) => ({ row, ...changeRowOf(feed, row) }));
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

  private async readAll<F extends FeedName>(feed: F, since: string | null): Promise<FeedRows[F][]> {
    const rows: FeedRows[F][] = [];
    for (let firstResult = 0; ; firstResult += this.settings.pageSize) {
      const page = await readFeed(this.adapter, feed, { since, firstResult, maxResults: this.settings.pageSize, processDefinitionKeys: this.keys });
      rows.push(...page.rows);
      if (page.done) return rows;
    }
  }

  private async handleRows(feed: FeedName, rows: FeedRow[]): Promise<{ failed: Set<FeedRow>; error: unknown }> {
    const all = await this.handleRowsOf(feed, rows);
    const failures: Failure<FeedRow>[] = [];
    for (const failure of all) {
      if (isPermanentRejection(failure.error)) this.recordError(`feed ${feed}: the pool refused a change, passed over`, failure.error);
      else failures.push(failure);
    }
    return { failed: new Set(failures.map((f) => f.item)), error: failures[0]?.error };
  }

  private async handleRowsOf(feed: FeedName, rows: FeedRow[]): Promise<Failure<FeedRow>[]> {
    const failures: Failure<FeedRow>[] = [];
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
        failures.push(...(await handleInOrder(rows as DeploymentInfo[], (row) => this.registerDeployment(row.id))));
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
          ...(await handleInOrder(rows as InstanceOperation[], async (row) => {
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

  private async send(action: string, params: object, commandId?: string): Promise<CommandResult> {
    try {
      const result = await this.call<CommandResult>(action, commandId ? { ...params, commandId } : params);
      this.status.commandsSent++;
      return result;
    } catch (err) {
      this.status.commandsFailed++;
      throw err;
    }
  }

  private commandId(...parts: (string | number)[]): string {
    return commandIdOf(this.app, ...parts);
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
    const stream = await this.call<{ streamVersion: number; events: RecordedEvent[] }>("eventstore.readStream", {
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
        const result = await this.send(`task.${plan.action}`, plan.params, commandId);
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
  async refreshTasksOfInstance(instanceId: string): Promise<void> {
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
  private throwTransient(failures: readonly Failure<unknown>[], where: string): void {
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
  private async handleVariableUpdates(rows: VariableUpdate[]): Promise<Failure<VariableUpdate>[]> {
    const byInstance = new Map<string, VariableUpdate[]>();
    for (const row of rows) {
      const list = byInstance.get(row.processInstanceId) ?? [];
      list.push(row);
      byInstance.set(row.processInstanceId, list);
    }
    const failures: Failure<VariableUpdate>[] = [];
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
    const head = await this.call<{ token: string }>("eventstore.head");
    await db.setMeta("interactionsFrom", head.token);
    return head.token;
  }

  async handleInteractionEvents(events: RecordedEvent[], replaying: boolean): Promise<void> {
    await this.ready;
    for (const event of events) {
      if (!isOwnInteraction(event, this.app)) continue;
      if (this.stopping) throw new Error("stopping");
      // A reset replays old intents; performing them again would redo what users did long ago.
      if (replaying) continue;
      await this.exclusive(async () => {
        const record = await this.db().getInteraction(event.eventId);
        if (record && record.outcome !== "pending") return;
        await performInteraction(this.interactionHost, event, record !== null);
      });
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
