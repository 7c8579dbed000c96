// The engine connector itself, without Moleculer: one process application's bridge between its BPMN engine and
// the task pool. services/engine-connector.service.ts wires it into the broker; everything it needs of the
// platform comes in as parameters (a `call` of the pool's actions, a logger, the node id, its settings and its
// engine adapter), so that it runs as well under a test with fakes.
//
// Engine → pool: change capture by polling (camunda.md §1.5). Each change feed of the engine adapter (open
// tasks, finished tasks, deployments, started and finished instances, instance suspensions, variable updates;
// feeds.ts) is read from its watermark minus an overlap window, rows already handled are skipped
// (de-duplication window, change-window.ts), and the watermark moves to the newest *engine* timestamp handled.
// Tasks are diffed against their shadows (tasks.ts); definitions, instances and variables are reported
// (processes.ts). Reconciliation (at start and periodically) walks all open tasks and running instances to
// repair what the feeds cannot see; the first start imports the tasks that existed before. All state
// (watermarks, windows, shadows) is persisted per application (connector-state.ts), so a restart neither
// replays everything nor misses anything; a shadow lost or never written is recovered from the pool's own
// stream, so a crash between sending and saving does not double anything.
//
// Pool → engine: the application's interaction events, performed once each (interactions.ts), serialized with
// the polls so that both never work on the same shadows at once.
import { START_TOKEN } from "../../lib/tokens.ts";
import { sleep } from "../../lib/sleep.ts";
import type { RecordedEvent } from "../../stores/event-store.ts";
import { advanceWatermark, evictBefore, readFrom, rowsToHandle, type ChangeRow } from "./change-window.ts";
import { ConnectorState } from "./connector-state.ts";
import {
  isEngineError,
  type DeploymentInfo,
  type EngineAdapter,
  type EngineTask,
  type FeedName,
  type FinishedTask,
  type InstanceOperation,
  type ProcessInstanceInfo,
  type VariableUpdate,
} from "./engine-adapter.ts";
import { changeRowOf, FEED_ORDER, feedEnabled, readFeed, type FeedRow, type FeedRows } from "./feeds.ts";
import { isOwnInteraction, performInteraction, type InteractionHost } from "./interactions.ts";
import { ProcessSync } from "./processes.ts";
import type { EngineConnectorSettings } from "./settings.ts";
import { commandIdOf, isPermanentRejection, messageOf, type Failure } from "./support.ts";
import type { CommandResult, ConnectorLogger, ShadowBatch, SyncContext } from "./sync-context.ts";
import type { ActionCall, ActionParams, CommandName } from "../../lib/actions.ts";
import { TaskSync } from "./tasks.ts";

export type { ConnectorLogger } from "./sync-context.ts";

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

export interface ConnectorDependencies {
  call: ActionCall;
  logger: ConnectorLogger;
  /** The node this connector runs on: with the application, it names the connector's polling lease. */
  nodeId: string;
  settings: EngineConnectorSettings;
  adapter: EngineAdapter;
}

/** Everything but the Moleculer wiring: polling, diffing, sending, performing interactions. */
export class EngineConnector {
  readonly settings: EngineConnectorSettings;
  readonly adapter: EngineAdapter;
  private readonly call: ActionCall;
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
  private readonly interactionHost: InteractionHost;
  private readonly tasks: TaskSync;
  private readonly processes: ProcessSync;
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
    const ctx: SyncContext = {
      app: this.app,
      settings: this.settings,
      adapter: this.adapter,
      logger: this.logger,
      keys: this.keys,
      state: () => this.db(),
      isStopping: () => this.stopping,
      call: this.call,
      send: (action, params, commandId) => this.send(action, params, commandId),
      commandId: (...parts) => this.commandId(...parts),
      recordError: (where, err) => this.recordError(where, err),
      throwTransient: (failures, where) => this.throwTransient(failures, where),
      flush: (batch) => this.flush(batch),
    };
    this.tasks = new TaskSync(ctx);
    this.processes = new ProcessSync(ctx, this.tasks);
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
      refreshTask: (taskId) => this.tasks.refreshTask(taskId),
      refreshTasksOfInstance: (instanceId) => this.tasks.refreshTasksOfInstance(instanceId),
      observeInstance: (instance) => this.processes.observeInstance(instance),
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
    switch (feed) {
      case "tasks":
        return this.tasks.handleListed(rows as EngineTask[]);
      case "finishedTasks":
        return this.tasks.handleFinished(rows as FinishedTask[]);
      case "deployments":
        return this.processes.handleDeployments(rows as DeploymentInfo[]);
      case "startedInstances":
      case "finishedInstances":
        return this.processes.handleInstances(rows as ProcessInstanceInfo[]);
      case "instanceOperations":
        return this.processes.handleOperations(rows as InstanceOperation[]);
      case "variableUpdates":
        return this.processes.handleVariableUpdates(rows as VariableUpdate[]);
    }
  }

  // Commands ---------------------------------------------------------------------------------------------------------------

  private async send<A extends CommandName>(action: A, params: ActionParams<A>, commandId?: string): Promise<CommandResult> {
    try {
      const result = await this.call(action, commandId ? { ...params, commandId } : params);
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

  private async flush(batch: ShadowBatch): Promise<void> {
    await this.db().saveTasks([...batch.tasks.values()]);
    await this.db().saveInstances([...batch.instances.values()]);
    batch.tasks.clear();
    batch.instances.clear();
  }

  // Reconciliation -----------------------------------------------------------------------------------------------------------

  /** Walks everything open in the engine and everything open in the shadows, and repairs the differences. */
  async reconcile(): Promise<void> {
    const started = Date.now();
    this.tasks.forgetBusinessKeys();
    if (this.settings.collectProcessDefinitions) await this.processes.registerDefinitions(null, true);
    // Instances first: their listing also gives the business keys the tasks need.
    if (this.settings.collectProcessInstances) await this.processes.reconcileInstances();
    const listed = await this.tasks.reconcile();
    this.lastReconcile = Date.now();
    this.reconcileRetryAt = null;
    this.status.reconciliations++;
    this.status.lastReconcileAt = new Date().toISOString();
    this.logger.info(`Engine connector ${this.app}: reconciled ${listed} open tasks in ${Date.now() - started} ms`);
  }

  /** Records permanent rejections and throws the first other failure. */
  private throwTransient(failures: readonly Failure<unknown>[], where: string): void {
    for (const failure of failures) if (isPermanentRejection(failure.error)) this.recordError(`${where}: the pool refused a change, passed over`, failure.error);
    const transient = failures.find((failure) => !isPermanentRejection(failure.error));
    if (transient) throw transient.error;
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
    const head = await this.call("eventstore.head", {});
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
