// Service `view`: projects the event store into a view store and answers every query of the task list, the data
// pool and the process catalogue. Stores (VIEW_STORE): `postgres` (tables with indexes for every query; the
// default, on DATABASE_URL / VIEW_DATABASE_URL or the embedded PGlite database), `mongo` (MONGO_URL; Polyflow's
// mongo-view) and `memory` (rebuilt from the event store at every start).
//
// - A tracking processor ("view"). Shared stores (postgres, mongo): one instance in the cluster writes, every
//   instance answers from the shared store. `memory`: every instance projects its own copy (processor
//   "view@<node>"), so no node ever answers from an empty store.
// - Documents are written idempotently (view/documents.ts, view/projection.ts); the token is kept next to them.
// - Every query accepts `minPosition` and waits, bounded, until the view has applied that global position
//   (view/consistency.ts); the queries themselves are view/queries.ts.
// - After each batch the view broadcasts `view.changed`: what changed and which principals could see it
//   before and after, so that the gateway pushes to exactly those users.
// - `view.replay` rebuilds everything from position zero into a new generation of collections while the
//   current one keeps answering, then switches (view/replay.ts); no query sees a half-built generation.
// This is the view's Moleculer shell: actions and their params, events, lifecycle.
import type { Context } from "moleculer";
import { TrackingProcessorMixin, type TrackingProcessorLocals, type TrackingProcessorMethods, type TrackingProcessorSettings } from "../mixins/tracking-processor.mixin.ts";
import { readEnvironment } from "../lib/env.ts";
import { asDependencyOutage, validationError } from "../lib/errors.ts";
import { START_TOKEN } from "../lib/tokens.ts";
import { name } from "../lib/params.ts";
import { defineService } from "../lib/schema.ts";
import { callAction, type ViewPosition } from "../lib/actions.ts";
import type { RecordedEvent } from "../stores/event-store.ts";
import type { User } from "../domain/types.ts";
import type { ViewStore } from "../view/stores/store.ts";
import { UnsupportedFilterError } from "../view/stores/postgres-store.ts";
import { describeViewStore, openViewStore, resolveViewStoreSettings, type ResolvedViewStoreSettings, type ViewStoreSettings } from "../view/stores/open.ts";
import { positionOf } from "../view/generations.ts";
import { ViewProjection, type ViewChange } from "../view/projection.ts";
import { ViewConsistency, type ConsistencyParams } from "../view/consistency.ts";
import { ViewQueries, type AttributeParams, type ByIdParams, type GroupTasksParams, type PagingParams, type UserTasksParams } from "../view/queries.ts";
import { startReplay, type ReplayState } from "../view/replay.ts";

export type { ViewChange } from "../view/projection.ts";
export type { ViewStoreKind } from "../view/stores/open.ts";

export interface ViewSettings extends ViewStoreSettings, TrackingProcessorSettings {
  /** How long a query waits for its minPosition at most, ms. */
  consistencyTimeoutMs?: number;
  /** Old generations are dropped this long after a switch, so queries that started on them can finish. */
  dropDelayMs?: number;
  /** Totals exact up to this many (VIEW_COUNT_CAP); 0: always exact. */
  countCap?: number;
}

interface Locals extends TrackingProcessorLocals {
  config: ResolvedViewStoreSettings & { consistencyTimeoutMs: number; dropDelayMs: number; countCap: number };
  /** Open from `started` on; the processor (which starts first) waits for `storeReady`. */
  store: ViewStore;
  storeReady: Promise<void>;
  markStoreReady: () => void;
  projection: ViewProjection;
  consistency: ViewConsistency;
  queries: ViewQueries;
  replayState: ReplayState | null;
}

// ---- params -------------------------------------------------------------------------------------------------------

const user = {
  type: "object",
  strict: "remove",
  props: { username: name, groups: { type: "array", items: { type: "string", min: 1 }, default: [] } },
};
const optionalUser = { ...user, optional: true };
const consistency = {
  minPosition: { type: "number", integer: true, min: 0, optional: true, convert: true },
  maxWaitMs: { type: "number", integer: true, min: 0, max: 60_000, optional: true, convert: true },
};
const paging = {
  page: { type: "number", integer: true, min: 0, default: 0, convert: true },
  size: { type: "number", integer: true, min: 1, max: 10_000, default: 1000, convert: true },
  sort: { type: "array", items: "string", optional: true },
  filters: { type: "array", items: "string", optional: true },
  // The version (generation:token) of an answer the caller keeps: the same version again answers
  // { unchanged: true, version } without running the query; given at all, an answer carries its `version`.
  knownVersion: { type: "string", max: 200, optional: true },
  ...consistency,
};
const flag = { type: "boolean", default: false, convert: true };
const states = { type: "array", items: { type: "enum", values: ["RUNNING", "SUSPENDED", "FINISHED", "CANCELLED"] }, min: 1 };

/** A store that cannot answer is a retryable 503, never an empty answer or a raw driver error. */
function storeError(err: unknown): unknown {
  if (err instanceof UnsupportedFilterError) return validationError(err.message, [{ field: "filters", message: err.message }]);
  return asDependencyOutage(err, "The view store");
}

const ViewService = defineService<ViewSettings, TrackingProcessorMethods, Locals>({
  name: "view",
  mixins: [TrackingProcessorMixin({ processor: "view", batchSize: 1000, pollIntervalMs: 1000, onError: "stop" })],
  settings: {},

  hooks: {
    error: { "*": (_ctx, err) => Promise.reject(storeError(err)) },
  },

  events: {
    "view.generationSwitched": {
      context: true,
      handler(ctx: Context<{ generation: number }>) {
        if (!this.processor.leased) this.consistency?.forgetMeta();
        this.logger.info(`View generation ${ctx.params.generation} is live`);
      },
    },
    "view.changed": {
      context: true,
      handler(ctx: Context<{ token: string }>) {
        // Instances that do not write learn the applied position from the writer's broadcast.
        if (!this.processor.leased && ctx.params.token) this.consistency?.observe(ctx.params.token);
        this.consistency?.notify();
      },
    },
  },

  actions: {
    // ---- tasks ----
    allTasks: { params: paging, handler(ctx: Context<PagingParams>) { return this.queries.allTasks(ctx.params); } },
    tasksForUser: { params: { user, assignedToMeOnly: flag, involvementsOnly: flag, ...paging }, handler(ctx: Context<UserTasksParams>) { return this.queries.tasksForUser(ctx.params); } },
    tasksForGroup: { params: { user, includeAssigned: flag, ...paging }, handler(ctx: Context<GroupTasksParams>) { return this.queries.tasksForGroup(ctx.params); } },
    tasksForCandidateUserAndGroup: { params: { user, includeAssigned: { ...flag, default: true }, ...paging }, handler(ctx: Context<GroupTasksParams>) { return this.queries.tasksForCandidateUserAndGroup(ctx.params); } },
    tasksForApplication: { params: { applicationName: name, ...paging }, handler(ctx: Context<PagingParams & { applicationName: string }>) { return this.queries.tasksForApplication(ctx.params); } },
    taskForId: { params: { id: name, user: optionalUser, ...consistency }, handler(ctx: Context<ByIdParams>) { return this.queries.taskForId(ctx.params); } },
    allTasksWithDataEntries: { params: paging, handler(ctx: Context<PagingParams>) { return this.queries.allTasksWithDataEntries(ctx.params); } },
    tasksWithDataEntriesForUser: { params: { user, assignedToMeOnly: flag, involvementsOnly: flag, ...paging }, handler(ctx: Context<UserTasksParams>) { return this.queries.tasksWithDataEntriesForUser(ctx.params); } },
    tasksWithDataEntriesForGroup: { params: { user, includeAssigned: flag, ...paging }, handler(ctx: Context<GroupTasksParams>) { return this.queries.tasksWithDataEntriesForGroup(ctx.params); } },
    taskWithDataEntriesForId: { params: { id: name, user: optionalUser, ...consistency }, handler(ctx: Context<ByIdParams>) { return this.queries.taskWithDataEntriesForId(ctx.params); } },
    taskCountByApplication: { params: consistency, handler(ctx: Context<ConsistencyParams>) { return this.queries.taskCountByApplication(ctx.params); } },
    taskAttributeNames: { params: { user: optionalUser, assignedToMeOnly: flag, ...consistency }, handler(ctx: Context<AttributeParams>) { return this.queries.taskAttributeNames(ctx.params); } },
    taskAttributeValues: {
      params: { attributeName: { type: "string", min: 1, max: 500 }, user: optionalUser, assignedToMeOnly: flag, ...consistency },
      handler(ctx: Context<AttributeParams & { attributeName: string }>) { return this.queries.taskAttributeValues(ctx.params); },
    },

    // ---- data entries ----
    dataEntryForIdentity: {
      params: { entryType: name, entryId: name, user: optionalUser, ...consistency },
      handler(ctx: Context<ConsistencyParams & { entryType: string; entryId: string; user?: User }>) { return this.queries.dataEntryForIdentity(ctx.params); },
    },
    dataEntriesForType: { params: { entryType: name, ...paging }, handler(ctx: Context<PagingParams & { entryType: string }>) { return this.queries.dataEntriesForType(ctx.params); } },
    dataEntriesForUser: { params: { user, involvementsOnly: flag, ...paging }, handler(ctx: Context<PagingParams & { user: User; involvementsOnly: boolean }>) { return this.queries.dataEntriesForUser(ctx.params); } },
    dataEntries: { params: paging, handler(ctx: Context<PagingParams>) { return this.queries.dataEntries(ctx.params); } },

    // ---- processes ----
    processDefinitionsStartableByUser: { params: { user, ...consistency }, handler(ctx: Context<ConsistencyParams & { user: User }>) { return this.queries.processDefinitionsStartableByUser(ctx.params); } },
    processDefinitionsForApplication: { params: { applicationName: name, ...consistency }, handler(ctx: Context<ConsistencyParams & { applicationName: string }>) { return this.queries.processDefinitionsForApplication(ctx.params); } },
    processInstancesByState: {
      params: { states, page: paging.page, size: paging.size, ...consistency },
      handler(ctx: Context<ConsistencyParams & { states: string[]; page: number; size: number }>) { return this.queries.processInstancesByState(ctx.params); },
    },
    processVariablesForInstance: {
      params: { processInstanceId: name, variableNames: { type: "array", items: "string", optional: true }, ...consistency },
      handler(ctx: Context<ConsistencyParams & { processInstanceId: string; variableNames?: string[] }>) { return this.queries.processVariablesForInstance(ctx.params); },
    },

    // ---- operations ----
    async position(): Promise<ViewPosition> {
      const meta = await this.consistency.readMeta();
      return { token: this.consistency.appliedToken(meta), globalPosition: meta.globalPosition ?? 0, generation: meta.generation, store: this.store.kind };
    },
    async status() {
      const meta = await this.consistency.readMeta();
      const replay = this.replayState ? { ...this.replayState } : null;
      return { store: this.store.kind, generation: meta.generation, token: this.consistency.appliedToken(meta), globalPosition: meta.globalPosition ?? 0, processor: { ...this.processor }, replay };
    },
    async replay(ctx: Context) {
      const forwarded = await this.forwardToLeaseHolder(ctx, "replay");
      if (forwarded.forwarded) return forwarded.result;
      if (!this.replayState || this.replayState.status !== "running") {
        this.replayState = startReplay({
          store: this.store,
          projection: this.projection,
          readAll: (after) => callAction(this.broker, "eventstore.readAll", { after, limit: 1000 }),
          head: async () => (await callAction(this.broker, "eventstore.head", {})).globalPosition,
          betweenBatches: (work) => this.runBetweenBatches(work),
          moveToken: (token, globalPosition) => this.moveProcessorToken(token, globalPosition),
          switched: (generation) => void this.broker.broadcast(`${this.name}.generationSwitched`, { generation }),
          log: this.logger,
          dropDelayMs: this.config.dropDelayMs,
        });
      }
      return { ...this.replayState };
    },
    async replayStatus(ctx: Context) {
      const forwarded = await this.forwardToLeaseHolder(ctx, "replayStatus");
      if (forwarded.forwarded) return forwarded.result;
      return this.replayState ? { ...this.replayState } : null;
    },
  },

  methods: {
    // ---- the tracking processor's hooks ----
    async handleEvents(events: RecordedEvent[]) {
      await this.projection.apply(events);
    },
    async loadProcessorToken() {
      await this.storeReady;
      return this.projection.load();
    },
    async storeProcessorToken(token: string) {
      const changes = await this.projection.storeToken(token);
      if (changes.length > 0 || token !== START_TOKEN) {
        const notice = { token, globalPosition: positionOf(token), generation: this.projection.meta.generation, changes: changes satisfies ViewChange[] };
        void this.broker.broadcast(`${this.name}.changed`, notice);
      }
      this.consistency.notify();
    },
    async onProcessorReset() {
      await this.projection.reset();
    },
  },

  created() {
    const s = this.settings;
    const env = readEnvironment();
    this.config = { ...resolveViewStoreSettings(s, env), consistencyTimeoutMs: s.consistencyTimeoutMs ?? 10_000, dropDelayMs: s.dropDelayMs ?? 30_000, countCap: s.countCap ?? env.viewCountCap };
    Object.assign(s, this.config); // the settings show what the service runs with
    if (this.config.store === "memory") {
      // Each node projects its own copy: a processor of its own, never a standby that answers from nothing.
      this.processorSettings.processor = `${this.processorSettings.processor}@${this.broker.nodeID}`;
      this.processor.name = this.processorSettings.processor;
    }
    this.replayState = null;
    this.storeReady = new Promise<void>((resolve) => (this.markStoreReady = resolve));
  },

  async started() {
    this.store = await openViewStore(this.config, (message) => this.logger.warn(message));
    this.projection = new ViewProjection(this.store);
    this.consistency = new ViewConsistency({
      store: this.store,
      written: () => (this.processor.leased ? this.projection.meta : null),
      tokenOf: async (globalPosition) => (await callAction(this.broker, "eventstore.tokenOf", { globalPosition })).token,
      timeoutMs: this.config.consistencyTimeoutMs,
    });
    this.queries = new ViewQueries(this.store, this.consistency, { countCap: this.config.countCap });
    this.markStoreReady();
    this.logger.info(`View store: ${describeViewStore(this.config)}`);
  },

  async stopped() {
    // The processor first: its batch in flight still writes to the store.
    await this.stopProcessorLoop();
    await this.store?.close();
  },
});

export default ViewService;
